"""Allocations: each transition with its capacity, its subsidy and its event, in one call.

Cycles, decisions, withdrawals, provisioning and expiry call these functions instead of
pairing a state change with capacity and events by hand. Each moves the allocation (a
named model method that refuses a status it does not expect: 409, never a silent
overwrite), the offer's promised capacity (a guarded update), the subsidy (committed on
approval, the unused part given back by every end before use: withdrawal, cancellation,
provisioning given up, release) and the event feed, together. None of them commits: the
use case that calls them commits once.

The lock order
--------------
Every use case that touches these rows takes its row locks in this one order, each kind
in id order, and never reaches back for a row earlier in the order than one it holds:

    matching cycles → startups → requests → allocations → offers → subsidy programs → awards
        → evidence → notices → objections → settlement statements

(the matching-cycle advisory lock, or the cycle row whose approval window closes, comes
first). Decisions lock the request, then the allocation, then its offer (`lock_for`); a
withdrawal locks its request, its allocations, then gives capacity back offer by offer in id
order; the cycle locks the queued requests before the offers; subsidies lock programs before
awards (`subsidies.award_for`, `give_back_for`, `redeem_usage`); a public notice's use cases
lock its awards before the notice, and an upheld objection its program, award, notice, then
itself (`broker.services.notices`); an evidence upload or review locks the award, then the
piece (`broker.services.evidence`); a settlement approval or a clawback locks programs, then
awards, then the statement (`broker.services.settlement`). Each locked row is re-read as it is now
(populate_existing) and its status checked again under the lock.

A deadlock or serialization failure that can still happen (a carrier sync's bulk upsert takes
offers in feed order, not id order, for one) is retried around the whole use case by
`broker.db.retry_transient`, which the API and the scheduler wrap every use case in.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date
from broker.errors import Conflict, InvalidInput, NotFound
from broker.faults import fault_point
from broker.models import Account, Allocation, AllocationStatus, MatchingCycle, Offer, RequestStatus, ResourceRequest
from broker.models.market import WITHDRAWABLE_REQUEST_STATUSES
from broker.services import events, subsidies

# How long one provisioning attempt may be in flight before it counts as lost and is tried
# again (with the same idempotency key); far longer than an adapter's timeouts and retries.
PROVISION_LEASE = dt.timedelta(minutes=10)


# -- locks, in the one order ------------------------------------------------------------------


def lock_requests(session: Session, request_ids: Iterable[int]) -> dict[int, ResourceRequest]:
    """Lock requests in id order, read as they are now."""
    ids = sorted(set(request_ids))
    if not ids:
        return {}
    requests = session.scalars(
        sa.select(ResourceRequest).where(ResourceRequest.id.in_(ids)).order_by(ResourceRequest.id)
        .with_for_update().execution_options(populate_existing=True)
    ).all()
    for request in requests:
        session.expire(request, ["allocations"])  # its allocations are read again, after their locks
    return {r.id: r for r in requests}


def lock_allocations(session: Session, *where: sa.ColumnElement[bool]) -> list[Allocation]:
    """Lock the allocations matching `where`, in id order, read as they are now."""
    return list(
        session.scalars(
            sa.select(Allocation).where(*where).order_by(Allocation.id)
            .with_for_update().execution_options(populate_existing=True)
        )
    )


def lock_offers(session: Session, offer_ids: Iterable[int]) -> dict[int, Offer]:
    ids = sorted(set(offer_ids))
    if not ids:
        return {}
    offers = session.scalars(
        sa.select(Offer).where(Offer.id.in_(ids)).order_by(Offer.id).with_for_update().execution_options(populate_existing=True)
    ).all()
    return {o.id: o for o in offers}


def lock_for(session: Session, allocation_ids: Iterable[int]) -> dict[int, Allocation]:
    """Lock these allocations' requests, the allocations, then their offers: what a decision needs.

    Allocations that do not exist are left out; the caller says what that means.
    """
    ids = sorted(set(allocation_ids))
    # An allocation's request and offer never change, so they can be read before the locks.
    pairs = session.execute(sa.select(Allocation.request_id, Allocation.offer_id).where(Allocation.id.in_(ids))).all()
    lock_requests(session, [request_id for request_id, _ in pairs])
    locked = lock_allocations(session, Allocation.id.in_(ids))
    lock_offers(session, [offer_id for _, offer_id in pairs])
    return {a.id: a for a in locked}


def lock_one(session: Session, allocation_id: int) -> Allocation:
    allocation = lock_for(session, [allocation_id]).get(allocation_id)
    if allocation is None:
        raise NotFound(f"No allocation {allocation_id}.")
    return allocation


# -- capacity ---------------------------------------------------------------------------------


def hold(session: Session, offer_id: int, quantity: Decimal) -> None:
    """Promise `quantity` from an offer, or fail: the guard and the CHECK both refuse overselling."""
    result = session.execute(
        sa.update(Offer)
        .where(Offer.id == offer_id, Offer.promised + quantity <= Offer.quantity)
        .values(promised=Offer.promised + quantity)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise Conflict(f"Offer {offer_id} no longer has {quantity} available.")


def _give_back(session: Session, ended: list[Allocation], now: dt.datetime) -> None:
    """Allocations ended before use return their capacity and their unused subsidy."""
    _give_back_capacity(session, ended)
    subsidies.give_back_for(session, [a.id for a in ended], now)


def _give_back_capacity(session: Session, ended: list[Allocation]) -> None:
    """Offer by offer, in id order, each with one guarded update."""
    per_offer: dict[int, Decimal] = defaultdict(Decimal)
    for allocation in ended:
        per_offer[allocation.offer_id] += allocation.quantity
    for offer_id in sorted(per_offer):
        quantity = per_offer[offer_id]
        result = session.execute(
            sa.update(Offer)
            .where(Offer.id == offer_id, Offer.promised >= quantity)
            .values(promised=Offer.promised - quantity)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # pragma: no cover - promised always covers what allocations hold
            raise Conflict(f"Offer {offer_id} holds less than the {quantity} being given back.")


def _record(session: Session, type_: str, allocation: Allocation, now: dt.datetime, **payload) -> None:
    events.record(session, type_, allocation, allocation.request.startup_id, allocation.offer.carrier_id, now, **payload)


# -- transitions ------------------------------------------------------------------------------


def propose(
    session: Session, cycle: MatchingCycle, chosen: list[tuple[ResourceRequest, Offer, Decimal]], now: dt.datetime,
    deadline: dt.datetime | None = None,
) -> list[Allocation]:
    """A cycle's proposals: hold their capacity (one guarded update per offer, in id order), write them
    and their events in bulk (a cycle can propose thousands). The caller holds the requests' and the
    offers' locks."""
    per_offer: dict[int, Decimal] = defaultdict(Decimal)
    for _, offer, quantity in chosen:
        per_offer[offer.id] += quantity
    for offer_id in sorted(per_offer):
        hold(session, offer_id, per_offer[offer_id])
    fault_point("cycle.after_holding_capacity")
    proposals = [
        Allocation(cycle_id=cycle.id, request_id=request.id, offer_id=offer.id, quantity=quantity,
                   unit_price=offer.unit_price, request=request, offer=offer)
        for request, offer, quantity in chosen
    ]
    session.add_all(proposals)
    session.flush()
    events.record_for_allocations(session, "allocation.proposed", proposals, now,
                                  approval_deadline=deadline.isoformat() if deadline is not None else None)
    return proposals


