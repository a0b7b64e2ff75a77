"""The district's reports: their filters (query strings, the same on the page, the API and the exports) and
their figures. Each report has a `...QuerySchema` whose `to_filters` gives the service its filters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from broker.models import AllocationStatus, Sector
from broker.schemas.common import BaseSchema, KindField
from broker.schemas.fields import Exact, QueryId
from broker.services.district_reports import FulfilmentFilters, current_quarter
from broker.services.report_carriers import CarrierFilters
from broker.services.report_utilisation import DEFAULT_THRESHOLD, UtilisationFilters

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


# -- report 4: utilisation --------------------------------------------------------------------


def DecimalOut(description: str = "", **kwargs: Any) -> fields.Decimal:
    """An exact decimal out, as a string (a quantity, a percent, yuan), with what it is."""
    metadata = {"type": "string", "format": "decimal", **({"description": description} if description else {})}
    return fields.Decimal(as_string=True, metadata=metadata, **kwargs)


class UtilisationQuerySchema(PeriodQuerySchema):
    kind = KindField()
    carrier = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "a carrier's code"})
    threshold = Exact(1, Decimal(0), Decimal(100), exclusive_minimum=True, metadata={
        "description": "idle below this percent of the allocated quantity used by mid-window (default 20)"})


def utilisation_filters(data: dict[str, Any], today: dt.date) -> UtilisationFilters:
    start, end = period(data, today)
    threshold = data.get("threshold")
    return UtilisationFilters(start=start, end=end, kind=data.get("kind"), carrier=data.get("carrier"),
                              threshold=DEFAULT_THRESHOLD if threshold is None else threshold)


class UtilisationFiltersSchema(BaseSchema):
    start = fields.Date()
    end = fields.Date()
    kind = fields.String(allow_none=True)
    carrier = fields.String(allow_none=True)
    threshold = DecimalOut("percent")


class AllocationUseSchema(BaseSchema):
    allocation_id = fields.Integer()
    status = fields.Enum(AllocationStatus)
    kind = fields.String()
    model = fields.String(allow_none=True, metadata={"description": "tokens: the offer's model"})
    carrier_code = fields.String()
    carrier_name = fields.String()
    startup_name = fields.String()
    window_start = fields.Date()
    window_end = fields.Date()
    middle_day = fields.Date(metadata={"description": "usage before this day counts as used by mid-window"})
    allocated = DecimalOut("in the kind's unit; line-days for a data line")
    used = QuantityTotal()
    used_by_middle = QuantityTotal()
    used_share = DecimalOut("percent", allow_none=True)
    idle = fields.Boolean()


class KindUseSchema(BaseSchema):
    kind = fields.String()
    model = fields.String(allow_none=True)
    allocations = fields.Integer()
    allocated = QuantityTotal()
    used = QuantityTotal()
    used_share = DecimalOut("percent", allow_none=True)
    idle = fields.Integer()


class UtilisationSchema(BaseSchema):
    filters = fields.Nested(UtilisationFiltersSchema)
    kinds = fields.List(fields.Nested(KindUseSchema))
    allocations = fields.List(fields.Nested(AllocationUseSchema))
    idle = fields.List(fields.Nested(AllocationUseSchema))


# -- report 5: the carrier statement ----------------------------------------------------------


class CarrierQuerySchema(PeriodQuerySchema):
    carrier = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "a carrier's code"})


def carrier_filters(data: dict[str, Any], today: dt.date) -> CarrierFilters:
    start, end = period(data, today)
    return CarrierFilters(start=start, end=end, carrier=data.get("carrier"))


class CarrierFiltersSchema(BaseSchema):
    start = fields.Date()
    end = fields.Date()
    carrier = fields.String(allow_none=True)


class KindMonthSchema(BaseSchema):
    carrier_code = fields.String()
    carrier_name = fields.String()
    month = fields.String(metadata={"description": "YYYY-MM, Shanghai"})
    kind = fields.String()
    pledged = DecimalOut("the month's share by days of the pledges of its period")
    delivered = QuantityTotal()


class MoneyMonthSchema(BaseSchema):
    carrier_code = fields.String()
    carrier_name = fields.String()
    month = fields.String()
    redeemed = DecimalOut("yuan")
    pending = DecimalOut("yuan redeemed, not yet paid by an approved statement")
    failures = fields.Integer(metadata={"description": "allocations whose provisioning attempts ran out"})


class CarrierStatementSchema(BaseSchema):
    filters = fields.Nested(CarrierFiltersSchema)
    months = fields.List(fields.String())
    kinds = fields.List(fields.Nested(KindMonthSchema))
    money = fields.List(fields.Nested(MoneyMonthSchema))
