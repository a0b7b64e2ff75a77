"""Settlement statements and their approval (four eyes), release of unused commitments, and clawback."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from broker.api.common import BEARER
from broker.auth import current_account
from broker.clock import now
from broker.db import get_session
from broker.schemas.settlement import (
    ApprovalInSchema,
    ClawbackInSchema,
    ClawbackSchema,
    ReleaseInSchema,
    ReleaseSchema,
    StatementInSchema,
    StatementQuerySchema,
    StatementSchema,
)
from broker.services import settlement

blp = Blueprint("settlement", __name__, url_prefix="/api/v1",
                description="Settlement statements and write-off (核销), release at period end, clawback")


@blp.route("/settlements", methods=["POST"])
@blp.arguments(StatementInSchema)
@blp.response(201, StatementSchema)
@blp.doc(security=BEARER)
def build_statement(data: dict[str, Any]) -> Any:
    """Staff: build one program's statement for a period (2026-Q4 or 2026-11), its lines frozen."""
    threshold = Decimal(current_app.config["SETTLEMENT_FOUR_EYES_ABOVE"])
    return settlement.build_statement(get_session(), current_account(), data, now(), threshold)


@blp.route("/settlements", methods=["GET"])
@blp.arguments(StatementQuerySchema, location="query")
@blp.response(200, StatementSchema(many=True))
@blp.doc(security=BEARER)
def list_statements(filters: dict[str, Any]) -> Any:
    """Statements: staff see all; a startup or carrier those with lines payable to it, and only those lines."""
    return settlement.list_statements(get_session(), current_account(), filters)


@blp.route("/settlements/<int:statement_id>", methods=["GET"])
@blp.response(200, StatementSchema)
@blp.doc(security=BEARER)
def get_statement(statement_id: int) -> Any:
    """One statement, with the lines the caller may see."""
    return settlement.get_statement(get_session(), current_account(), statement_id)


@blp.route("/settlements/<int:statement_id>/approve", methods=["POST"])
@blp.arguments(ApprovalInSchema)
@blp.response(200, StatementSchema)
@blp.doc(security=BEARER)
def approve_statement(data: dict[str, Any], statement_id: int) -> Any:
    """Staff: approve a statement (not one's own); the final approval writes the write-off rows."""
    return settlement.approve_statement(get_session(), current_account(), statement_id, data, now())


@blp.route("/subsidy-programs/<int:program_id>/release-unused", methods=["POST"])
@blp.arguments(ReleaseInSchema)
@blp.response(200, ReleaseSchema)
@blp.doc(security=BEARER)
def release_unused(data: dict[str, Any], program_id: int) -> Any:
    """Staff: awards whose allocation window ended before `until` give back what usage did not redeem."""
    return settlement.release_unused(get_session(), current_account(), program_id, data["until"], now())


@blp.route("/awards/<int:award_id>/clawback", methods=["POST"])
@blp.arguments(ClawbackInSchema)
@blp.response(200, ClawbackSchema)
@blp.doc(security=BEARER)
def claw_back(data: dict[str, Any], award_id: int) -> Any:
    """Staff: claw an award back with a reason; the startup is banned from the program and told."""
    return settlement.claw_back(get_session(), current_account(), award_id, data, now())
