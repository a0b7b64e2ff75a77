"""The matching cycle and the staff decisions on its proposals.

A cycle is one transaction: snapshot the queue and the capacity, solve, write proposals that
hold capacity, commit. A crash anywhere before the commit leaves nothing behind, and only
one cycle runs at a time (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite, and a
unique index on the running cycle on both).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from broker import matching
from broker.clock import local_date
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import (
    Account,
    Allocation,
    AllocationStatus,
    CycleStatus,
    MatchingCycle,
    Offer,
    OfferStatus,
    Policy,
    RequestStatus,
    ResourceRequest,
    Role,
    Startup,
    StartupStatus,
)
from broker.resources import QUANTITY_PLACES
from broker.services import events, subsidies
from broker.services.accounts import require_role
from broker.services.market import release_hold
from broker.services.policy import current_policy

# Arbitrary but fixed: the PostgreSQL advisory lock key that serialises cycles.
CYCLE_LOCK_KEY = 0x5AB0C1C1E


def request_weight(policy: Policy, startup: Startup, cycles_waited: int) -> Decimal:
    """Priority from policy: the sector's weight, a bonus for key enterprises, and one per cycle waited."""
    weight = Decimal(policy.sector_weights.get(startup.sector.value, policy.default_weight))
    if startup.key_enterprise:
        weight += policy.key_enterprise_bonus
    return weight + policy.wait_bonus_per_cycle * cycles_waited


@dataclass
class Snapshot:
    """What one cycle sees: the queue, the capacity, and the rows behind the engine's ids."""

    instance: matching.Instance
    requests: dict[str, ResourceRequest]
    offers: dict[str, Offer]
    weights: dict[str, Decimal] = field(default_factory=dict)


def take_snapshot(session: Session, policy: Policy, today: dt.date) -> Snapshot:
    """The verified startups' queued requests, every offer with capacity left (locked), and
    the fully held offers, for the reasons only."""
    requests = session.scalars(
        sa.select(ResourceRequest)
        .join(Startup)
        .where(
            ResourceRequest.status == RequestStatus.submitted,
            ResourceRequest.window_start >= today,
            Startup.status == StartupStatus.verified,
        )
        .options(selectinload(ResourceRequest.startup))
        .order_by(ResourceRequest.id)
    ).all()
    offers = session.scalars(
        sa.select(Offer)
        .where(Offer.status == OfferStatus.active, Offer.promised < Offer.quantity, Offer.window_end >= today)
        .options(selectinload(Offer.carrier))
        .order_by(Offer.id)
        .with_for_update(of=Offer).execution_options(populate_existing=True)
    ).all()
    # Offers whose every unit earlier proposals or grants hold go to the engine with nothing
    # available, so that a request only they would serve is told so (`capacity_held`), not
    # given the nearest other miss. The cycle can't promise from them: no lock is needed.
    offers += session.scalars(
        sa.select(Offer)
        .where(Offer.status == OfferStatus.active, Offer.promised >= Offer.quantity, Offer.window_end >= today)
        .options(selectinload(Offer.carrier))
        .order_by(Offer.id)
        .execution_options(populate_existing=True)
    ).all()
    weights = {f"r{r.id}": request_weight(policy, r.startup, r.cycles_waited) for r in requests}
    startups = {r.startup for r in requests}
    instance = matching.Instance(
        policy=matching.Policy(share_cap=float(policy.share_cap)),
        startups=tuple(
            matching.Startup(id=f"s{s.id}", budget=None if s.cycle_budget is None else float(s.cycle_budget))
            for s in startups
        ),
        offers=tuple(
            matching.Offer(
                id=f"o{o.id}",
                carrier=o.carrier.code,
                kind=o.kind,
                region=o.region,
                available=float(o.available),
                # Gross of subsidy: which program pays, and how much, is settled at approval,
                # so budgets are checked against the most the startup could pay.
                unit_price=float(o.unit_price),
                window=(o.window_start, o.window_end),
                attributes=o.attributes,
                divisible=o.divisible,
                held=float(o.promised),
            )
            for o in offers
        ),
        requests=tuple(
            matching.Request(
                id=f"r{r.id}",
                startup=f"s{r.startup_id}",
                kind=r.kind,
                quantity=float(r.quantity),
                min_quantity=None if r.min_quantity is None else float(r.min_quantity),
                regions=None if r.regions is None else tuple(r.regions),
                attributes={k: tuple(v) for k, v in r.attributes.items()},
                max_unit_price=None if r.max_unit_price is None else float(r.max_unit_price),
                window=(r.window_start, r.window_end),
                weight=float(weights[f"r{r.id}"]),
                submitted_at=r.submitted_at,
            )
            for r in requests
        ),
    )
    return Snapshot(instance, {f"r{r.id}": r for r in requests}, {f"o{o.id}": o for o in offers}, weights)


