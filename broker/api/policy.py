"""Policy, subsidy programs and the audit log."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from broker.api.common import BEARER, SelectPage
from broker.auth import current_account
from broker.db import get_session
from broker.schemas.policy import (
    AuditEntrySchema,
    AuditQuerySchema,
    PolicyInSchema,
    PolicySchema,
    ProgramInSchema,
    ProgramSchema,
)
from broker.services import policy

blp = Blueprint("policy", __name__, url_prefix="/api/v1", description="Policy, subsidies and the audit log")


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
    return policy.create_program(get_session(), current_account(), data)


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
