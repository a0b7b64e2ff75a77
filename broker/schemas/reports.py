"""The district's reports: their filters (query strings, the same on the page, the API and the exports) and
their figures. Each report has a `...QuerySchema` whose `to_filters` gives the service its filters."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import ValidationError, fields, validates_schema

from broker.models import Sector
from broker.schemas.common import BaseSchema, KindField
from broker.schemas.fields import QueryId
from broker.services.district_reports import FulfilmentFilters, current_quarter

MAX_PERIOD_DAYS = 3 * 366  # a longer period is a mistake more often than a wish; the exports stream anyway


def QuantityTotal(**kwargs: Any) -> fields.Decimal:
    """A sum of quantities, out only: a string holding the exact decimal, as every quantity of the API."""
    return fields.Decimal(as_string=True, metadata={"type": "string", "format": "decimal"}, **kwargs)


class PeriodQuerySchema(BaseSchema):
    """A period of Shanghai dates, both days included; the current quarter when left out."""

    start = fields.Date(metadata={"description": "first day (Asia/Shanghai), default: the current quarter's"})
    end = fields.Date(metadata={"description": "last day, included (Asia/Shanghai), default: the current quarter's"})

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise ValidationError("The end is before the start.", "end")
        if start and end and (end - start).days > MAX_PERIOD_DAYS:
            raise ValidationError(f"A period is at most {MAX_PERIOD_DAYS} days.", "end")


def period(data: dict[str, Any], today: dt.date) -> tuple[dt.date, dt.date]:
    """The loaded period with the current quarter's ends filled in."""
    first, last = current_quarter(today)
    start, end = data.get("start") or first, data.get("end") or last
    if data.get("start") and not data.get("end"):
        end = max(start, last)
    if data.get("end") and not data.get("start"):
        start = min(end, first)
    return start, end


class FulfilmentQuerySchema(PeriodQuerySchema):
    kind = KindField()
    sector = fields.Enum(Sector)
    lighthouse = fields.Boolean(metadata={"description": "only startups of the Lighthouse (灯塔) sectors"})
    cycle = QueryId(metadata={"description": "only this cycle's allocations and the requests it proposed for"})


def fulfilment_filters(data: dict[str, Any], today: dt.date) -> FulfilmentFilters:
    start, end = period(data, today)
    return FulfilmentFilters(start=start, end=end, kind=data.get("kind"), sector=data.get("sector"),
                             lighthouse=bool(data.get("lighthouse")), cycle_id=data.get("cycle"))


class FulfilmentFiltersSchema(BaseSchema):
    start = fields.Date()
    end = fields.Date()
    kind = fields.String(allow_none=True)
    sector = fields.Enum(Sector, allow_none=True)
    lighthouse = fields.Boolean()
    cycle = fields.Integer(attribute="cycle_id", allow_none=True)


class FunnelRowSchema(BaseSchema):
    key = fields.String(metadata={"description": "\"total\", the month (YYYY-MM, Shanghai) or the cycle's id"})
    requests = fields.Integer()
    proposed = fields.Integer()
    approved = fields.Integer()
    active = fields.Integer()
    requested_qty = QuantityTotal()
    proposed_qty = QuantityTotal()
    approved_qty = QuantityTotal()
    active_qty = QuantityTotal()


class TimeRowSchema(BaseSchema):
    stage = fields.String(metadata={"description": "approved or active"})
    requests = fields.Integer(metadata={"description": "requests that reached the stage"})
    median_hours = fields.Float(allow_none=True)
    p90_hours = fields.Float(allow_none=True)


class ReasonRowSchema(BaseSchema):
    reason = fields.String()
    allocations = fields.Integer()
    quantity = QuantityTotal()


class FulfilmentSchema(BaseSchema):
    filters = fields.Nested(FulfilmentFiltersSchema)
    total = fields.Nested(FunnelRowSchema)
    months = fields.List(fields.Nested(FunnelRowSchema))
    cycles = fields.List(fields.Nested(FunnelRowSchema))
    times = fields.List(fields.Nested(TimeRowSchema))
    reasons = fields.List(fields.Nested(ReasonRowSchema), metadata={"description": "the top 20 rejection reasons"})
    lapsed = fields.Integer()
    lapsed_qty = QuantityTotal()


# -- report 3, subsidy spend (broker/services/report_spend.py) -----------------------------------

from marshmallow import validate  # noqa: E402  (appended per report)

from broker.services.report_spend import SIZE_BANDS, SpendFilters  # noqa: E402


class SpendQuerySchema(PeriodQuerySchema):
    program = QueryId(metadata={"description": "only this subsidy program's rows (its id)"})
    sector = fields.Enum(Sector)
    carrier = QueryId(metadata={"description": "only what this carrier supplied (its id)"})
    size = fields.String(validate=validate.OneOf([code for code, _, _ in SIZE_BANDS]),
                         metadata={"description": "firm size by headcount: micro (<10), small (10-99), "
                                                  "medium (100-299), large (300+)"})


