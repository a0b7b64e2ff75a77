"""Report 1, the supply–demand gap (供需缺口): for a period (Shanghai dates, both days included; default
the current quarter) set what firms said they need and asked for against what carriers pledged,
published and were granted, and say why the rest went unmet.

- **surveyed**: the declaration lines of one demand survey campaign (the one chosen, else the
  newest whose period is exactly the report's period; none if no campaign matches) for the months
  of the period, by kind, the line's region and the startup's sector — or, for a firm that answered
  without registering, the sector it gave (only confirmed answers have lines);
- **requested**: the resource requests (not withdrawn) whose window (first and last day, both
  included) overlaps the period, by kind, region and the startup's sector. A request that accepts
  exactly one region is counted there; one that accepts several, or any, under the region "" (多地区或不限);
- **allocated**: the granted allocations of those requests (approved, provisioning, active,
  released: `broker.services.review.GRANTED`, as pledge tracking counts them), on the request's row;
- **unmet**: per request, asked − granted, never below 0, with the reason the newest matching
  cycle (proposed or closed) that left the request short gave for it (its `stats["unfilled"]`),
  the engine's reason codes folded into six groups (`REASON_GROUPS`); unmet quantity no cycle
  explained (not yet matched, or a proposal still awaiting approval) is under "none";
- **pledged** (by kind only: a pledge names a carrier, a kind and a period, no region, no sector):
  the pledges whose period is exactly the report's (a quarter's or a month's), as pledge tracking;
- **published** (by kind and the offer's region; offers have no sector): pledge tracking's
  definition — each offer of the kind whose window overlaps the period, counted in full.

The kind, sector and Lighthouse filters narrow the demand side; the kind filter narrows the supply
side too (sector filters cannot: supply belongs to no sector). The region filter narrows each source by
its own region: survey lines and offers by theirs; requests (and so their allocations and unmet part,
on the request's row) when they accept the region — it is among the regions they name, or they accept
any — each still under its row's region as above; pledges name no region, so none are counted under it
(`pledges_counted` is false). A fixed handful of aggregate queries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.errors import InvalidInput
from broker.models import (
    LIGHTHOUSE_SECTORS,
    Account,
    Allocation,
    CycleStatus,
    Offer,
    Pledge,
    RequestStatus,
    ResourceRequest,
    Role,
    Sector,
    Startup,
)
from broker.models.surveys import SurveyCampaign, SurveyDeclaration
from broker.resources import KINDS
from broker.services.accounts import require_role
from broker.services.district_reports import _decimal, _total
from broker.services.review import GRANTED
from broker.services.surveys import declared_sector, period_months, with_declarants

ZERO = Decimal("0")
ANY_REGION = ""  # a request accepting several regions or any

# The engine's reason codes (broker.matching; worded in broker.web.reports.REASON_WORDS), in six groups.
REASON_GROUPS: dict[str, str] = {
    "no_compatible_offer": "no_compatible_offer", "region": "no_compatible_offer", "window": "no_compatible_offer",
    "price_ceiling": "price",
    "capacity_taken": "capacity", "capacity_held": "capacity", "capacity_short": "capacity",
    "budget": "budget",
    "share_cap": "share_cap",
    "below_minimum": "minimum",
}
GROUPS = ("no_compatible_offer", "price", "capacity", "budget", "share_cap", "minimum", "none")


@dataclass(frozen=True)
class GapFilters:
    start: dt.date
    end: dt.date  # inclusive
    kind: str | None = None
    sector: Sector | None = None
    lighthouse: bool = False
    campaign_id: int | None = None
    region: str | None = None


@dataclass(frozen=True)
class KindRow:
    kind: str
    surveyed: Decimal
    requested: Decimal
    pledged: Decimal
    published: Decimal
    allocated: Decimal
    unmet: Decimal


@dataclass(frozen=True)
class DemandRow:
    kind: str
    region: str  # "" for several regions or any
    sector: Sector
    lighthouse: bool
    surveyed: Decimal
    requests: int
    requested: Decimal
    allocated: Decimal
    unmet: Decimal


@dataclass(frozen=True)
class SupplyRow:
    kind: str
    region: str
    offers: int
    published: Decimal


@dataclass(frozen=True)
class UnmetRow:
    kind: str
    reason: str  # a key of GROUPS
    requests: int
    unmet: Decimal


@dataclass(frozen=True)
class GapReport:
    filters: GapFilters
    campaign: SurveyCampaign | None  # whose declarations are the surveyed demand
    pledge_period: bool  # whether the period is a quarter or a month, the periods pledges are made for
    pledges_counted: bool  # a pledge period and no region filter (pledges name no region)
    kinds: list[KindRow]
    demand: list[DemandRow]
    supply: list[SupplyRow]
    unmet: list[UnmetRow]
    regions: list[str]  # the regions offers and survey lines name, for the filter's choices


def campaign_days(campaign: SurveyCampaign) -> tuple[dt.date, dt.date] | None:
    """The first and last day of a campaign's period."""
    months = period_months(campaign.period)
    if not months:
        return None
    last = months[-1]
    following = dt.date(last.year + 1, 1, 1) if last.month == 12 else dt.date(last.year, last.month + 1, 1)
    return months[0], following - dt.timedelta(days=1)


