"""Settlement and write-off (核销), release of unused commitments at period end, and clawback.

A statement freezes, per award of one program, what usage redeemed by the end of a period (a
quarter `2026-Q4` or a month `2026-11`, Asia/Shanghai) and what of it may be paid now: redeemed,
not yet written off, evidence complete (if the program requires any) and the notice final (if the
program requires one). Staff approve it; over the four-eyes threshold a second, different staff
account must approve too, and nobody approves a statement they built. The final approval writes one
write_off row per payable line, with the disbursement reference, in one transaction.

Locks, in the order `broker.services.allocations` documents: subsidy programs, then awards, each
in id order; a statement's own row is taken last (after its program, which already serializes
every approval of that program's statements).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from broker.clock import SHANGHAI, local_date
from broker.db import transaction
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import (
    Account,
    Allocation,
    Award,
    AwardStatus,
    Carrier,
    Claimant,
    LedgerEntry,
    LedgerKind,
    NoticeState,
    ResourceRequest,
    Role,
    SettlementLine,
    SettlementStatement,
    Startup,
    SubsidyBan,
    SubsidyProgram,
)
from broker.models.ledger import AdjustReason, moves
from broker.services import accounts, events, ledger, subsidies

ZERO = Decimal("0.00")
DEFAULT_FOUR_EYES_ABOVE = Decimal("100000")
DEFAULT_BAN_YEARS = 3  # 三年内不得申报: Shanghai's subsidy rules bar a clawed-back firm for three years
_PERIOD = re.compile(r"^(\d{4})-(?:Q([1-4])|(0[1-9]|1[0-2]))$")


# -- periods ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    label: str
    first_day: dt.date
    end_day: dt.date  # exclusive

    @property
    def starts_at(self) -> dt.datetime:
        return dt.datetime.combine(self.first_day, dt.time(), SHANGHAI).astimezone(dt.timezone.utc)

    @property
    def ends_at(self) -> dt.datetime:
        return dt.datetime.combine(self.end_day, dt.time(), SHANGHAI).astimezone(dt.timezone.utc)


def parse_period(text: str) -> Period:
    """`2026-Q4` (a quarter) or `2026-11` (a month), in Asia/Shanghai; anything else is refused naming `period`."""
    found = _PERIOD.match(text or "")
    if found is None or not 2000 <= int(found.group(1)) <= 2200:
        raise InvalidInput("Unknown period format.", {"period": [
            f"{text!r} is not a period: give a quarter such as 2026-Q4 (Q1 to Q4) or a month such as 2026-11."]})
    year = int(found.group(1))
    first_month = (int(found.group(2)) - 1) * 3 + 1 if found.group(2) else int(found.group(3))
    months = 3 if found.group(2) else 1
    end_month = first_month + months
    end = dt.date(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1)
    return Period(text, dt.date(year, first_month, 1), end)


# -- building a statement ---------------------------------------------------------------------


@dataclass
class _Sums:
    committed: Decimal = ZERO
    redeemed_before: Decimal = ZERO
    redeemed_in_period: Decimal = ZERO
    redeemed_by_end: Decimal = ZERO  # net of reversals and adjustments, what the balances say


def _award_sums(session: Session, program_id: int, period: Period) -> dict[int, _Sums]:
    """Per award of the program, from its rows up to the period's end: committed, and redeemed before and in the period."""
    target = aliased(LedgerEntry)
    sums: dict[int, _Sums] = defaultdict(_Sums)
    starts_at = period.starts_at
    for award_id, kind, target_kind, amount, created_at in session.execute(
        sa.select(LedgerEntry.award_id, LedgerEntry.kind, target.kind, LedgerEntry.amount, LedgerEntry.created_at)
        .outerjoin(target, target.id == LedgerEntry.reverses_id)
        .where(LedgerEntry.program_id == program_id, LedgerEntry.award_id.is_not(None),
               LedgerEntry.created_at < period.ends_at)
        .order_by(LedgerEntry.id)
    ):
        change = moves(kind, amount, target_kind=target_kind, on_award=True)
        line = sums[award_id]
        line.committed += change.get("committed", ZERO)
        line.redeemed_by_end += change.get("redeemed", ZERO)
        if kind is LedgerKind.redeem:
            if created_at < starts_at:
                line.redeemed_before += amount
            else:
                line.redeemed_in_period += amount
    return sums


