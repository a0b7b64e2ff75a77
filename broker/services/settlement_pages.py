"""What the staff console's notice (公示) and settlement (结算单) pages read, a page at a time.

Reading only: the changes go through `broker.services.notices` and `broker.services.settlement`,
the same functions the API calls. Each list is one query for its page (counts as correlated
subqueries on indexed columns) and one for its total, whatever the district's size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date
from broker.models import (
    Account,
    Notice,
    NoticeItem,
    NoticeStatus,
    Objection,
    ObjectionStatus,
    Role,
    SettlementStatement,
    SubsidyProgram,
)
from broker.services import accounts, notices, settlement


@dataclass(frozen=True)
class NoticeRow:
    notice: Notice
    items: int  # awards frozen into it, removed ones included
    removed: int
    open_objections: int


@dataclass(frozen=True)
class NoticeList:
    rows: list[NoticeRow]
    total: int
    programs: list[SubsidyProgram]  # those whose awards go on notice: the freeze form's choices
    today: dt.date  # Asia/Shanghai


def notice_list(session: Session, actor: Account, offset: int, limit: int, now: dt.datetime) -> NoticeList:
    """Staff: a page of notices, newest first, each with its items and open objections counted in SQL."""
    query = notices.staff_notices(session, actor, {})
    items = (sa.select(sa.func.count(NoticeItem.id)).where(NoticeItem.notice_id == Notice.id)
             .correlate(Notice).scalar_subquery())
    removed = (sa.select(sa.func.count(NoticeItem.id)).where(NoticeItem.notice_id == Notice.id,
                                                             NoticeItem.removed_at.is_not(None))
               .correlate(Notice).scalar_subquery())
    still_open = (sa.select(sa.func.count(Objection.id))
                  .where(Objection.notice_id == Notice.id, Objection.status == ObjectionStatus.open)
                  .correlate(Notice).scalar_subquery())
    rows = [NoticeRow(n, i, r, o) for n, i, r, o in
            session.execute(query.add_columns(items, removed, still_open).offset(offset).limit(limit))]
    total = session.scalar(sa.select(sa.func.count(Notice.id))) or 0
    programs = list(session.scalars(
        sa.select(SubsidyProgram).where(SubsidyProgram.requires_notice.is_(True)).order_by(SubsidyProgram.code)))
    return NoticeList(rows, total, programs, local_date(now))


@dataclass(frozen=True)
class NoticePage:
    notice: Notice
    items: list[NoticeItem]
    objections: list[Objection]
    taking_objections: bool
    due: bool  # past its last working day with every objection answered: it may be finalised now
    today: dt.date


def notice_page(session: Session, actor: Account, notice_id: int, now: dt.datetime) -> NoticePage:
    """Staff: one notice with its items and every objection lodged against it, oldest first."""
    notice = notices.staff_notice(session, actor, notice_id)
    objections = list(session.scalars(notices.list_objections(session, actor, {"notice_id": notice.id})))
    today = local_date(now)
    due = (notice.status is NoticeStatus.open and today > notice.ends_on
           and all(o.status is not ObjectionStatus.open for o in objections))
    return NoticePage(notice, list(notice.items), objections, notices.is_taking_objections(notice, today), due, today)


@dataclass(frozen=True)
class StatementList:
    statements: list[SettlementStatement]
    total: int
    programs: list[SubsidyProgram]  # the build form's choices


def statement_list(session: Session, actor: Account, offset: int, limit: int) -> StatementList:
    """Staff: a page of statements, newest first (their lines are not read here)."""
    accounts.require_role(actor, Role.staff, Role.admin)
    found = list(session.scalars(
        sa.select(SettlementStatement).order_by(SettlementStatement.id.desc()).offset(offset).limit(limit)))
    total = session.scalar(sa.select(sa.func.count(SettlementStatement.id))) or 0
    programs = list(session.scalars(sa.select(SubsidyProgram).order_by(SubsidyProgram.code)))
    return StatementList(found, total, programs)


@dataclass(frozen=True)
class StatementPage:
    view: settlement.StatementView
    documents: list[str]  # the program's funding documents
    names: dict[int, str]  # account id → name, for who built and approved it


def statement_page(session: Session, actor: Account, statement_id: int) -> StatementPage:
    """Staff: one statement, its lines and totals per payee as the service lays them out."""
    view = settlement.get_statement(session, actor, statement_id)
    ids = {i for i in (view.built_by_id, view.first_approved_by_id, view.approved_by_id) if i is not None}
    names = dict(session.execute(sa.select(Account.id, Account.name).where(Account.id.in_(ids))).all()) if ids else {}
    return StatementPage(view, settlement.funding_documents(session, view.program_id), names)
