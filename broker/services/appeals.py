"""Appeals (诉求): a startup questions a decision on its allocation, and the district answers in a
thread of messages; staff assign a thread to one of them, reply, and close it.

An appeal is `open` while it waits for the district (filed, or the startup wrote again),
`answered` once the district replied (waiting for the startup, or to be closed), `closed` when
staff closed it; a closed thread takes no more messages. An open appeal is overdue once it has
waited longer than `answer_working_days` working days (broker.workdays) for the district.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from broker import workdays
from broker.clock import SHANGHAI, local_date
from broker.db import transaction
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import Account, Allocation, AllocationStatus, Offer, Role, Startup
from broker.models.audit import set_actor
from broker.models.people import Person, PersonStatus, Side
from broker.models.workflow import Appeal, AppealMessage, AppealSide, AppealStatus
from broker.services import events
from broker.services.accounts import STAFF_ROLES, require_role
from broker.services.market import get_allocation

APPEALABLE = frozenset({AllocationStatus.rejected, AllocationStatus.lapsed})


def appealable(allocation: Allocation) -> bool:
    """Rejected by district staff, or lapsed undecided: what a startup may appeal. A proposal that
    ended because the startup withdrew its own request is rejected too, but by nobody (no
    decided_by): the startup's own choice is not the district's decision to appeal."""
    return allocation.status is AllocationStatus.lapsed or (
        allocation.status is AllocationStatus.rejected and allocation.decided_by_id is not None)
DEFAULT_ANSWER_WORKING_DAYS = 5  # BROKER_APPEAL_ANSWER_WORKING_DAYS
PAGE_SIZE = 50
MAX_MESSAGE = 4000  # characters, as the API's schemas allow


@transaction
def file_appeal(session: Session, actor: Account, allocation_id: int, message: str, now: dt.datetime) -> Appeal:
    """The startup appeals a rejected or lapsed allocation of its own; its message opens the thread."""
    require_role(actor, Role.startup)
    message = _body(message)
    allocation = get_allocation(session, actor, allocation_id)
    if not appealable(allocation):
        raise Conflict("Only an allocation rejected by district staff or lapsed can be appealed; "
                       f"this one is {allocation.status.value}.")
    # The friendly answer; two appeals racing past it meet the unique index on open appeals (409).
    pending = session.scalar(
        sa.select(Appeal.id).where(Appeal.allocation_id == allocation.id, Appeal.status == AppealStatus.open)
    )
    if pending is not None:
        raise Conflict(f"Appeal {pending} on this allocation is still waiting for an answer.")
    appeal = Appeal(allocation_id=allocation.id, startup_id=actor.startup_id, message=message, created_at=now,
                    waiting_since=now)
    session.add(appeal)
    session.flush()
    session.add(appeal.start(actor.id))
    return appeal


def list_appeals(session: Session, actor: Account, allocation_id: int | None = None) -> sa.Select:
    """A startup's own appeals; staff see all."""
    query = sa.select(Appeal).order_by(Appeal.id)
    if actor.role not in STAFF_ROLES:
        require_role(actor, Role.startup)
        query = query.where(Appeal.startup_id == actor.startup_id)
    if allocation_id is not None:
        query = query.where(Appeal.allocation_id == allocation_id)
    return query


# --- changing a thread ------------------------------------------------------------------------


def _locked(session: Session, appeal_id: int, startup_id: int | None = None) -> Appeal:
    """The appeal, locked; NotFound if there is none (or it is another startup's, when `startup_id` is given)."""
    query = sa.select(Appeal).where(Appeal.id == appeal_id)
    if startup_id is not None:
        query = query.where(Appeal.startup_id == startup_id)
    appeal = session.scalar(query.with_for_update().execution_options(populate_existing=True))
    if appeal is None:
        raise NotFound("No such appeal.")
    return appeal


def _body(text: str | None) -> str:
    body = (text or "").strip()
    if not body:
        raise InvalidInput("A message is needed.", {"body": ["A message is needed."]})
    if len(body) > MAX_MESSAGE:
        raise InvalidInput(f"A message is at most {MAX_MESSAGE} characters.",
                           {"body": [f"At most {MAX_MESSAGE} characters."]})
    return body


def _name_in_audit(session: Session, actor: Account) -> None:
    # The API has named the token's account already (and any staff acting for it): keep that.
    if session.info.get("actor_id") != actor.id:
        set_actor(session, actor.id)


def _staff(session: Session, actor: Account) -> None:
    require_role(actor, Role.staff, Role.admin)
    _name_in_audit(session, actor)


@transaction
def assign_appeal(session: Session, actor: Account, appeal_id: int, person_id: int | None, now: dt.datetime) -> Appeal:
    """Staff give the thread to an active district person (None: to nobody)."""
    _staff(session, actor)
    if person_id is not None:
        person = session.scalar(sa.select(Person).where(Person.id == person_id))
        if person is None or person.side is not Side.district or person.status is not PersonStatus.active:
            raise InvalidInput("Appeals are assigned to an active district person.",
                               {"person_id": ["Not an active district person."]})
    appeal = _locked(session, appeal_id)
    appeal.assign(person_id)
    return appeal


