"""Report 4, utilisation (资源使用率): what was granted against what the carriers report used, per
allocation and per kind in the kind's unit, and the idle grants to follow up with the startup and
the carrier (docs/reports.md, "Utilisation").

- The allocations: granted (approved, provisioning, active or released) whose request window (its
  first to its last day, Shanghai) overlaps the period; a kind and a carrier may narrow them.
- Allocated and used, in the kind's unit: the allocation's quantity against the sum of the usage
  reports on it, whenever recorded (GPU-hours, core-hours, ...; tokens in millions, and per model:
  the offer's `model` attribute). A **data line** is granted whole (its Mbps are a bandwidth, not
  something consumed), so it is measured in **line-days**: allocated = the days of its window,
  used = the Shanghai days on which the carrier reported usage on it (any number of reports on a
  day count that day once: the line carried traffic that day).
- Idle grants: allocations now `active` whose window's middle day has begun (the first day plus
  half the window's days, rounded down: a 14-day window from 12-07 has its middle on 12-14) and
  whose usage recorded before that day is under the threshold (default 20 %) of what was
  allocated.

Read from a rollup (broker.models.rollups.UseRollup), not from the usage reports: one row per granted
allocation with its allocated, used and used-by-middle quantities, rebuilt whole by the scheduler's
`refresh_rollups` job (`refresh`); the page says when (数据截至). The kinds' sums and the idle
counts are grouped in SQL; the lists come a page at a time; the exports read every line in batches
(`utilisation_lines`). A fixed number of statements whatever the rows.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date, now
from broker.db import transaction
from broker.models import (
    Account, Allocation, AllocationStatus, Carrier, Offer, ResourceRequest, Role, Rollup, Startup, UsageReport, UseRollup,
)
from broker.resources import KINDS
from broker.services.accounts import require_role
from broker.services.review import GRANTED

ROLLUP = "allocation_use"  # its name in report_rollups
PAGE_SIZE = 50  # rows of each list on a page (the exports write them all)
REFRESH_SPAN = 20_000  # allocation ids rebuilt at a time
DEFAULT_THRESHOLD = Decimal("20")  # percent of the allocated quantity, used by the middle of the window
LINE_KIND = "data_line"
ZERO = Decimal("0")


@dataclass(frozen=True)
class UtilisationFilters:
    start: dt.date
    end: dt.date  # inclusive
    kind: str | None = None
    carrier: str | None = None  # the carrier's code
    threshold: Decimal = DEFAULT_THRESHOLD  # percent


@dataclass(frozen=True)
class AllocationUse:
    allocation_id: int
    status: AllocationStatus
    kind: str
    model: str | None  # tokens: the offer's model
    carrier_code: str
    carrier_name: str
    startup_name: str
    window_start: dt.date
    window_end: dt.date
    allocated: Decimal  # in the kind's unit; line-days for a data line
    used: Decimal
    used_by_middle: Decimal
    idle: bool

    @property
    def middle_day(self) -> dt.date:
        return middle_day(self.window_start, self.window_end)

    @property
    def used_share(self) -> Decimal | None:
        """Percent of the allocated quantity used, to a tenth."""
        return _percent(self.used, self.allocated)

    @property
    def used_by_middle_share(self) -> Decimal | None:
        return _percent(self.used_by_middle, self.allocated)


@dataclass(frozen=True)
class KindUse:
    kind: str
    model: str | None
    allocations: int
    allocated: Decimal
    used: Decimal
    idle: int

    @property
    def used_share(self) -> Decimal | None:
        return _percent(self.used, self.allocated)


@dataclass(frozen=True)
class UtilisationReport:
    filters: UtilisationFilters
    today: dt.date
    kinds: list[KindUse]
    allocations: list[AllocationUse]  # the page `page` of them, by allocation id
    idle: list[AllocationUse]  # the page `idle_page` of the idle grants
    carriers: list[tuple[str, str]] = field(default_factory=list)  # (code, name): the filter's choices
    firms: int = 0  # startups with any of the allocations
    allocations_total: int = 0
    idle_total: int = 0
    page: int = 1
    idle_page: int = 1
    as_of: dt.datetime | None = None  # when the rollup was rebuilt; None: never yet

    @property
    def pages(self) -> int:
        return max(1, -(-self.allocations_total // PAGE_SIZE))

    @property
    def idle_pages(self) -> int:
        return max(1, -(-self.idle_total // PAGE_SIZE))


def middle_day(start: dt.date, end: dt.date) -> dt.date:
    """The window's middle day: its first day plus half its days, rounded down."""
    return start + dt.timedelta(days=((end - start).days + 1) // 2)


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part * 100 / whole).quantize(Decimal("0.1"))