@dataclass
class CycleOutcome:
    cycle: MatchingCycle | None  # None for a dry run
    stats: dict[str, Any]
    proposals: list[dict[str, Any]]


def run_cycle(
    session: Session,
    now: dt.datetime,
    actor: Account | None = None,
    *,
    dry_run: bool = False,
    time_limit: float | None = None,
) -> CycleOutcome:
    """Match the queue to the capacity and write proposals that hold it, in one transaction."""
    if actor is not None:
        require_role(actor, Role.staff, Role.admin)
    _lock_cycles(session)
    if session.scalar(sa.select(MatchingCycle.id).where(MatchingCycle.status == CycleStatus.running)):
        raise Conflict("A matching cycle is already running.")
    policy = current_policy(session)
    today = local_date(now)
    snapshot = take_snapshot(session, policy, today)
    result = matching.solve(snapshot.instance, time_limit=time_limit)
    stats = cycle_stats(snapshot, result)
    proposals = [
        {"request_id": snapshot.requests[a.request].id, "offer_id": snapshot.offers[a.offer].id,
         "quantity": str(_quantity(a.quantity)), "unit_price": str(snapshot.offers[a.offer].unit_price)}
        for a in sorted(result.allocations, key=lambda a: (a.request, a.offer))
    ]
    if dry_run:
        session.rollback()  # releases the locks; nothing was written
        return CycleOutcome(None, stats, proposals)

    cycle = MatchingCycle(scheduled_for=now, started_by_id=actor.id if actor else None)
    session.add(cycle)
    session.flush()
    cycle.start(now)
    session.flush()  # the running row is what the unique index guards
    chosen = sorted(result.allocations, key=lambda a: (a.request, a.offer))
    # One guarded update per offer (in id order, so concurrent writers lock alike), then the
    # proposals and their events in bulk: a cycle can propose thousands.
    per_offer: dict[int, Decimal] = defaultdict(Decimal)
    for allocation in chosen:
        per_offer[snapshot.offers[allocation.offer].id] += _quantity(allocation.quantity)
    for offer_id in sorted(per_offer):
        hold(session, offer_id, per_offer[offer_id])
    _fault_point("cycle.after_holding_capacity")
    proposals = [
        Allocation(
            cycle_id=cycle.id,
            request_id=snapshot.requests[a.request].id,
            offer_id=snapshot.offers[a.offer].id,
            quantity=_quantity(a.quantity),
            unit_price=snapshot.offers[a.offer].unit_price,
            request=snapshot.requests[a.request],
            offer=snapshot.offers[a.offer],
        )
        for a in chosen
    ]
    session.add_all(proposals)
    session.flush()
    events.record_for_allocations(session, "allocation.proposed", proposals, now)
    proposed_ids = {a.request for a in result.allocations}
    for key, request in snapshot.requests.items():
        if key in proposed_ids:
            request.propose()
        else:
            request.wait_another_cycle()
    deadline = now + dt.timedelta(hours=policy.approval_window_hours)
    cycle.propose(stats, deadline, now)
    session.flush()
    _fault_point("cycle.before_commit")
    session.commit()
    return CycleOutcome(cycle, stats, proposals)