def spend_filters(data: dict[str, Any], today: dt.date) -> SpendFilters:
    start, end = period(data, today)
    return SpendFilters(start=start, end=end, program_id=data.get("program"), sector=data.get("sector"),
                        carrier_id=data.get("carrier"), size=data.get("size"))


def MoneyTotal(**kwargs: Any) -> fields.Decimal:
    """A sum of yuan, out only: a string holding the exact decimal to the fen."""
    metadata = {"type": "string", "format": "decimal", **kwargs.pop("metadata", {})}
    return fields.Decimal(as_string=True, places=2, metadata=metadata, **kwargs)


class SpendFiltersSchema(BaseSchema):
    start = fields.Date()
    end = fields.Date()
    program = fields.Integer(attribute="program_id", allow_none=True)
    sector = fields.Enum(Sector, allow_none=True)
    carrier = fields.Integer(attribute="carrier_id", allow_none=True)
    size = fields.String(allow_none=True)


class SpendRowSchema(BaseSchema):
    key = fields.String(metadata={"description": "\"total\", the month (YYYY-MM, Shanghai), the program's or "
                                                 "carrier's code, the sector, the size band, or \"detail\""})
    name = fields.String()
    program = fields.String()
    sector = fields.String()
    carrier = fields.String()
    size = fields.String()
    month = fields.String()
    committed = MoneyTotal()
    redeemed = MoneyTotal()
    written_off = MoneyTotal()
    released = MoneyTotal()
    clawed_back = MoneyTotal()
    adjusted = MoneyTotal()
    usage_value = MoneyTotal(allow_none=True, metadata={"description": "gross value of the usage the redemptions paid for"})
    leverage = fields.Decimal(as_string=True, allow_none=True,
                              metadata={"type": "string", "description": "redeemed ÷ usage_value, 4 places"})


class CapRowSchema(BaseSchema):
    program = fields.String()
    name = fields.String()
    fiscal_year = fields.Integer()
    cap = MoneyTotal()
    firms = fields.Integer(metadata={"description": "firms with any award of the program in the year"})
    at_cap = fields.Integer(metadata={"description": "of them, firms whose committed reached cap_per_startup"})
    share = fields.Decimal(as_string=True, allow_none=True, metadata={"type": "string", "description": "percent"})


class SpendSchema(BaseSchema):
    filters = fields.Nested(SpendFiltersSchema)
    total = fields.Nested(SpendRowSchema)
    months = fields.List(fields.Nested(SpendRowSchema))
    programs = fields.List(fields.Nested(SpendRowSchema))
    sectors = fields.List(fields.Nested(SpendRowSchema))
    carriers = fields.List(fields.Nested(SpendRowSchema))
    sizes = fields.List(fields.Nested(SpendRowSchema))
    detail = fields.List(fields.Nested(SpendRowSchema), metadata={"description": "program × sector × carrier × size × month"})
    caps = fields.List(fields.Nested(CapRowSchema))


# -- report 6, compliance (broker/services/report_compliance.py) --------------------------------

from broker.services.report_compliance import ComplianceFilters  # noqa: E402  (appended per report)


class ComplianceQuerySchema(PeriodQuerySchema):
    program = QueryId(metadata={"description": "only this subsidy program's awards, bans and notices (its id)"})


def compliance_filters(data: dict[str, Any], today: dt.date) -> ComplianceFilters:
    start, end = period(data, today)
    return ComplianceFilters(start=start, end=end, program_id=data.get("program"))


class ComplianceFiltersSchema(BaseSchema):
    start = fields.Date()
    end = fields.Date()
    program = fields.Integer(attribute="program_id", allow_none=True)


class CountRowSchema(BaseSchema):
    what = fields.String(metadata={"description": "clawback:<reason>, evidence_rejected, objections_raised, "
                                                  "objections_upheld or objections_dismissed"})
    count = fields.Integer()
    amount = MoneyTotal(allow_none=True, metadata={"description": "yuan taken back (clawbacks only)"})


class ClawbackRowSchema(BaseSchema):
    at = fields.DateTime()
    award_id = fields.Integer()
    startup = fields.String()
    program = fields.String()
    reason = fields.String()
    amount = MoneyTotal()
    banned_until = fields.Date()


class EvidenceRowSchema(BaseSchema):
    at = fields.DateTime()
    award_id = fields.Integer()
    startup = fields.String()
    program = fields.String()
    type = fields.String()
    reason = fields.String()


class ObjectionRowSchema(BaseSchema):
    at = fields.DateTime()
    notice = fields.String()
    startup = fields.String()
    status = fields.String()
    answered_at = fields.DateTime(allow_none=True)


class ComplianceSchema(BaseSchema):
    filters = fields.Nested(ComplianceFiltersSchema)
    counts = fields.List(fields.Nested(CountRowSchema))
    clawbacks = fields.List(fields.Nested(ClawbackRowSchema), metadata={"description": "the latest 200"})
    evidence = fields.List(fields.Nested(EvidenceRowSchema), metadata={"description": "rejected; the latest 200"})
    objections = fields.List(fields.Nested(ObjectionRowSchema), metadata={"description": "lodged or answered; the latest 200"})