def shanghai_day(session: Session, stamp: sa.ColumnElement) -> sa.ColumnElement:
    """The Shanghai calendar day of a stored (naive UTC) time: a date on PostgreSQL, 'YYYY-MM-DD' on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("Asia/Shanghai", sa.func.timezone("UTC", stamp)), sa.Date)
    return sa.func.date(stamp, "+8 hours")


def _as_date(value: dt.date | str) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def utilisation(session: Session, actor: Account, filters: UtilisationFilters, page: int = 1,
                idle_page: int = 1) -> UtilisationReport:
    """Report 4 from the rollup: the kinds' sums and the number of firms, and one page of the idle grants
    and of the allocations (`PAGE_SIZE` rows each, by allocation id); see the module's note."""
    require_role(actor, Role.staff, Role.admin)
    today = local_date(now())
    chosen = _chosen(filters)
    idle = _idle(filters, today)
    kinds = [KindUse(kind, model, n, allocated or ZERO, used or ZERO, idle_n or 0)
             for kind, model, n, allocated, used, idle_n in session.execute(
                 sa.select(UseRollup.kind, UseRollup.model, sa.func.count(), _sum(UseRollup.allocated),
                           _sum(UseRollup.used), sa.func.sum(sa.case((idle, 1), else_=0)))
                 .where(*chosen).group_by(UseRollup.kind, UseRollup.model))]
    kinds.sort(key=lambda row: (list(KINDS).index(row.kind), row.model or ""))
    firms = session.scalar(sa.select(sa.func.count(sa.distinct(UseRollup.startup_id))).where(*chosen)) or 0
    total = sum(row.allocations for row in kinds)
    idle_total = sum(row.idle for row in kinds)
    lines = list(_lines(session, chosen, today, filters.threshold, page=page))
    idle_lines = list(_lines(session, (*chosen, idle), today, filters.threshold, page=idle_page))
    rollup = session.get(Rollup, ROLLUP)
    return UtilisationReport(
        filters, today, kinds, lines, idle_lines,
        [(c, n) for c, n in session.execute(sa.select(Carrier.code, Carrier.name).order_by(Carrier.code))],
        firms=firms, allocations_total=total, idle_total=idle_total, page=page, idle_page=idle_page,
        as_of=rollup.refreshed_at if rollup else None)


def utilisation_lines(session: Session, actor: Account, filters: UtilisationFilters, *,
                      idle_only: bool = False) -> Iterator[AllocationUse]:
    """Every allocation line of the report (or only the idle grants), read a few thousand at a time:
    what the exports write, however many there are."""
    require_role(actor, Role.staff, Role.admin)
    today = local_date(now())
    chosen = _chosen(filters)
    if idle_only:
        chosen = (*chosen, _idle(filters, today))
    return _lines(session, chosen, today, filters.threshold)


def _chosen(filters: UtilisationFilters) -> tuple[sa.ColumnElement[bool], ...]:
    """The rollup's rows the filters take: the window overlapping the period, the kind, the carrier."""
    chosen = [UseRollup.window_start <= filters.end, UseRollup.window_end >= filters.start]
    if filters.kind:
        chosen.append(UseRollup.kind == filters.kind)
    if filters.carrier:
        chosen.append(UseRollup.carrier_id == sa.select(Carrier.id).where(Carrier.code == filters.carrier).scalar_subquery())
    return tuple(chosen)


def _idle(filters: UtilisationFilters, today: dt.date) -> sa.ColumnElement[bool]:
    """Active, its middle day begun, and used by then under the threshold (percent, to a tenth) of
    what was allocated. Both quantities are stored in the same thousandths: compared as integers."""
    stored = sa.BigInteger()
    by_middle, allocated = sa.type_coerce(UseRollup.used_by_middle, stored), sa.type_coerce(UseRollup.allocated, stored)
    tenths = sa.literal(int(filters.threshold * 10), stored)
    return sa.and_(UseRollup.status == AllocationStatus.active, UseRollup.middle_day <= today,
                   by_middle * 1000 < allocated * tenths)


