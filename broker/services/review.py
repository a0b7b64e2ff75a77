"""The review queue (审批队列), read-only: one cycle's proposals awaiting a decision, each with its
request, its offer, what the startup would pay after subsidy, the startup's history and why the
cycle proposed it. Nothing here writes; decisions go through `broker.services.cycles`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from broker.errors import NotFound
from broker.resources import QUANTITY_PLACES, UNIT_PRICE_PLACES
from broker.models import (
    Account,
    Allocation,
    AllocationStatus,
    Carrier,
    CycleStatus,
    MatchingCycle,
    Offer,
    ResourceRequest,
    Role,
    Sector,
    Startup,
)
from broker.services import subsidies
from broker.services.accounts import require_role
from broker.services.policy import current_policy

PAGE_SIZE = 50  # proposals per page: a cycle of a big district proposes tens of thousands

# What a startup's past allocations count as, for its history.
GRANTED = (AllocationStatus.approved, AllocationStatus.provisioning, AllocationStatus.active, AllocationStatus.released)


@dataclass(frozen=True)
class Filters:
    """The queue's filters; None leaves that axis open. Amounts are the proposal's gross yuan."""

    kind: str | None = None
    sector: Sector | None = None
    carrier_id: int | None = None
    key_enterprise: bool | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None


@dataclass
class History:
    requests: int = 0
    granted: int = 0  # past allocations approved (and on to provisioning, use, release)
    approved: int = 0  # staff approvals, of this cycle's proposals and before
    rejected: int = 0


@dataclass
class Why:
    """Why the cycle proposed this: the request's weight under the policy and what it got."""

    weight: Decimal
    sector_weight: Decimal
    key_bonus: Decimal
    cycles_waited: int
    wait_bonus: Decimal
    share: Decimal  # of the quantity asked, this proposal's part
    short_reason: str | None  # the cycle's reason the request got less than it asked (a matching reason code)


@dataclass
class Row:
    allocation: Allocation
    request: ResourceRequest
    startup: Startup
    offer: Offer
    carrier: Carrier
    gross: Decimal
    subsidy: Decimal
    net: Decimal
    history: History
    why: Why


@dataclass
class Queue:
    cycle: MatchingCycle | None
    rows: list[Row] = field(default_factory=list)  # one page of the proposals the filters leave
    total: int = 0  # proposals the filters leave, on every page
    page: int = 1
    pages: int = 1
    pending: int = 0  # proposals awaiting a decision before the filters
    decided: int = 0
    open: bool = False  # the approval window is open
    kinds: list[str] = field(default_factory=list)
    carriers: list[Carrier] = field(default_factory=list)


def latest_cycle_id(session: Session, actor: Account) -> int | None:
    """The latest cycle whose proposals await decisions (None: nothing to review)."""
    require_role(actor, Role.staff, Role.admin)
    return session.scalar(
        sa.select(MatchingCycle.id).where(MatchingCycle.status == CycleStatus.proposed).order_by(MatchingCycle.id.desc()).limit(1)
    )


