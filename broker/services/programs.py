"""What the staff programs screen (补贴项目) reads: every program with its balances, and one
program with its ledger rows and awards. Nothing here changes anything: creating a program,
changing its terms or status and moving its budget are `broker.services.policy` and
`broker.services.ledger`, the same functions the API calls.

Balances are the programs' ledger totals: `budget`, `committed`, `redeemed` and `written_off` on
each program row are moved by every ledger posting in the same flush, under the program's row
lock and its CHECK constraints, and `ledger.reconcile` recomputes them from the rows. They are
read from there, in the one query that reads the programs, not re-summed from the rows: on a
district's ledger of two million rows the GROUP BY of `ledger.balances` takes seconds on
PostgreSQL, the program rows a millisecond. Ledger rows are read a page at a time, newest
first, with one extra row to know whether an older page exists (no COUNT over a program's every
row); awards the latest few, with a count that stops at `AWARD_COUNT_LIMIT`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.models import Account, Award, Carrier, LedgerEntry, Role, StackGroup, Startup, SubsidyProgram
from broker.services import ledger
from broker.services.accounts import require_role
from broker.services.policy import get_program

LEDGER_PAGE = 50
LATEST_AWARDS = 20
AWARD_COUNT_LIMIT = 10_000  # counted exactly up to here; a program with more says "more than"


@dataclass(frozen=True)
class ProgramLine:
    """One program on the list, with its balances."""

    program: SubsidyProgram
    balance: ledger.Balance


def balance_of(program: SubsidyProgram) -> ledger.Balance:
    """The program's ledger totals, as every posting left them (and reconciliation checks)."""
    return ledger.Balance(program_id=program.id, budget=program.budget, committed=program.committed,
                          redeemed=program.redeemed, written_off=program.written_off)


def program_list(session: Session, actor: Account) -> list[ProgramLine]:
    """Every program, oldest first, each with its balances: one query whatever the ledger's size."""
    require_role(actor, Role.staff, Role.admin)
    return [ProgramLine(p, balance_of(p)) for p in session.scalars(sa.select(SubsidyProgram).order_by(SubsidyProgram.id))]


@dataclass(frozen=True)
class LedgerLine:
    entry: LedgerEntry
    actor_name: str | None


@dataclass(frozen=True)
class AwardLine:
    award: Award
    startup_name: str
    carrier_name: str


@dataclass(frozen=True)
class ProgramPage:
    """One program: its terms, balances, one page of ledger rows (newest first) and its latest awards."""

    program: SubsidyProgram
    balance: ledger.Balance
    entries: list[LedgerLine]
    page: int
    has_older: bool
    awards: list[AwardLine]
    award_count: int  # at most AWARD_COUNT_LIMIT + 1: more than the limit


def program_page(session: Session, actor: Account, program_id: int, page: int = 1) -> ProgramPage:
    """One program for the staff screen; NotFound if there is none."""
    require_role(actor, Role.staff, Role.admin)
    program = get_program(session, program_id)
    rows = session.execute(
        sa.select(LedgerEntry, Account.name).outerjoin(Account, Account.id == LedgerEntry.actor_id)
        .where(LedgerEntry.program_id == program.id).order_by(LedgerEntry.id.desc())
        .offset((page - 1) * LEDGER_PAGE).limit(LEDGER_PAGE + 1)
    ).all()
    awards = session.execute(
        sa.select(Award, Startup.name, Carrier.name).join(Startup, Startup.id == Award.startup_id)
        .join(Carrier, Carrier.id == Award.carrier_id)
        .where(Award.program_id == program.id).order_by(Award.id.desc()).limit(LATEST_AWARDS)
    ).all()
    return ProgramPage(
        program=program,
        balance=balance_of(program),
        entries=[LedgerLine(entry, name) for entry, name in rows[:LEDGER_PAGE]],
        page=page,
        has_older=len(rows) > LEDGER_PAGE,
        awards=[AwardLine(award, startup, carrier) for award, startup, carrier in awards],
        award_count=session.scalar(sa.select(sa.func.count()).select_from(
            sa.select(Award.id).where(Award.program_id == program.id).limit(AWARD_COUNT_LIMIT + 1).subquery())),
    )


@dataclass(frozen=True)
class TermsForm:
    """What the terms form starts from: the program (None: a new one), and what it may choose from."""

    program: SubsidyProgram | None
    carriers: list[tuple[int, str]]
    stack_groups: list[tuple[str, str, Decimal]]


def terms_form(session: Session, actor: Account, program_id: int | None = None) -> TermsForm:
    """The program whose terms are edited (NotFound if none), the carriers it may name as
    suppliers and the stack groups it may join."""
    require_role(actor, Role.staff, Role.admin)
    return TermsForm(
        program=None if program_id is None else get_program(session, program_id),
        carriers=[(i, name) for i, name in session.execute(sa.select(Carrier.id, Carrier.name).order_by(Carrier.id))],
        stack_groups=[(code, name, cap) for code, name, cap in session.execute(
            sa.select(StackGroup.code, StackGroup.name, StackGroup.combined_cap).order_by(StackGroup.code))],
    )