def matching_campaign(session: Session, start: dt.date, end: dt.date, campaign_id: int | None) -> SurveyCampaign | None:
    """The campaign chosen, or the newest whose period is exactly start–end."""
    campaigns = list(session.scalars(sa.select(SurveyCampaign).order_by(SurveyCampaign.id.desc())))
    if campaign_id is not None:
        return next((c for c in campaigns if c.id == campaign_id), None)
    return next((c for c in campaigns if campaign_days(c) == (start, end)), None)


def chosen_campaign_days(session: Session, campaign_id: int | None) -> tuple[dt.date, dt.date] | None:
    """The period of the campaign chosen as a filter (the report's default period then); unknown: InvalidInput."""
    if campaign_id is None:
        return None
    found = session.get(SurveyCampaign, campaign_id)
    if found is None:
        raise InvalidInput("No such survey campaign.", {"campaign": [f"No survey campaign {campaign_id}."]})
    return campaign_days(found)


def _is_pledge_period(start: dt.date, end: dt.date) -> bool:
    """A whole month or quarter: what pledges are recorded for (broker.services.settlement.parse_period)."""
    following = end + dt.timedelta(days=1)
    months = (following.year - start.year) * 12 + following.month - start.month
    return start.day == 1 and following.day == 1 and (months == 1 or (months == 3 and start.month % 3 == 1))


