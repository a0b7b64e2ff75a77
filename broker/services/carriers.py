"""The carriers as staff see them (运营商): sync health, live capacity, what was delivered and
provisioning that ran out of retries. Reading only; the actions on a failed provisioning are
`provisioning.retry_provisioning` and `provisioning.cancel_allocation`. A carrier reads its own
sync history (`own_sync_history`) through the same `sync_history` staff read.

Every figure is an aggregate in SQL over all carriers at once (there are few carriers and many
offers and allocations), and every list is a page: the cost does not grow with the district.
Sync health is the dashboard's (`dashboard.carrier_health`), so the two screens never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.models import (
    Account,
    Allocation,
    AllocationStatus,
    Carrier,
    CarrierSync,
    Offer,
    OfferStatus,
    QuarantinedRecord,
    ResourceRequest,
    Role,
    Startup,
    SyncConflict,
)
from broker.resources import QUANTITY_PLACES, UNIT_PRICE_PLACES
from broker.services import sync
from broker.services.accounts import require_role
from broker.services.dashboard import CarrierHealth, carrier_health

# What a carrier has delivered or is delivering: approved, being set up, or in use.
DELIVERED = (AllocationStatus.approved, AllocationStatus.provisioning, AllocationStatus.active)
DETAILS = 50  # quarantined records and conflicts shown of one sync; the API lists them all


def _given_up() -> sa.ColumnElement[bool]:
    # Allocation.provisioning_given_up, as SQL: provisioning with no next attempt.
    return sa.and_(Allocation.status == AllocationStatus.provisioning, Allocation.next_attempt_at.is_(None))


@dataclass(frozen=True)
class KindCapacity:
    kind: str
    offers: int
    quantity: Decimal
    promised: Decimal

    @property
    def available(self) -> Decimal:
        return self.quantity - self.promised


@dataclass
class CarrierLine:
    """One carrier on the list: who it is, its sync health, its live offers and failed provisioning."""

    carrier: Carrier
    health: CarrierHealth
    latest: CarrierSync | None
    channels: list[str] = field(default_factory=list)  # how its live offers came (api, pull, webhook, upload)
    capacity: list[KindCapacity] = field(default_factory=list)
    provisioning_failed: int = 0


def carriers_overview(session: Session, actor: Account) -> list[CarrierLine]:
    """Staff: every carrier with its latest sync and health, live capacity by kind, and how many of
    its allocations ran out of provisioning retries; five queries whatever the district's size."""
    require_role(actor, Role.staff, Role.admin)
    health = {h.carrier_id: h for h in carrier_health(session, include_inactive=True)}
    carriers = list(session.scalars(sa.select(Carrier).order_by(Carrier.code)))
    latest_ids = [h.sync_id for h in health.values() if h.sync_id is not None]
    latest = {s.carrier_id: s for s in session.scalars(sa.select(CarrierSync).where(CarrierSync.id.in_(latest_ids)))}
    lines = {c.id: CarrierLine(c, health[c.id], latest.get(c.id)) for c in carriers}
    live = session.execute(
        sa.select(Offer.carrier_id, Offer.kind, Offer.channel, sa.func.count(), sa.func.sum(Offer.quantity),
                  sa.func.sum(Offer.promised))
        .where(Offer.status == OfferStatus.active)
        .group_by(Offer.carrier_id, Offer.kind, Offer.channel)
    ).all()
    by_kind: dict[tuple[int, str], list[Decimal]] = {}
    for carrier_id, kind, channel, count, quantity, promised in live:
        totals = by_kind.setdefault((carrier_id, kind), [Decimal(0), Decimal(0), Decimal(0)])
        totals[0] += count
        totals[1] += quantity or 0
        totals[2] += promised or 0
        if channel.value not in lines[carrier_id].channels:
            lines[carrier_id].channels.append(channel.value)
    for (carrier_id, kind), (count, quantity, promised) in sorted(by_kind.items()):
        lines[carrier_id].capacity.append(KindCapacity(kind, int(count), quantity, promised))
    failed = session.execute(
        sa.select(Offer.carrier_id, sa.func.count(Allocation.id))
        .select_from(Allocation).join(Offer, Offer.id == Allocation.offer_id)
        .where(_given_up()).group_by(Offer.carrier_id)
    ).all()
    for carrier_id, count in failed:
        lines[carrier_id].provisioning_failed = count
    for line in lines.values():
        line.channels.sort()
    return list(lines.values())


@dataclass(frozen=True)
class Delivered:
    kind: str
    allocations: int
    quantity: Decimal
    value: Decimal  # quantity × unit price, in yuan


@dataclass(frozen=True)
class ProvisioningFailure:
    allocation: Allocation
    offer: Offer
    startup: Startup


@dataclass
class SyncHistory:
    """A page of one carrier's syncs, newest first, and one sync's quarantined records and conflicts."""

    carrier: Carrier
    syncs: list[CarrierSync]
    syncs_total: int
    chosen: CarrierSync | None  # the sync whose details are shown: the latest, or the one asked for
    quarantined: list[QuarantinedRecord]
    conflicts: list[SyncConflict]


