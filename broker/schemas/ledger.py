"""Shapes of ledger rows, awards, balances, deposits and adjustments."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from broker.models import AdjustReason, AwardStatus, Claimant, LedgerKind, NoticeState, ProgramMode
from broker.resources import MAX_MONEY, MONEY_PLACES
from broker.schemas.common import BaseSchema, QuantityField
from broker.schemas.fields import Exact, Id, LocalDateTime, QueryId, QueryInt
from broker.schemas.policy import Amount, FundingDocument, Money

def FiscalYear(**kwargs: Any) -> fields.Integer:
    return fields.Integer(validate=validate.Range(2000, 2200), **kwargs)


class DepositInSchema(BaseSchema):
    """Budget coming in for a program, with the funding document it comes from."""

    amount = Amount(required=True, metadata={"description": "yuan, more than zero"})
    funding_document = FundingDocument(required=True)
    fiscal_year = FiscalYear(load_default=None, allow_none=True, metadata={"description": "default: this year"})
    note = fields.String(validate=validate.Length(1, 2000), load_default=None, allow_none=True)


class AdjustmentInSchema(BaseSchema):
    """A signed correction with a reason: on one award (what the startup earned), or on the budget."""

    amount = Exact(MONEY_PLACES, -MAX_MONEY, MAX_MONEY, required=True, metadata={
        "description": "yuan, signed and not zero: negative cuts the budget (or takes back from an award)"})
    reason = fields.Enum(AdjustReason, by_value=True, required=True)
    note = fields.String(required=True, validate=validate.Length(1, 2000), metadata={"description": "why, in words"})
    award_id = Id(load_default=None, allow_none=True, metadata={"description": "null: adjust the program's budget"})

    @validates("amount")
    def _not_zero(self, value: Any, **kwargs: Any) -> None:
        if value == 0:
            raise ValidationError("Must not be zero: an adjustment moves money.")


class LedgerEntrySchema(BaseSchema):
    id = fields.Integer()
    kind = fields.Enum(LedgerKind, by_value=True)
    amount = Money(metadata={"description": "yuan (stored as integer fen); signed only for an adjustment"})
    program_id = fields.Integer()
    startup_id = fields.Integer(allow_none=True)
    carrier_id = fields.Integer(allow_none=True)
    allocation_id = fields.Integer(allow_none=True)
    award_id = fields.Integer(allow_none=True)
    reverses_id = fields.Integer(allow_none=True, metadata={"description": "the row a reversal undoes"})
    usage_report_id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    reference = fields.String(allow_none=True, metadata={
        "description": "a deposit's funding document number; a write-off's disbursement reference"})
    fiscal_year = fields.Integer()
    actor_id = fields.Integer(allow_none=True)
    idempotency_key = fields.String()
    created_at = LocalDateTime()


class LedgerQuerySchema(BaseSchema):
    program_id = QueryId()
    startup_id = QueryId()
    carrier_id = QueryId()
    award_id = QueryId()
    kind = fields.Enum(LedgerKind, by_value=True)
    fiscal_year = QueryInt(2000, 2200)


class AwardSchema(BaseSchema):
    id = fields.Integer()
    program_id = fields.Integer()
    program = fields.Function(lambda a: a.program.code)
    allocation_id = fields.Integer()
    startup_id = fields.Integer()
    carrier_id = fields.Integer()
    fiscal_year = fields.Integer()
    mode = fields.Enum(ProgramMode, by_value=True)
    claimant = fields.Enum(Claimant, by_value=True)
    rate = Exact(4, 0, 1)
    quantity = QuantityField(metadata={"description": "the units the award covers"})
    gross = Money(metadata={"description": "the allocation's cost before subsidy"})
    amount = Money(metadata={"description": "what was awarded at approval"})
    committed = Money()
    redeemed = Money()
    written_off = Money()
    payable = Money(metadata={"description": "redeemed, not yet written off (negative: to recover)"})
    status = fields.Enum(AwardStatus, by_value=True)
    evidence_complete = fields.Boolean(metadata={"description": "every piece of evidence the program requires is verified"})
    notice_state = fields.Enum(NoticeState, by_value=True, metadata={"description": "where it stands in the public notice (公示)"})
    created_at = LocalDateTime()
    closed_at = LocalDateTime(allow_none=True)


class AwardDetailSchema(AwardSchema):
    entries = fields.List(fields.Nested(LedgerEntrySchema), metadata={"description": "every ledger row of the award"})


class AwardQuerySchema(BaseSchema):
    program_id = QueryId()
    startup_id = QueryId()
    carrier_id = QueryId()
    allocation_id = QueryId()
    status = fields.Enum(AwardStatus, by_value=True)
    fiscal_year = QueryInt(2000, 2200)


class BalanceQuerySchema(BaseSchema):
    by = fields.String(
        load_default="program",
        validate=validate.Regexp(r"^(program|startup|fiscal_year)(,(program|startup|fiscal_year)){0,2}$",
                                 error="Give program, startup or fiscal_year, comma-separated."),
        metadata={"description": "group by any of program, startup, fiscal_year, comma-separated"},
    )
    program_id = QueryId()
    startup_id = QueryId()
    carrier_id = QueryId()
    fiscal_year = QueryInt(2000, 2200)


class BalanceSchema(BaseSchema):
    program_id = fields.Integer(allow_none=True)
    startup_id = fields.Integer(allow_none=True)
    fiscal_year = fields.Integer(allow_none=True)
    budget = Money()
    committed = Money()
    redeemed = Money()
    written_off = Money()
    remaining = Money()
    outstanding = Money(metadata={"description": "committed, not yet redeemed"})
    payable = Money(metadata={"description": "redeemed, not yet written off"})
