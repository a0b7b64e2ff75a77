"""The district's reports (issue 14), read in a fixed handful of aggregate queries each.

Every report here follows one pattern, so the page, the API and the exports give the same numbers:

- a frozen `...Filters` dataclass (the period in Asia/Shanghai dates, inclusive, default the current
  quarter, and the report's own filters), built by the caller from the schema in
  broker/schemas/reports.py;
- one function `report(session, actor, filters) -> ...Report` (staff only) that returns a frozen
  dataclass holding the filters applied and the rows of each table;
- SQL does the grouping (COUNT, SUM, MIN, GROUP BY); nothing loops over ORM objects, so the
  number of statements does not grow with the rows.

Fulfilment (report 2) follows each request submitted in the period through the funnel
requests → proposed → approved → active. A request reaches a stage when any of its allocations
did: *proposed* — it has an allocation at all; *approved* — one was approved (it is approved,
provisioning, active, released or cancelled now; a cancelled one was approved first); *active* —
one was set up at the carrier (active or released now; the time is the
`allocation.provisioned` event's). Quantities: the request's asked quantity, then the quantities of
the allocations that reached each stage. Per month groups requests by their submission month in
Shanghai; per cycle groups the allocations by their cycle (so a cycle's "requests" are the
requests it proposed for). With a cycle filter, only that cycle's allocations count and only
the requests it proposed for.

Times from submission to the first approval and to the first activation, in hours: the median
and the 90th percentile (linear interpolation, as PostgreSQL's `percentile_cont`). PostgreSQL
computes them in SQL; SQLite has no percentile aggregate, so there one query returns the sorted
hours (one float per request reaching the stage — bounded by the requests of the period) and
`_percentile` interpolates them the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import SHANGHAI
from broker.models import (
    LIGHTHOUSE_SECTORS,
    Account,
    Allocation,
    AllocationStatus,
    ResourceRequest,
    Role,
    Sector,
    Startup,
)
from broker.models.workflow import Event
from broker.services.accounts import require_role

REASON_ROWS = 20
APPROVED_EVER = (AllocationStatus.approved, AllocationStatus.provisioning, AllocationStatus.active,
                 AllocationStatus.released, AllocationStatus.cancelled)
ACTIVE_EVER = (AllocationStatus.active, AllocationStatus.released)
ZERO = Decimal("0")
COUNTS = ("requests", "proposed", "approved", "active")  # FunnelRow's counts; the rest are quantities


def current_quarter(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of the quarter `today` is in."""
    first_month = (today.month - 1) // 3 * 3 + 1
    start = dt.date(today.year, first_month, 1)
    following = dt.date(today.year + 1, 1, 1) if first_month == 10 else dt.date(today.year, first_month + 3, 1)
    return start, following - dt.timedelta(days=1)


def shanghai_day_start(day: dt.date) -> dt.datetime:
    """Midnight of `day` in Shanghai, as an aware UTC datetime (for comparing with stored times)."""
    return dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.UTC)


@dataclass(frozen=True)
class FulfilmentFilters:
    start: dt.date
    end: dt.date  # inclusive
    kind: str | None = None
    sector: Sector | None = None
    lighthouse: bool = False
    cycle_id: int | None = None


@dataclass(frozen=True)
class FunnelRow:
    key: str  # "total", the month ("2027-01") or the cycle's id
    requests: int
    proposed: int
    approved: int
    active: int
    requested_qty: Decimal
    proposed_qty: Decimal
    approved_qty: Decimal
    active_qty: Decimal


@dataclass(frozen=True)
class TimeRow:
    stage: str  # "approved" or "active"
    requests: int  # requests that reached the stage (the sample)
    median_hours: float | None
    p90_hours: float | None


@dataclass(frozen=True)
class ReasonRow:
    reason: str
    allocations: int
    quantity: Decimal


@dataclass(frozen=True)
class FulfilmentReport:
    filters: FulfilmentFilters
    total: FunnelRow
    months: list[FunnelRow]
    cycles: list[FunnelRow]
    times: list[TimeRow]
    reasons: list[ReasonRow]
    lapsed: int
    lapsed_qty: Decimal


