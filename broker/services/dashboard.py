"""The staff dashboard's figures (工作台), read in a bounded number of queries.

Every figure is aggregated in SQL (GROUP BY, MIN, COUNT), never by loading rows one at a time:
the page costs the same handful of statements with ten startups or ten thousand. Nothing here
changes anything.

- Supply vs demand by kind: what active offers can still promise (quantity − promised) against
  what open requests (submitted or proposed) ask for — the position the next cycle starts from.
- The trend: each of the last finished (not failed) cycles' fulfilment by kind (the share of asked quantity granted,
  per request, averaged — `cycles.cycle_stats`), oldest first.
- Fulfilment by Lighthouse (灯塔) sectors vs the others: requests granted (approved, active,
  completed) out of requests decided (granted, rejected or expired).
- Per subsidy program: budget, committed and redeemed, from the program's caches (which the
  ledger keeps reconciled).
- Pending decisions: proposed allocations and the earliest approval deadline among their cycles.
- Carrier sync health: each carrier's latest sync, its status and what it quarantined; a carrier
  whose latest sync failed is failing since the first failure after its last success
  (`carrier_health`, which the carriers screen reads too).
- Open appeals: how many, and since when the oldest waits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from broker.models import (
    LIGHTHOUSE_SECTORS,
    Account,
    Allocation,
    AllocationStatus,
    Carrier,
    CycleStatus,
    MatchingCycle,
    Offer,
    OfferStatus,
    RequestStatus,
    ResourceRequest,
    Role,
    Startup,
    SubsidyProgram,
)
from broker.models.sync import CarrierSync, SyncStatus
from broker.models.workflow import Appeal, AppealStatus
from broker.resources import KIND_NAMES, KINDS
from broker.services.accounts import require_role

TREND_CYCLES = 6
OPEN_REQUESTS = (RequestStatus.submitted, RequestStatus.proposed)
GRANTED = (RequestStatus.approved, RequestStatus.active, RequestStatus.completed)
DECIDED = (*GRANTED, RequestStatus.rejected, RequestStatus.expired)


@dataclass(frozen=True)
class KindBalance:
    kind: str
    unit: str
    supply: Decimal
    demand: Decimal


@dataclass(frozen=True)
class CyclePoint:
    cycle_id: int
    finished_at: dt.datetime | None
    fulfilment: dict[str, float | None]  # kind -> share granted (None: nobody asked for it)


@dataclass(frozen=True)
class SectorFulfilment:
    lighthouse: bool
    granted: int
    decided: int

    @property
    def share(self) -> float | None:
        return self.granted / self.decided if self.decided else None


@dataclass(frozen=True)
class ProgramBudget:
    program_id: int
    code: str
    name: str
    budget: Decimal
    committed: Decimal
    redeemed: Decimal


@dataclass(frozen=True)
class CarrierHealth:
    code: str
    name: str
    last_sync_at: dt.datetime | None
    status: str | None
    quarantined: int
    conflicts: int
    carrier_id: int | None = None
    sync_id: int | None = None  # the latest sync
    # While the latest sync failed: when the first failure after the last success started.
    failing_since: dt.datetime | None = None

    @property
    def health(self) -> str:
        """never_synced, failing, running or healthy (the latest sync succeeded)."""
        if self.status is None:
            return "never_synced"
        if self.status == SyncStatus.failed.value:
            return "failing"
        return "running" if self.status == SyncStatus.running.value else "healthy"


@dataclass(frozen=True)
class Dashboard:
    kinds: list[KindBalance]
    latest_cycle_id: int | None
    trend: list[CyclePoint]
    sectors: list[SectorFulfilment]  # Lighthouse first
    programs: list[ProgramBudget]
    pending_decisions: int
    earliest_deadline: dt.datetime | None
    carriers: list[CarrierHealth]
    open_appeals: int
    oldest_appeal_at: dt.datetime | None


def overview(session: Session, actor: Account) -> Dashboard:
    """Staff: every figure of the dashboard, in eight queries whatever the district's size."""
    require_role(actor, Role.staff, Role.admin)
    trend = _trend(session)
    pending, deadline = _pending(session)
    appeals, oldest = _appeals(session)
    return Dashboard(
        kinds=_kinds(session),
        latest_cycle_id=trend[-1].cycle_id if trend else None,
        trend=trend,
        sectors=_sectors(session),
        programs=_programs(session),
        pending_decisions=pending,
        earliest_deadline=deadline,
        carriers=carrier_health(session),
        open_appeals=appeals,
        oldest_appeal_at=oldest,
    )


def _kinds(session: Session) -> list[KindBalance]:
    # Each SUM keeps its column's type (stored in thousandths, read back as Decimal); the
    # difference is taken here, since arithmetic between two sums would come back untyped.
    supply = {kind: (quantity or Decimal(0)) - (promised or Decimal(0)) for kind, quantity, promised in session.execute(
        sa.select(Offer.kind, sa.func.sum(Offer.quantity), sa.func.sum(Offer.promised))
        .where(Offer.status == OfferStatus.active).group_by(Offer.kind)
    )}
    demand = dict(session.execute(
        sa.select(ResourceRequest.kind, sa.func.sum(ResourceRequest.quantity))
        .where(ResourceRequest.status.in_(OPEN_REQUESTS)).group_by(ResourceRequest.kind)
    ).all())
    return [KindBalance(kind, KINDS[kind].unit, supply.get(kind, Decimal(0)), demand.get(kind) or Decimal(0))
            for kind in KIND_NAMES]


