"""Offers, resource requests and allocations as the API serves them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from broker.clock import local_date
from broker.db import transaction
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.models import (
    Account,
    Allocation,
    AllocationStatus,
    Carrier,
    IdempotencyRecord,
    Offer,
    OfferChannel,
    OfferStatus,
    ResourceRequest,
    Role,
    Startup,
)
from broker.publishing import IDENTITY, PUBLISHED_FIELDS, shrinks_below_promised
from broker.resources import KINDS
from broker.services import allocations
from broker.services.accounts import STAFF_ROLES, require_role, require_verified_startup
from broker.services.policy import current_policy
from broker.services.subsidies import Quote, quote


@transaction
def upsert_offers(session: Session, actor: Account, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Create or update a carrier's offers by its own external ids, all or none."""
    require_role(actor, Role.carrier)
    carrier_id = actor.carrier_id
    existing = {
        o.external_id: o
        for o in session.scalars(
            sa.select(Offer)
            .where(Offer.carrier_id == carrier_id, Offer.external_id.in_([r["external_id"] for r in records]))
            .order_by(Offer.id)  # offers are locked in id order, as everywhere (services/allocations.py)
            .with_for_update().execution_options(populate_existing=True)
        )
    }
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    offers = []
    problems: dict[int, dict[str, list[str]]] = {}
    for i, record in enumerate(records):
        offer = existing.get(record["external_id"])
        if offer is None:
            # A twin request creating the same lot meets the unique constraint at commit: 409.
            offer = Offer(carrier_id=carrier_id, channel=OfferChannel.api, **record)
            session.add(offer)
            counts["created"] += 1
        else:
            problem = _update_problem(offer, record)
            if problem:
                problems[i] = problem
                continue
            changed = offer.publish(OfferChannel.api, {f: record[f] for f in PUBLISHED_FIELDS})
            counts["updated" if changed else "unchanged"] += 1
        offers.append(offer)
    if problems:
        raise InvalidInput("Some offers cannot be updated; nothing was changed.", {"offers": problems})
    return {**counts, "offers": offers}


# What each part of a lot's identity (broker.publishing.IDENTITY) says when an upsert would change it.
_CANNOT_CHANGE = {
    "kind": "Offer {offer.external_id} is a {offer.kind} lot; its kind",
    "divisible": "Divisibility of an existing lot",
}


def _update_problem(offer: Offer, record: dict[str, Any]) -> dict[str, list[str]] | None:
    for name in IDENTITY:
        if record[name] != getattr(offer, name):
            return {name: [_CANNOT_CHANGE[name].format(offer=offer) + " cannot change."]}
    if shrinks_below_promised(record["quantity"], offer.promised):
        return {"quantity": [f"{offer.promised} is already promised from this lot; it cannot shrink below that."]}
    return None


@transaction
def withdraw_offer(session: Session, actor: Account, offer_id: int) -> Offer:
    """A carrier takes its lot off the market, down to what is already promised."""
    require_role(actor, Role.carrier)
    offer = session.scalar(sa.select(Offer).where(Offer.id == offer_id).with_for_update().execution_options(populate_existing=True))
    if offer is None:
        raise NotFound("No such offer.")
    if offer.carrier_id != actor.carrier_id:
        raise Forbidden("This offer belongs to another carrier.")
    offer.withdraw()
    return offer


@dataclass(frozen=True)
class CarrierOffers:
    """One page of a carrier's own offers and how many match in all."""

    offers: list[Offer]
    total: int


def carrier_offers(
    session: Session, actor: Account, *, kind: str | None = None, status: OfferStatus | None = None,
    offset: int = 0, limit: int = 50,
) -> CarrierOffers:
    """The carrier's own offers, newest first, filtered by kind and status, one page of them."""
    require_role(actor, Role.carrier)
    where = [Offer.carrier_id == actor.carrier_id]
    if kind is not None:
        where.append(Offer.kind == kind)
    if status is not None:
        where.append(Offer.status == status)
    total = session.scalar(sa.select(sa.func.count(Offer.id)).where(*where)) or 0
    offers = session.scalars(sa.select(Offer).where(*where).order_by(Offer.id.desc()).offset(offset).limit(limit))
    return CarrierOffers(list(offers), total)


