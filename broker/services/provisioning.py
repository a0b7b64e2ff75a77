"""After approval: provisioning at the carrier, expiry and release, and usage against subsidies.

Each carrier call happens outside any database transaction, between two short ones: the
first records the attempt, the second its outcome. A crash in between is safe because the
carrier is always called with the allocation's id as its idempotency key, and an attempt
whose outcome was never recorded is tried again when its lease ends. Every transition goes
through broker.services.allocations, which locks in the one order and moves capacity,
subsidy and events with the state.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from adapters.base import AdapterError, CarrierAdapter, Feature, ProvisionRequest
from broker.clock import local_date
from broker.db import transaction
from broker.errors import InvalidInput, NotFound
from broker.models import Account, Allocation, AllocationStatus, Carrier, RequestStatus, ResourceRequest, Role
from broker.models.workflow import Event, UsageReport
from broker.services import allocations, events, subsidies
from broker.services.accounts import require_role

log = logging.getLogger(__name__)

AdapterFor = Callable[[Carrier], CarrierAdapter]

MAX_PROVISION_ATTEMPTS = 5
BATCH = 100


def retry_delay(attempts: int) -> dt.timedelta:
    """Back-off after the n-th failed attempt: 1, 2, 4, 8 … minutes."""
    return dt.timedelta(minutes=2 ** (attempts - 1))


def provision_due(session: Session, adapter_for: AdapterFor, now: dt.datetime) -> dict[str, int]:
    """Ask carriers to set up approved allocations, and retry failed ones whose back-off is over."""
    due = session.scalars(
        sa.select(Allocation)
        .where(
            sa.or_(
                Allocation.status == AllocationStatus.approved,
                sa.and_(Allocation.status == AllocationStatus.provisioning, Allocation.next_attempt_at <= now),
            )
        )
        .order_by(Allocation.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True).execution_options(populate_existing=True)
    ).all()
    work = []
    for allocation in due:
        allocations.begin_provisioning(allocation, now)
        request, offer = allocation.request, allocation.offer
        work.append(
            (
                allocation.id,
                offer.carrier,
                ProvisionRequest(
                    allocation_id=str(allocation.id),
                    offer_external_id=offer.external_id,
                    kind=offer.kind,
                    quantity=allocation.quantity,
                    window_start=request.window_start,
                    window_end=request.window_end,
                ),
            )
        )
    session.commit()

    counts = {"provisioned": 0, "retrying": 0, "failed": 0}
    for allocation_id, carrier, order in work:
        try:
            outcome, error = adapter_for(carrier).provision(order), None
        except AdapterError as exc:
            outcome, error = None, str(exc)
        allocation = allocations.lock_one(session, allocation_id)
        if allocation.status is not AllocationStatus.provisioning:
            # Its lease ran out and staff ended it meanwhile: nothing to record over that.
            log.warning("allocation %s became %s while being provisioned (carrier said %s)", allocation_id,
                        allocation.status.value, outcome.carrier_reference if outcome else error)
            session.rollback()
            continue
        if outcome is not None:
            access = outcome.access.stored() if outcome.access is not None else None
            allocations.provisioned(session, allocation, outcome.carrier_reference, now, access)
            counts["provisioned"] += 1
        elif allocation.provision_attempts < MAX_PROVISION_ATTEMPTS:
            allocations.provisioning_failed(session, allocation, error, now + retry_delay(allocation.provision_attempts), now)
            counts["retrying"] += 1
        else:
            # Out of retries: left for staff, who see it with its error and retry it or cancel it.
            allocations.provisioning_failed(session, allocation, error, None, now)
            counts["failed"] += 1
        session.commit()
    return counts


@transaction
def retry_provisioning(session: Session, actor: Account, allocation_id: int, now: dt.datetime) -> Allocation:
    """Staff ask for one more provisioning attempt of an allocation whose retries ran out."""
    require_role(actor, Role.staff, Role.admin)
    allocation = session.scalar(sa.select(Allocation).where(Allocation.id == allocation_id).with_for_update().execution_options(populate_existing=True))
    if allocation is None:
        raise NotFound("No such allocation.")
    allocation.retry_provisioning(now)
    return allocation


@transaction
def cancel_allocation(session: Session, actor: Account, allocation_id: int, reason: str, now: dt.datetime) -> Allocation:
    """Staff end an allocation before use: approved but not yet sent, or whose provisioning retries ran
    out. Its capacity and its subsidy award go back."""
    require_role(actor, Role.staff, Role.admin)
    if not reason or not reason.strip():
        raise InvalidInput("A cancellation needs a reason.", {"reason": ["Required."]})
    allocation = allocations.cancel(session, actor, allocations.lock_one(session, allocation_id), reason, now)
    return allocation


EXPIRING_NOTICE = dt.timedelta(days=7)


@transaction
def warn_expiring(session: Session, now: dt.datetime) -> int:
    """Record `allocation.expiring` once for each active allocation whose window ends within 7 days
    (Asia/Shanghai dates); an allocation already warned is skipped, so the daily run is idempotent."""
    today = local_date(now)
    warned = sa.select(Event.id).where(Event.type == "allocation.expiring", Event.allocation_id == Allocation.id)
    due = list(session.scalars(
        sa.select(Allocation).join(ResourceRequest, Allocation.request_id == ResourceRequest.id)
        .where(Allocation.status == AllocationStatus.active, ResourceRequest.window_end >= today,
               ResourceRequest.window_end <= today + EXPIRING_NOTICE, ~warned.exists())
        .order_by(Allocation.id)
        .options(sa.orm.selectinload(Allocation.request), sa.orm.selectinload(Allocation.offer))
    ))
    by_end: dict[dt.date, list[Allocation]] = {}
    for allocation in due:
        by_end.setdefault(allocation.request.window_end, []).append(allocation)
    for window_end, ending in sorted(by_end.items()):
        allocations.warn_expiring(session, ending, window_end, now)
    return len(due)


def expire_finished(session: Session, adapter_for: AdapterFor, now: dt.datetime) -> dict[str, int]:
    """Release allocations whose window is over or whose request was withdrawn, at the carrier and
    here; expire requests never served."""
    today = local_date(now)
    finished = session.scalars(
        sa.select(Allocation)
        .join(Allocation.request)
        .where(
            Allocation.status == AllocationStatus.active,
            sa.or_(ResourceRequest.window_end < today, ResourceRequest.status == RequestStatus.withdrawn),
        )
        .order_by(Allocation.id)
        .limit(BATCH)
    ).all()
    work = [(a.id, a.offer.carrier, a.carrier_ref) for a in finished]
    # Locked and checked again: a cycle may be proposing one of them right now.
    stale = session.scalars(
        sa.select(ResourceRequest)
        .where(ResourceRequest.status == RequestStatus.submitted, ResourceRequest.window_start < today)
        .order_by(ResourceRequest.id)
        .with_for_update().execution_options(populate_existing=True)
    ).all()
    for request in stale:
        request.expire()
        events.record(session, "request.expired", None, request.startup_id, None, now, request_id=request.id)
    session.commit()

    counts = {"released": 0, "release_failed": 0, "requests_expired": len(stale)}
    for allocation_id, carrier, carrier_ref in work:
        adapter = adapter_for(carrier)
        try:
            if adapter.supports(Feature.RELEASE) and carrier_ref:
                adapter.release(carrier_ref)
        except AdapterError as exc:
            allocation = session.get(Allocation, allocation_id)
            allocation.last_error = f"release: {exc}"
            session.commit()
            counts["release_failed"] += 1  # tried again at the next run
            continue
        allocation = allocations.lock_one(session, allocation_id)
        if allocation.status is AllocationStatus.active:
            allocations.release(session, allocation, now)
            counts["released"] += 1
        session.commit()
    return counts


def pull_usage(session: Session, carrier: Carrier, adapter: CarrierAdapter, now: dt.datetime) -> dict[str, int]:
    """Record a carrier's new usage lines once each, and redeem subsidy awards against them."""
    if not adapter.supports(Feature.USAGE):
        return {"recorded": 0, "skipped": 0}
    since = session.scalar(
        sa.select(sa.func.max(UsageReport.recorded_at)).where(UsageReport.carrier_id == carrier.id)
    ) or dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    session.commit()
    result = adapter.fetch_usage(since)
    recorded = skipped = 0
    for line in result.records:
        allocation = session.get(Allocation, int(line.allocation_id)) if line.allocation_id.isdigit() else None
        known = session.scalar(
            sa.select(UsageReport.id).where(UsageReport.carrier_id == carrier.id, UsageReport.external_id == line.external_id)
        )
        if allocation is None or allocation.offer.carrier_id != carrier.id or known is not None:
            skipped += 1
            continue
        usage = UsageReport(carrier_id=carrier.id, external_id=line.external_id, allocation_id=allocation.id,
                            quantity=line.quantity, recorded_at=line.recorded_at)
        session.add(usage)
        session.flush()
        subsidies.redeem_usage(session, allocation, usage, now)
        recorded += 1
    session.commit()
    return {"recorded": recorded, "skipped": skipped}