def review_queue(session: Session, actor: Account, cycle_id: int | None, filters: Filters, now: dt.datetime,
                 page: int = 1, page_size: int = PAGE_SIZE) -> Queue:
    """One page of a cycle's queue (`cycle_id` None: the latest awaiting decisions, or an empty queue);
    a page past the last shows the last."""
    require_role(actor, Role.staff, Role.admin)
    if cycle_id is None:
        cycle_id = latest_cycle_id(session, actor)
        if cycle_id is None:
            return Queue(None)
    cycle = session.get(MatchingCycle, cycle_id)
    if cycle is None:
        raise NotFound("No such cycle.")
    counts = dict(session.execute(
        sa.select(Allocation.status, sa.func.count()).where(Allocation.cycle_id == cycle.id).group_by(Allocation.status)
    ).all())
    pending = counts.get(AllocationStatus.proposed, 0)
    queue = Queue(cycle, pending=pending, decided=sum(counts.values()) - pending, open=cycle.accepts_decisions(now))
    # Offers this cycle used, probed offer by offer (ix_allocations_offer_cycle): a district has
    # hundreds of offers, and a cycle tens of thousands of allocations.
    in_cycle = sa.exists().where(Allocation.offer_id == Offer.id, Allocation.cycle_id == cycle.id)
    queue.kinds = list(session.scalars(sa.select(Offer.kind).where(in_cycle).distinct().order_by(Offer.kind)))
    queue.carriers = list(session.scalars(
        sa.select(Carrier).where(Carrier.id.in_(sa.select(Offer.carrier_id).where(in_cycle))).order_by(Carrier.name)
    ))

    # Walked in id order on ix_allocations_cycle_status. A filter on the startup or the offer is a
    # set of their ids (a few hundred startups, a few offers), never a join of the whole cycle.
    query = sa.select(Allocation).where(Allocation.cycle_id == cycle.id, Allocation.status == AllocationStatus.proposed)
    startups = sa.select(Startup.id)
    if filters.sector is not None:
        startups = startups.where(Startup.sector == filters.sector)
    if filters.key_enterprise is not None:
        startups = startups.where(Startup.key_enterprise.is_(filters.key_enterprise))
    if filters.sector is not None or filters.key_enterprise is not None:
        query = query.where(Allocation.request_id.in_(
            sa.select(ResourceRequest.id).where(ResourceRequest.startup_id.in_(startups))))
    offers = sa.select(Offer.id)
    if filters.kind:
        offers = offers.where(Offer.kind == filters.kind)
    if filters.carrier_id is not None:
        offers = offers.where(Offer.carrier_id == filters.carrier_id)
    if filters.kind or filters.carrier_id is not None:
        query = query.where(Allocation.offer_id.in_(offers))
    # Both columns are stored as scaled integers (broker.db.ScaledDecimal), so their product in SQL
    # is the amount in units of 10^-(quantity places + unit price places): scale the bounds alike.
    amount = Allocation.quantity * Allocation.unit_price
    scale = QUANTITY_PLACES + UNIT_PRICE_PLACES
    if filters.amount_min is not None:
        query = query.where(amount >= int(filters.amount_min.scaleb(scale).to_integral_value(ROUND_CEILING)))
    if filters.amount_max is not None:
        query = query.where(amount <= int(filters.amount_max.scaleb(scale).to_integral_value(ROUND_FLOOR)))
    queue.total = session.scalar(query.with_only_columns(sa.func.count(Allocation.id)).order_by(None)) or 0
    queue.pages = max(1, -(-queue.total // page_size))
    queue.page = min(max(page, 1), queue.pages)
    proposals = list(session.scalars(
        query.options(selectinload(Allocation.request).selectinload(ResourceRequest.startup),
                      selectinload(Allocation.offer).selectinload(Offer.carrier))
        .order_by(Allocation.id).offset((queue.page - 1) * page_size).limit(page_size)
    ))

    histories = _histories(session, {a.request.startup_id for a in proposals})
    short = {u["request_id"]: u["reason"] for u in (cycle.stats or {}).get("unfilled", [])}
    policy = current_policy(session)
    quotes = subsidies.quotes(session, [(a.request.startup, a.offer, a.quantity, max(a.offer.window_start, a.request.window_start))
                                        for a in proposals], now)
    for allocation, quote in zip(proposals, quotes, strict=True):
        request, offer = allocation.request, allocation.offer
        startup = request.startup
        # The price held is the proposal's own; the subsidy is what approval would commit today.
        gross = (allocation.quantity * allocation.unit_price).quantize(Decimal("0.01"))
        subsidy = min(quote.subsidy, gross)
        sector_weight = Decimal(policy.sector_weights.get(startup.sector.value, policy.default_weight))
        key_bonus = Decimal(policy.key_enterprise_bonus) if startup.key_enterprise else Decimal(0)
        wait_bonus = Decimal(policy.wait_bonus_per_cycle) * request.cycles_waited
        why = Why(sector_weight + key_bonus + wait_bonus, sector_weight, key_bonus, request.cycles_waited, wait_bonus,
                  (allocation.quantity / request.quantity) if request.quantity else Decimal(0), short.get(request.id))
        queue.rows.append(Row(allocation, request, startup, offer, offer.carrier, gross, subsidy, gross - subsidy,
                              histories.get(startup.id, History()), why))
    return queue


def _histories(session: Session, startup_ids: set[int]) -> dict[int, History]:
    if not startup_ids:
        return {}
    histories: dict[int, History] = defaultdict(History)
    for startup_id, n in session.execute(
        sa.select(ResourceRequest.startup_id, sa.func.count()).where(ResourceRequest.startup_id.in_(startup_ids))
        .group_by(ResourceRequest.startup_id)
    ):
        histories[startup_id].requests = n
    rows: list[Any] = session.execute(
        sa.select(ResourceRequest.startup_id, Allocation.status, Allocation.decided_by_id.is_not(None), sa.func.count())
        .join(ResourceRequest, Allocation.request_id == ResourceRequest.id)
        .where(ResourceRequest.startup_id.in_(startup_ids))
        .group_by(ResourceRequest.startup_id, Allocation.status, Allocation.decided_by_id.is_not(None))
    ).all()
    for startup_id, status, decided, n in rows:
        history = histories[startup_id]
        if status in GRANTED:
            history.granted += n
        if decided and status is not AllocationStatus.rejected:
            history.approved += n
        if status is AllocationStatus.rejected:
            history.rejected += n
    return dict(histories)