def get_offer(session: Session, offer_id: int) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise NotFound("No such offer.")
    return offer


def list_offers(session: Session, filters: dict[str, Any]) -> sa.Select:
    """Offers on the market, filtered; every signed-in account may browse them."""
    query = sa.select(Offer).options(selectinload(Offer.carrier)).order_by(Offer.id)
    query = query.where(Offer.status == filters["status"])
    if "kind" in filters:
        query = query.where(Offer.kind == filters["kind"])
    if "region" in filters:
        query = query.where(Offer.region == filters["region"])
    if "carrier" in filters:
        query = query.join(Carrier).where(Carrier.code == filters["carrier"])
    for name, value in filters.get("attributes", {}).items():
        element = Offer.attributes[name]
        query = query.where((element.as_integer() if isinstance(value, int) else element.as_string()) == value)
    # Each date alone means "the offer's window includes this day" (both ends of a window are
    # in it); the two together, that it includes every day from one to the other.
    for name in ("available_from", "available_until"):
        if name in filters:
            query = query.where(Offer.window_start <= filters[name], Offer.window_end >= filters[name])
    return query


def quote_offer(session: Session, actor: Account, offer_id: int, quantity: Decimal, now: dt.datetime) -> Quote:
    """A startup's price for `quantity` of an offer, before and after the subsidy it would get today."""
    require_role(actor, Role.startup)
    offer = get_offer(session, offer_id)
    return quote(session, actor.startup, offer, quantity, now)


def _request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def submit_request(
    session: Session, actor: Account, data: dict[str, Any], idempotency_key: str | None = None, *, now: dt.datetime
) -> tuple[ResourceRequest, bool]:
    """A verified startup asks for resources; returns the request and whether it is new.

    With an idempotency key, a retry returns the request the first call created; the key
    is stored in the same transaction as the request, and a concurrent twin loses on the
    unique constraint and then finds the winner's request.
    """
    startup = require_verified_startup(actor)
    digest = _request_hash(data)
    if idempotency_key is not None:
        replay = _replay(session, actor, idempotency_key, digest)
        if replay is not None:
            return replay, False
    _check_acceptable(session, data, now)
    request = ResourceRequest(startup_id=startup.id, **data)
    session.add(request)
    if idempotency_key is not None:
        session.flush()
        session.add(
            IdempotencyRecord(
                account_id=actor.id,
                key=idempotency_key,
                request_hash=digest,
                entity_type="resource_request",
                entity_id=request.id,
            )
        )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        replay = _replay(session, actor, idempotency_key, digest) if idempotency_key else None
        if replay is None:
            raise
        return replay, False
    return request, True


def _check_acceptable(session: Session, data: dict[str, Any], now: dt.datetime) -> None:
    """A window that has ended can never be served, and no request may ask for more than the
    policy's maximum for its kind (else one cycle would hold a district's supply for it)."""
    problems: dict[str, list[str]] = {}
    today = local_date(now)
    if data["window_end"] < today:
        problems["window_end"] = [f"The window ended on {data['window_end']}; today is {today} in Asia/Shanghai."]
    limit = current_policy(session).request_limit(data["kind"])
    if data["quantity"] > limit:
        problems["quantity"] = [
            f"At most {limit} {KINDS[data['kind']].unit} per {data['kind']} request "
            "(the district policy's max_request_quantity)."
        ]
    if problems:
        details = " ".join(f"{field}: {messages[0]}" for field, messages in problems.items())
        raise InvalidInput(f"The request was not saved. {details}", problems)


def _replay(session: Session, actor: Account, key: str, digest: str) -> ResourceRequest | None:
    record = session.scalar(
        sa.select(IdempotencyRecord).where(IdempotencyRecord.account_id == actor.id, IdempotencyRecord.key == key)
    )
    if record is None:
        return None
    if record.request_hash != digest:
        raise InvalidInput(
            "This Idempotency-Key was already used with a different request body.",
            {"Idempotency-Key": ["Reused with a different body."]},
        )
    return session.get(ResourceRequest, record.entity_id)