def _hours(session: Session, later: sa.ColumnElement, earlier: sa.ColumnElement) -> sa.ColumnElement[float]:
    """Hours from `earlier` to `later` (stored as naive UTC on both databases)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.extract("epoch", later - earlier) / 3600.0
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 24.0


def _shanghai_month(session: Session, stamp: sa.ColumnElement) -> sa.ColumnElement[str]:
    """The month ("YYYY-MM") of a stored UTC time in Shanghai (UTC+8 all year: no summer time since 1991)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("Asia/Shanghai", sa.func.timezone("UTC", stamp)), "YYYY-MM")
    return sa.func.strftime("%Y-%m", stamp, "+8 hours")


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    """`percentile_cont(fraction)` over already sorted values: linear interpolation between ranks."""
    if not sorted_values:
        return None
    rank = fraction * (len(sorted_values) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def _total(expr: sa.ColumnElement) -> sa.ColumnElement[int]:
    """SUM of a quantity column as its stored integer (0 for none); `_decimal` turns it into the quantity."""
    return sa.type_coerce(sa.func.coalesce(sa.func.sum(expr), 0), sa.BigInteger)


def _qty_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return _total(sa.case((condition, Allocation.quantity)))


def _decimal(stored: int | Decimal | None) -> Decimal:
    return Allocation.quantity.type.process_result_value(int(stored or 0), None)


def fulfilment(session: Session, actor: Account, filters: FulfilmentFilters) -> FulfilmentReport:
    """Report 2: the fulfilment funnel, the times to approval and to activation, rejection reasons and lapses."""
    require_role(actor, Role.staff, Role.admin)

    # The requests of the period and filters.
    chosen = (
        sa.select(ResourceRequest.id, ResourceRequest.quantity, ResourceRequest.submitted_at)
        .join(Startup, Startup.id == ResourceRequest.startup_id)
        .where(ResourceRequest.submitted_at >= shanghai_day_start(filters.start),
               ResourceRequest.submitted_at < shanghai_day_start(filters.end + dt.timedelta(days=1)))
    )
    if filters.kind:
        chosen = chosen.where(ResourceRequest.kind == filters.kind)
    if filters.sector:
        chosen = chosen.where(Startup.sector == filters.sector)
    if filters.lighthouse:
        chosen = chosen.where(Startup.sector.in_(LIGHTHOUSE_SECTORS))
    in_cycle = Allocation.cycle_id == filters.cycle_id if filters.cycle_id is not None else sa.true()
    if filters.cycle_id is not None:
        chosen = chosen.where(sa.exists().where(Allocation.request_id == ResourceRequest.id, in_cycle))
    requests = chosen.cte("chosen")

    # Each chosen request's allocations, summed: what reached each stage, and when first.
    approved = Allocation.status.in_(APPROVED_EVER)
    active = Allocation.status.in_(ACTIVE_EVER)
    activated = (
        sa.select(Event.allocation_id, sa.func.min(Event.created_at).label("at"))
        .where(Event.type == "allocation.provisioned").group_by(Event.allocation_id).subquery("activated")
    )
    per_request = (
        sa.select(
            Allocation.request_id,
            _total(Allocation.quantity).label("proposed_qty"),
            _qty_where(approved).label("approved_qty"),
            _qty_where(active).label("active_qty"),
            sa.func.max(sa.case((approved, 1), else_=0)).label("approved"),
            sa.func.max(sa.case((active, 1), else_=0)).label("active"),
            sa.func.min(sa.case((approved, Allocation.decided_at))).label("approved_at"),
            sa.func.min(activated.c.at).label("active_at"),
        )
        .join(requests, requests.c.id == Allocation.request_id)
        .outerjoin(activated, activated.c.allocation_id == Allocation.id)
        .where(in_cycle)
        .group_by(Allocation.request_id)
        .subquery("per_request")
    )
    funnel = (
        sa.select(
            requests.c.id, requests.c.quantity, _shanghai_month(session, requests.c.submitted_at).label("month"),
            per_request.c.request_id.is_not(None).label("proposed"),
            per_request.c.proposed_qty, per_request.c.approved_qty, per_request.c.active_qty,
            per_request.c.approved, per_request.c.active,
            _hours(session, per_request.c.approved_at, requests.c.submitted_at).label("approved_hours"),
            _hours(session, per_request.c.active_at, requests.c.submitted_at).label("active_hours"),
        )
        .outerjoin(per_request, per_request.c.request_id == requests.c.id)
        .cte("funnel")
    )

    def stages(*group: sa.ColumnElement) -> sa.Select:
        return sa.select(
            *group,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((funnel.c.proposed, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(funnel.c.approved), 0),
            sa.func.coalesce(sa.func.sum(funnel.c.active), 0),
            _total(funnel.c.quantity), _total(funnel.c.proposed_qty),
            _total(funnel.c.approved_qty), _total(funnel.c.active_qty),
        ).select_from(funnel)

    def row(key: str, counts: sa.Row) -> FunnelRow:
        n, proposed_n, approved_n, active_n, *quantities = counts
        return FunnelRow(key, int(n), int(proposed_n), int(approved_n), int(active_n),
                         *(_decimal(q) for q in quantities))

    months = [row(found[0], found[1:]) for found in
              session.execute(stages(funnel.c.month).group_by(funnel.c.month).order_by(funnel.c.month))]
    total = _sum_rows("total", months)  # every figure adds up over the months: the funnel read once less

    # Per cycle: the requests it proposed for; their asked quantity counted once per cycle.
    pairs = (
        sa.select(Allocation.cycle_id.label("cycle_id"), requests.c.id, requests.c.quantity)
        .join(requests, requests.c.id == Allocation.request_id).where(in_cycle).distinct().subquery("pairs")
    )
    asked = dict(session.execute(sa.select(pairs.c.cycle_id, _total(pairs.c.quantity)).group_by(pairs.c.cycle_id)).all())
    per_cycle = (
        sa.select(
            Allocation.cycle_id,
            sa.func.count(sa.distinct(Allocation.request_id)),
            sa.func.count(sa.distinct(Allocation.request_id)),
            sa.func.count(sa.distinct(sa.case((approved, Allocation.request_id)))),
            sa.func.count(sa.distinct(sa.case((active, Allocation.request_id)))),
            sa.literal(0), _total(Allocation.quantity), _qty_where(approved), _qty_where(active),
        )
        .join(requests, requests.c.id == Allocation.request_id)
        .where(in_cycle)
        .group_by(Allocation.cycle_id).order_by(Allocation.cycle_id)
    )
    cycles = [
        FunnelRow(**{**row(str(found[0]), found[1:]).__dict__, "requested_qty": _decimal(asked.get(found[0]))})
        for found in session.execute(per_cycle)
    ]

    times = _times(session, funnel)

    ended = (
        sa.select(Allocation.decision_reason, sa.func.count(), _total(Allocation.quantity))
        .join(requests, requests.c.id == Allocation.request_id)
        .where(in_cycle, Allocation.status == AllocationStatus.rejected)
        .group_by(Allocation.decision_reason)
        .order_by(sa.func.count().desc(), Allocation.decision_reason)
        .limit(REASON_ROWS)
    )
    reasons = [ReasonRow(reason or "", int(n), _decimal(q)) for reason, n, q in session.execute(ended)]
    lapsed_n, lapsed_q = session.execute(
        sa.select(sa.func.count(), _total(Allocation.quantity))
        .join(requests, requests.c.id == Allocation.request_id)
        .where(in_cycle, Allocation.status == AllocationStatus.lapsed)
    ).one()
    return FulfilmentReport(filters, total, months, cycles, times, reasons, int(lapsed_n), _decimal(lapsed_q))


def _sum_rows(key: str, rows: list[FunnelRow]) -> FunnelRow:
    """The rows' counts and quantities added up, under `key`."""
    figures = [field.name for field in dataclasses.fields(FunnelRow) if field.name != "key"]
    return FunnelRow(key, **{name: sum((getattr(r, name) for r in rows), 0 if name in COUNTS else ZERO)
                             for name in figures})


def _times(session: Session, funnel: sa.CTE) -> list[TimeRow]:
    """The median and 90th percentile of the hours to approval and to activation (one read on PostgreSQL)."""
    stages = ("approved", "active")
    if session.get_bind().dialect.name == "postgresql":
        found = session.execute(sa.select(*(
            figure for stage in stages for hours in [funnel.c[f"{stage}_hours"]]
            for figure in (sa.func.count(hours), sa.func.percentile_cont(0.5).within_group(hours),
                           sa.func.percentile_cont(0.9).within_group(hours))))).one()
        return [TimeRow(stage, int(found[3 * n]), _rounded(found[3 * n + 1]), _rounded(found[3 * n + 2]))
                for n, stage in enumerate(stages)]
    rows = []
    for stage in stages:
        hours = funnel.c[f"{stage}_hours"]
        values = [float(value) for value in session.scalars(
            sa.select(hours).select_from(funnel).where(hours.is_not(None)).order_by(hours))]
        rows.append(TimeRow(stage, len(values), _rounded(_percentile(values, 0.5)), _rounded(_percentile(values, 0.9))))
    return rows


def _rounded(hours: float | None) -> float | None:
    """To a hundredth of an hour: julianday's floating point differs from PostgreSQL's exact interval after that."""
    return None if hours is None else round(float(hours), 2)
