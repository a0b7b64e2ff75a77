"""What a startup's people read in their portal: their company's requests and allocations, each
scoped to the actor's own startup (another company's is NotFound, never Forbidden), paged in SQL.

Withdrawing a request is `broker.services.market.withdraw_request`, as the API does it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from broker.clock import local_date
from broker.errors import NotFound
from broker.models import Account, Appeal, AppealStatus, Event, Role, Startup
from broker.models.enums import AllocationStatus, CycleStatus, RequestStatus, StartupStatus
from broker.models.ledger import Award
from broker.models.ratings import AllocationRating
from broker.models.market import WITHDRAWABLE_REQUEST_STATUSES, Allocation, MatchingCycle, Offer, ResourceRequest
from broker.services import quotes, ratings
from broker.services.accounts import require_role
from broker.services.appeals import appealable
from broker.services.cycles import request_weight
from broker.services.policy import current_policy

PAGE_SIZE = 50


@dataclass
class Page:
    rows: list
    total: int
    page: int
    pages: int


def _page(session: Session, query: sa.Select, count: sa.Select, page: int) -> Page:
    total = session.scalar(count) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = list(session.execute(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    return Page(rows, total, page, pages)


def my_requests(session: Session, actor: Account, status: RequestStatus | None, page: int) -> Page:
    """The actor's startup's requests, newest first, 50 a page; rows are (request,)."""
    require_role(actor, Role.startup)
    where = [ResourceRequest.startup_id == actor.startup_id]
    if status is not None:
        where.append(ResourceRequest.status == status)
    query = sa.select(ResourceRequest).where(*where).order_by(ResourceRequest.id.desc())
    count = sa.select(sa.func.count()).select_from(ResourceRequest).where(*where)
    return _page(session, query, count, page)


def _awarded() -> sa.ScalarSelect:
    """What the allocation's awards granted at approval (the subsidy), 0 without one."""
    return (sa.select(sa.func.coalesce(sa.func.sum(Award.amount), 0))
            .where(Award.allocation_id == Allocation.id).scalar_subquery())


def _allocations(actor: Account) -> sa.Select:
    require_role(actor, Role.startup)
    return (sa.select(Allocation, _awarded().label("subsidy"))
            .join(Allocation.request).where(ResourceRequest.startup_id == actor.startup_id)
            .options(selectinload(Allocation.request), selectinload(Allocation.offer).selectinload(Offer.carrier)))


@dataclass
class AllocationRow:
    allocation: Allocation
    gross: Decimal
    subsidy: Decimal
    appeals: list[Appeal] = field(default_factory=list)  # read on the allocation's own page only
    rating: AllocationRating | None = None  # the startup's satisfaction rating, on the allocation's own page only

    @property
    def net(self) -> Decimal:
        return self.gross - self.subsidy

    @property
    def appealable(self) -> bool:
        """Rejected or lapsed, with no appeal on it still waiting for the district (file_appeal's rule)."""
        return (appealable(self.allocation)
                and not any(appeal.status is AppealStatus.open for appeal in self.appeals))

    @property
    def withdrawable(self) -> bool:
        """Still held, proposed or in use, and its request can be withdrawn: withdrawing the request is
        how an allocation is given up (its proposals end, a grant not yet sent is cancelled, one in
        use is released by the carrier)."""
        return (self.allocation.status in (AllocationStatus.proposed, AllocationStatus.approved,
                                           AllocationStatus.provisioning, AllocationStatus.active)
                and self.allocation.request.status in WITHDRAWABLE_REQUEST_STATUSES)

    @property
    def rateable(self) -> bool:
        """Completed and not rated yet: the page asks the one satisfaction question (ratings.rate_allocation's rule)."""
        return ratings.rateable(self.allocation) and self.rating is None

    @property
    def in_use(self) -> bool:
        """Active: the page says how to use it (the carrier's access details, or to ask the carrier)."""
        return self.allocation.status is AllocationStatus.active


def _row(allocation: Allocation, subsidy: Decimal) -> AllocationRow:
    gross = allocation.cost
    return AllocationRow(allocation, gross, min(Decimal(subsidy), gross))


def my_allocations(session: Session, actor: Account, page: int) -> Page:
    """The actor's startup's allocations, newest first, 50 a page, with gross, subsidy and net."""
    query = _allocations(actor).order_by(Allocation.id.desc())
    count = (sa.select(sa.func.count()).select_from(Allocation).join(Allocation.request)
             .where(ResourceRequest.startup_id == actor.startup_id))
    found = _page(session, query, count, page)
    found.rows = [_row(allocation, subsidy) for allocation, subsidy in found.rows]
    return found


def my_allocation(session: Session, actor: Account, allocation_id: int) -> AllocationRow:
    """One of the actor's startup's allocations, with its prices and the appeals filed on it."""
    found = session.execute(_allocations(actor).where(Allocation.id == allocation_id)).first()
    if found is None:
        raise NotFound("No such allocation.")
    row = _row(*found)
    row.appeals = list(session.scalars(sa.select(Appeal).where(
        Appeal.allocation_id == allocation_id, Appeal.startup_id == actor.startup_id).order_by(Appeal.id)))
    row.rating = ratings.rating_of(session, allocation_id)
    return row


# A request's life as the startup sees it; the event types say when each allocation moved.
EVENT_STEPS: dict[str, str] = {
    "allocation.approved": "approved",
    "allocation.rejected": "rejected",
    "allocation.cancelled": "cancelled",
    "allocation.provisioned": "active",
    "allocation.provisioning_failed": "provisioning_failed",
    "allocation.released": "completed",
    "allocation.expired": "completed",
}