def _lock_cycles(session: Session) -> None:
    # SQLite needs nothing more: its write transaction (BEGIN IMMEDIATE) already excludes others.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CYCLE_LOCK_KEY})


def _fault_point(name: str) -> None:
    """Let a crash test kill this process at a named point (only when the test asks)."""
    if os.environ.get("BROKER_FAULT_INJECT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _quantity(value: float) -> Decimal:
    # The engine already rounded down to the stored scale and re-checked feasibility.
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-QUANTITY_PLACES), rounding="ROUND_DOWN")


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


def cycle_stats(snapshot: Snapshot, result: matching.Result) -> dict[str, Any]:
    """Counts, objective, bound and gap, fulfilment by kind and by sector, and every request left short."""
    asked: dict[str, dict[str, float]] = {"kind": defaultdict(float), "sector": defaultdict(float)}
    granted: dict[str, dict[str, float]] = {"kind": defaultdict(float), "sector": defaultdict(float)}
    given: dict[str, float] = defaultdict(float)
    for allocation in result.allocations:
        given[allocation.request] += allocation.quantity
    for key, request in snapshot.requests.items():
        for axis, value in (("kind", request.kind), ("sector", request.startup.sector.value)):
            # Fulfilment is the share of asked quantity granted, per request, averaged: units
            # of different kinds cannot be added.
            asked[axis][value] += 1
            granted[axis][value] += given.get(key, 0.0) / float(request.quantity)
    engine_stats = dict(result.stats)
    return {
        "requests": len(snapshot.requests),
        "offers": sum(o.available > 0 for o in snapshot.offers.values()),  # what it could promise from
        "proposals": len(result.allocations),
        "requests_served": len(given),
        "objective": round(result.objective, 6),
        "bound": engine_stats.get("bound"),
        "gap": engine_stats.get("gap"),
        "solve_seconds": engine_stats.get("solve_seconds"),
        "fulfilment_by_kind": {k: round(granted["kind"][k] / n, 4) for k, n in sorted(asked["kind"].items())},
        "fulfilment_by_sector": {k: round(granted["sector"][k] / n, 4) for k, n in sorted(asked["sector"].items())},
        "unfilled": [
            {"request_id": snapshot.requests[u.request].id, "reason": u.reason}
            for u in sorted(result.unfilled, key=lambda u: snapshot.requests[u.request].id)
        ],
    }


def get_cycle(session: Session, actor: Account, cycle_id: int) -> MatchingCycle:
    require_role(actor, Role.staff, Role.admin)
    cycle = session.get(MatchingCycle, cycle_id)
    if cycle is None:
        raise NotFound("No such cycle.")
    return cycle


def list_cycles(session: Session, actor: Account) -> sa.Select:
    require_role(actor, Role.staff, Role.admin)
    return sa.select(MatchingCycle).order_by(MatchingCycle.id.desc())


def _locked_proposal(session: Session, allocation_id: int) -> Allocation:
    allocation = session.scalar(
        sa.select(Allocation).where(Allocation.id == allocation_id).with_for_update().execution_options(populate_existing=True)
    )
    if allocation is None:
        raise NotFound(f"No allocation {allocation_id}.")
    return allocation