def _require_open_window(allocation: Allocation, now: dt.datetime) -> None:
    if allocation.status is not AllocationStatus.proposed:
        raise Conflict(f"Allocation {allocation.id} is {allocation.status.value}, not proposed.")
    if not allocation.cycle.accepts_decisions(now):
        raise Conflict(f"The approval window of cycle {allocation.cycle_id} has closed.")


def approve(session: Session, actor: Account, allocation: Allocation, reason: str | None, now: dt.datetime) -> Allocation:
    """Staff approve a proposal (locked by `lock_for`): its held capacity is promised for good, and
    the program (or allowed stack) that pays the startup the most commits its share."""
    _require_open_window(allocation, now)
    offer = allocation.offer
    if offer.promised > offer.quantity:  # pragma: no cover - the CHECK constraint forbids it
        raise Conflict(f"Offer {offer.id} is oversold.")
    allocation.approve(actor.id, reason, now)
    _record(session, "allocation.approved", allocation, now)
    subsidies.award_for(session, allocation, allocation.request.startup, offer, now, actor.id)  # records subsidy.committed
    allocation.request.settle(local_date(now))
    return allocation


def reject(session: Session, actor: Account, allocation: Allocation, reason: str | None, now: dt.datetime) -> Allocation:
    """Staff reject a proposal (locked by `lock_for`) with a reason; its capacity goes back."""
    if not reason or not reason.strip():
        raise InvalidInput("A rejection needs a reason.", {"reason": ["Required when rejecting."]})
    _require_open_window(allocation, now)
    allocation.reject(actor.id, reason, now)
    _give_back_capacity(session, [allocation])  # a proposal has no subsidy award yet
    _record(session, "allocation.rejected", allocation, now, reason=reason)
    allocation.request.settle(local_date(now))
    return allocation


def warn_expiring(session: Session, ending: list[Allocation], window_end: dt.date, now: dt.datetime) -> None:
    """Active allocations whose window ends on `window_end`, within a week: each startup is told
    once (the caller skips allocations already warned)."""
    events.record_for_allocations(session, "allocation.expiring", ending, now, window_end=window_end.isoformat())


def lapse(session: Session, proposals: list[Allocation], now: dt.datetime) -> None:
    """Proposals (locked by `lock_for`) undecided at their deadline lapse; their capacity goes back."""
    for allocation in proposals:
        allocation.lapse(now)
    _give_back_capacity(session, proposals)  # proposals have no subsidy award yet
    events.record_for_allocations(session, "allocation.lapsed", proposals, now)
    today = local_date(now)
    for request in sorted({a.request for a in proposals}, key=lambda r: r.id):
        request.settle(today)