def _single_region(session: Session) -> sa.ColumnElement[str]:
    """A request's region: the one it accepts if it names exactly one, else ANY_REGION."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.literal_column(
            "CASE WHEN json_typeof(resource_requests.regions) = 'array' THEN CASE WHEN "
            "json_array_length(resource_requests.regions) = 1 THEN resource_requests.regions ->> 0 ELSE '' END "
            "ELSE '' END", sa.String)
    return sa.literal_column(
        "CASE WHEN json_array_length(resource_requests.regions) = 1 "
        "THEN json_extract(resource_requests.regions, '$[0]') ELSE '' END", sa.String)


def _accepts_region(session: Session, region: str) -> sa.ColumnElement[bool]:
    """Whether a request accepts `region`: it names it among its regions, or it accepts any (no list)."""
    if session.get_bind().dialect.name == "postgresql":
        condition = ("CASE WHEN json_typeof(resource_requests.regions) = 'array' THEN EXISTS (SELECT 1 FROM "
                     "json_array_elements_text(resource_requests.regions) AS named(value) WHERE named.value = :region) "
                     "ELSE true END")
    else:
        condition = ("CASE WHEN json_type(resource_requests.regions) = 'array' THEN EXISTS (SELECT 1 FROM "
                     "json_each(resource_requests.regions) AS named WHERE named.value = :region) ELSE 1 END")
    return sa.text(condition).bindparams(region=region)


def _last_reasons(session: Session) -> sa.Subquery:
    """(request_id, reason): the reason the newest proposed or closed cycle that left the request short gave."""
    if session.get_bind().dialect.name == "postgresql":
        element = ("CAST(u.value ->> 'request_id' AS BIGINT)", "u.value ->> 'reason'",
                   "CROSS JOIN LATERAL json_array_elements(CAST(c.stats AS json) -> 'unfilled') AS u")
    else:
        element = ("CAST(json_extract(u.value, '$.request_id') AS INTEGER)", "json_extract(u.value, '$.reason')",
                   ", json_each(c.stats, '$.unfilled') AS u")
    request_id, reason, source = element
    text = sa.text(
        f"SELECT request_id, reason FROM (SELECT {request_id} AS request_id, {reason} AS reason, "
        f"ROW_NUMBER() OVER (PARTITION BY {request_id} ORDER BY c.id DESC) AS newest "
        f"FROM matching_cycles AS c {source} WHERE c.status IN (:proposed, :closed)) AS listed WHERE newest = 1"
    ).bindparams(proposed=CycleStatus.proposed.value, closed=CycleStatus.closed.value)
    return text.columns(sa.column("request_id", sa.BigInteger), sa.column("reason", sa.String)).subquery("last_reasons")


def _demand_filters(query: sa.Select, kind_column: sa.ColumnElement, filters: GapFilters,
                    sector_column: sa.ColumnElement | None = None) -> sa.Select:
    sector = Startup.sector if sector_column is None else sector_column
    if filters.kind:
        query = query.where(kind_column == filters.kind)
    if filters.sector:
        query = query.where(sector == filters.sector)
    if filters.lighthouse:
        query = query.where(sector.in_(LIGHTHOUSE_SECTORS))
    return query


def gap(session: Session, actor: Account, filters: GapFilters) -> GapReport:
    """Report 1: surveyed and requested demand, pledged, published and allocated supply, the unmet part and why."""
    require_role(actor, Role.staff, Role.admin)
    start, end = filters.start, filters.end

    # Requested: each request of the period with what was granted of it and its unmet part.
    granted = (
        sa.select(Allocation.request_id, _total(Allocation.quantity).label("granted"))
        .where(Allocation.status.in_(GRANTED)).group_by(Allocation.request_id).subquery("granted")
    )
    allocated = sa.func.coalesce(granted.c.granted, 0)
    chosen = _demand_filters(
        sa.select(
            ResourceRequest.id, ResourceRequest.kind, _single_region(session).label("region"),
            Startup.sector, sa.type_coerce(ResourceRequest.quantity, sa.BigInteger).label("quantity"),
            sa.type_coerce(allocated, sa.BigInteger).label("allocated"),
            sa.type_coerce(sa.case((ResourceRequest.quantity > allocated, ResourceRequest.quantity - allocated),
                                   else_=0), sa.BigInteger).label("unmet"),
        )
        .join(Startup, Startup.id == ResourceRequest.startup_id)
        .outerjoin(granted, granted.c.request_id == ResourceRequest.id)
        .where(ResourceRequest.window_start <= end, ResourceRequest.window_end >= start,
               ResourceRequest.status != RequestStatus.withdrawn,
               _accepts_region(session, filters.region) if filters.region is not None else sa.true()),
        ResourceRequest.kind, filters,
    ).cte("chosen")
    demand: dict[tuple[str, str, Sector], dict] = {}

    def cell(kind: str, region: str, sector: Sector) -> dict:
        return demand.setdefault((kind, region, sector), {"surveyed": ZERO, "requests": 0, "requested": ZERO,
                                                          "allocated": ZERO, "unmet": ZERO})

    for kind, region, sector, n, asked, given, unmet in session.execute(
        sa.select(chosen.c.kind, chosen.c.region, chosen.c.sector, sa.func.count(), _total(chosen.c.quantity),
                  _total(chosen.c.allocated), _total(chosen.c.unmet))
        .group_by(chosen.c.kind, chosen.c.region, chosen.c.sector)
    ):
        cell(kind, region or ANY_REGION, Sector(sector)).update(
            requests=int(n), requested=_decimal(asked), allocated=_decimal(given), unmet=_decimal(unmet))

    # Surveyed: one campaign's lines for the months of the period.
    campaign = matching_campaign(session, start, end, filters.campaign_id)
    if campaign is not None:
        sector = declared_sector().label("sector")
        for kind, region, sector, quantity in session.execute(_demand_filters(
            with_declarants(sa.select(SurveyDeclaration.kind, SurveyDeclaration.region, sector,
                                      _total(SurveyDeclaration.quantity)))
            .where(SurveyDeclaration.campaign_id == campaign.id, SurveyDeclaration.month >= start.replace(day=1),
                   SurveyDeclaration.month <= end,
                   SurveyDeclaration.region == filters.region if filters.region is not None else sa.true())
            .group_by(SurveyDeclaration.kind, SurveyDeclaration.region, sector),
            SurveyDeclaration.kind, filters, declared_sector(),
        )):
            cell(kind, region, Sector(sector))["surveyed"] = _decimal(quantity)

    # Unmet, by the last cycle's reason.
    reasons = _last_reasons(session)
    unmet: dict[tuple[str, str], list] = {}
    for kind, code, n, quantity in session.execute(
        sa.select(chosen.c.kind, reasons.c.reason, sa.func.count(), _total(chosen.c.unmet))
        .outerjoin(reasons, reasons.c.request_id == chosen.c.id)
        .where(chosen.c.unmet > 0)
        .group_by(chosen.c.kind, reasons.c.reason)
    ):
        found = unmet.setdefault((kind, REASON_GROUPS.get(code or "", "none")), [0, ZERO])
        found[0] += int(n)
        found[1] += _decimal(quantity)

    # Supply: pledges (by kind) and offers open in the period (by kind and region).
    pledge_period = _is_pledge_period(start, end)
    pledges_counted = pledge_period and filters.region is None
    pledged: dict[str, Decimal] = {}
    if pledges_counted:
        query = (sa.select(Pledge.kind, _total(Pledge.quantity))
                 .where(Pledge.first_day == start, Pledge.last_day == end).group_by(Pledge.kind))
        if filters.kind:
            query = query.where(Pledge.kind == filters.kind)
        pledged = {kind: _decimal(quantity) for kind, quantity in session.execute(query)}
    offers = (sa.select(Offer.kind, Offer.region, sa.func.count(), _total(Offer.quantity))
              .where(Offer.window_start <= end, Offer.window_end >= start).group_by(Offer.kind, Offer.region))
    if filters.kind:
        offers = offers.where(Offer.kind == filters.kind)
    if filters.region is not None:
        offers = offers.where(Offer.region == filters.region)
    supply = [SupplyRow(kind, region, int(n), _decimal(quantity)) for kind, region, n, quantity in session.execute(offers)]

    order = {kind: index for index, kind in enumerate(KINDS)}
    supply.sort(key=lambda row: (order.get(row.kind, len(order)), row.region))
    demand_rows = [DemandRow(kind, region, sector, sector in LIGHTHOUSE_SECTORS, **figures)
                   for (kind, region, sector), figures in demand.items()]
    demand_rows.sort(key=lambda row: (order.get(row.kind, len(order)), row.region == ANY_REGION, row.region,
                                      row.sector not in LIGHTHOUSE_SECTORS, row.sector.value))
    kinds = []
    for kind in sorted({row.kind for row in demand_rows} | set(pledged) | {row.kind for row in supply},
                       key=lambda k: order.get(k, len(order))):
        mine = [row for row in demand_rows if row.kind == kind]
        kinds.append(KindRow(kind, sum((r.surveyed for r in mine), ZERO), sum((r.requested for r in mine), ZERO),
                             pledged.get(kind, ZERO), sum((r.published for r in supply if r.kind == kind), ZERO),
                             sum((r.allocated for r in mine), ZERO), sum((r.unmet for r in mine), ZERO)))
    unmet_rows = [UnmetRow(kind, group, n, quantity) for (kind, group), (n, quantity) in unmet.items()]
    unmet_rows.sort(key=lambda row: (order.get(row.kind, len(order)), GROUPS.index(row.reason)))
    regions = sorted(session.scalars(sa.union(sa.select(Offer.region), sa.select(SurveyDeclaration.region))))
    return GapReport(filters, campaign, pledge_period, pledges_counted, kinds, demand_rows, supply, unmet_rows, regions)