def _decide(session: Session, actor: Account, allocation: Allocation, decision: str, reason: str | None, now: dt.datetime) -> Allocation:
    """Decide a proposal the caller has locked (`_locked_proposal`)."""
    allocation_id = allocation.id
    if allocation.status is not AllocationStatus.proposed:
        raise Conflict(f"Allocation {allocation_id} is {allocation.status.value}, not proposed.")
    if not allocation.cycle.accepts_decisions(now):
        raise Conflict(f"The approval window of cycle {allocation.cycle_id} has closed.")
    request = allocation.request
    if decision == "approve":
        # Re-check under the offer's row lock: the hold must still be within what the offer has.
        offer = session.scalar(sa.select(Offer).where(Offer.id == allocation.offer_id).with_for_update().execution_options(populate_existing=True))
        if offer.promised > offer.quantity:  # pragma: no cover - the CHECK constraint forbids it
            raise Conflict(f"Offer {offer.id} is oversold.")
        allocation.approve(actor.id, reason, now)
        subsidies.commit_for(session, allocation, request.startup, offer, now)
        events.record(session, "allocation.approved", allocation, request.startup_id, offer.carrier_id, now)
    else:
        if not reason:
            raise InvalidInput("A rejection needs a reason.", {"reason": ["Required when rejecting."]})
        allocation.reject(actor.id, reason, now)
        release_hold(session, allocation.offer_id, allocation.quantity)
        events.record(session, "allocation.rejected", allocation, request.startup_id, allocation.offer.carrier_id, now)
    request.settle(local_date(now))
    return allocation


def approve_allocation(session: Session, actor: Account, allocation_id: int, reason: str | None, now: dt.datetime) -> Allocation:
    """Staff approve one proposal before its deadline; budget is committed under row locks."""
    require_role(actor, Role.staff, Role.admin)
    allocation = _decide(session, actor, _locked_proposal(session, allocation_id), "approve", reason, now)
    session.commit()
    return allocation


def reject_allocation(session: Session, actor: Account, allocation_id: int, reason: str, now: dt.datetime) -> Allocation:
    """Staff reject one proposal with a reason; its capacity goes back to the offer."""
    require_role(actor, Role.staff, Role.admin)
    allocation = _decide(session, actor, _locked_proposal(session, allocation_id), "reject", reason, now)
    session.commit()
    return allocation


def decide_many(session: Session, actor: Account, cycle_id: int, decisions: list[dict[str, Any]], now: dt.datetime) -> list[Allocation]:
    """Staff decide many proposals of one cycle at once: all of them, or none if one is refused."""
    require_role(actor, Role.staff, Role.admin)
    get_cycle(session, actor, cycle_id)
    decided, problems = [], {}
    # Lock in id order so two batches over the same proposals cannot deadlock.
    for i, item in sorted(enumerate(decisions), key=lambda pair: pair[1]["allocation_id"]):
        try:
            allocation = _locked_proposal(session, item["allocation_id"])
            if allocation.cycle_id != cycle_id:
                raise InvalidInput(f"Allocation {allocation.id} belongs to cycle {allocation.cycle_id}.")
            decided.append(_decide(session, actor, allocation, item["decision"], item.get("reason"), now))
        except (Conflict, InvalidInput, NotFound) as error:
            problems[i] = [error.message]
    if problems:
        session.rollback()
        raise Conflict("Some decisions cannot be made; none were.", {"decisions": problems})
    session.commit()
    return decided


def close_approval_windows(session: Session, now: dt.datetime) -> int:
    """Lapse every undecided proposal past its deadline and give its capacity back; close those cycles."""
    cycles = session.scalars(
        sa.select(MatchingCycle)
        .where(MatchingCycle.status == CycleStatus.proposed, MatchingCycle.approval_deadline <= now)
        .order_by(MatchingCycle.id)
        .with_for_update().execution_options(populate_existing=True)
    ).all()
    lapsed = 0
    today = local_date(now)
    for cycle in cycles:
        proposals = session.scalars(
            sa.select(Allocation)
            .where(Allocation.cycle_id == cycle.id, Allocation.status == AllocationStatus.proposed)
            .order_by(Allocation.id)
            .with_for_update().execution_options(populate_existing=True)
        ).all()
        for allocation in proposals:
            allocation.lapse(now)
            release_hold(session, allocation.offer_id, allocation.quantity)
            events.record(session, "allocation.lapsed", allocation, allocation.request.startup_id, allocation.offer.carrier_id, now)
            lapsed += 1
        for request in {a.request for a in proposals}:
            request.settle(today)
        cycle.close()
    session.commit()
    return lapsed