# The path a request takes when all goes well, in order: the timeline's stepper.
MAIN_STEPS = ("submitted", "proposed", "approved", "provisioning", "active", "completed")


@dataclass
class Step:
    at: dt.datetime
    step: str
    allocation_id: int | None = None


@dataclass
class RequestStory:
    request: ResourceRequest
    timeline: list[Step]
    allocations: list[AllocationRow]
    # The engine's reason code from the last cycle that left it short (None: not left short).
    reason: str | None = None
    withdrawable: bool = False

    @property
    def stepper(self) -> list[tuple[str, dt.datetime | None]]:
        """Each main step with when the request (or its first allocation) first reached it."""
        first: dict[str, dt.datetime] = {}
        for step in self.timeline:
            first.setdefault(step.step, step.at)
        return [(name, first.get(name)) for name in MAIN_STEPS]


def request_story(session: Session, actor: Account, request_id: int) -> RequestStory:
    """One of the actor's startup's requests: its timeline (submitted, proposed, approved,
    provisioning, active, completed, with dates), its allocations with their prices, and why
    the last cycle left it short if it is still unfilled."""
    require_role(actor, Role.startup)
    request = session.scalar(sa.select(ResourceRequest).where(
        ResourceRequest.id == request_id, ResourceRequest.startup_id == actor.startup_id))
    if request is None:
        raise NotFound("No such request.")
    rows = [_row(a, s) for a, s in session.execute(
        _allocations(actor).where(Allocation.request_id == request.id).order_by(Allocation.id))]
    timeline = [Step(request.submitted_at, "submitted")]
    timeline += [Step(row.allocation.created_at, "proposed", row.allocation.id) for row in rows]
    timeline += [Step(row.allocation.updated_at, "provisioning", row.allocation.id) for row in rows
                 if row.allocation.status is AllocationStatus.provisioning]
    ids = [row.allocation.id for row in rows]
    if ids:
        events = session.execute(sa.select(Event.type, Event.created_at, Event.allocation_id).where(
            Event.allocation_id.in_(ids), Event.startup_id == actor.startup_id, Event.type.in_(EVENT_STEPS)))
        timeline += [Step(at, EVENT_STEPS[type_], allocation_id) for type_, at, allocation_id in events]
    if request.status in {RequestStatus.withdrawn, RequestStatus.expired}:
        timeline.append(Step(request.updated_at, request.status.value))
    timeline.sort(key=lambda step: (step.at, step.allocation_id or 0))
    return RequestStory(request, timeline, rows, _last_reason(session, request),
                        request.status in WITHDRAWABLE_REQUEST_STATUSES)


def _last_reason(session: Session, request: ResourceRequest) -> str | None:
    """The reason the newest finished cycle gave for leaving it short (None if that cycle did not
    consider it: the request came in after it)."""
    if request.status not in {RequestStatus.submitted, RequestStatus.expired}:
        return None
    stats = session.scalar(
        sa.select(MatchingCycle.stats)
        .where(MatchingCycle.status.in_([CycleStatus.proposed, CycleStatus.closed]))
        .order_by(MatchingCycle.id.desc()).limit(1))
    for unfilled in (stats or {}).get("unfilled", []):
        if unfilled["request_id"] == request.id:
            return unfilled["reason"]
    return None


@dataclass
class Place:
    """Where a submitted request stands before the next cycle: the live supply it could be served
    from, and how many other queued requests of its kind the policy weighs higher."""

    compatible_supply: Decimal
    compatible_offers: int
    ahead: int
    weight: Decimal
    # False when the startup is not verified yet: the engine takes no request of it, so no place.
    queued: bool = True


def request_place(session: Session, actor: Account, request_id: int, now: dt.datetime) -> Place | None:
    """For one of the actor's startup's requests still waiting for a proposal (None otherwise): the
    units not yet promised on the offers the engine would pair it with (the quote's compatibility
    rule), and how many other open requests of the same kind the next cycle would weigh higher by
    the policy's priority (`cycles.request_weight`: sector, key enterprise, cycles waited). The
    engine solves for all requests at once, so 'ahead' is who it prefers, not a queue position."""
    require_role(actor, Role.startup)
    request = session.scalar(sa.select(ResourceRequest).where(
        ResourceRequest.id == request_id, ResourceRequest.startup_id == actor.startup_id))
    if request is None:
        raise NotFound("No such request.")
    if request.status is not RequestStatus.submitted or request.window_start < local_date(now):
        return None
    startup = actor.startup
    assert startup is not None
    data = {"kind": request.kind, "quantity": request.quantity, "window_start": request.window_start,
            "window_end": request.window_end, "regions": request.regions, "attributes": request.attributes,
            "max_unit_price": request.max_unit_price}
    offers = quotes.compatible_offers(session, startup, data, now)
    policy = current_policy(session)
    mine = request_weight(policy, startup, request.cycles_waited)
    others = session.execute(
        sa.select(ResourceRequest.cycles_waited, Startup)
        .join(Startup, Startup.id == ResourceRequest.startup_id)
        .where(ResourceRequest.status == RequestStatus.submitted, ResourceRequest.kind == request.kind,
               ResourceRequest.window_start >= local_date(now), ResourceRequest.id != request.id,
               Startup.status == StartupStatus.verified))
    ahead = sum(1 for waited, other in others if request_weight(policy, other, waited) > mine)
    return Place(sum((o.available for o in offers), Decimal(0)), len(offers), ahead, mine, startup.is_verified)