def _line(program: SubsidyProgram, award: Award, sums: _Sums, names: dict[tuple[Claimant, int], str]) -> SettlementLine:
    outstanding = sums.redeemed_by_end - award.written_off
    held = []
    if program.evidence_required and not award.evidence_complete:
        held.append("evidence incomplete (" + ", ".join(program.evidence_required) + " required)")
    if program.requires_notice and award.notice_state is not NoticeState.final:
        held.append(f"notice not final ({award.notice_state.value})")
    if award.status is AwardStatus.clawed_back:
        held.append("clawed back")
    if outstanding < 0:
        held.append(f"{-outstanding} to recover after a clawback")
    elif outstanding == 0:
        held.append("nothing redeemed to pay")
    payee_id = award.startup_id if award.claimant is Claimant.startup else award.carrier_id
    return SettlementLine(
        award_id=award.id, payee_kind=award.claimant,
        payee_startup_id=award.startup_id if award.claimant is Claimant.startup else None,
        payee_carrier_id=award.carrier_id if award.claimant is Claimant.carrier else None,
        payee_name=names[(award.claimant, payee_id)],
        committed=sums.committed, redeemed_before=sums.redeemed_before, redeemed_in_period=sums.redeemed_in_period,
        written_off_before=award.written_off, outstanding=outstanding,
        evidence=("complete" if award.evidence_complete else "incomplete") if program.evidence_required else "not_required",
        notice_state=award.notice_state, payable=ZERO if held else outstanding, held="; ".join(held) or None,
    )


def _payee_names(session: Session, awards: list[Award]) -> dict[tuple[Claimant, int], str]:
    startups = {a.startup_id for a in awards if a.claimant is Claimant.startup}
    carriers = {a.carrier_id for a in awards if a.claimant is Claimant.carrier}
    names = {(Claimant.startup, i): n for i, n in session.execute(sa.select(Startup.id, Startup.name).where(Startup.id.in_(startups)))}
    names |= {(Claimant.carrier, i): n for i, n in session.execute(sa.select(Carrier.id, Carrier.name).where(Carrier.id.in_(carriers)))}
    return names


def _program_by_code(session: Session, code: str) -> SubsidyProgram:
    program = session.scalar(sa.select(SubsidyProgram).where(SubsidyProgram.code == code))
    if program is None:
        raise InvalidInput("No such subsidy program.", {"program": [f"No program with code {code!r}."]})
    return program


def _build(session: Session, program: SubsidyProgram, period: Period, built_by_id: int | None, now: dt.datetime,
           four_eyes_above: Decimal) -> SettlementStatement:
    if period.first_day > local_date(now):
        raise InvalidInput("The period has not begun.", {"period": [f"{period.label} begins on {period.first_day}."]})
    existing = session.scalar(sa.select(SettlementStatement.id).where(
        SettlementStatement.program_id == program.id, SettlementStatement.period == period.label))
    if existing is not None:
        raise Conflict(f"Program {program.code} already has statement {existing} for {period.label}.")
    sums = _award_sums(session, program.id, period)
    awards = list(session.scalars(
        sa.select(Award).where(Award.program_id == program.id, Award.created_at < period.ends_at).order_by(Award.id)))
    names = _payee_names(session, awards)
    lines = []
    for award in awards:
        line = _line(program, award, sums[award.id], names)
        settled = line.outstanding == 0 and line.redeemed_in_period == 0 and award.status is not AwardStatus.committed
        if not settled:
            lines.append(line)
    total = sum((line.payable for line in lines), ZERO)
    statement = SettlementStatement(
        program_id=program.id, period=period.label, starts_at=period.starts_at, ends_at=period.ends_at,
        total_payable=total, approvals_needed=2 if total > four_eyes_above else 1, built_by_id=built_by_id,
        built_at=now, lines=lines,
    )
    session.add(statement)
    session.flush()
    return statement


