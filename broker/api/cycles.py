"""Matching cycles, staff decisions, appeals, and the event feed."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from broker.api.common import BEARER, SelectPage, no_store
from broker.auth import current_account
from broker.clock import now
from broker.db import get_session
from broker.netguard import DestinationGuard
from broker.schemas.cycles import (
    AppealAnswerSchema,
    AppealInSchema,
    AppealSchema,
    CycleRunSchema,
    CycleSchema,
    DecisionBatchSchema,
    DecisionReasonSchema,
    DryRunSchema,
    EventQuerySchema,
    EventSchema,
    RejectionSchema,
    WebhookInSchema,
    WebhookSchema,
)
from broker.schemas.market import AllocationSchema
from broker.services import appeals, cycles, events, provisioning

blp = Blueprint("cycles", __name__, url_prefix="/api/v1", description="Cycles, decisions, appeals and events")


@blp.route("/cycles", methods=["POST"])
@blp.arguments(CycleRunSchema)
@blp.response(201, CycleSchema)
@blp.doc(security=BEARER)
def run_cycle(data: dict[str, Any]) -> Any:
    """Staff: run a matching cycle now; its proposals hold capacity until decided or lapsed."""
    return cycles.run_cycle(get_session(), now(), current_account(), time_limit=data.get("time_limit")).cycle


@blp.route("/cycles/dry-run", methods=["POST"])
@blp.arguments(CycleRunSchema)
@blp.response(200, DryRunSchema)
@blp.doc(security=BEARER)
def dry_run_cycle(data: dict[str, Any]) -> Any:
    """Staff: what a cycle would propose now, holding nothing and writing nothing."""
    outcome = cycles.run_cycle(get_session(), now(), current_account(), dry_run=True, time_limit=data.get("time_limit"))
    return {"dry_run": True, "stats": outcome.stats, "proposals": outcome.proposals}


@blp.route("/cycles", methods=["GET"])
@blp.response(200, CycleSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_cycles() -> Any:
    """Staff: the cycles, newest first."""
    return cycles.list_cycles(get_session(), current_account())


@blp.route("/cycles/<int:cycle_id>", methods=["GET"])
@blp.response(200, CycleSchema)
@blp.doc(security=BEARER)
def get_cycle(cycle_id: int) -> Any:
    """Staff: one cycle with its counts, objective, gap, fulfilment and every request left short."""
    return cycles.get_cycle(get_session(), current_account(), cycle_id)


@blp.route("/cycles/<int:cycle_id>/decisions", methods=["POST"])
@blp.arguments(DecisionBatchSchema)
@blp.response(200, AllocationSchema(many=True))
@blp.doc(security=BEARER)
def decide(data: dict[str, Any], cycle_id: int) -> Any:
    """Staff: approve or reject many proposals of a cycle at once, all or none."""
    return cycles.decide_many(get_session(), current_account(), cycle_id, data["decisions"], now())


@blp.route("/allocations/<int:allocation_id>/approve", methods=["POST"])
@blp.arguments(DecisionReasonSchema)
@blp.response(200, AllocationSchema)
@blp.doc(security=BEARER)
def approve(data: dict[str, Any], allocation_id: int) -> Any:
    """Staff: approve a proposal before its cycle's deadline."""
    return cycles.approve_allocation(get_session(), current_account(), allocation_id, data.get("reason"), now())


@blp.route("/allocations/<int:allocation_id>/reject", methods=["POST"])
@blp.arguments(RejectionSchema)
@blp.response(200, AllocationSchema)
@blp.doc(security=BEARER)
def reject(data: dict[str, Any], allocation_id: int) -> Any:
    """Staff: reject a proposal, with a reason the startup will see."""
    return cycles.reject_allocation(get_session(), current_account(), allocation_id, data["reason"], now())


@blp.route("/allocations/<int:allocation_id>/retry-provisioning", methods=["POST"])
@blp.response(200, AllocationSchema)
@blp.doc(security=BEARER)
def retry_provisioning(allocation_id: int) -> Any:
    """Staff: one more provisioning attempt for an allocation whose retries ran out."""
    return provisioning.retry_provisioning(get_session(), current_account(), allocation_id, now())


@blp.route("/allocations/<int:allocation_id>/cancel", methods=["POST"])
@blp.arguments(RejectionSchema)
@blp.response(200, AllocationSchema)
@blp.doc(security=BEARER)
def cancel(data: dict[str, Any], allocation_id: int) -> Any:
    """Staff: end an approved allocation not yet sent to the carrier, or one whose provisioning retries
    ran out, with a reason; its capacity and subsidy go back."""
    return provisioning.cancel_allocation(get_session(), current_account(), allocation_id, data["reason"], now())


@blp.route("/allocations/<int:allocation_id>/appeals", methods=["POST"])
@blp.arguments(AppealInSchema)
@blp.response(201, AppealSchema)
@blp.doc(security=BEARER)
def file_appeal(data: dict[str, Any], allocation_id: int) -> Any:
    """The startup appeals (诉求) a rejected or lapsed allocation."""
    return appeals.file_appeal(get_session(), current_account(), allocation_id, data["message"], now())


@blp.route("/allocations/<int:allocation_id>/appeals", methods=["GET"])
@blp.response(200, AppealSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def allocation_appeals(allocation_id: int) -> Any:
    """The appeal thread of an allocation."""
    return appeals.list_appeals(get_session(), current_account(), allocation_id)


@blp.route("/appeals", methods=["GET"])
@blp.response(200, AppealSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_appeals() -> Any:
    """A startup's own appeals; staff see all."""
    return appeals.list_appeals(get_session(), current_account())


@blp.route("/appeals/<int:appeal_id>/answer", methods=["POST"])
@blp.arguments(AppealAnswerSchema)
@blp.response(200, AppealSchema)
@blp.doc(security=BEARER)
def answer_appeal(data: dict[str, Any], appeal_id: int) -> Any:
    """Staff: answer an appeal."""
    return appeals.answer_appeal(get_session(), current_account(), appeal_id, data["answer"], now())


@blp.route("/events", methods=["GET"])
@blp.arguments(EventQuerySchema, location="query")
@blp.response(200, EventSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_events(query: dict[str, Any]) -> Any:
    """The signed-in startup's or carrier's events, oldest first."""
    return events.feed(get_session(), current_account(), query.get("since_id"))


@blp.route("/me/webhook", methods=["PUT"])
@no_store
@blp.arguments(WebhookInSchema)
@blp.response(200, WebhookSchema)
@blp.doc(security=BEARER)
def set_webhook(data: dict[str, Any]) -> Any:
    """Have your events POSTed to a URL, signed; the signing secret is returned once."""
    guard = DestinationGuard.from_config(current_app.config)
    subscription, secret = events.subscribe(get_session(), current_account(), data["url"], guard)
    return {"url": subscription.url, "secret": secret}
