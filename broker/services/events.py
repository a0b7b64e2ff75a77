"""The event feed of startups and carriers, and its signed webhook deliveries.

A company's webhook, as its people manage it in the console (/settings/webhook), is the
subscription of the company's own account: the one made when the company registered
(`accounts.register_startup` / `register_carrier`), which its API client signs in as with the
company's token and calls PUT /api/v1/me/webhook with. Each person of the company acts through
an account of their own (broker/models/people.py); those are people, not the company, so the
console never reads or writes a subscription of theirs. The company's account is the oldest of
its accounts that no person holds. Only its legal representative and administrators change it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker import netguard
from broker.clock import SHANGHAI
from broker.db import transaction
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.models import Account, Allocation, Role
from broker.models.audit import set_actor
from broker.models.people import Person, Side
from broker.models.workflow import DeliveryStatus, Event, WebhookDelivery, WebhookSubscription
from broker.services import notifications

MAX_DELIVERY_ATTEMPTS = 8
SIGNATURE_HEADER = "X-Broker-Signature"


def record(
    session: Session, type_: str, allocation: Allocation | None, startup_id: int | None, carrier_id: int | None,
    now: dt.datetime, **payload: Any,
) -> Event:
    """Put an event in the feeds of the startup and the carrier it concerns, and queue its webhooks."""
    body = dict(payload)
    if allocation is not None:
        body.update(_allocation_payload(allocation))
    event = Event(
        type=type_, startup_id=startup_id, carrier_id=carrier_id,
        allocation_id=allocation.id if allocation is not None else None, payload=body, created_at=now,
    )
    _queue(session, [event])
    return event


def record_for_allocations(
    session: Session, type_: str, allocations: list[Allocation], now: dt.datetime, **payload: Any
) -> None:
    """One event per allocation, for its startup and its carrier, written in bulk (a cycle makes many)."""
    _queue(
        session,
        [
            Event(type=type_, startup_id=a.request.startup_id, carrier_id=a.offer.carrier_id, allocation_id=a.id,
                  payload={**payload, **_allocation_payload(a)}, created_at=now)
            for a in allocations
        ],
    )


def _allocation_payload(allocation: Allocation) -> dict[str, Any]:
    return {
        "allocation_id": allocation.id, "request_id": allocation.request_id, "offer_id": allocation.offer_id,
        "quantity": str(allocation.quantity), "status": allocation.status.value, "carrier_ref": allocation.carrier_ref,
    }


def _queue(session: Session, new_events: list[Event]) -> None:
    if not new_events:
        return
    session.add_all(new_events)
    session.flush()
    notifications.notify(session, new_events)  # the people's emails, in the same transaction
    startups = {e.startup_id for e in new_events if e.startup_id is not None}
    carriers = {e.carrier_id for e in new_events if e.carrier_id is not None}
    if not startups and not carriers:
        return
    rows = session.execute(
        sa.select(WebhookSubscription.id, Account.role, Account.startup_id, Account.carrier_id)
        .join(Account, WebhookSubscription.account_id == Account.id)
        .where(
            sa.or_(
                sa.and_(Account.role == Role.startup, Account.startup_id.in_(startups)),
                sa.and_(Account.role == Role.carrier, Account.carrier_id.in_(carriers)),
            )
        )
    ).all()
    by_startup = {r.startup_id: r.id for r in rows if r.role is Role.startup}
    by_carrier = {r.carrier_id: r.id for r in rows if r.role is Role.carrier}
    for event in new_events:
        for subscription_id in (by_startup.get(event.startup_id), by_carrier.get(event.carrier_id)):
            if subscription_id is not None:
                session.add(WebhookDelivery(event_id=event.id, subscription_id=subscription_id, next_attempt_at=event.created_at))


def feed(session: Session, actor: Account, since_id: int | None = None) -> sa.Select:
    """A startup's or carrier's own events, oldest first; staff see every event."""
    query = sa.select(Event).order_by(Event.id)
    if actor.role is Role.startup:
        query = query.where(Event.startup_id == actor.startup_id)
    elif actor.role is Role.carrier:
        query = query.where(Event.carrier_id == actor.carrier_id)
    if since_id is not None:
        query = query.where(Event.id > since_id)
    return query


@transaction
def subscribe(session: Session, actor: Account, url: str, guard: netguard.DestinationGuard) -> tuple[WebhookSubscription, str]:
    """Set where the account's events are POSTed; returns the signing secret, shown once.

    The URL must pass `guard` now, and passes it again before every delivery.
    """
    return _subscribe(session, actor, url, guard)


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


def _subscribe(session: Session, actor: Account, url: str, guard: netguard.DestinationGuard) -> tuple[WebhookSubscription, str]:
    try:
        guard.check(url)
    except netguard.RefusedDestination as refused:
        raise InvalidInput(f"The webhook URL is refused: {refused.reason}", {"url": [refused.reason]}) from None
    secret = _new_secret()
    subscription = _subscription_of(session, actor)
    if subscription is None:
        try:
            with session.begin_nested():  # a first subscription made at the same moment elsewhere wins the insert
                subscription = WebhookSubscription(account_id=actor.id, url=url, secret=secret)
                session.add(subscription)
        except IntegrityError:
            subscription = _subscription_of(session, actor)
            if subscription is None:
                raise
    subscription.url, subscription.secret = url, secret
    return subscription, secret


def _subscription_of(session: Session, actor: Account) -> WebhookSubscription | None:
    return session.scalar(
        sa.select(WebhookSubscription).where(WebhookSubscription.account_id == actor.id)
        .with_for_update().execution_options(populate_existing=True)
    )


# --- the company's webhook in the console ----------------------------------------------------

DELIVERIES_PER_PAGE = 50
NOT_A_MANAGER = "Only the company's legal representative or an administrator changes its webhook."
NO_WEBHOOK = "The company has no webhook."


def company_account(session: Session, person: Person) -> Account:
    """The account whose events are the company's: the oldest of its accounts no person holds."""
    if person.side not in (Side.startup, Side.carrier):
        raise Forbidden("A webhook belongs to a startup or a carrier.")
    column = Account.startup_id if person.side is Side.startup else Account.carrier_id
    account = session.scalar(
        sa.select(Account)
        .where(Account.role == person.role, column == person.company_id,
               ~sa.exists().where(Person.account_id == Account.id))
        .order_by(Account.id).limit(1)
    )
    if account is None:
        raise NotFound("The company has no account of its own.")
    return account


