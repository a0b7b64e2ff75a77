"""The event feed of startups and carriers, and its signed webhook deliveries."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker import netguard
from broker.clock import SHANGHAI
from broker.db import transaction
from broker.errors import InvalidInput
from broker.models import Account, Allocation, Role
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
    try:
        guard.check(url)
    except netguard.RefusedDestination as refused:
        raise InvalidInput(f"The webhook URL is refused: {refused.reason}", {"url": [refused.reason]}) from None
    secret = "whsec_" + secrets.token_urlsafe(24)
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
