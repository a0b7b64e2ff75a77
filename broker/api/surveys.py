"""Demand surveys (需求摸排): staff open and read them, startups declare, carriers read the anonymised demand."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from broker.api.common import BEARER
from broker.auth import current_account
from broker.clock import local_date, now
from broker.db import get_session
from broker.models.surveys import SurveyCampaign
from broker.schemas.surveys import (
    AggregateSchema,
    AnonymousAggregateSchema,
    CampaignFlagsSchema,
    CampaignInSchema,
    CampaignSchema,
    LinesInSchema,
    LinesSchema,
)
from broker.services import surveys

blp = Blueprint("surveys", __name__, url_prefix="/api/v1", description="Demand surveys (需求摸排) and the declared demand")


def _shown(campaign: SurveyCampaign) -> dict[str, Any]:
    return {**{c: getattr(campaign, c) for c in ("id", "title", "period", "opens_on", "closes_on", "kinds",
                                                 "allow_unregistered", "created_at")},
            "status": campaign.status(local_date(now()))}


@blp.route("/surveys", methods=["POST"])
@blp.arguments(CampaignInSchema)
@blp.response(201, CampaignSchema)
@blp.doc(security=BEARER)
def open_campaign(data: dict[str, Any]) -> Any:
    """Staff: open a demand survey for a period and the kinds it covers."""
    return _shown(surveys.open_campaign(get_session(), current_account(), data, now()))


@blp.route("/surveys", methods=["GET"])
@blp.response(200, CampaignSchema(many=True))
@blp.doc(security=BEARER)
def list_campaigns() -> Any:
    """Surveys, newest first (companies: those that have opened)."""
    return [_shown(c) for c in surveys.campaigns(get_session(), current_account(), now())]


@blp.route("/surveys/<int:campaign_id>", methods=["PATCH"])
@blp.arguments(CampaignFlagsSchema)
@blp.response(200, CampaignSchema)
@blp.doc(security=BEARER)
def change_campaign(data: dict[str, Any], campaign_id: int) -> Any:
    """Staff, until the survey closes: whether firms not registered may answer (by credit code)."""
    return _shown(surveys.set_allow_unregistered(get_session(), current_account(), campaign_id,
                                                 data["allow_unregistered"], now()))


@blp.route("/surveys/<int:campaign_id>/declarations", methods=["GET"])
@blp.response(200, LinesSchema)
@blp.doc(security=BEARER)
def own_declarations(campaign_id: int) -> Any:
    """A verified startup: its own declared lines in a survey."""
    session, actor = get_session(), current_account()
    lines = surveys.own_lines(session, actor, campaign_id, now())
    return {"campaign": _shown(surveys.campaign(session, actor, campaign_id, now())), "lines": lines}


@blp.route("/surveys/<int:campaign_id>/declarations", methods=["PUT"])
@blp.arguments(LinesInSchema)
@blp.response(200, LinesSchema)
@blp.doc(security=BEARER)
def replace_declarations(data: dict[str, Any], campaign_id: int) -> Any:
    """A verified startup, while the survey is open: its whole declaration (lines left out are removed)."""
    session, actor = get_session(), current_account()
    lines = surveys.replace_lines(session, actor, campaign_id, data["lines"], now())
    return {"campaign": _shown(surveys.campaign(session, actor, campaign_id, now())), "lines": lines}


@blp.route("/surveys/<int:campaign_id>/aggregate", methods=["GET"])
@blp.response(200, AggregateSchema)
@blp.doc(security=BEARER)
def staff_aggregate(campaign_id: int) -> Any:
    """Staff: declared demand by kind × region × month × sector, with the number of firms."""
    found = surveys.staff_aggregate(get_session(), current_account(), campaign_id, now())
    return {"campaign": _shown(found.campaign), "firms": found.firms, "cells": found.cells}


@blp.route("/surveys/<int:campaign_id>/demand", methods=["GET"])
@blp.response(200, AnonymousAggregateSchema)
@blp.doc(security=BEARER)
def anonymous_aggregate(campaign_id: int) -> Any:
    """Carriers: declared demand by kind × region × month; no firm named, cells of fewer than 3 firms left out."""
    found = surveys.carrier_aggregate(get_session(), current_account(), campaign_id, now())
    return {"campaign": _shown(found.campaign), "suppressed": found.suppressed, "cells": found.cells}
