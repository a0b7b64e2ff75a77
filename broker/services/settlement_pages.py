"""What the staff console's notice (公示) and settlement (结算单) pages read, a page at a time.

Reading only: the changes go through `broker.services.notices` and `broker.services.settlement`,
the same functions the API calls. Each list is one query for its page (counts as correlated
subqueries on indexed columns) and one for its total, whatever the district's size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date
from broker.errors import NotFound
from broker.models import (
    Account,
    Claimant,
    LedgerEntry,
    LedgerKind,
    Notice,
    NoticeItem,
    NoticeStatus,
    Objection,
    ObjectionStatus,
    Role,
    SettlementLine,
    SettlementStatement,
    SubsidyProgram,
)
from broker.services import notices, settlement

ZERO = Decimal("0.00")


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
class Amounts:
    """A statement's lines the reader may see, summed: claimed (redeemed by the period's end, not
    written off before), approved (what its approval writes off) and paid (the write-off rows in the ledger)."""

    claimed: Decimal = ZERO
    approved: Decimal = ZERO
    paid: Decimal = ZERO


@dataclass(frozen=True)
class StatementList:
    statements: list[SettlementStatement]
    total: int
    programs: list[SubsidyProgram]  # the build form's choices
    amounts: dict[int, Amounts]  # statement id → its lines the reader may see, summed


def _amounts(session: Session, actor: Account, statement_ids: list[int]) -> dict[int, Amounts]:
    """Per statement, its lines the actor may see summed, and the write-off rows the ledger holds for them (one query)."""
    if not statement_ids:
        return {}
    money = SettlementLine.payable.type
    paid = sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0, type_=LedgerEntry.amount.type)
    rows = session.execute(
        sa.select(SettlementLine.statement_id, sa.func.sum(SettlementLine.outstanding, type_=money),
                  sa.func.sum(SettlementLine.payable, type_=money), paid)
        .outerjoin(LedgerEntry, sa.and_(
            LedgerEntry.kind == LedgerKind.write_off,
            LedgerEntry.idempotency_key == settlement.write_off_key(SettlementLine.statement_id, SettlementLine.award_id)))
        .where(SettlementLine.statement_id.in_(statement_ids), settlement.lines_of(actor))
        .group_by(SettlementLine.statement_id))
    return {statement_id: Amounts(claimed, approved, paid) for statement_id, claimed, approved, paid in rows}


def statement_list(session: Session, actor: Account, offset: int, limit: int) -> StatementList:
    """A page of the statements the actor may see (staff: all; a payee: those it has lines on), newest
    first, with those lines summed (their lines are not read one by one here)."""
    query = settlement.visible(actor).order_by(None).order_by(SettlementStatement.id.desc())
    found = list(session.scalars(query.offset(offset).limit(limit)))
    total = session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0
    programs = (list(session.scalars(sa.select(SubsidyProgram).order_by(SubsidyProgram.code)))
                if actor.role in (Role.staff, Role.admin) else [])
    return StatementList(found, total, programs, _amounts(session, actor, [s.id for s in found]))


@dataclass(frozen=True)
class StatementPage:
    """One statement laid out a page at a time: a statement of a whole program has thousands of lines
    (one per award) and of payees, so both come in pages, and the totals are summed in SQL."""

    statement: SettlementStatement
    lines: list[SettlementLine]  # this page of lines, in award order as the statement froze them
    line_count: int
    payees: list[settlement.PayeeTotal]  # this page of the totals per payee
    payee_count: int
    documents: list[str]  # the program's funding documents
    names: dict[int, str]  # account id → name, for who built and approved it
    amounts: Amounts  # the lines the reader may see, summed

    @property
    def program_code(self) -> str:
        return self.statement.program.code


def _payee_totals(statement_id: int, actor: Account) -> sa.Select:
    """Per payee of the statement the actor may see: its lines summed, ordered as `StatementView.payees` orders them."""
    money = SettlementLine.payable.type
    payee_id = sa.case((SettlementLine.payee_kind == Claimant.startup, SettlementLine.payee_startup_id),
                       else_=SettlementLine.payee_carrier_id)
    name = sa.func.min(SettlementLine.payee_name)
    return (sa.select(SettlementLine.payee_kind, payee_id.label("payee_id"), name.label("payee_name"),
                      *(sa.func.sum(column, type_=money).label(column.key) for column in (
                          SettlementLine.committed, SettlementLine.redeemed_in_period, SettlementLine.outstanding,
                          SettlementLine.payable)))
            .where(SettlementLine.statement_id == statement_id, settlement.lines_of(actor))
            .group_by(SettlementLine.payee_kind, payee_id)
            .order_by(SettlementLine.payee_kind, name, payee_id))


def statement_page(session: Session, actor: Account, statement_id: int, line_offset: int, line_limit: int,
                   payee_offset: int, payee_limit: int) -> StatementPage:
    """One statement the actor may see (another payee's: NotFound), a page of its lines the actor may
    see and a page of their totals per payee (counted in SQL)."""
    statement = session.scalar(settlement.visible(actor).where(SettlementStatement.id == statement_id))
    if statement is None:
        raise NotFound(f"No settlement statement {statement_id}.")
    of_it = sa.and_(SettlementLine.statement_id == statement_id, settlement.lines_of(actor))
    lines = list(session.scalars(
        sa.select(SettlementLine).where(of_it).order_by(SettlementLine.id).offset(line_offset).limit(line_limit)))
    line_count = session.scalar(sa.select(sa.func.count(SettlementLine.id)).where(of_it)) or 0
    totals = _payee_totals(statement_id, actor)
    payees = [settlement.PayeeTotal(kind, payee_id, name, committed, in_period, outstanding, payable)
              for kind, payee_id, name, committed, in_period, outstanding, payable
              in session.execute(totals.offset(payee_offset).limit(payee_limit))]
    payee_count = session.scalar(sa.select(sa.func.count()).select_from(totals.order_by(None).subquery())) or 0
    ids = {i for i in (statement.built_by_id, statement.first_approved_by_id, statement.approved_by_id) if i is not None}
    names = dict(session.execute(sa.select(Account.id, Account.name).where(Account.id.in_(ids))).all()) if ids else {}
    return StatementPage(statement, lines, line_count, payees, payee_count,
                         settlement.funding_documents(session, statement.program_id), names,
                         _amounts(session, actor, [statement.id]).get(statement.id, Amounts()))


@dataclass(frozen=True)
class StatementSheet:
    view: settlement.StatementView  # every line: the spreadsheet is the whole statement
    documents: list[str]


def statement_sheet(session: Session, actor: Account, statement_id: int) -> StatementSheet:
    """Staff: the whole statement and its funding documents, for its spreadsheet."""
    view = settlement.get_statement(session, actor, statement_id)
    return StatementSheet(view, settlement.funding_documents(session, view.program_id))