@transaction
def build_statement(session: Session, actor: Account, data: dict[str, Any], now: dt.datetime,
                    four_eyes_above: Decimal = DEFAULT_FOUR_EYES_ABOVE) -> StatementView:
    """Staff build the statement of one program for one period, its lines frozen as the rows are now."""
    accounts.require_role(actor, Role.staff, Role.admin)
    period = parse_period(data["period"])
    program = _program_by_code(session, data["program"])
    return StatementView.of(_build(session, program, period, actor.id, now, four_eyes_above))


@transaction
def statement_for(session: Session, program_code: str, period_text: str, now: dt.datetime,
                  four_eyes_above: Decimal = DEFAULT_FOUR_EYES_ABOVE) -> StatementView:
    """The operator's statement (the CLI): the one already built for the program and period, or a new one."""
    period = parse_period(period_text)
    program = _program_by_code(session, program_code)
    statement = session.scalar(sa.select(SettlementStatement).where(
        SettlementStatement.program_id == program.id, SettlementStatement.period == period.label))
    return StatementView.of(statement or _build(session, program, period, None, now, four_eyes_above))


# -- approval and write-off -------------------------------------------------------------------


@transaction
def approve_statement(session: Session, actor: Account, statement_id: int, data: dict[str, Any],
                      now: dt.datetime) -> StatementView:
    """One staff approval; the final one writes a write_off row per payable line with the disbursement reference."""
    accounts.require_role(actor, Role.staff, Role.admin)
    found = session.get(SettlementStatement, statement_id)
    if found is None:
        raise NotFound(f"No settlement statement {statement_id}.")
    program = ledger.lock_program(session, found.program_id)
    payable = {line.award_id: line for line in found.lines if line.payable > 0}
    awards = list(session.scalars(
        sa.select(Award).where(Award.id.in_(payable)).order_by(Award.id)
        .with_for_update(of=Award).execution_options(populate_existing=True)
    )) if payable else []
    statement = session.scalar(
        sa.select(SettlementStatement).where(SettlementStatement.id == statement_id)
        .with_for_update(of=SettlementStatement).execution_options(populate_existing=True)
    )
    reference = data["disbursement_reference"]
    if not statement.approve(actor.id, reference, now):
        return StatementView.of(statement)
    for award in awards:
        line = payable[award.id]
        _still_payable(program, award, line)
        ledger.post(session, program, LedgerKind.write_off, line.payable, award=award, now=now, actor_id=actor.id,
                    key=write_off_key(statement.id, award.id), reference=reference,
                    note=f"settlement {program.code} {statement.period}")
    return StatementView.of(statement)


def _still_payable(program: SubsidyProgram, award: Award, line: SettlementLine) -> None:
    """The award, locked, still owes what its line says (nothing clawed back or removed since the statement was built)."""
    problem = None
    if award.status is AwardStatus.clawed_back:
        problem = "was clawed back"
    elif award.redeemed - award.written_off < line.payable:
        problem = f"has only {award.redeemed - award.written_off} left to write off, not {line.payable}"
    elif program.requires_notice and award.notice_state is not NoticeState.final:
        problem = f"is no longer final in its notice ({award.notice_state.value})"
    elif program.evidence_required and not award.evidence_complete:
        problem = "no longer has complete evidence"
    if problem:
        raise Conflict(f"Award {award.id} {problem} since the statement was built; nothing was written off.")


# -- reading statements -----------------------------------------------------------------------


@dataclass
class PayeeTotal:
    payee_kind: Claimant
    payee_id: int
    payee_name: str
    committed: Decimal = ZERO
    redeemed_in_period: Decimal = ZERO
    outstanding: Decimal = ZERO
    payable: Decimal = ZERO


