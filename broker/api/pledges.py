"""Carrier pledges (运营商承诺资源): a carrier's own, set a period at a time, and the district's tracking."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from broker.api.common import BEARER
from broker.auth import current_account
from broker.db import get_session
from broker.schemas.pledges import (
    PeriodPledgesInSchema,
    PeriodQuerySchema,
    PledgeSchema,
    TrackingQuerySchema,
    TrackingSchema,
)
from broker.services import pledges

blp = Blueprint("pledges", __name__, url_prefix="/api/v1", description="Carrier pledges and their tracking")


@blp.route("/carriers/<string:carrier_code>/pledges", methods=["GET"])
@blp.arguments(PeriodQuerySchema, location="query")
@blp.response(200, PledgeSchema(many=True))
@blp.doc(security=BEARER)
def list_pledges(query: dict[str, Any], carrier_code: str) -> Any:
    """A carrier's pledges for a period: the carrier itself and staff."""
    return pledges.pledges(get_session(), current_account(), carrier_code, query["period"])


@blp.route("/carriers/<string:carrier_code>/pledges", methods=["PUT"])
@blp.arguments(PeriodPledgesInSchema)
@blp.response(200, PledgeSchema(many=True))
@blp.doc(security=BEARER)
def put_pledges(data: dict[str, Any], carrier_code: str) -> Any:
    """Replace the carrier's pledges for the period (a kind left out is no longer pledged): itself or staff."""
    return pledges.set_pledges(get_session(), current_account(), carrier_code, data["period"], data["pledges"])


@blp.route("/pledge-tracking", methods=["GET"])
@blp.arguments(TrackingQuerySchema, location="query")
@blp.response(200, TrackingSchema)
@blp.doc(security=BEARER)
def pledge_tracking(query: dict[str, Any]) -> Any:
    """Pledged, published, allocated and delivered per carrier × kind for a period: staff, or a carrier its own."""
    return pledges.pledge_tracking(get_session(), current_account(), query["period"], query["carrier"])