@transaction
def reply_to_appeal(session: Session, actor: Account, appeal_id: int, body: str, now: dt.datetime) -> Appeal:
    """Staff reply in the thread; it waits for the startup, who is told in its feed."""
    _staff(session, actor)
    text = _body(body)
    appeal = _locked(session, appeal_id)
    session.add(appeal.respond(text, actor.id, now))
    allocation = session.get(Allocation, appeal.allocation_id)
    events.record(session, "appeal.answered", allocation, appeal.startup_id, None, now, appeal_id=appeal.id, answer=text)
    return appeal


# The API's answer (POST /appeals/<id>/answer) is a staff reply: one code path, one event.
answer_appeal = reply_to_appeal


@transaction
def startup_reply(session: Session, actor: Account, appeal_id: int, body: str, now: dt.datetime) -> Appeal:
    """The startup writes again in its own thread; it waits for the district again."""
    require_role(actor, Role.startup)
    _name_in_audit(session, actor)
    text = _body(body)
    appeal = _locked(session, appeal_id, actor.startup_id)
    if appeal.status is AppealStatus.answered:
        other = session.scalar(sa.select(Appeal.id).where(
            Appeal.allocation_id == appeal.allocation_id, Appeal.status == AppealStatus.open, Appeal.id != appeal.id))
        if other is not None:
            raise Conflict(f"Appeal {other} on this allocation is still waiting for an answer: write there.")
    session.add(appeal.follow_up(text, actor.id, now))
    return appeal


@transaction
def close_appeal(session: Session, actor: Account, appeal_id: int, note: str | None, now: dt.datetime) -> Appeal:
    """Staff close the thread (with a last word to the startup, if given); the startup is told."""
    _staff(session, actor)
    text = _body(note) if note and note.strip() else None
    appeal = _locked(session, appeal_id)
    message = appeal.close(actor.id, text, now)
    if message is not None:
        session.add(message)
    allocation = session.get(Allocation, appeal.allocation_id)
    events.record(session, "appeal.closed", allocation, appeal.startup_id, None, now, appeal_id=appeal.id, note=text)
    return appeal


# --- reading ----------------------------------------------------------------------------------


def _working_day(day: dt.date) -> bool:
    try:
        return workdays.is_working_day(day)
    except workdays.CalendarUnknown:
        # A year whose holidays are not published yet: count Monday to Friday. It only decides
        # which threads are highlighted as overdue, and an unknown year must not stop the inbox.
        return day.weekday() < 5


def overdue_before(now: dt.datetime, working_days: int) -> dt.datetime:
    """The cut-off: an open appeal waiting since before this instant is overdue.

    An appeal that came in on day D is due by the end of the `working_days`-th working day after
    D (D itself not counted), in Shanghai. So it is overdue today when that many working days lie
    wholly between D and today, i.e. D is before the `working_days`-th working day before today.
    """
    day = local_date(now)
    counted = 0
    while counted < working_days:
        day -= dt.timedelta(days=1)
        counted += _working_day(day)
    return dt.datetime.combine(day, dt.time(0), SHANGHAI).astimezone(dt.UTC)


@dataclass(frozen=True)
class InboxFilters:
    status: AppealStatus | None = None
    assignee: str | None = None  # "me", "anyone" (assigned to someone), "none" (unassigned)
    overdue_only: bool = False
    page: int = 1


ASSIGNEE_FILTERS = ("me", "anyone", "none")


@dataclass(frozen=True)
class InboxRow:
    id: int
    status: AppealStatus
    startup_name: str
    allocation_id: int
    allocation_status: AllocationStatus
    kind: str
    assignee_name: str | None
    waiting_since: dt.datetime  # for the district while open, for the startup while answered
    created_at: dt.datetime
    overdue: bool


@dataclass(frozen=True)
class Inbox:
    rows: list[InboxRow]
    total: int  # matching the filters
    overdue: int  # overdue in the whole district, whatever the filters
    page: int
    pages: int
    cutoff: dt.datetime
    working_days: int


