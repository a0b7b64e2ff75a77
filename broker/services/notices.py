"""Public notice (公示): staff freeze a batch of awards, anyone reads it and may object while it
runs, staff answer, and a notice that ended with every objection answered becomes final.

Periods are counted in working days on the Chinese calendar (`broker.workdays`); "today" is the
date in Asia/Shanghai. A notice runs to the end of its last working day (`ends_on`): objections
are taken up to then, and it can be finalised from the next day on.

Locks, in the order `broker.services.allocations` documents: subsidy programs → awards →
notices → objections, each in id order and read again as it is now. An upheld objection posts
a reverse row, so it holds the program's and the award's locks first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker import workdays
from broker.clock import local_date
from broker.db import transaction
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import (
    Account,
    Award,
    AwardStatus,
    Notice,
    NoticeItem,
    NoticeState,
    NoticeStatus,
    Objection,
    ObjectionStatus,
    Role,
    Startup,
    SubsidyProgram,
)
from broker.models.notices import MAX_BATCH
from broker.services import accounts, events, ledger, subsidies

UPHELD_REASON = "objection_upheld"


@dataclass(frozen=True)
class Period:
    starts_on: dt.date
    working_days: int
    ends_on: dt.date


def period(starts_on: dt.date, working_days: int) -> Period:
    """The notice's last working day, or a 422 that says why the calendar can't count it."""
    try:
        return Period(starts_on, working_days, workdays.add_working_days(starts_on, working_days))
    except workdays.CalendarUnknown as unknown:
        first, last = workdays.known_years()
        field = "starts_on" if unknown.day == starts_on else "working_days"
        problem = (
            f"a notice of {working_days} working days from {starts_on.isoformat()} reaches into {unknown.day.year}, "
            f"and the State Council's {unknown.day.year} holiday schedule (its holidays and adjusted working days) "
            f"is not in the broker's working-day calendar yet: it knows {first}–{last}. "
            f"Choose a notice that ends by {last}-12-31, or wait for the calendar library's update"
        )
        raise InvalidInput(f"The notice's end can't be counted: {problem}.", {field: [problem]}) from None


# -- freezing a batch -------------------------------------------------------------------------


def _why_not_noticeable(award: Award) -> str | None:
    if not award.program.requires_notice:
        return f"its program {award.program.code} does not require a public notice"
    if award.notice_state is not NoticeState.not_noticed:
        return f"it is already {award.notice_state.value} (an award is noticed once)"
    if award.status is not AwardStatus.committed:
        return f"it is {award.status.value}, no longer committed"
    return None


def _lock_awards(session: Session, where: sa.ColumnElement[bool]) -> list[Award]:
    return list(session.scalars(
        sa.select(Award).where(where).order_by(Award.id).with_for_update(of=Award)
        .execution_options(populate_existing=True)
    ))


@transaction
def create_notice(session: Session, actor: Account, data: dict[str, Any], now: dt.datetime) -> Notice:
    """Staff freeze a batch of awards into a public notice: each goes in_notice, the public list
    keeps the startup's name, the program's name and the amount as they are now."""
    accounts.require_role(actor, Role.staff, Role.admin)
    if data["starts_on"] < local_date(now):
        raise InvalidInput("A notice can't start in the past.", {"starts_on": [f"Before today ({local_date(now)}, Asia/Shanghai)."]})
    when = period(data["starts_on"], data["working_days"])
    program = None
    if data.get("award_ids") is not None:
        wanted = sorted(set(data["award_ids"]))
        awards = _lock_awards(session, Award.id.in_(wanted))
        found = {a.id: a for a in awards}
        problems = {str(i): ["No such award."] for i in wanted if i not in found}
        problems.update({str(a.id): [why] for a in awards if (why := _why_not_noticeable(a))})
        if problems:
            raise InvalidInput("Some awards can't be put on notice; nothing was frozen.", {"award_ids": problems})
    else:
        program = session.scalar(sa.select(SubsidyProgram).where(SubsidyProgram.code == data["program"]))
        if program is None:
            raise InvalidInput("No such subsidy program.", {"program": ["No program has this code."]})
        if not program.requires_notice:
            raise InvalidInput("This program's awards go without a public notice.",
                               {"program": [f"{program.code} does not require a public notice."]})
        awards = _lock_awards(session, sa.and_(
            Award.program_id == program.id, Award.fiscal_year == data["fiscal_year"],
            Award.notice_state == NoticeState.not_noticed, Award.status == AwardStatus.committed,
        ))
        if not awards:
            raise InvalidInput("Nothing to put on notice.", {"program": [
                f"{program.code} has no committed award of {data['fiscal_year']} that was not noticed yet."]})
    if len(awards) > MAX_BATCH:
        raise InvalidInput(f"A notice holds at most {MAX_BATCH} awards.", {"award_ids": [f"{len(awards)} awards."]})
    names = dict(session.execute(sa.select(Startup.id, Startup.name).where(Startup.id.in_({a.startup_id for a in awards}))).all())
    notice = Notice(title=data["title"], program_id=program.id if program else None,
                    fiscal_year=data.get("fiscal_year") if program else None, starts_on=when.starts_on,
                    working_days=when.working_days, ends_on=when.ends_on, created_by=actor.id, created_at=now)
    session.add(notice)
    session.flush()
    for award in awards:
        award.move_notice(NoticeState.in_notice)
        session.add(NoticeItem(notice_id=notice.id, award_id=award.id, program_id=award.program_id,
                               startup_name=names[award.startup_id], program_name=award.program.name, amount=award.amount))
        events.record(session, "notice.started", None, award.startup_id, None, now, notice_id=notice.id, award_id=award.id,
                      title=notice.title, starts_on=notice.starts_on.isoformat(), ends_on=notice.ends_on.isoformat(),
                      amount=str(award.amount), program_name=award.program.name)
    session.flush()
    session.refresh(notice, ["items"])
    return notice


# -- reading ----------------------------------------------------------------------------------


def get_notice(session: Session, notice_id: int) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound("No such notice.")
    return notice


def list_notices(session: Session, status: NoticeStatus | None = None) -> sa.Select:
    """Notices, the newest first (public: they hold nothing private)."""
    query = sa.select(Notice).order_by(Notice.id.desc())
    return query if status is None else query.where(Notice.status == status)


def staff_notice(session: Session, actor: Account, notice_id: int) -> Notice:
    accounts.require_role(actor, Role.staff, Role.admin)
    return get_notice(session, notice_id)


def staff_notices(session: Session, actor: Account, filters: dict[str, Any]) -> sa.Select:
    accounts.require_role(actor, Role.staff, Role.admin)
    return list_notices(session, filters.get("status"))


def is_taking_objections(notice: Notice, today: dt.date) -> bool:
    return notice.status is NoticeStatus.open and notice.starts_on <= today <= notice.ends_on


def list_objections(session: Session, actor: Account, filters: dict[str, Any]) -> sa.Select:
    """Staff: objections, oldest first, by notice and status."""
    accounts.require_role(actor, Role.staff, Role.admin)
    query = sa.select(Objection).order_by(Objection.id)
    for name, value in filters.items():
        query = query.where(getattr(Objection, name) == value)
    return query


# -- objections -------------------------------------------------------------------------------


def _lock_notice(session: Session, notice_id: int) -> Notice:
    notice = session.scalar(
        sa.select(Notice).where(Notice.id == notice_id).with_for_update(of=Notice).execution_options(populate_existing=True)
    )
    if notice is None:
        raise NotFound("No such notice.")
    return notice


@transaction
def lodge_objection(session: Session, notice_id: int, data: dict[str, Any], now: dt.datetime) -> Objection:
    """Anyone, without signing in, objects to a notice (or to one item of it) while it runs."""
    notice = _lock_notice(session, notice_id)  # a finalise holds it too: no objection slips in after
    today = local_date(now)
    if notice.status is not NoticeStatus.open or today > notice.ends_on:
        raise Conflict(f"The notice ended on {notice.ends_on.isoformat()} (Asia/Shanghai): objections are no longer taken.",
                       {"notice": [f"ended on {notice.ends_on.isoformat()}"]})
    if today < notice.starts_on:
        raise Conflict(f"The notice starts on {notice.starts_on.isoformat()} (Asia/Shanghai): objections are taken from then.",
                       {"notice": [f"starts on {notice.starts_on.isoformat()}"]})
    item_id = data.get("item_id")
    if item_id is not None:
        item = session.get(NoticeItem, item_id)
        if item is None or item.notice_id != notice.id:
            raise InvalidInput("No such item in this notice.", {"item_id": ["Not an item of this notice."]})
        if item.removed_at is not None:
            raise InvalidInput("That item was already removed from the notice.", {"item_id": ["Already removed."]})
    objection = Objection(notice_id=notice.id, item_id=item_id, name=data["name"], contact=data["contact"],
                          text=data["text"], lodged_at=now)
    session.add(objection)
    session.flush()
    return objection


@transaction
def answer_objection(session: Session, actor: Account, objection_id: int, data: dict[str, Any], now: dt.datetime) -> Objection:
    """Staff answer an objection. Upheld: its award leaves the batch, what it had not used goes back
    to the budget by a reverse row of its commit, and the startup hears of it; all in one commit."""
    accounts.require_role(actor, Role.staff, Role.admin)
    seen = session.get(Objection, objection_id)
    if seen is None:
        raise NotFound("No such objection.")
    decision = ObjectionStatus(data["decision"])
    item = session.get(NoticeItem, seen.item_id) if seen.item_id is not None else None
    if decision is ObjectionStatus.upheld and item is None:
        raise InvalidInput("An objection to the batch as a whole names no award to remove: dismiss it, or ask for one "
                           "lodged against an item.", {"decision": ["Upheld needs an objection against one item."]})
    program = award = None
    if decision is ObjectionStatus.upheld:
        program = ledger.lock_program(session, item.program_id)
        award = _lock_awards(session, Award.id == item.award_id)[0]
    notice = _lock_notice(session, seen.notice_id)
    objection = session.scalar(
        sa.select(Objection).where(Objection.id == objection_id).with_for_update(of=Objection)
        .execution_options(populate_existing=True)
    )
    if objection.status is not ObjectionStatus.open:
        raise Conflict(f"Objection {objection.id} was already answered ({objection.status.value}).")
    if notice.status is not NoticeStatus.open:
        raise Conflict(f"Notice {notice.id} is already {notice.status.value}.")
    objection.decide(decision, data["answer"], actor.id, now)
    if decision is ObjectionStatus.upheld:
        session.refresh(item)
        if item.removed_at is None:  # a second upheld objection to the same item has nothing left to remove
            _remove(session, program, award, item, objection, actor, now)
    session.flush()
    return objection


def _remove(session: Session, program: SubsidyProgram, award: Award, item: NoticeItem, objection: Objection,
            actor: Account, now: dt.datetime) -> None:
    back = Decimal("0.00")
    if award.status is AwardStatus.committed:
        # Upheld: the award is void before it is paid, redemptions included (a notice precedes payment).
        back = subsidies.revoke(session, program, award, UPHELD_REASON, now, actor_id=actor.id)
    award.move_notice(NoticeState.removed)
    item.remove(now)
    events.record(session, "subsidy.award_removed", None, award.startup_id, None, now, award_id=award.id,
                  notice_id=item.notice_id, program=program.code, amount=str(award.amount), given_back=str(back),
                  reason=UPHELD_REASON, answer=objection.answer)


# -- finalising -------------------------------------------------------------------------------


def _finalise(session: Session, notice_id: int, now: dt.datetime) -> Notice:
    seen = get_notice(session, notice_id)
    remaining = [i.award_id for i in seen.items if i.removed_at is None]
    awards = _lock_awards(session, Award.id.in_(remaining)) if remaining else []
    notice = _lock_notice(session, notice_id)
    if notice.status is not NoticeStatus.open:
        raise Conflict(f"Notice {notice.id} is already {notice.status.value}.")
    today = local_date(now)
    if today <= notice.ends_on:
        raise Conflict(f"The notice runs until {notice.ends_on.isoformat()} (Asia/Shanghai): it can be finalised from "
                       f"{(notice.ends_on + dt.timedelta(days=1)).isoformat()}.",
                       {"notice": [f"runs until {notice.ends_on.isoformat()}"]})
    still_open = session.scalars(
        sa.select(Objection.id).where(Objection.notice_id == notice.id, Objection.status == ObjectionStatus.open)
        .order_by(Objection.id)
    ).all()
    if still_open:
        raise Conflict(f"Notice {notice.id} has objections not answered yet: {', '.join(map(str, still_open))}.",
                       {"objections": [f"open: {', '.join(map(str, still_open))}"]})
    # An objection upheld while this waited for the locks took its award out (items never come
    # back or join later): the awards, read under their locks, say what is still in the batch.
    for award in awards:
        if award.notice_state is NoticeState.in_notice:
            award.move_notice(NoticeState.final)
    notice.finalise(now)
    session.flush()
    return notice


@transaction
def finalise(session: Session, actor: Account, notice_id: int, now: dt.datetime) -> Notice:
    """Staff: a notice past its last working day with every objection answered becomes final, and
    so does each award still in it (it may be disbursed)."""
    accounts.require_role(actor, Role.staff, Role.admin)
    return _finalise(session, notice_id, now)


finalise_one = transaction(_finalise)


def finalise_due(session: Session, now: dt.datetime) -> list[int]:
    """The daily job: finalise every open notice past its end with no open objection, each in its own
    commit (one that can't be finalised does not hold back the others). Returns the ids finalised."""
    today = local_date(now)
    has_open = sa.select(Objection.id).where(Objection.notice_id == Notice.id, Objection.status == ObjectionStatus.open)
    due = session.scalars(
        sa.select(Notice.id).where(Notice.status == NoticeStatus.open, Notice.ends_on < today, ~has_open.exists())
        .order_by(Notice.id)
    ).all()
    session.rollback()  # end the read
    done = []
    for notice_id in due:
        try:
            finalise_one(session, notice_id, now)
        except Conflict:  # an objection came in, or staff finalised it meanwhile
            continue
        done.append(notice_id)
    return done
