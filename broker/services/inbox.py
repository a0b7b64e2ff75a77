"""The in-app inbox (/inbox): a company's events as one of its people reads them, newest first,
50 a page, each unread while newer than the last event the person has seen there.

A company only ever sees its own events (`events.feed` scopes them); district staff have no inbox.
Opening the whole inbox's first page marks everything up to its newest event seen, in one UPDATE.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import transaction
from broker.models import Account, Allocation, Event, Offer, Person, Role
from broker.services import events
from broker.services.accounts import require_role

PAGE_SIZE = 50

# The inbox's filter: each group is the event types with these prefixes. Types named by the
# notifications (startup.verified, subsidy.committed, notice.started...) fall in a group by prefix.
GROUPS: dict[str, tuple[str, ...]] = {
    "allocations": ("allocation.", "request."),
    "subsidies": ("subsidy.", "evidence.", "notice."),
    "appeals": ("appeal.",),
    "account": ("startup.", "carrier."),
}


@dataclass(frozen=True)
class InboxRow:
    event: Event
    kind: str | None  # the resource kind of the allocation the event concerns, if any
    unread: bool


@dataclass(frozen=True)
class Inbox:
    rows: list[InboxRow]
    total: int  # events matching the filter
    page: int
    pages: int
    unread: int  # the person's unread events before this opening, whatever the filter


def _company_events(session: Session, actor: Account) -> sa.Select:
    require_role(actor, Role.startup, Role.carrier)
    return events.feed(session, actor).order_by(None)


def _newer_than(seen: int | None) -> sa.ColumnElement[bool]:
    return Event.id > seen if seen is not None else sa.true()


def unread_count(session: Session, person: Person) -> int:
    """How many of the company's events the person has not seen in the inbox (a badge's number)."""
    mine = _company_events(session, person.account).where(_newer_than(person.inbox_seen_event_id))
    return session.scalar(sa.select(sa.func.count()).select_from(mine.subquery())) or 0


@transaction
def open_inbox(session: Session, person: Person, group: str | None, unread_only: bool, page: int) -> Inbox:
    """One page of the person's company's events, newest first, filtered by group and unread; the
    whole inbox's first page (no group) marks everything it shows as seen.

    A group's page marks nothing: what is seen is one event id, and marking a group's newest
    would mark the other groups' older events seen unread."""
    seen = person.inbox_seen_event_id
    mine = _company_events(session, person.account)
    if group in GROUPS:
        mine = mine.where(sa.or_(*(Event.type.startswith(prefix, autoescape=True) for prefix in GROUPS[group])))
    if unread_only:
        mine = mine.where(_newer_than(seen))
    total = session.scalar(sa.select(sa.func.count()).select_from(mine.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    found = session.execute(
        mine.add_columns(Offer.kind)
        .outerjoin(Allocation, Event.allocation_id == Allocation.id)
        .outerjoin(Offer, Allocation.offer_id == Offer.id)
        .order_by(Event.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    rows = [InboxRow(event, kind, seen is None or event.id > seen) for event, kind in found]
    unread = unread_count(session, person)
    if page == 1 and group not in GROUPS and rows and rows[0].unread:
        _mark_seen(session, person, rows[0].event.id)
    return Inbox(rows, total, page, pages, unread)


def _mark_seen(session: Session, person: Person, event_id: int) -> None:
    # A plain UPDATE, not through the ORM: reading the inbox is no change for the audit log, and
    # two tabs opened at once never move the mark backwards.
    session.execute(
        sa.update(Person)
        .where(Person.id == person.id, sa.or_(Person.inbox_seen_event_id.is_(None), Person.inbox_seen_event_id < event_id))
        .values(inbox_seen_event_id=event_id)
        .execution_options(synchronize_session=False)
    )