def appeal_inbox(session: Session, actor: Account, me: Person, filters: InboxFilters, now: dt.datetime,
                 working_days: int = DEFAULT_ANSWER_WORKING_DAYS) -> Inbox:
    """Staff's inbox: the threads by the filters, oldest waiting first, a page at a time, each
    marked overdue (in SQL) when it has waited too long for the district."""
    require_role(actor, Role.staff, Role.admin)
    cutoff = overdue_before(now, working_days)
    is_overdue = sa.and_(Appeal.status == AppealStatus.open, Appeal.waiting_since < cutoff)
    where = []
    if filters.status is not None:
        where.append(Appeal.status == filters.status)
    if filters.assignee == "me":
        where.append(Appeal.assigned_to_id == me.id)
    elif filters.assignee == "anyone":
        where.append(Appeal.assigned_to_id.is_not(None))
    elif filters.assignee == "none":
        where.append(Appeal.assigned_to_id.is_(None))
    if filters.overdue_only:
        where.append(is_overdue)
    total = session.scalar(sa.select(sa.func.count(Appeal.id)).where(*where)) or 0
    overdue = session.scalar(sa.select(sa.func.count(Appeal.id)).where(is_overdue)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(filters.page, 1), pages)
    # The page's appeals first, from the appeals alone (their indexes), then only those ids joined
    # to their startup, allocation and offer: the planner, knowing the few ids, looks each up by
    # its key instead of reading a million allocations.
    ids = list(session.scalars(
        sa.select(Appeal.id).where(*where).order_by(Appeal.waiting_since, Appeal.id)
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ))
    assignee = aliased(Person)
    query = (
        sa.select(Appeal.id, Appeal.status, Startup.name, Appeal.allocation_id, Allocation.status, Offer.kind,
                  assignee.name, Appeal.waiting_since, Appeal.created_at, sa.case((is_overdue, True), else_=False))
        .join(Startup, Startup.id == Appeal.startup_id)
        .join(Allocation, Allocation.id == Appeal.allocation_id)
        .join(Offer, Offer.id == Allocation.offer_id)
        .outerjoin(assignee, assignee.id == Appeal.assigned_to_id)
        .where(Appeal.id.in_(ids))
        .order_by(Appeal.waiting_since, Appeal.id)
    )
    rows = [InboxRow(*row) for row in session.execute(query)] if ids else []
    return Inbox(rows, total, overdue, page, pages, cutoff, working_days)


@dataclass(frozen=True)
class ThreadMessage:
    id: int
    side: AppealSide
    author_name: str
    body: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Thread:
    appeal: Appeal
    startup: Startup
    allocation: Allocation
    kind: str
    messages: list[ThreadMessage]
    assignee: Person | None
    overdue: bool
    assignable: list[Person]  # active district people, for staff; empty for a startup


def appeal_thread(session: Session, actor: Account, appeal_id: int, now: dt.datetime,
                  working_days: int = DEFAULT_ANSWER_WORKING_DAYS) -> Thread:
    """One thread with its allocation and messages in order: staff see any, a startup its own
    only (another's is NotFound, so its existence is not revealed)."""
    staff = actor.role in STAFF_ROLES
    if not staff:
        require_role(actor, Role.startup)
    query = sa.select(Appeal).where(Appeal.id == appeal_id)
    if not staff:
        query = query.where(Appeal.startup_id == actor.startup_id)
    appeal = session.scalar(query)
    if appeal is None:
        raise NotFound("No such appeal.")
    allocation, startup, kind = session.execute(
        sa.select(Allocation, Startup, Offer.kind)
        .join(Offer, Offer.id == Allocation.offer_id)
        .join(Startup, Startup.id == appeal.startup_id)
        .where(Allocation.id == appeal.allocation_id)
    ).one()
    messages = [
        ThreadMessage(*row) for row in session.execute(
            sa.select(AppealMessage.id, AppealMessage.author_side, Account.name, AppealMessage.body,
                      AppealMessage.created_at)
            .join(Account, Account.id == AppealMessage.author_id)
            .where(AppealMessage.appeal_id == appeal.id)
            .order_by(AppealMessage.id)
        )
    ]
    assignee = session.get(Person, appeal.assigned_to_id) if appeal.assigned_to_id is not None else None
    assignable = list(session.scalars(
        sa.select(Person).where(Person.side == Side.district, Person.status == PersonStatus.active).order_by(Person.name, Person.id)
    )) if staff else []
    overdue = appeal.status is AppealStatus.open and appeal.waiting_since < overdue_before(now, working_days)
    return Thread(appeal, startup, allocation, kind, messages, assignee, overdue, assignable)


@dataclass(frozen=True)
class CompanyAppealRow:
    id: int
    status: AppealStatus
    allocation_id: int
    kind: str
    last_message: str
    waiting_since: dt.datetime
    created_at: dt.datetime


@dataclass(frozen=True)
class CompanyAppeals:
    rows: list[CompanyAppealRow]
    total: int
    page: int
    pages: int


def company_appeals(session: Session, actor: Account, page: int) -> CompanyAppeals:
    """A startup's own appeals, newest first, 50 a page, each with its allocation's kind and its
    last message (in a fixed number of queries, however many rows)."""
    require_role(actor, Role.startup)
    mine = Appeal.startup_id == actor.startup_id
    total = session.scalar(sa.select(sa.func.count(Appeal.id)).where(mine)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    last = (sa.select(AppealMessage.appeal_id, sa.func.max(AppealMessage.id).label("message_id"))
            .group_by(AppealMessage.appeal_id).subquery())
    query = (
        sa.select(Appeal.id, Appeal.status, Appeal.allocation_id, Offer.kind,
                  sa.func.coalesce(AppealMessage.body, Appeal.message), Appeal.waiting_since, Appeal.created_at)
        .join(Allocation, Allocation.id == Appeal.allocation_id)
        .join(Offer, Offer.id == Allocation.offer_id)
        .outerjoin(last, last.c.appeal_id == Appeal.id)
        .outerjoin(AppealMessage, AppealMessage.id == last.c.message_id)
        .where(mine).order_by(Appeal.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    )
    return CompanyAppeals([CompanyAppealRow(*row) for row in session.execute(query)], total, page, pages)
