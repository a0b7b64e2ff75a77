"""Public notices (公示): staff freeze, answer and finalise; anyone reads and objects, without signing in."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from broker.api.common import BEARER, SelectPage
from broker.auth import current_account
from broker.clock import now
from broker.db import get_session
from broker.schemas.notices import (
    AnswerInSchema,
    NoticeInSchema,
    NoticeQuerySchema,
    ObjectionInSchema,
    ObjectionQuerySchema,
    ObjectionReceiptSchema,
    ObjectionSchema,
    PublicNoticeSchema,
    PublicNoticeSummarySchema,
    StaffNoticeSchema,
)
from broker.services import notices

blp = Blueprint("notices", __name__, url_prefix="/api/v1", description="Public notices (公示) of subsidy awards, and objections")


@blp.route("/notices", methods=["POST"])
@blp.arguments(NoticeInSchema)
@blp.response(201, StaffNoticeSchema)
@blp.doc(security=BEARER)
def create_notice(data: dict[str, Any]) -> Any:
    """Staff: freeze a batch of awards into a public notice over working days."""
    return notices.create_notice(get_session(), current_account(), data, now())


@blp.route("/notices", methods=["GET"])
@blp.arguments(NoticeQuerySchema, location="query")
@blp.response(200, StaffNoticeSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_notices(filters: dict[str, Any]) -> Any:
    """Staff: notices with the awards behind their items, newest first."""
    return notices.staff_notices(get_session(), current_account(), filters)


@blp.route("/notices/<int:notice_id>", methods=["GET"])
@blp.response(200, StaffNoticeSchema)
@blp.doc(security=BEARER)
def get_notice(notice_id: int) -> Any:
    """Staff: one notice with the awards behind its items."""
    return notices.staff_notice(get_session(), current_account(), notice_id)


@blp.route("/notices/<int:notice_id>/finalise", methods=["POST"])
@blp.response(200, StaffNoticeSchema)
@blp.doc(security=BEARER)
def finalise_notice(notice_id: int) -> Any:
    """Staff: after its last working day and with every objection answered, the notice and its awards become final."""
    return notices.finalise(get_session(), current_account(), notice_id, now())


@blp.route("/objections", methods=["GET"])
@blp.arguments(ObjectionQuerySchema, location="query")
@blp.response(200, ObjectionSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_objections(filters: dict[str, Any]) -> Any:
    """Staff: objections, oldest first."""
    return notices.list_objections(get_session(), current_account(), filters)


@blp.route("/objections/<int:objection_id>/answer", methods=["POST"])
@blp.arguments(AnswerInSchema)
@blp.response(200, ObjectionSchema)
@blp.doc(security=BEARER)
def answer_objection(data: dict[str, Any], objection_id: int) -> Any:
    """Staff: uphold (the award leaves the batch, its unused commitment goes back) or dismiss an objection."""
    return notices.answer_objection(get_session(), current_account(), objection_id, data, now())


@blp.route("/public/notices", methods=["GET"])
@blp.arguments(NoticeQuerySchema, location="query")
@blp.response(200, PublicNoticeSummarySchema(many=True))
@blp.paginate(SelectPage)
def public_notices(filters: dict[str, Any]) -> Any:
    """Anyone, no sign-in: the notices, newest first."""
    return notices.list_notices(get_session(), filters.get("status"))


@blp.route("/public/notices/<int:notice_id>", methods=["GET"])
@blp.response(200, PublicNoticeSchema)
def public_notice(notice_id: int) -> Any:
    """Anyone, no sign-in: one notice's list (startup, program, amount), when it ends and how to object."""
    return notices.get_notice(get_session(), notice_id)


@blp.route("/public/notices/<int:notice_id>/objections", methods=["POST"])
@blp.arguments(ObjectionInSchema)
@blp.response(201, ObjectionReceiptSchema)
def lodge_objection(data: dict[str, Any], notice_id: int) -> Any:
    """Anyone, no sign-in: object to a notice, or to one item of it, until the end of its last working day."""
    return notices.lodge_objection(get_session(), notice_id, data, now())