def _trend(session: Session) -> list[CyclePoint]:
    rows = session.execute(
        sa.select(MatchingCycle.id, MatchingCycle.finished_at, MatchingCycle.stats)
        .where(MatchingCycle.status.in_((CycleStatus.proposed, CycleStatus.closed)))  # a failed one matched nothing
        .order_by(MatchingCycle.id.desc()).limit(TREND_CYCLES)
    ).all()
    points = []
    for cycle_id, finished_at, stats in reversed(rows):
        by_kind = (stats or {}).get("fulfilment_by_kind", {})
        points.append(CyclePoint(cycle_id, finished_at, {kind: by_kind.get(kind) for kind in KIND_NAMES}))
    return points


def _sectors(session: Session) -> list[SectorFulfilment]:
    lighthouse = Startup.sector.in_(sorted(LIGHTHOUSE_SECTORS))
    rows = session.execute(
        sa.select(
            lighthouse.label("lighthouse"),
            sa.func.count().filter(ResourceRequest.status.in_(GRANTED)),
            sa.func.count(),
        )
        .select_from(ResourceRequest).join(Startup, Startup.id == ResourceRequest.startup_id)
        .where(ResourceRequest.status.in_(DECIDED))
        .group_by(lighthouse)
    ).all()
    found = {bool(flag): (granted, decided) for flag, granted, decided in rows}
    return [SectorFulfilment(flag, *found.get(flag, (0, 0))) for flag in (True, False)]


def _programs(session: Session) -> list[ProgramBudget]:
    rows = session.execute(
        sa.select(SubsidyProgram.id, SubsidyProgram.code, SubsidyProgram.name, SubsidyProgram.budget,
                  SubsidyProgram.committed, SubsidyProgram.redeemed)
        .order_by(SubsidyProgram.code)
    ).all()
    return [ProgramBudget(*row) for row in rows]


def _pending(session: Session) -> tuple[int, dt.datetime | None]:
    count, deadline = session.execute(
        sa.select(sa.func.count(Allocation.id), sa.func.min(MatchingCycle.approval_deadline))
        .select_from(Allocation).join(MatchingCycle, MatchingCycle.id == Allocation.cycle_id)
        .where(Allocation.status == AllocationStatus.proposed)
    ).one()
    return count, _utc(deadline)


def carrier_health(session: Session, *, code: str | None = None, include_inactive: bool = False) -> list[CarrierHealth]:
    """Each carrier's latest sync and since when it has been failing, in one query (by code)."""
    latest = (sa.select(CarrierSync.carrier_id, sa.func.max(CarrierSync.id).label("sync_id"))
              .group_by(CarrierSync.carrier_id).subquery())
    succeeded, failed = aliased(CarrierSync), aliased(CarrierSync)
    last_success = (sa.select(sa.func.max(succeeded.id))
                    .where(succeeded.carrier_id == Carrier.id, succeeded.status == SyncStatus.succeeded)
                    .correlate(Carrier).scalar_subquery())
    first_failure = (sa.select(sa.func.min(failed.started_at))
                     .where(failed.carrier_id == Carrier.id, failed.status == SyncStatus.failed,
                            failed.id > sa.func.coalesce(last_success, 0))
                     .correlate(Carrier).scalar_subquery())
    query = (
        sa.select(Carrier.code, Carrier.name, CarrierSync.started_at, CarrierSync.status,
                  CarrierSync.quarantined, CarrierSync.conflicts, Carrier.id, CarrierSync.id, first_failure)
        .select_from(Carrier)
        .outerjoin(latest, latest.c.carrier_id == Carrier.id)
        .outerjoin(CarrierSync, CarrierSync.id == latest.c.sync_id)
        .order_by(Carrier.code)
    )
    if not include_inactive:
        query = query.where(Carrier.active.is_(True))
    if code is not None:
        query = query.where(Carrier.code == code)
    return [CarrierHealth(code, name, started_at, status.value if status else None, quarantined or 0, conflicts or 0,
                          carrier_id, sync_id, _utc(since) if status is SyncStatus.failed else None)
            for code, name, started_at, status, quarantined, conflicts, carrier_id, sync_id, since
            in session.execute(query)]


def _appeals(session: Session) -> tuple[int, dt.datetime | None]:
    # Since when each has waited for the district: a thread the startup reopened waits since its
    # latest message, not since it was filed.
    count, oldest = session.execute(
        sa.select(sa.func.count(Appeal.id), sa.func.min(Appeal.waiting_since)).where(Appeal.status == AppealStatus.open)
    ).one()
    return count, _utc(oldest)


def _utc(moment: object) -> dt.datetime | None:
    # MIN() of a timestamp may come back as text on SQLite: read it as the UTC moment it stores.
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    assert isinstance(moment, dt.datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
