"""Startups as district staff read them, read-only: the paginated register with its counts per
status, and one startup's file (its record, people, requests, allocations, subsidy and appeals).

Decisions and edits go through `broker.services.accounts` (verify, reject, remove, edit, key
enterprise) and `broker.services.people` (reissuing access). Every list here is counted and cut
in SQL, so a page costs the same few queries on a district of ten thousand startups.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.errors import NotFound
from broker.models import (
    Account,
    Allocation,
    Appeal,
    Carrier,
    Invitation,
    Offer,
    Person,
    ResourceRequest,
    Role,
    Sector,
    Startup,
    StartupStatus,
)
from broker.models.people import Side
from broker.services.accounts import require_role
from broker.services.ledger import Balance, balances

PAGE_SIZE = 50
LATEST = 20  # rows of each list on a startup's page; the totals count them all


@dataclass(frozen=True)
class Filters:
    """The register's filters; None (or an empty search) leaves that axis open."""

    status: StartupStatus | None = None
    sector: Sector | None = None
    key_enterprise: bool | None = None
    search: str = ""  # part of the name, or the start of the credit code (统一社会信用代码)


@dataclass
class Register:
    rows: list[Startup]
    total: int  # startups matching every filter
    page: int
    pages: int
    counts: dict[StartupStatus, int]  # per status, under every filter but the status


@dataclass
class AllocationRow:
    allocation: Allocation
    kind: str
    carrier: str


@dataclass
class StartupFile:
    startup: Startup
    reviewed_by: str | None
    people: list[Person]
    invitations: list[Invitation]  # sent to the company, not yet accepted nor expired
    requests: list[ResourceRequest]
    request_total: int
    allocations: list[AllocationRow]
    allocation_total: int
    subsidy: Balance
    appeals: list[Appeal]
    appeal_total: int
    has_active_person: bool = field(init=False)

    def __post_init__(self) -> None:
        self.has_active_person = any(p.is_active for p in self.people)


def _order() -> tuple:
    """Pending registrations first, oldest first (they await a decision); then the rest, newest first."""
    pending = Startup.status == StartupStatus.pending
    return (
        sa.case((pending, 0), else_=1),
        sa.case((pending, Startup.created_at)),
        Startup.created_at.desc(),
        sa.case((pending, Startup.id), else_=-Startup.id),
    )


def register(session: Session, actor: Account, filters: Filters, page: int) -> Register:
    """One page (PAGE_SIZE) of the startups matching `filters`, and the counts per status."""
    require_role(actor, Role.staff, Role.admin)
    conditions = []
    if filters.sector is not None:
        conditions.append(Startup.sector == filters.sector)
    if filters.key_enterprise is not None:
        conditions.append(Startup.key_enterprise.is_(filters.key_enterprise))
    search = filters.search.strip()
    if search:
        conditions.append(sa.or_(Startup.name.icontains(search, autoescape=True),
                                 Startup.uscc.startswith(search.upper(), autoescape=True)))
    counts = {status: 0 for status in StartupStatus}
    for status, count in session.execute(
        sa.select(Startup.status, sa.func.count(Startup.id)).where(*conditions).group_by(Startup.status)
    ):
        counts[status] = count
    if filters.status is not None:
        conditions.append(Startup.status == filters.status)
    total = counts[filters.status] if filters.status is not None else sum(counts.values())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    # The page's ids first, sorting only narrow rows (no index serves this order: all 10,000 are
    # sorted on a deep page), then the page's 50 rows by primary key.
    ids = list(session.scalars(
        sa.select(Startup.id).where(*conditions).order_by(*_order()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ))
    found = {startup.id: startup for startup in session.scalars(sa.select(Startup).where(Startup.id.in_(ids)))} if ids else {}
    rows = [found[i] for i in ids]
    return Register(rows, total, page, pages, counts)


def startup_file(session: Session, actor: Account, startup_id: int, now: dt.datetime) -> StartupFile:
    """One startup on one page: NotFound for an unknown id. Each list is its latest LATEST rows
    with a count of all; the subsidy is derived from the ledger's rows (`ledger.balances`)."""
    require_role(actor, Role.staff, Role.admin)
    startup = session.get(Startup, startup_id)
    if startup is None:
        raise NotFound("No such startup.")
    reviewed_by = (session.scalar(sa.select(Account.name).where(Account.id == startup.reviewed_by_id))
                   if startup.reviewed_by_id is not None else None)
    people = list(session.scalars(
        sa.select(Person).join(Account, Person.account_id == Account.id)
        .where(Person.side == Side.startup, Account.startup_id == startup_id).order_by(Person.id)
    ))
    invitations = list(session.scalars(
        sa.select(Invitation).where(Invitation.startup_id == startup_id, Invitation.accepted_at.is_(None),
                                    Invitation.expires_at > now).order_by(Invitation.id.desc()).limit(LATEST)
    ))
    # Ordered by unindexed times, so the planner reaches the rows through the startup's requests
    # (ix_resource_requests_startup_id, ix_allocations_request_id), never by walking a whole table's
    # primary key backwards looking for this startup's latest.
    requests = list(session.scalars(
        sa.select(ResourceRequest).where(ResourceRequest.startup_id == startup_id)
        .order_by(ResourceRequest.submitted_at.desc(), ResourceRequest.id.desc()).limit(LATEST)
    ))
    request_total = session.scalar(
        sa.select(sa.func.count(ResourceRequest.id)).where(ResourceRequest.startup_id == startup_id)) or 0
    own = sa.select(ResourceRequest.id).where(ResourceRequest.startup_id == startup_id).scalar_subquery()
    allocations = [
        AllocationRow(allocation, kind, carrier) for allocation, kind, carrier in session.execute(
            sa.select(Allocation, ResourceRequest.kind, Carrier.name)
            .join(ResourceRequest, Allocation.request_id == ResourceRequest.id)
            .join(Offer, Allocation.offer_id == Offer.id)
            .join(Carrier, Offer.carrier_id == Carrier.id)
            .where(ResourceRequest.startup_id == startup_id)
            .order_by(Allocation.created_at.desc(), Allocation.id.desc()).limit(LATEST)
        )
    ]
    allocation_total = session.scalar(
        sa.select(sa.func.count(Allocation.id)).where(Allocation.request_id.in_(own))) or 0
    found = balances(session, ("startup",), startup_id=startup_id)
    subsidy = found[0] if found else Balance(startup_id=startup_id)
    appeals = list(session.scalars(
        sa.select(Appeal).where(Appeal.startup_id == startup_id)
        .order_by(Appeal.created_at.desc(), Appeal.id.desc()).limit(LATEST)
    ))
    appeal_total = session.scalar(sa.select(sa.func.count(Appeal.id)).where(Appeal.startup_id == startup_id)) or 0
    return StartupFile(startup, reviewed_by, people, invitations, requests, request_total, allocations,
                       allocation_total, subsidy, appeals, appeal_total)
