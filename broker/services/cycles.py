"""The matching cycle and the staff decisions on its proposals.

A cycle is one transaction: snapshot the queue and the capacity, solve, write proposals that
hold capacity, commit. A crash anywhere before the commit leaves nothing behind, and only
one cycle runs at a time (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite, and a
unique index on the running cycle on both). Rows are locked in the order that
broker.services.allocations writes down: the queued requests before the offers, and a
decision's request before its allocation.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from broker import matching
from broker.clock import local_date
from broker.db import transaction
from broker.errors import Conflict, InvalidInput, NotFound
from broker.faults import fault_point
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
from broker.services import allocations, subsidies
from broker.services.accounts import require_role
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


def take_snapshot(session: Session, policy: Policy, today: dt.date, now: dt.datetime | None = None) -> Snapshot:
    """The verified startups' queued requests (locked first), every offer with capacity left
    (locked), and the fully held offers, for the reasons only; and what each startup pays per
    unit of each offer after the subsidy it would get (`subsidies.engine_prices`)."""
    # Locked so that a withdrawal waits for the cycle, or the cycle for the withdrawal, and a
    # request withdrawn meanwhile is not proposed: the WHERE is checked again under the lock.
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
        .with_for_update(of=ResourceRequest).execution_options(populate_existing=True)
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
    net: dict[int, dict[str, float]] = defaultdict(dict)  # startup id -> {engine offer id: its price}
    for (startup_id, offer_id), price in sorted(_net_prices(session, requests, offers, now).items()):
        net[startup_id][f"o{offer_id}"] = float(price)
    instance = matching.Instance(
        policy=matching.Policy(share_cap=float(policy.share_cap)),
        startups=tuple(
            matching.Startup(
                id=f"s{s.id}", budget=None if s.cycle_budget is None else float(s.cycle_budget),
                prices=net.get(s.id, {}),
            )
            for s in startups
        ),
        offers=tuple(
            matching.Offer(
                id=f"o{o.id}",
                carrier=o.carrier.code,
                kind=o.kind,
                region=o.region,
                available=float(o.available),
                # Gross of subsidy; each startup's own price after its subsidy is in its `prices`.
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


def _net_prices(session: Session, requests: list[ResourceRequest], offers: list[Offer],
                now: dt.datetime | None) -> dict[tuple[int, int], Decimal]:
    """Per (startup, offer of a kind it asks for): its price after the best program's rate, where
    one would pay. The program's dates are checked against the startup's earliest request of the
    kind (no allocation starts before it: an offer's window must hold the request's)."""
    if now is None:
        return {}
    earliest: dict[tuple[int, str], dt.date] = {}
    for r in requests:
        key = (r.startup_id, r.kind)
        earliest[key] = min(earliest.get(key, r.window_start), r.window_start)
    by_kind: dict[str, list[Offer]] = defaultdict(list)
    for o in offers:
        by_kind[o.kind].append(o)
    startups = {r.startup_id: r.startup for r in requests}
    wanted = [(startups[s], o, starts_on) for (s, kind), starts_on in sorted(earliest.items()) for o in by_kind[kind]]
    return subsidies.engine_prices(session, wanted, now)


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
    snapshot = take_snapshot(session, policy, today, now)
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
    deadline = now + dt.timedelta(hours=policy.approval_window_hours)
    proposals = allocations.propose(
        session, cycle, [(snapshot.requests[a.request], snapshot.offers[a.offer], _quantity(a.quantity)) for a in chosen], now,
        deadline,
    )
    proposed_ids = {a.request for a in result.allocations}
    for key, request in snapshot.requests.items():
        if key in proposed_ids:
            request.propose()
        else:
            request.wait_another_cycle()
    cycle.propose(stats, deadline, now)
    session.flush()
    fault_point("cycle.before_commit")
    session.commit()
    return CycleOutcome(cycle, stats, proposals)


def _lock_cycles(session: Session) -> None:
    # SQLite needs nothing more: its write transaction (BEGIN IMMEDIATE) already excludes others.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CYCLE_LOCK_KEY})


def _quantity(value: float) -> Decimal:
    # The engine already rounded down to the stored scale and re-checked feasibility.
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-QUANTITY_PLACES), rounding="ROUND_DOWN")


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


@transaction
def approve_allocation(session: Session, actor: Account, allocation_id: int, reason: str | None, now: dt.datetime) -> Allocation:
    """Staff approve one proposal before its deadline; budget is committed under row locks."""
    require_role(actor, Role.staff, Role.admin)
    allocation = allocations.approve(session, actor, allocations.lock_one(session, allocation_id), reason, now)
    return allocation


@transaction
def reject_allocation(session: Session, actor: Account, allocation_id: int, reason: str, now: dt.datetime) -> Allocation:
    """Staff reject one proposal with a reason; its capacity goes back to the offer."""
    require_role(actor, Role.staff, Role.admin)
    allocation = allocations.reject(session, actor, allocations.lock_one(session, allocation_id), reason, now)
    return allocation


@transaction
def decide_many(session: Session, actor: Account, cycle_id: int, decisions: list[dict[str, Any]], now: dt.datetime) -> list[Allocation]:
    """Staff decide many proposals of one cycle at once: all of them, or none if one is refused."""
    require_role(actor, Role.staff, Role.admin)
    get_cycle(session, actor, cycle_id)
    # Every request, allocation and offer of the batch is locked up front, in the one order.
    locked = allocations.lock_for(session, [item["allocation_id"] for item in decisions])
    decide = {"approve": allocations.approve, "reject": allocations.reject}
    decided, problems = [], {}
    for i, item in sorted(enumerate(decisions), key=lambda pair: pair[1]["allocation_id"]):
        try:
            allocation = locked.get(item["allocation_id"])
            if allocation is None:
                raise NotFound(f"No allocation {item['allocation_id']}.")
            if allocation.cycle_id != cycle_id:
                raise InvalidInput(f"Allocation {allocation.id} belongs to cycle {allocation.cycle_id}.")
            decided.append(decide[item["decision"]](session, actor, allocation, item.get("reason"), now))
        except (Conflict, InvalidInput, NotFound) as error:
            problems[i] = [error.message]
    if problems:
        raise Conflict("Some decisions cannot be made; none were.", {"decisions": problems})
    return decided


@dataclass
class ItemResult:
    """One item of `decide_each`: decided, or refused with why (`code` names the case for a page
    to put in its own words; `message` is the domain error's)."""

    allocation_id: int
    decision: str
    decided: bool
    code: str | None = None
    message: str | None = None
    allocation: Allocation | None = None


def _refusal(allocation: Allocation | None, cycle_id: int, decision: str, reason: str | None,
             now: dt.datetime) -> tuple[str, str] | None:
    """The reason an item is refused before anything is tried, as (code, message), or None."""
    if decision not in ("approve", "reject"):
        return "bad_decision", f"Unknown decision {decision!r}."
    if allocation is None:
        return "not_found", "No such allocation."
    if allocation.cycle_id != cycle_id:
        return "other_cycle", f"Allocation {allocation.id} belongs to cycle {allocation.cycle_id}."
    if allocation.status is not AllocationStatus.proposed:
        return f"already_{allocation.status.value}", f"Allocation {allocation.id} is {allocation.status.value}, not proposed."
    if not allocation.cycle.accepts_decisions(now):
        return "window_closed", f"The approval window of cycle {cycle_id} has closed."
    if decision == "reject" and not (reason or "").strip():
        return "reason_required", "A rejection needs a reason."
    return None


@transaction
def decide_each(session: Session, actor: Account, cycle_id: int, decisions: list[dict[str, Any]],
                now: dt.datetime) -> list[ItemResult]:
    """Staff decide many proposals of one cycle, each on its own: every item that can be decided
    is, every other one is refused with why, and the successes commit together.

    Unlike `decide_many` (all or none, for the API), each item runs in its own savepoint, so a
    refused one undoes only itself. The batch's requests, allocations and offers are locked up
    front in the one order (`allocations.lock_for`), and the items are decided in allocation id
    order. Results come back in the order of `decisions`.
    """
    require_role(actor, Role.staff, Role.admin)
    get_cycle(session, actor, cycle_id)
    locked = allocations.lock_for(session, [item["allocation_id"] for item in decisions])
    decide = {"approve": allocations.approve, "reject": allocations.reject}
    results: dict[int, ItemResult] = {}
    seen: set[int] = set()
    for i, item in sorted(enumerate(decisions), key=lambda pair: pair[1]["allocation_id"]):
        allocation_id, decision, reason = item["allocation_id"], item.get("decision", ""), item.get("reason")
        allocation = locked.get(allocation_id)
        refused = ("duplicate", f"Allocation {allocation_id} is listed twice.") if allocation_id in seen else None
        seen.add(allocation_id)
        refused = refused or _refusal(allocation, cycle_id, decision, reason, now)
        if refused is not None:
            results[i] = ItemResult(allocation_id, decision, False, *refused)
            continue
        try:
            with session.begin_nested():
                decided = decide[decision](session, actor, allocation, reason, now)
                session.flush()
        except (Conflict, InvalidInput, NotFound) as error:
            results[i] = ItemResult(allocation_id, decision, False, "refused", error.message)
            continue
        results[i] = ItemResult(allocation_id, decision, True, allocation=decided)
    return [results[i] for i in range(len(decisions))]


@transaction
def close_approval_windows(session: Session, now: dt.datetime) -> int:
    """Lapse every undecided proposal past its deadline and give its capacity back; close those cycles."""
    cycles = session.scalars(
        sa.select(MatchingCycle)
        .where(MatchingCycle.status == CycleStatus.proposed, MatchingCycle.approval_deadline <= now)
        .order_by(MatchingCycle.id)
        .with_for_update().execution_options(populate_existing=True)
    ).all()
    undecided = session.scalars(
        sa.select(Allocation.id).where(
            Allocation.cycle_id.in_([c.id for c in cycles]), Allocation.status == AllocationStatus.proposed
        )
    ).all()
    # All the cycles' proposals at once, so that no request is locked after an offer.
    locked = allocations.lock_for(session, undecided)
    proposals = [a for a in locked.values() if a.status is AllocationStatus.proposed]  # decided meanwhile: skip
    allocations.lapse(session, proposals, now)
    for cycle in cycles:
        cycle.close()
    return len(proposals)