@dataclass
class StatementView:
    """A statement and the lines its reader may see (staff: all; a startup or carrier: those payable to it)."""

    statement: SettlementStatement
    lines: list[SettlementLine]

    @classmethod
    def of(cls, statement: SettlementStatement, actor: Account | None = None) -> StatementView:
        return cls(statement, [line for line in statement.lines if actor is None or _payable_to(actor, line)])

    def __getattr__(self, name: str) -> Any:  # the statement's own fields: id, period, status, ...
        if name == "statement":  # not set yet (a copy being made): never recurse
            raise AttributeError(name)
        return getattr(self.statement, name)

    @property
    def program_code(self) -> str:
        return self.statement.program.code

    @property
    def total_payable(self) -> Decimal:
        return sum((line.payable for line in self.lines), ZERO)

    @property
    def payees(self) -> list[PayeeTotal]:
        totals: dict[tuple[Claimant, int], PayeeTotal] = {}
        for line in self.lines:
            payee_id = line.payee_startup_id if line.payee_kind is Claimant.startup else line.payee_carrier_id
            total = totals.setdefault((line.payee_kind, payee_id), PayeeTotal(line.payee_kind, payee_id, line.payee_name))
            total.committed += line.committed
            total.redeemed_in_period += line.redeemed_in_period
            total.outstanding += line.outstanding
            total.payable += line.payable
        return sorted(totals.values(), key=lambda t: (t.payee_kind.value, t.payee_name, t.payee_id))


def _payable_to(actor: Account, line: SettlementLine) -> bool:
    if actor.role is Role.startup:
        return line.payee_kind is Claimant.startup and line.payee_startup_id == actor.startup_id
    if actor.role is Role.carrier:
        return line.payee_kind is Claimant.carrier and line.payee_carrier_id == actor.carrier_id
    return True


def lines_of(actor: Account) -> sa.ColumnElement[bool]:
    """The lines the actor may see, as a condition: a startup or carrier those payable to it, staff all."""
    if actor.role is Role.startup:
        return sa.and_(SettlementLine.payee_kind == Claimant.startup, SettlementLine.payee_startup_id == actor.startup_id)
    if actor.role is Role.carrier:
        return sa.and_(SettlementLine.payee_kind == Claimant.carrier, SettlementLine.payee_carrier_id == actor.carrier_id)
    accounts.require_role(actor, Role.staff, Role.admin)
    return sa.true()


def visible(actor: Account) -> sa.Select:
    """Statements the actor may see, oldest first: staff all, a payee those with a line payable to it."""
    query = sa.select(SettlementStatement).order_by(SettlementStatement.id)
    if actor.role in (Role.startup, Role.carrier):
        return query.where(SettlementStatement.id.in_(sa.select(SettlementLine.statement_id).where(lines_of(actor))))
    lines_of(actor)  # staff and admins only
    return query


def write_off_key(statement_id: Any, award_id: Any) -> Any:
    """The idempotency key of the write-off row a statement's approval writes for one award; given
    columns, the same key as an SQL expression (to find a line's row in the ledger)."""
    if isinstance(statement_id, int):
        return f"write_off:statement:{statement_id}:award:{award_id}"
    text = sa.String()
    return (sa.literal("write_off:statement:", text) + sa.cast(statement_id, text) + sa.literal(":award:", text)
            + sa.cast(award_id, text))


def list_statements(session: Session, actor: Account, filters: dict[str, Any]) -> list[StatementView]:
    """Statements the actor may see, oldest first, each with only the lines payable to it (staff: all)."""
    query = visible(actor)
    if filters.get("program"):
        query = query.join(SubsidyProgram).where(SubsidyProgram.code == filters["program"])
    for name in ("period", "status"):
        if filters.get(name) is not None:
            query = query.where(getattr(SettlementStatement, name) == filters[name])
    return [StatementView.of(s, actor) for s in session.scalars(query)]


def get_statement(session: Session, actor: Account, statement_id: int) -> StatementView:
    statement = session.scalar(visible(actor).where(SettlementStatement.id == statement_id))
    if statement is None:
        raise NotFound(f"No settlement statement {statement_id}.")
    return StatementView.of(statement, actor)


def funding_documents(session: Session, program_id: int) -> list[str]:
    """The funding documents of the program's deposits, in the order they came in."""
    rows = session.scalars(sa.select(LedgerEntry.reference).where(
        LedgerEntry.program_id == program_id, LedgerEntry.kind == LedgerKind.deposit).order_by(LedgerEntry.id))
    return list(dict.fromkeys(rows))


