"""Shapes of settlement statements, their approval, release at period end and clawback."""

from __future__ import annotations

from marshmallow import fields, validate

from broker.models import Claimant, ClawbackReason, NoticeState, StatementStatus
from broker.schemas.common import BaseSchema
from broker.schemas.fields import LocalDateTime
from broker.schemas.ledger import AwardSchema
from broker.schemas.policy import Money

_NOT_BLANK = validate.Regexp(r"\S", error="Must not be blank.")


class StatementInSchema(BaseSchema):
    """Build the statement of one program for one period."""

    program = fields.String(required=True, validate=validate.Length(1, 32), metadata={"description": "the program's code"})
    period = fields.String(required=True, validate=validate.Length(1, 16), metadata={
        "description": "a quarter (2026-Q4) or a month (2026-11), in Asia/Shanghai"})


class ApprovalInSchema(BaseSchema):
    disbursement_reference = fields.String(required=True, validate=[validate.Length(1, 100), _NOT_BLANK], metadata={
        "description": "the bank's or the finance bureau's number for the payment; recorded on every write-off row"})


class StatementQuerySchema(BaseSchema):
    program = fields.String(validate=validate.Length(1, 32))
    period = fields.String(validate=validate.Length(1, 16))
    status = fields.Enum(StatementStatus, by_value=True)


class SettlementLineSchema(BaseSchema):
    award_id = fields.Integer()
    payee_kind = fields.Enum(Claimant, by_value=True, metadata={"description": "startup, or carrier where the carrier claims"})
    payee_startup_id = fields.Integer(allow_none=True)
    payee_carrier_id = fields.Integer(allow_none=True)
    payee_name = fields.String()
    committed = Money()
    redeemed_before = Money(metadata={"description": "redeemed by usage before the period"})
    redeemed_in_period = Money(metadata={"description": "redeemed by usage in the period"})
    written_off_before = Money()
    outstanding = Money(metadata={"description": "redeemed by the period's end, not yet written off (negative: to recover)"})
    evidence = fields.String(metadata={"description": "not_required, complete or incomplete"})
    notice_state = fields.Enum(NoticeState, by_value=True)
    payable = Money(metadata={"description": "what the final approval writes off"})
    held = fields.String(allow_none=True, metadata={"description": "why the line is not payable"})


class PayeeTotalSchema(BaseSchema):
    payee_kind = fields.Enum(Claimant, by_value=True)
    payee_id = fields.Integer()
    payee_name = fields.String()
    committed = Money()
    redeemed_in_period = Money()
    outstanding = Money()
    payable = Money()


class StatementSchema(BaseSchema):
    id = fields.Integer()
    program_id = fields.Integer()
    program = fields.String(attribute="program_code")
    period = fields.String()
    starts_at = LocalDateTime()
    ends_at = LocalDateTime(metadata={"description": "exclusive"})
    status = fields.Enum(StatementStatus, by_value=True)
    total_payable = Money(metadata={"description": "of the lines shown"})
    approvals_needed = fields.Integer(metadata={"description": "2 over BROKER_SETTLEMENT_FOUR_EYES_ABOVE (four eyes), else 1"})
    built_by_id = fields.Integer(allow_none=True)
    built_at = LocalDateTime()
    first_approved_by_id = fields.Integer(allow_none=True)
    first_approved_at = LocalDateTime(allow_none=True)
    approved_by_id = fields.Integer(allow_none=True)
    approved_at = LocalDateTime(allow_none=True)
    disbursement_reference = fields.String(allow_none=True)
    payees = fields.List(fields.Nested(PayeeTotalSchema), metadata={"description": "totals per payee"})
    lines = fields.List(fields.Nested(SettlementLineSchema))


class ReleaseInSchema(BaseSchema):
    until = fields.Date(required=True, metadata={"description": "awards whose allocation window ended before this date"})


class ReleaseSchema(BaseSchema):
    program = fields.String(attribute="program_code")
    until = fields.Date()
    award_ids = fields.List(fields.Integer())
    returned = Money(metadata={"description": "what went back to the budget"})


class ClawbackInSchema(BaseSchema):
    reason = fields.Enum(ClawbackReason, by_value=True, required=True)
    note = fields.String(required=True, validate=[validate.Length(1, 2000), _NOT_BLANK], metadata={"description": "why, in words"})
    ban_until = fields.Date(load_default=None, allow_none=True, metadata={
        "description": "the startup gets nothing from this program before this date; default: three years"})


class BanSchema(BaseSchema):
    program_id = fields.Integer()
    startup_id = fields.Integer()
    until = fields.Date()
    reason = fields.Enum(ClawbackReason, by_value=True)
    actor_id = fields.Integer(allow_none=True)


class ClawbackSchema(BaseSchema):
    award = fields.Nested(AwardSchema)
    released = Money(metadata={"description": "the unused part, back to the budget"})
    taken_back = Money(metadata={"description": "what it had redeemed, adjusted away"})
    to_recover = Money(metadata={"description": "of that, what was already written off and must be recovered"})
    ban = fields.Nested(BanSchema)