def sync_history(session: Session, actor: Account, code: str, *, sync_id: int | None = None,
                 page: int = 1, per_page: int = 20) -> SyncHistory:
    """Staff for any carrier, a carrier for its own: its syncs, page by page, and the details of the
    latest sync or of `sync_id`. Raises NotFound for an unknown carrier or a sync not its own."""
    syncs = sync.list_syncs(session, actor, code)  # NotFound for an unknown code, Forbidden for another carrier
    carrier = session.scalar(sa.select(Carrier).where(Carrier.code == code))
    shown = list(session.scalars(syncs.limit(per_page).offset((page - 1) * per_page)))
    total = session.scalar(sa.select(sa.func.count(CarrierSync.id)).where(CarrierSync.carrier_id == carrier.id))
    if sync_id is not None:
        chosen = sync.get_sync(session, actor, code, sync_id)
    elif page == 1:
        chosen = shown[0] if shown else None
    else:
        chosen = session.scalar(syncs.limit(1))
    quarantined, conflicts = [], []
    if chosen is not None:
        quarantined = list(session.scalars(sync.list_quarantined(session, actor, code, chosen.id).limit(DETAILS)))
        conflicts = list(session.scalars(sync.list_conflicts(session, actor, code, chosen.id).limit(DETAILS)))
    return SyncHistory(carrier, shown, total or 0, chosen, quarantined, conflicts)


def own_sync_history(session: Session, actor: Account, *, sync_id: int | None = None,
                     page: int = 1, per_page: int = 20) -> SyncHistory:
    """A carrier's own sync history (the carrier page); another carrier's sync is NotFound."""
    require_role(actor, Role.carrier)
    code = session.scalar(sa.select(Carrier.code).where(Carrier.id == actor.carrier_id))
    return sync_history(session, actor, code, sync_id=sync_id, page=page, per_page=per_page)


@dataclass
class CarrierPage:
    """One carrier: its health, its sync history, what it delivered by kind, and a page of its
    allocations whose provisioning retries ran out."""

    carrier: Carrier
    health: CarrierHealth
    history: SyncHistory
    delivered: list[Delivered]
    failures: list[ProvisioningFailure]
    failures_total: int


def carrier_page(session: Session, actor: Account, code: str, *, sync_id: int | None = None,
                 page: int = 1, per_page: int = 20, failures_page: int = 1) -> CarrierPage:
    """Staff: one carrier's page. Raises NotFound for an unknown carrier or a sync not its own."""
    require_role(actor, Role.staff, Role.admin)
    history = sync_history(session, actor, code, sync_id=sync_id, page=page, per_page=per_page)
    [health] = carrier_health(session, code=code, include_inactive=True)
    failures, failures_total = _failures(session, history.carrier.id, failures_page, per_page)
    return CarrierPage(history.carrier, health, history, _delivered(session, history.carrier.id), failures, failures_total)


# Quantity and unit price are stored as integers of 10^-3 and 10^-4: their product, summed as an
# integer, is exact, and is scaled back here.
_VALUE_SCALE = -(QUANTITY_PLACES + UNIT_PRICE_PLACES)


def _delivered(session: Session, carrier_id: int) -> list[Delivered]:
    raw_value = sa.type_coerce(Allocation.quantity, sa.BigInteger) * sa.type_coerce(Allocation.unit_price, sa.BigInteger)
    rows = session.execute(
        sa.select(Offer.kind, sa.func.count(Allocation.id), sa.func.sum(Allocation.quantity), sa.func.sum(raw_value))
        .select_from(Allocation).join(Offer, Offer.id == Allocation.offer_id)
        .where(Offer.carrier_id == carrier_id, Allocation.status.in_(DELIVERED))
        .group_by(Offer.kind).order_by(Offer.kind)
    ).all()
    return [Delivered(kind, count, quantity or Decimal(0),
                      (Decimal(int(value or 0)).scaleb(_VALUE_SCALE)).quantize(Decimal("0.01")))
            for kind, count, quantity, value in rows]


def _failures(session: Session, carrier_id: int, page: int, per_page: int) -> tuple[list[ProvisioningFailure], int]:
    where = (Offer.carrier_id == carrier_id, _given_up())
    rows = session.execute(
        sa.select(Allocation, Offer, Startup)
        .join(Offer, Offer.id == Allocation.offer_id)
        .join(ResourceRequest, ResourceRequest.id == Allocation.request_id)
        .join(Startup, Startup.id == ResourceRequest.startup_id)
        .where(*where).order_by(Allocation.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    total = session.scalar(sa.select(sa.func.count(Allocation.id)).join(Offer, Offer.id == Allocation.offer_id).where(*where))
    return [ProvisioningFailure(*row) for row in rows], total or 0