def _sum(column: sa.ColumnElement) -> sa.ColumnElement:
    return sa.func.sum(column, type_=column.type)


def _lines(session: Session, chosen: tuple[sa.ColumnElement[bool], ...], today: dt.date, threshold: Decimal,
           page: int | None = None) -> Iterator[AllocationUse]:
    query = (
        sa.select(UseRollup, Carrier.code, Carrier.name, Startup.name)
        .join(Carrier, Carrier.id == UseRollup.carrier_id).join(Startup, Startup.id == UseRollup.startup_id)
        .where(*chosen).order_by(UseRollup.allocation_id)
    )
    if page is not None:
        query = query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    for row, code, carrier_name, startup_name in session.execute(query, execution_options={"yield_per": 2_000}):
        idle = (row.status is AllocationStatus.active and today >= row.middle_day
                and row.used_by_middle * 100 < threshold * row.allocated)
        yield AllocationUse(row.allocation_id, row.status, row.kind, row.model, code, carrier_name, startup_name,
                            row.window_start, row.window_end, row.allocated, row.used, row.used_by_middle, idle)


@transaction
def refresh(session: Session, now: dt.datetime) -> int:
    """Rebuild the rollup whole from the granted allocations and their usage reports, a range of
    allocation ids at a time; record when. Returns its rows. The scheduler's `refresh_rollups` job."""
    started = time.perf_counter()
    session.execute(sa.delete(UseRollup))
    rows = 0
    last = session.scalar(sa.select(sa.func.max(Allocation.id))) or 0
    for low in range(1, last + 1, REFRESH_SPAN):
        found = _computed(session, low, low + REFRESH_SPAN - 1)
        if found:
            session.execute(sa.insert(UseRollup), found)
            rows += len(found)
    seconds = round(time.perf_counter() - started, 3)
    rollup = session.get(Rollup, ROLLUP) or Rollup(name=ROLLUP)
    rollup.refreshed_at, rollup.rows, rollup.seconds = now, rows, seconds
    session.add(rollup)
    return rows


def _computed(session: Session, low: int, high: int) -> list[dict]:
    """The rollup's rows for the granted allocations with ids from `low` to `high`."""
    model = Offer.attributes["model"].as_string()
    in_range = Allocation.id.between(low, high)
    allocations = session.execute(
        sa.select(Allocation.id, Allocation.status, Offer.kind, model, Offer.carrier_id, ResourceRequest.startup_id,
                  ResourceRequest.window_start, ResourceRequest.window_end, Allocation.quantity)
        .join(Offer, Offer.id == Allocation.offer_id).join(ResourceRequest, ResourceRequest.id == Allocation.request_id)
        .where(in_range, Allocation.status.in_(GRANTED))
    ).all()
    if not allocations:
        return []
    day = shanghai_day(session, UsageReport.recorded_at)
    daily: dict[int, list[tuple[dt.date, Decimal]]] = defaultdict(list)
    for allocation_id, on, quantity in session.execute(
        sa.select(UsageReport.allocation_id, day, sa.func.sum(UsageReport.quantity, type_=UsageReport.quantity.type))
        .where(UsageReport.allocation_id.between(low, high)).group_by(UsageReport.allocation_id, day)
    ):
        daily[allocation_id].append((_as_date(on), quantity or ZERO))
    rows = []
    for allocation_id, status, kind, offer_model, carrier_id, startup_id, first, last, quantity in allocations:
        middle = middle_day(first, last)
        days = daily.get(allocation_id, [])
        if kind == LINE_KIND:
            allocated = Decimal((last - first).days + 1)
            used = Decimal(sum(1 for _, q in days if q > 0))
            by_middle = Decimal(sum(1 for on, q in days if q > 0 and on < middle))
        else:
            allocated = quantity
            used = sum((q for _, q in days), ZERO)
            by_middle = sum((q for on, q in days if on < middle), ZERO)
        rows.append({"allocation_id": allocation_id, "status": status, "kind": kind,
                     "model": offer_model if kind == "tokens" else None, "carrier_id": carrier_id,
                     "startup_id": startup_id, "window_start": first, "window_end": last, "middle_day": middle,
                     "allocated": allocated, "used": used, "used_by_middle": by_middle})
    return rows
