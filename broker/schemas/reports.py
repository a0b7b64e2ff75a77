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
from broker.services.report_gap import GapFilters

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


# -- report 1: the supply–demand gap ------------------------------------------------------------


class GapQuerySchema(PeriodQuerySchema):
    kind = KindField()
    sector = fields.Enum(Sector)
    lighthouse = fields.Boolean(metadata={"description": "only startups of the Lighthouse (灯塔) sectors"})
    campaign = QueryId(metadata={"description": "the survey campaign whose declarations are the surveyed demand "
                                                "(its period unless start and end are given); default: the newest "
                                                "campaign whose period is exactly the report's"})


def gap_filters(data: dict[str, Any], today: dt.date, campaign_days: tuple[dt.date, dt.date] | None = None) -> GapFilters:
    """The filters; a chosen campaign's period is the default period when no date is given."""
    if campaign_days is not None and not data.get("start") and not data.get("end"):
        data = {**data, "start": campaign_days[0], "end": campaign_days[1]}
    start, end = period(data, today)
    return GapFilters(start=start, end=end, kind=data.get("kind"), sector=data.get("sector"),
                      lighthouse=bool(data.get("lighthouse")), campaign_id=data.get("campaign"))


class GapFiltersSchema(BaseSchema):
    start = fields.Date()
    end = fields.Date()
    kind = fields.String(allow_none=True)
    sector = fields.Enum(Sector, allow_none=True)
    lighthouse = fields.Boolean()
    campaign = fields.Integer(attribute="campaign_id", allow_none=True)


class GapCampaignSchema(BaseSchema):
    id = fields.Integer()
    title = fields.String()
    period = fields.String()


class GapKindRowSchema(BaseSchema):
    kind = fields.String()
    surveyed = QuantityTotal()
    requested = QuantityTotal()
    pledged = QuantityTotal()  # pledges are per carrier × kind × period: no region, no sector
    published = QuantityTotal()
    allocated = QuantityTotal()
    unmet = QuantityTotal()


class GapDemandRowSchema(BaseSchema):
    kind = fields.String()
    region = fields.String(metadata={"description": "\"\" for a request accepting several regions or any"})
    sector = fields.Enum(Sector)
    lighthouse = fields.Boolean()
    surveyed = QuantityTotal()
    requests = fields.Integer()
    requested = QuantityTotal()
    allocated = QuantityTotal()
    unmet = QuantityTotal()


class GapSupplyRowSchema(BaseSchema):
    kind = fields.String()
    region = fields.String()
    offers = fields.Integer()
    published = QuantityTotal()


class GapUnmetRowSchema(BaseSchema):
    kind = fields.String()
    reason = fields.String(metadata={"description": "no_compatible_offer, price, capacity, budget, share_cap, "
                                                    "minimum, or none (no cycle gave a reason yet)"})
    requests = fields.Integer()
    unmet = QuantityTotal()


class GapSchema(BaseSchema):
    filters = fields.Nested(GapFiltersSchema)
    campaign = fields.Nested(GapCampaignSchema, allow_none=True)
    pledge_period = fields.Boolean(metadata={"description": "whether the period is a quarter or a month (pledges' periods)"})
    kinds = fields.List(fields.Nested(GapKindRowSchema))
    demand = fields.List(fields.Nested(GapDemandRowSchema))
    supply = fields.List(fields.Nested(GapSupplyRowSchema))
    unmet = fields.List(fields.Nested(GapUnmetRowSchema))
