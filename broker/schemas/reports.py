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
from broker.services.report_gap import GapFilters

from broker.services.report_carriers import CarrierFilters
from broker.services.report_utilisation import DEFAULT_THRESHOLD, UtilisationFilters
from broker.models.ratings import MAX_RATING_COMMENT
from broker.models.surveys import MAX_REGION
from broker.schemas.fields import QueryInt, StrictInt
from broker.services.report_compliance import ComplianceFilters
from broker.services.report_pack import PackFilters
from broker.services.report_spend import SIZE_BANDS, SpendFilters

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
    region = fields.String(validate=validate.Length(1, MAX_REGION), metadata={
        "description": "only this region: survey lines and offers in it, requests accepting it (naming it, or any "
                       "region); pledges name no region, so none are counted"})
    campaign = QueryId(metadata={"description": "the survey campaign whose declarations are the surveyed demand "
                                                "(its period unless start and end are given); default: the newest "
                                                "campaign whose period is exactly the report's"})


def gap_filters(data: dict[str, Any], today: dt.date, campaign_days: tuple[dt.date, dt.date] | None = None) -> GapFilters:
    """The filters; a chosen campaign's period is the default period when no date is given."""
    if campaign_days is not None and not data.get("start") and not data.get("end"):
        data = {**data, "start": campaign_days[0], "end": campaign_days[1]}
    start, end = period(data, today)
    return GapFilters(start=start, end=end, kind=data.get("kind"), sector=data.get("sector"),
                      lighthouse=bool(data.get("lighthouse")), campaign_id=data.get("campaign"), region=data.get("region"))


class GapFiltersSchema(BaseSchema):
    start = fields.Date()
    end = fields.Date()
    kind = fields.String(allow_none=True)
    sector = fields.Enum(Sector, allow_none=True)
    lighthouse = fields.Boolean()
    campaign = fields.Integer(attribute="campaign_id", allow_none=True)
    region = fields.String(allow_none=True)


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
    pledges_counted = fields.Boolean(metadata={"description": "a pledge period and no region filter: pledges name no region"})
    kinds = fields.List(fields.Nested(GapKindRowSchema))
    demand = fields.List(fields.Nested(GapDemandRowSchema))
    supply = fields.List(fields.Nested(GapSupplyRowSchema))
    unmet = fields.List(fields.Nested(GapUnmetRowSchema))

# --- report 7: the performance-evaluation pack (绩效自评) ---------------------------------------------


class PackQuerySchema(BaseSchema):
    program = QueryId(metadata={"description": "the subsidy program's id; default: the first program"})
    year = QueryInt(2000, 2200, metadata={"description": "the fiscal year; default: the current one (Asia/Shanghai)"})


def pack_filters(data: dict[str, Any], today: dt.date) -> PackFilters:
    return PackFilters(year=data.get("year") or today.year, program_id=data.get("program"))


class PackFiltersSchema(BaseSchema):
    year = fields.Integer()
    program = fields.Integer(attribute="program_id", allow_none=True)


def MoneyTotal(metadata: dict | None = None, **kwargs: Any) -> fields.Decimal:
    """Yuan, out only: a string holding the exact decimal (to the fen)."""
    return fields.Decimal(as_string=True, metadata={"type": "string", "format": "decimal", **(metadata or {})}, **kwargs)


def Rate(metadata: dict | None = None, **kwargs: Any) -> fields.Decimal:
    """A percentage or ratio to two places, out only; null when its denominator is zero."""
    return fields.Decimal(as_string=True, allow_none=True,
                          metadata={"type": "string", "format": "decimal", **(metadata or {})}, **kwargs)


