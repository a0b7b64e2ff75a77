"""Shapes of public notices (公示), their items and objections: the staff's and the public's.

The public shapes hold nothing private: no USCC, no contact, no objector, no id but the notice's
and its items'.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from broker.models import NoticeStatus, ObjectionStatus
from broker.models.notices import (
    MAX_ANSWER,
    MAX_BATCH,
    MAX_OBJECTION_CONTACT,
    MAX_OBJECTION_NAME,
    MAX_OBJECTION_TEXT,
    MAX_WORKING_DAYS,
)
from broker.schemas.common import BaseSchema
from broker.schemas.fields import Id, LocalDateTime, QueryId, StrictInt
from broker.schemas.ledger import FiscalYear
from broker.schemas.policy import Money


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def Text(most: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(1, most), _not_blank], **kwargs)


class NoticeInSchema(BaseSchema):
    """A batch to freeze: these awards, or every award of a program's fiscal year not noticed yet."""

    title = Text(200, required=True, metadata={"description": "e.g. 2026年第三批模型券拟支持名单公示"})
    award_ids = fields.List(Id(), validate=validate.Length(1, MAX_BATCH), load_default=None,
                            metadata={"description": "the awards to freeze (or give program and fiscal_year)"})
    program = fields.String(validate=validate.Length(1, 32), load_default=None,
                            metadata={"description": "a program's code: all its committed awards of fiscal_year not noticed yet"})
    fiscal_year = FiscalYear(load_default=None)
    starts_on = fields.Date(required=True, metadata={"description": "the first day on show (Asia/Shanghai)"})
    working_days = StrictInt(1, MAX_WORKING_DAYS, required=True,
                             metadata={"description": "how long, in working days on the Chinese calendar"})

    @validates_schema
    def _one_way(self, data: dict[str, Any], **kwargs: Any) -> None:
        by_ids, by_program = data.get("award_ids") is not None, data.get("program") is not None
        if by_ids == by_program:
            raise ValidationError("Give either award_ids, or program and fiscal_year.", "award_ids")
        if by_program and data.get("fiscal_year") is None:
            raise ValidationError("Required with program.", "fiscal_year")


class NoticeItemSchema(BaseSchema):
    """One award on the public list, as frozen."""

    id = fields.Integer()
    startup_name = fields.String()
    program_name = fields.String()
    amount = Money(metadata={"description": "yuan"})
    removed = fields.Function(lambda i: i.removed_at is not None,
                              metadata={"description": "taken out of the batch after an upheld objection"})


class StaffNoticeItemSchema(NoticeItemSchema):
    award_id = fields.Integer()
    program_id = fields.Integer()
    removed_at = LocalDateTime(allow_none=True)


def _ends_note(notice: Any) -> str:
    return f"公示期自 {notice.starts_on.isoformat()} 起，共 {notice.working_days} 个工作日，至 {notice.ends_on.isoformat()}（北京时间）止。"


def _how_to_object(notice: Any) -> dict[str, Any]:
    return {
        "until": notice.ends_on.isoformat(),
        "url": f"/api/v1/public/notices/{notice.id}/objections",
        "method": "POST",
        "fields": {"name": f"姓名或单位名称（必填，至多 {MAX_OBJECTION_NAME} 字）",
                   "contact": f"联系方式（必填，至多 {MAX_OBJECTION_CONTACT} 字）",
                   "text": f"异议内容及理由（必填，至多 {MAX_OBJECTION_TEXT} 字）",
                   "item_id": "所涉名单条目编号（可选）"},
        "note": (f"对公示内容有异议的，请于 {notice.ends_on.isoformat()}（北京时间）当日结束前提出，"
                 "实名反映，并提供联系方式和事实依据；逾期不予受理。"),
    }


class PublicNoticeSchema(BaseSchema):
    """A notice as anyone sees it, without signing in."""

    id = fields.Integer()
    title = fields.String()
    status = fields.Enum(NoticeStatus, by_value=True)
    starts_on = fields.Date()
    working_days = fields.Integer()
    ends_on = fields.Date(metadata={"description": "the last working day of the notice, Asia/Shanghai"})
    programs = fields.Function(lambda n: sorted({i.program_name for i in n.items}),
                               metadata={"description": "the programs its awards come from"})
    timezone = fields.Constant("Asia/Shanghai")
    ends = fields.Function(_ends_note, metadata={"description": "when the notice ends, in words"})
    objections = fields.Function(_how_to_object, metadata={"description": "how, where and until when to object"})
    finalised_at = LocalDateTime(allow_none=True)
    items = fields.List(fields.Nested(NoticeItemSchema))


class PublicNoticeSummarySchema(BaseSchema):
    id = fields.Integer()
    title = fields.String()
    status = fields.Enum(NoticeStatus, by_value=True)
    starts_on = fields.Date()
    working_days = fields.Integer()
    ends_on = fields.Date()
    url = fields.Function(lambda n: f"/notices/{n.id}")


class StaffNoticeSchema(PublicNoticeSchema):
    program_id = fields.Integer(allow_none=True)
    fiscal_year = fields.Integer(allow_none=True)
    created_by = fields.Integer()
    created_at = LocalDateTime()
    items = fields.List(fields.Nested(StaffNoticeItemSchema))


class NoticeQuerySchema(BaseSchema):
    status = fields.Enum(NoticeStatus, by_value=True)


class ObjectionInSchema(BaseSchema):
    """An objection to a notice, or to one item of it (its id on the public list)."""

    name = Text(MAX_OBJECTION_NAME, required=True)
    contact = Text(MAX_OBJECTION_CONTACT, required=True, metadata={"description": "a phone number or an e-mail address"})
    text = Text(MAX_OBJECTION_TEXT, required=True, metadata={"description": "what is wrong, and the facts"})
    item_id = Id(load_default=None, allow_none=True)


class ObjectionReceiptSchema(BaseSchema):
    """What the objector is told back: the objection's number and when it was received."""

    id = fields.Integer()
    notice_id = fields.Integer()
    item_id = fields.Integer(allow_none=True)
    lodged_at = LocalDateTime()
    status = fields.Enum(ObjectionStatus, by_value=True)


class ObjectionSchema(ObjectionReceiptSchema):
    name = fields.String()
    contact = fields.String()
    text = fields.String()
    answer = fields.String(allow_none=True)
    answered_by = fields.Integer(allow_none=True)
    answered_at = LocalDateTime(allow_none=True)


class ObjectionQuerySchema(BaseSchema):
    notice_id = QueryId()
    status = fields.Enum(ObjectionStatus, by_value=True)


class AnswerInSchema(BaseSchema):
    """Staff's decision on an objection, with the answer in words."""

    decision = fields.String(required=True, validate=validate.OneOf([ObjectionStatus.upheld.value, ObjectionStatus.dismissed.value]),
                             metadata={"description": "upheld (the award leaves the batch) or dismissed"})
    answer = Text(MAX_ANSWER, required=True)