@dataclass(frozen=True)
class DeliveryLine:
    delivery: WebhookDelivery
    event_type: str
    event_at: dt.datetime


@dataclass
class CompanyWebhook:
    """The company's subscription (None: none), a page of its deliveries, newest first, and whether
    the person looking may change it."""

    subscription: WebhookSubscription | None
    deliveries: list[DeliveryLine]
    deliveries_total: int
    may_change: bool


def company_webhook(session: Session, person: Person, page: int = 1, per_page: int = DELIVERIES_PER_PAGE) -> CompanyWebhook:
    """Any of the company's people: its webhook and its recent deliveries (never the secret)."""
    account = company_account(session, person)
    subscription = session.scalar(sa.select(WebhookSubscription).where(WebhookSubscription.account_id == account.id))
    lines: list[DeliveryLine] = []
    total = 0
    if subscription is not None:
        rows = session.execute(
            sa.select(WebhookDelivery, Event.type, Event.created_at).join(Event, Event.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.subscription_id == subscription.id)
            .order_by(WebhookDelivery.id.desc()).limit(per_page).offset((page - 1) * per_page)
        ).all()
        lines = [DeliveryLine(*row) for row in rows]
        total = session.scalar(sa.select(sa.func.count(WebhookDelivery.id))
                               .where(WebhookDelivery.subscription_id == subscription.id)) or 0
    return CompanyWebhook(subscription, lines, total, person.is_company_manager())


def _managed_account(session: Session, person: Person) -> Account:
    account = company_account(session, person)
    if not person.is_company_manager():
        raise Forbidden(NOT_A_MANAGER)
    set_actor(session, person.account_id)  # the audit log names the person, not the company's account
    return account