# -- release at period end --------------------------------------------------------------------


@dataclass
class Release:
    program_code: str
    until: dt.date
    award_ids: list[int]
    returned: Decimal


def _lock_ended(session: Session, program_ids: list[int], until: dt.date) -> tuple[dict[int, SubsidyProgram], list[Award]]:
    """The programs (locked, in id order), then their open awards whose allocation window ended before `until` (locked)."""
    programs = {
        p.id: p for p in session.scalars(
            sa.select(SubsidyProgram).where(SubsidyProgram.id.in_(program_ids)).order_by(SubsidyProgram.id)
            .with_for_update(of=SubsidyProgram).execution_options(populate_existing=True))
    }
    ended = (sa.select(Allocation.id).join(ResourceRequest, ResourceRequest.id == Allocation.request_id)
             .where(ResourceRequest.window_end < until))
    awards = session.scalars(
        sa.select(Award).where(Award.program_id.in_(program_ids), Award.status == AwardStatus.committed,
                               Award.allocation_id.in_(ended))
        .order_by(Award.id).with_for_update(of=Award).execution_options(populate_existing=True)
    ).all()
    return programs, list(awards)


def _release(session: Session, program_ids: list[int], until: dt.date, now: dt.datetime,
             actor_id: int | None) -> list[Release]:
    programs, awards = _lock_ended(session, program_ids, until)
    done = {pid: Release(p.code, until, [], ZERO) for pid, p in programs.items()}
    for award in awards:
        back = subsidies.release(session, programs[award.program_id], award, "period_end", now, actor_id=actor_id)
        done[award.program_id].award_ids.append(award.id)
        done[award.program_id].returned += back
    return [done[pid] for pid in sorted(done)]


@transaction
def release_unused(session: Session, actor: Account, program_id: int, until: dt.date, now: dt.datetime) -> Release:
    """Staff close every open award of the program whose allocation window ended before `until`:
    what usage did not redeem goes back to the budget (a reverse row of its commit)."""
    accounts.require_role(actor, Role.staff, Role.admin)
    if until > local_date(now) + dt.timedelta(days=1):
        raise InvalidInput("Windows that have not ended keep their commitments.", {"until": [
            f"Must not be after {local_date(now) + dt.timedelta(days=1)} (tomorrow in Asia/Shanghai)."]})
    ledger.lock_program(session, program_id)  # 404 for an unknown program
    return _release(session, [program_id], until, now, actor.id)[0]


@transaction
def release_after_programs_end(session: Session, now: dt.datetime) -> list[Release]:
    """The daily job: for every program past its `ends_on`, release the awards whose windows have ended."""
    today = local_date(now)
    ended = list(session.scalars(sa.select(SubsidyProgram.id).where(SubsidyProgram.ends_on <= today).order_by(SubsidyProgram.id)))
    return _release(session, ended, today, now, None) if ended else []


# -- clawback ---------------------------------------------------------------------------------


@dataclass
class Clawback:
    award: Award
    released: Decimal  # the unused part that went back to the budget
    taken_back: Decimal  # what it had redeemed, adjusted away
    to_recover: Decimal  # of that, what was already written off (paid): to be recovered
    ban: SubsidyBan


