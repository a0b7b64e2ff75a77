"""Policy, subsidy programs and the audit log."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from broker.api.common import BEARER, SelectPage
from broker.auth import current_account
from broker.clock import now
from broker.db import get_session
from broker.schemas.ledger import (
    AdjustmentInSchema,
    AwardDetailSchema,
    AwardQuerySchema,
    AwardSchema,
    BalanceQuerySchema,
    BalanceSchema,
    DepositInSchema,
    LedgerEntrySchema,
    LedgerQuerySchema,
)
from broker.schemas.policy import (
    AuditEntrySchema,
    AuditQuerySchema,
    PolicyInSchema,
    PolicySchema,
    ProgramInSchema,
    ProgramSchema,
    ProgramTermsSchema,
    StackGroupInSchema,
    StackGroupSchema,
)
from broker.services import ledger, policy

blp = Blueprint("policy", __name__, url_prefix="/api/v1", description="Policy, subsidy programs, the ledger and the audit log")


@blp.route("/policy", methods=["GET"])
@blp.response(200, PolicySchema)
@blp.doc(security=BEARER)
def get_policy() -> Any:
    """The matching policy in force."""
    current_account()
    return policy.current_policy(get_session())


@blp.route("/policy", methods=["PUT"])
@blp.arguments(PolicyInSchema)
@blp.response(200, PolicySchema)
@blp.doc(security=BEARER)
def set_policy(data: dict[str, Any]) -> Any:
    """Staff: put a new policy version in force."""
    return policy.set_policy(get_session(), current_account(), data)


@blp.route("/subsidy-programs", methods=["GET"])
@blp.response(200, ProgramSchema(many=True))
@blp.doc(security=BEARER)
def list_programs() -> Any:
    """Subsidy programs with their commitments and remaining budget."""
    current_account()
    return policy.list_programs(get_session())


@blp.route("/subsidy-programs", methods=["POST"])
@blp.arguments(ProgramInSchema)
@blp.response(201, ProgramSchema)
@blp.doc(security=BEARER)
def create_program(data: dict[str, Any]) -> Any:
    """Staff: open a subsidy program."""
    return policy.create_program(get_session(), current_account(), data, now())


@blp.route("/subsidy-programs/<int:program_id>", methods=["PATCH"])
@blp.arguments(ProgramTermsSchema)
@blp.response(200, ProgramSchema)
@blp.doc(security=BEARER)
def update_program(data: dict[str, Any], program_id: int) -> Any:
    """Staff: change a program's terms for awards made from now on (the budget moves by deposits and adjustments)."""
    return policy.update_program(get_session(), current_account(), program_id, data)


def _status_route(change: str, summary: str) -> None:
    def view(program_id: int) -> Any:
        return policy.change_program_status(get_session(), current_account(), program_id, change)

    view.__name__ = f"{change}_program"
    view.__doc__ = summary
    blp.route(f"/subsidy-programs/<int:program_id>/{change}", methods=["POST"])(
        blp.response(200, ProgramSchema)(blp.doc(security=BEARER)(view))
    )


_status_route("pause", "Staff: pause a program; it makes no new awards until reopened.")
_status_route("reopen", "Staff: reopen a paused program.")
_status_route("close", "Staff: close a program for good; its awards stay and are settled.")


@blp.route("/subsidy-programs/<int:program_id>/deposits", methods=["POST"])
@blp.arguments(DepositInSchema)
@blp.response(201, LedgerEntrySchema)
@blp.doc(security=BEARER)
def deposit(data: dict[str, Any], program_id: int) -> Any:
    """Staff: budget coming in, with its funding document number."""
    return ledger.deposit(get_session(), current_account(), program_id, data, now())


@blp.route("/subsidy-programs/<int:program_id>/adjustments", methods=["POST"])
@blp.arguments(AdjustmentInSchema)
@blp.response(201, LedgerEntrySchema)
@blp.doc(security=BEARER)
def adjust(data: dict[str, Any], program_id: int) -> Any:
    """Staff: a signed correction of the budget or of one award, with a reason and a note."""
    return ledger.adjust(get_session(), current_account(), program_id, data, now())


@blp.route("/subsidy-stack-groups", methods=["GET"])
@blp.response(200, StackGroupSchema(many=True))
@blp.doc(security=BEARER)
def list_stack_groups() -> Any:
    """Groups of programs that may pay together (市区协同)."""
    current_account()
    return policy.list_stack_groups(get_session())


@blp.route("/subsidy-stack-groups", methods=["POST"])
@blp.arguments(StackGroupInSchema)
@blp.response(201, StackGroupSchema)
@blp.doc(security=BEARER)
def create_stack_group(data: dict[str, Any]) -> Any:
    """Staff: a group of programs that may pay together, within a combined share of the cost."""
    return policy.create_stack_group(get_session(), current_account(), data, now())


@blp.route("/ledger", methods=["GET"])
@blp.arguments(LedgerQuerySchema, location="query")
@blp.response(200, LedgerEntrySchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_ledger(filters: dict[str, Any]) -> Any:
    """Ledger rows, oldest first: staff see all, a startup its own, a carrier what it supplied."""
    return ledger.list_entries(get_session(), current_account(), filters)


@blp.route("/ledger/balances", methods=["GET"])
@blp.arguments(BalanceQuerySchema, location="query")
@blp.response(200, BalanceSchema(many=True))
@blp.doc(security=BEARER)
def balances(query: dict[str, Any]) -> Any:
    """Balances derived from the ledger rows, grouped by program, startup and fiscal year."""
    by = tuple(dict.fromkeys(query.pop("by").split(",")))
    return ledger.visible_balances(get_session(), current_account(), by, query)


@blp.route("/awards", methods=["GET"])
@blp.arguments(AwardQuerySchema, location="query")
@blp.response(200, AwardSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_awards(filters: dict[str, Any]) -> Any:
    """Subsidy awards: staff see all, a startup its own, a carrier those on what it supplied."""
    return ledger.list_awards(get_session(), current_account(), filters)


@blp.route("/awards/<int:award_id>", methods=["GET"])
@blp.response(200, AwardDetailSchema)
@blp.doc(security=BEARER)
def get_award(award_id: int) -> Any:
    """One award with every ledger row from its commit on."""
    return ledger.get_award(get_session(), current_account(), award_id)


@blp.route("/subsidy-programs/<int:program_id>", methods=["GET"])
@blp.response(200, ProgramSchema)
@blp.doc(security=BEARER)
def get_program(program_id: int) -> Any:
    """One subsidy program."""
    current_account()
    return policy.get_program(get_session(), program_id)


@blp.route("/audit", methods=["GET"])
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditEntrySchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_audit(filters: dict[str, Any]) -> Any:
    """Staff and admins: every state change, who made it, before and after."""
    return policy.list_audit(get_session(), current_account(), filters)
