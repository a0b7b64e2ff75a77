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

Two statements whatever the number of rows: the allocations with their offer, carrier and startup,
and their usage summed per allocation and Shanghai day (which gives the used quantity, the line-days
and what was used by the middle of the window).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date, now
from broker.models import Account, Allocation, AllocationStatus, Carrier, Offer, ResourceRequest, Role, Startup, UsageReport
from broker.resources import KINDS
from broker.services.accounts import require_role
from broker.services.review import GRANTED

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
    allocations: list[AllocationUse]
    idle: list[AllocationUse]
    carriers: list[tuple[str, str]] = field(default_factory=list)  # (code, name): the filter's choices


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


def utilisation(session: Session, actor: Account, filters: UtilisationFilters) -> UtilisationReport:
    """Report 4: allocated against used per allocation and per kind, and the idle grants (see the module's note)."""
    require_role(actor, Role.staff, Role.admin)
    today = local_date(now())
    model = Offer.attributes["model"].as_string()
    chosen = (
        sa.select(Allocation.id, Allocation.status, Offer.kind, model.label("model"), Carrier.code,
                  Carrier.name.label("carrier_name"), Startup.name.label("startup_name"),
                  ResourceRequest.window_start, ResourceRequest.window_end, Allocation.quantity)
        .join(Offer, Offer.id == Allocation.offer_id).join(Carrier, Carrier.id == Offer.carrier_id)
        .join(ResourceRequest, ResourceRequest.id == Allocation.request_id)
        .join(Startup, Startup.id == ResourceRequest.startup_id)
        .where(Allocation.status.in_(GRANTED), ResourceRequest.window_start <= filters.end,
               ResourceRequest.window_end >= filters.start)
    )
    if filters.kind:
        chosen = chosen.where(Offer.kind == filters.kind)
    if filters.carrier:
        chosen = chosen.where(Carrier.code == filters.carrier)
    rows = session.execute(chosen.order_by(Allocation.id)).all()

    ids = sa.select(chosen.subquery().c.id)
    day = shanghai_day(session, UsageReport.recorded_at)
    daily: dict[int, list[tuple[dt.date, Decimal]]] = defaultdict(list)
    for allocation_id, on, quantity in session.execute(
        sa.select(UsageReport.allocation_id, day, sa.func.sum(UsageReport.quantity, type_=UsageReport.quantity.type))
        .where(UsageReport.allocation_id.in_(ids)).group_by(UsageReport.allocation_id, day)
    ):
        daily[allocation_id].append((_as_date(on), quantity or ZERO))

    lines = []
    for allocation_id, status, kind, offer_model, code, carrier_name, startup_name, first, last, quantity in rows:
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
        idle = (status is AllocationStatus.active and today >= middle
                and by_middle * 100 < filters.threshold * allocated)
        lines.append(AllocationUse(allocation_id, status, kind, offer_model if kind == "tokens" else None, code,
                                   carrier_name, startup_name, first, last, allocated, used, by_middle, idle))

    return UtilisationReport(filters, today, _per_kind(lines), lines, [line for line in lines if line.idle],
                             [(c, n) for c, n in session.execute(sa.select(Carrier.code, Carrier.name).order_by(Carrier.code))])


def _per_kind(lines: list[AllocationUse]) -> list[KindUse]:
    sums: dict[tuple[str, str | None], list] = {}
    for line in lines:
        found = sums.setdefault((line.kind, line.model), [0, ZERO, ZERO, 0])
        found[0] += 1
        found[1] += line.allocated
        found[2] += line.used
        found[3] += int(line.idle)
    order = list(KINDS)
    return [KindUse(kind, model, *figures) for (kind, model), figures in
            sorted(sums.items(), key=lambda item: (order.index(item[0][0]), item[0][1] or ""))]