@transaction
def claw_back(session: Session, actor: Account, award_id: int, data: dict[str, Any], now: dt.datetime) -> Clawback:
    """Staff take an award back: its unused part is released, what it redeemed is adjusted away (money to
    recover if it was written off), the startup is banned from the program, and it is told."""
    accounts.require_role(actor, Role.staff, Role.admin)
    found = session.get(Award, award_id)
    if found is None:
        raise NotFound(f"No award {award_id}.")
    today = local_date(now)
    until = data.get("ban_until") or _years_after(today, DEFAULT_BAN_YEARS)
    if until <= today:
        raise InvalidInput("A ban ends after today.", {"ban_until": [f"Must be after {today} (today in Asia/Shanghai)."]})
    program = ledger.lock_program(session, found.program_id)
    award = session.scalar(sa.select(Award).where(Award.id == award_id).with_for_update(of=Award)
                           .execution_options(populate_existing=True))
    if award.status is AwardStatus.clawed_back:
        raise Conflict(f"Award {award.id} was already clawed back.")
    reason, note = data["reason"], data["note"]
    if award.status is AwardStatus.committed:
        released = subsidies.release(session, program, award, "clawback", now, status=AwardStatus.clawed_back,
                                     actor_id=actor.id)
    else:
        released = ZERO
        award.close(AwardStatus.clawed_back, now)
    taken_back = award.redeemed
    if taken_back > 0:
        ledger.post(session, program, LedgerKind.adjust, -taken_back, award=award, now=now, actor_id=actor.id,
                    key=f"clawback:award:{award.id}", reason=AdjustReason.clawback.value,
                    note=f"{reason.value}: {note}")
    ban = SubsidyBan(program_id=program.id, startup_id=award.startup_id, award_id=award.id, until=until, reason=reason,
                     actor_id=actor.id, created_at=now)
    session.add(ban)
    to_recover = -award.payable if award.payable < 0 else ZERO
    events.record(session, "subsidy.clawed_back", None, award.startup_id, None, now, award_id=award.id,
                  allocation_id=award.allocation_id, program=program.code, reason=reason.value, note=note,
                  released=str(released), taken_back=str(taken_back), to_recover=str(to_recover), ban_until=until.isoformat())
    session.flush()
    return Clawback(award, released, taken_back, to_recover, ban)


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


# -- the spreadsheet --------------------------------------------------------------------------

_XLSX_COLUMNS = (
    ("奖励编号", "award_id", None), ("收款方类型", "payee_kind", None), ("收款方", "payee_name", None),
    ("承诺金额(元)", "committed", "money"), ("本期前已核验使用(元)", "redeemed_before", "money"),
    ("本期核验使用(元)", "redeemed_in_period", "money"), ("此前已核销(元)", "written_off_before", "money"),
    ("未核销(元)", "outstanding", "money"), ("证明材料", "evidence", None), ("公示状态", "notice_state", None),
    ("应付金额(元)", "payable", "money"), ("暂缓原因", "held", None),
)


def write_xlsx(view: StatementView, documents: list[str], path: str | Path) -> None:
    """One sheet: a header naming the program, period, status and funding documents, then one row per line
    (Chinese column headers, amounts as numbers with two decimals), then the totals per payee.

    Written in openpyxl's write-only mode, row by row: a statement of a whole program has tens of
    thousands of lines, and a workbook kept in memory cell by cell took many seconds for them."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet("结算单")
    bold = Font(bold=True)

    def cell(value: Any, *, strong: bool = False, amount: bool = False) -> WriteOnlyCell:
        made = WriteOnlyCell(sheet, value=value)
        if strong:
            made.font = bold
        if amount:
            made.number_format = "#,##0.00"
        return made

    header = [
        ("结算单编号", view.id), ("补贴项目", f"{view.program_code} {view.program.name}"), ("结算期间", view.period),
        ("状态", view.status.value), ("资金文件", "；".join(documents) or "无"),
        ("应付合计(元)", float(view.total_payable)), ("拨付凭证号", view.disbursement_reference or ""),
    ]
    for label, value in header:
        sheet.append([cell(label, strong=True), cell(value, amount=isinstance(value, float))])
    sheet.append([])
    sheet.append([cell(title, strong=True) for title, _, _ in _XLSX_COLUMNS])
    for line in view.lines:
        row = []
        for _, name, kind in _XLSX_COLUMNS:
            value = getattr(line, name)
            row.append(cell(float(value), amount=True) if kind == "money"
                       else value.value if hasattr(value, "value") else value)
        sheet.append(row)
    sheet.append([])
    sheet.append([cell(title, strong=True) for title in
                  ("收款方合计", "收款方类型", "收款方", "承诺金额(元)", "本期核验使用(元)", "未核销(元)", "应付金额(元)")])
    for payee in view.payees:
        sheet.append(["", payee.payee_kind.value, payee.payee_name,
                      *(cell(float(amount), amount=True) for amount in (
                          payee.committed, payee.redeemed_in_period, payee.outstanding, payee.payable))])
    book.save(path)