class PackProgramChoiceSchema(BaseSchema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class PackDepositSchema(BaseSchema):
    reference = fields.String(metadata={"description": "the funding document's number"})
    amount = MoneyTotal()
    day = fields.Date(metadata={"description": "booked on (Asia/Shanghai)"})


class PackDecisionSchema(BaseSchema):
    status = fields.String()
    mode = fields.String()
    rate_percent = Rate()
    cap_per_startup = MoneyTotal()
    starts_on = fields.Date()
    ends_on = fields.Date()
    deposits = fields.List(fields.Nested(PackDepositSchema), metadata={"description": "the year's deposits"})
    year_budget = MoneyTotal(metadata={"description": "the sum of the year's deposits"})


class PackProcessSchema(BaseSchema):
    reviewed = fields.Integer(metadata={"description": "allocations decided or lapsed in the year's cycles"})
    on_time = fields.Integer()
    late = fields.Integer()
    lapsed = fields.Integer()
    on_time_percent = Rate()
    notices = fields.Integer()
    noticed = fields.Integer()
    removed = fields.Integer()
    objections = fields.Integer()
    upheld = fields.Integer()
    dismissed = fields.Integer()
    open_objections = fields.Integer()


class PackOutputSchema(BaseSchema):
    firms = fields.Integer()
    awards = fields.Integer()
    committed = MoneyTotal()
    redeemed = MoneyTotal()
    redemption_percent = Rate()
    budget_percent = Rate()


class PackBenefitSchema(BaseSchema):
    redeemed = MoneyTotal()
    delivered_gross = MoneyTotal()
    leverage = Rate(metadata={"description": "redeemed subsidy per yuan of delivered usage"})
    lighthouse_firms = fields.Integer()
    lighthouse_firms_percent = Rate()
    lighthouse_committed = MoneyTotal()
    lighthouse_amount_percent = Rate()


class PackSatisfactionSchema(BaseSchema):
    ratings = fields.Integer()
    mean = Rate()
    distribution = fields.List(fields.Tuple((fields.Integer(), fields.Integer())),
                               metadata={"description": "[score, ratings] from 5 down to 1"})


class PackSchema(BaseSchema):
    filters = fields.Nested(PackFiltersSchema)
    programs = fields.List(fields.Nested(PackProgramChoiceSchema))
    program = fields.Nested(PackProgramChoiceSchema, allow_none=True)
    decision = fields.Nested(PackDecisionSchema, allow_none=True)
    process = fields.Nested(PackProcessSchema)
    output = fields.Nested(PackOutputSchema)
    benefit = fields.Nested(PackBenefitSchema)
    satisfaction = fields.Nested(PackSatisfactionSchema)


class RatingInSchema(BaseSchema):
    score = StrictInt(1, 5, required=True, metadata={"description": "a whole number from 1 (poor) to 5 (very good)"})
    comment = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=MAX_RATING_COMMENT),
                            metadata={"description": "at most 300 characters"})


class RatingSchema(BaseSchema):
    allocation_id = fields.Integer()
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    created_at = fields.DateTime()

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
    page = QueryInt(1, 99_999, metadata={"description": "the page of `allocations` (50 a page, by id); default 1"})
    idle_page = QueryInt(1, 99_999, metadata={"description": "the page of `idle` (50 a page, by id); default 1"})


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
    as_of = fields.DateTime(allow_none=True, metadata={
        "description": "when the usage rollup these figures come from was rebuilt (every 15 minutes); null: not yet"})
    kinds = fields.List(fields.Nested(KindUseSchema))
    firms = fields.Integer(metadata={"description": "startups with any of the allocations"})
    allocations_total = fields.Integer()
    page = fields.Integer()
    pages = fields.Integer()
    allocations = fields.List(fields.Nested(AllocationUseSchema), metadata={"description": "the page `page`, 50 by id"})
    idle_total = fields.Integer()
    idle_page = fields.Integer()
    idle_pages = fields.Integer()
    idle = fields.List(fields.Nested(AllocationUseSchema), metadata={"description": "the page `idle_page`, 50 by id"})


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


# -- report 3, subsidy spend (broker/services/report_spend.py) -----------------------------------


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
    what = fields.String(metadata={"description": "clawback:<reason>, refused:<reason> (refused at approval: "
                                                  "related_party or double_subsidy), evidence_rejected, "
                                                  "objections_raised, objections_upheld or objections_dismissed"})
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


class RefusalRowSchema(BaseSchema):
    at = fields.DateTime()
    allocation_id = fields.Integer()
    startup = fields.String()
    program = fields.String()
    carrier = fields.String()
    reason = fields.String(metadata={"description": "related_party or double_subsidy"})


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
    refusals = fields.List(fields.Nested(RefusalRowSchema), metadata={
        "description": "programs an approval refused for a related party or a double subsidy; the latest 200"})
    evidence = fields.List(fields.Nested(EvidenceRowSchema), metadata={"description": "rejected; the latest 200"})
    objections = fields.List(fields.Nested(ObjectionRowSchema), metadata={"description": "lodged or answered; the latest 200"})