@dataclass(frozen=True)
class PendingRelease:
    """An allocation of a withdrawn request that the carrier still has to take back."""

    allocation_id: int
    status: AllocationStatus


def withdraw(session: Session, request: ResourceRequest, why: str, now: dt.datetime) -> list[PendingRelease]:
    """`request` was withdrawn (locked, and already marked so; `why` says by whom): its proposals end, its
    approved grants not yet sent are cancelled, and both give their capacity and subsidy back.

    What the carrier has set up, or is setting up, stays until the release run takes it back
    there; those are returned as pending releases.
    """
    mine = lock_allocations(session, Allocation.request_id == request.id)
    ended, pending = [], []
    for allocation in mine:
        if allocation.status is AllocationStatus.proposed:
            allocation.withdraw_proposal(why, now)
            ended.append((allocation, "allocation.withdrawn"))
        elif allocation.status is AllocationStatus.approved:
            allocation.cancel(f"{why} before provisioning", now)
            ended.append((allocation, "allocation.cancelled"))
        elif allocation.status in (AllocationStatus.provisioning, AllocationStatus.active):
            pending.append(PendingRelease(allocation.id, allocation.status))
    _give_back(session, [a for a, _ in ended], now)
    for type_ in ("allocation.withdrawn", "allocation.cancelled"):
        events.record_for_allocations(session, type_, [a for a, t in ended if t == type_], now)
    return pending


def end_request(
    session: Session, request: ResourceRequest, why: str, now: dt.datetime
) -> list[PendingRelease]:
    """Withdraw a request (locked by the caller) and end what it holds, giving capacity and subsidy
    back; every withdrawal comes here. Returns what the carrier still has to take back."""
    request.withdraw()
    return withdraw(session, request, why, now)


def end_requests_of(session: Session, startup_id: int, why: str, now: dt.datetime) -> None:
    """Withdraw every request of a startup that is still live (staff removing the startup)."""
    live = session.scalars(
        sa.select(ResourceRequest)
        .where(ResourceRequest.startup_id == startup_id, ResourceRequest.status.in_(WITHDRAWABLE_REQUEST_STATUSES))
        .order_by(ResourceRequest.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for request in live:
        end_request(session, request, why, now)


def cancel(session: Session, actor: Account, allocation: Allocation, reason: str, now: dt.datetime) -> Allocation:
    """Staff end an allocation (locked by `lock_for`) before use: approved but not yet sent to the
    carrier, or whose provisioning retries ran out. Capacity and subsidy go back."""
    if allocation.status is AllocationStatus.approved:
        allocation.cancel(reason, now)
    else:
        allocation.give_up_provisioning(reason, now)
    allocation.decided_by_id = actor.id
    _give_back(session, [allocation], now)
    _record(session, "allocation.cancelled", allocation, now, reason=reason)
    allocation.request.settle(local_date(now))
    return allocation


def begin_provisioning(allocation: Allocation, now: dt.datetime) -> None:
    """An attempt to set the allocation up at the carrier starts (capacity and subsidy stay as they are)."""
    allocation.begin_provisioning(now, PROVISION_LEASE)


def provisioned(
    session: Session, allocation: Allocation, carrier_ref: str, now: dt.datetime, access_details: dict | None = None
) -> None:
    """The carrier confirmed (allocation locked by `lock_for`): the startup can use it. Its access
    details stay on the allocation, out of the event (and so out of webhooks and email)."""
    allocation.provisioned(carrier_ref, now, access_details)
    _record(session, "allocation.provisioned", allocation, now)
    allocation.request.settle(local_date(now))


def provisioning_failed(
    session: Session, allocation: Allocation, error: str, retry_at: dt.datetime | None, now: dt.datetime
) -> None:
    """The carrier call failed; tried again at `retry_at`, or, when None, left for staff (retry or cancel)."""
    allocation.provisioning_failed(error, retry_at)
    if retry_at is None:
        _record(session, "allocation.provisioning_failed", allocation, now, error=error)


def release(session: Session, allocation: Allocation, now: dt.datetime) -> None:
    """The carrier took it back (allocation locked by `lock_for`): its window is over, or its request
    was withdrawn. Its capacity returns.

    A withdrawal ends the allocation before its window was used up, so whatever of its subsidy
    usage has not redeemed goes back to the program too (usage the carrier reports later for
    the time before the release is no longer subsidised). An allocation that ran its whole
    window keeps its award: its last usage may still be reported.
    """
    withdrawn = allocation.request.status is RequestStatus.withdrawn
    allocation.release(now)
    _give_back_capacity(session, [allocation])
    if withdrawn:
        subsidies.give_back_for(session, [allocation.id], now)
    _record(session, "allocation.released" if withdrawn else "allocation.expired", allocation, now)
    allocation.request.settle(local_date(now))