@transaction
def set_company_webhook(
    session: Session, person: Person, url: str, guard: netguard.DestinationGuard
) -> tuple[WebhookSubscription, str]:
    """Set the company's webhook URL (checked by `guard`, as the API's); a new signing secret, shown once."""
    account = _managed_account(session, person)
    url = url.strip()
    if not url or len(url) > 500:
        raise InvalidInput("A webhook URL is 1 to 500 characters.", {"url": ["Must be 1 to 500 characters."]})
    return _subscribe(session, account, url, guard)


@transaction
def rotate_company_webhook_secret(session: Session, person: Person) -> tuple[WebhookSubscription, str]:
    """A new signing secret for the company's webhook, shown once; every delivery from now on,
    those already queued too, is signed with it."""
    subscription = _subscription_of(session, _managed_account(session, person))
    if subscription is None:
        raise NotFound(NO_WEBHOOK)
    subscription.secret = _new_secret()
    return subscription, subscription.secret


@transaction
def remove_company_webhook(session: Session, person: Person) -> None:
    """Stop POSTing the company's events: the subscription goes, and its deliveries with it (a
    delivery belongs to its subscription); the event feed keeps every event."""
    subscription = _subscription_of(session, _managed_account(session, person))
    if subscription is None:
        raise NotFound(NO_WEBHOOK)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id))
    session.delete(subscription)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`, as receivers verify it."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def deliver_due(
    session: Session, http: requests.Session, now: dt.datetime, *, guard: netguard.DestinationGuard, timeout: float = 5.0
) -> dict[str, int]:
    """POST every due delivery once; failures are retried with exponential back-off, then given up.

    Each URL is checked by `guard` again (a name may resolve elsewhere now, the allow-list may
    have changed) and the request goes to the address the check approved; a refused
    destination fails the delivery at once, with the reason, and is never called.
    No transaction is open while a receiver is being called: a slow receiver must not hold
    the database (on SQLite, its only writer) for everyone else.
    """
    due = session.scalars(
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.status == DeliveryStatus.pending, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.id)
        .limit(500)
    ).all()
    outbox = [(d.id, d.subscription.url, d.subscription.secret, _body(d.event)) for d in due]
    session.commit()
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    checked: dict[str, netguard.Destination | netguard.RefusedDestination] = {}  # one resolution per URL and run
    for delivery_id, url, secret, body in outbox:
        if url not in checked:
            try:
                checked[url] = guard.check(url)
            except netguard.RefusedDestination as refusal:
                checked[url] = refusal
        destination = checked[url]
        refused = isinstance(destination, netguard.RefusedDestination)
        if refused:
            error: str | None = f"refused destination: {destination.reason}"  # never retried, never called
        else:
            error = _post(http, destination, secret, body, now, timeout)
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:  # its subscription was removed while the receiver was being called
            session.commit()
            continue
        delivery.attempts += 1
        if error is None:
            delivery.delivered(now)
            counts["delivered"] += 1
        elif refused or delivery.attempts >= MAX_DELIVERY_ATTEMPTS:
            delivery.failed(error)
            counts["failed"] += 1
        else:
            delivery.retry(error, now + dt.timedelta(seconds=30 * 2 ** (delivery.attempts - 1)))
            counts["retrying"] += 1
        session.commit()
    return counts


def _post(
    http: requests.Session, destination: netguard.Destination, secret: str, body: bytes, now: dt.datetime, timeout: float
) -> str | None:
    """One signed POST; None if the receiver took it, else what went wrong."""
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, int(now.timestamp()), body)}
    try:
        status = netguard.post(http, destination, body, headers, timeout)
    except requests.RequestException as exc:
        return type(exc).__name__
    return None if 200 <= status < 300 else f"HTTP {status}"


def _body(event: Event) -> bytes:
    return json.dumps(
        {"id": event.id, "type": event.type, "created_at": event.created_at.astimezone(SHANGHAI).isoformat(),
         "data": event.payload},
        ensure_ascii=False, sort_keys=True,
    ).encode()