def _visible_request(session: Session, actor: Account, request_id: int, *, for_update: bool = False) -> ResourceRequest:
    query = sa.select(ResourceRequest).where(ResourceRequest.id == request_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    request = session.scalar(query)
    # Another startup's request does not exist as far as this startup can tell.
    if request is None or not (actor.role in STAFF_ROLES or request.startup_id == actor.startup_id):
        raise NotFound("No such request.")
    return request


def get_request(session: Session, actor: Account, request_id: int) -> ResourceRequest:
    return _visible_request(session, actor, request_id)


def list_requests(session: Session, actor: Account, filters: dict[str, Any]) -> sa.Select:
    """Staff see every request; a startup its own."""
    query = sa.select(ResourceRequest).options(selectinload(ResourceRequest.allocations)).order_by(ResourceRequest.id)
    if actor.role in STAFF_ROLES:
        if "startup_id" in filters:
            query = query.where(ResourceRequest.startup_id == filters["startup_id"])
    else:
        require_role(actor, Role.startup)
        query = query.where(ResourceRequest.startup_id == actor.startup_id)
    if "status" in filters:
        query = query.where(ResourceRequest.status == filters["status"])
    if "kind" in filters:
        query = query.where(ResourceRequest.kind == filters["kind"])
    return query


@dataclass
class Withdrawal:
    """A withdrawn request, and what the carrier still has to take back for it, and when."""

    request: ResourceRequest
    pending_releases: list[PendingReleaseNotice]

    def __getattr__(self, name: str) -> Any:
        # Reads as the request itself (the response is the request, plus its pending releases).
        return getattr(self.request, name)


@dataclass
class PendingReleaseNotice:
    allocation_id: int
    status: AllocationStatus
    release_due_at: dt.datetime | None
    message: str


@transaction
def withdraw_request(
    session: Session, actor: Account, request_id: int, now: dt.datetime, next_release_run: dt.datetime | None
) -> Withdrawal:
    """A startup withdraws its request: proposals end, approved grants not yet sent are cancelled (both
    giving capacity and subsidy back), and what a carrier set up is released there by the release
    run due at `next_release_run` (None: no release run is scheduled)."""
    request = _visible_request(session, actor, request_id, for_update=True)
    if actor.role is not Role.startup:
        raise Forbidden("Only the startup that made a request withdraws it.")
    pending = allocations.end_request(session, request, "request withdrawn by the startup", now)
    return Withdrawal(request, [_release_notice(p, next_release_run) for p in pending])


def _release_notice(pending: allocations.PendingRelease, due: dt.datetime | None) -> PendingReleaseNotice:
    if pending.status is AllocationStatus.provisioning:
        return PendingReleaseNotice(
            pending.allocation_id, pending.status, None,
            "The carrier is still setting this allocation up; the first release run after it is active "
            "releases it at the carrier and gives its capacity back.",
        )
    if due is None:
        return PendingReleaseNotice(
            pending.allocation_id, pending.status, None,
            "Release at the carrier is pending, but no release run is scheduled (BROKER_SCHEDULE_EXPIRE is off); "
            "it stays active at the carrier until one runs.",
        )
    return PendingReleaseNotice(
        pending.allocation_id, pending.status, due,
        "Release at the carrier is pending: the next release run takes it back there and gives its "
        "capacity and unused subsidy back.",
    )


def list_allocations(session: Session, actor: Account, filters: dict[str, Any]) -> sa.Select:
    """A startup sees its own allocations, a carrier those on its offers, staff all."""
    query = (
        sa.select(Allocation)
        .join(Allocation.request)
        .join(Allocation.offer)
        .options(selectinload(Allocation.request), selectinload(Allocation.offer).selectinload(Offer.carrier),
                 selectinload(Allocation.awards))
        .order_by(Allocation.id)
    )
    if actor.role is Role.startup:
        query = query.where(ResourceRequest.startup_id == actor.startup_id)
    elif actor.role is Role.carrier:
        query = query.where(Offer.carrier_id == actor.carrier_id)
    for name in ("status", "cycle_id", "request_id"):
        if name in filters:
            query = query.where(getattr(Allocation, name) == filters[name])
    return query


def get_allocation(session: Session, actor: Account, allocation_id: int) -> Allocation:
    allocation = session.scalar(list_allocations(session, actor, {}).where(Allocation.id == allocation_id))
    if allocation is None:
        raise NotFound("No such allocation.")
    return allocation


def unit_of(kind: str) -> str:
    return KINDS[kind].unit


# What a carrier sees of the startup behind an allocation on its offers: its name and contact for
# provisioning, only once the allocation is approved and until it ends; nothing else of the startup.
STARTUP_SHOWN_TO_CARRIER = frozenset({AllocationStatus.approved, AllocationStatus.provisioning, AllocationStatus.active})


@dataclass(frozen=True)
class CarrierAllocationLine:
    """An allocation on one of the carrier's offers as the carrier sees it; `startup_*` are None
    unless the allocation is approved, provisioning or active."""

    id: int
    status: AllocationStatus
    offer_id: int
    offer_external_id: str
    kind: str
    quantity: Decimal
    unit_price: Decimal
    provision_attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    carrier_ref: str | None
    created_at: dt.datetime
    startup_name: str | None
    contact_name: str | None
    contact_email: str | None
    contact_phone: str | None


@dataclass(frozen=True)
class CarrierAllocations:
    lines: list[CarrierAllocationLine]
    total: int


def _carrier_allocations_query(actor: Account, status: AllocationStatus | None, kind: str | None) -> tuple[sa.Select, list]:
    require_role(actor, Role.carrier)
    where: list = [Offer.carrier_id == actor.carrier_id]
    if status is not None:
        where.append(Allocation.status == status)
    if kind is not None:
        where.append(Offer.kind == kind)
    columns = sa.select(
        Allocation.id, Allocation.status, Allocation.offer_id, Offer.external_id, Offer.kind, Allocation.quantity,
        Allocation.unit_price, Allocation.provision_attempts, Allocation.next_attempt_at, Allocation.last_error,
        Allocation.carrier_ref, Allocation.created_at, Startup.name, Startup.contact_name, Startup.contact_email,
        Startup.contact_phone,
    ).join(Offer, Allocation.offer_id == Offer.id).join(ResourceRequest, Allocation.request_id == ResourceRequest.id) \
        .join(Startup, ResourceRequest.startup_id == Startup.id).where(*where)
    return columns, where


def _carrier_line(row: sa.Row) -> CarrierAllocationLine:
    values = list(row)
    if values[1] not in STARTUP_SHOWN_TO_CARRIER:
        values[12:16] = [None, None, None, None]
    return CarrierAllocationLine(*values)


def carrier_allocations(
    session: Session, actor: Account, *, status: AllocationStatus | None = None, kind: str | None = None,
    offset: int = 0, limit: int = 50,
) -> CarrierAllocations:
    """One page of the allocations on the carrier's own offers, newest first, and how many match."""
    query, where = _carrier_allocations_query(actor, status, kind)
    total = session.scalar(sa.select(sa.func.count(Allocation.id)).join(Offer, Allocation.offer_id == Offer.id)
                           .where(*where)) or 0
    rows = session.execute(query.order_by(Allocation.id.desc()).offset(offset).limit(limit))
    return CarrierAllocations([_carrier_line(row) for row in rows], total)


def carrier_allocations_export(
    session: Session, actor: Account, *, status: AllocationStatus | None = None, kind: str | None = None,
) -> Iterator[CarrierAllocationLine]:
    """Every allocation on the carrier's offers matching the filters, oldest first, read in batches."""
    query, _ = _carrier_allocations_query(actor, status, kind)
    for row in session.execute(query.order_by(Allocation.id).execution_options(yield_per=1000)):
        yield _carrier_line(row)
