"""The subsidy ledger: posting a row (its caches move with it), balances derived from the rows, and
reconciliation of every cache against them.

Posting never commits: the use case that posts commits once. Whoever posts holds the program's
row lock (and the award's), taken in the lock order `broker.services.allocations` documents, so
the guard `committed <= budget` is checked on the row as it is now.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from broker.clock import local_date
from broker.db import Money, transaction
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import Account, Award, LedgerEntry, LedgerKind, Role, SubsidyProgram
from broker.models.ledger import BALANCES, moves
from broker.services import accounts  # a module, not its names: accounts imports allocations, which imports this

ZERO = Decimal("0.00")


def fiscal_year(now: dt.datetime) -> int:
    """China's fiscal year is the calendar year, in Asia/Shanghai."""
    return local_date(now).year


def post(
    session: Session,
    program: SubsidyProgram,
    kind: LedgerKind,
    amount: Decimal,
    *,
    key: str,
    now: dt.datetime,
    actor_id: int | None = None,
    award: Award | None = None,
    reverses: LedgerEntry | None = None,
    reason: str | None = None,
    note: str | None = None,
    reference: str | None = None,
    startup_id: int | None = None,
    carrier_id: int | None = None,
    usage_report_id: int | None = None,
    year: int | None = None,
) -> LedgerEntry:
    """Write one row and move its program's (and award's) cached balances by it, or refuse both."""
    if session.scalar(sa.select(LedgerEntry.id).where(LedgerEntry.idempotency_key == key)) is not None:
        raise Conflict(f"Ledger entry {key!r} was already posted.")
    if kind is LedgerKind.reverse:
        if reverses is None or reverses.program_id != program.id:
            raise InvalidInput("A reversal names an earlier row of the same program.", {"reverses": ["Not a row of this program."]})
        award = award or (session.get(Award, reverses.award_id) if reverses.award_id else None)
        left = reverses.amount - reversed_amount(session, reverses.id)
        if amount > left:
            raise Conflict(f"Ledger entry {reverses.id} has {left} left to reverse, not {amount}.")
    changes = moves(kind, amount, target_kind=reverses.kind if reverses else None, on_award=award is not None)
    program.move(changes, kind.value)
    if award is not None:
        award.move(changes, kind.value)
    entry = LedgerEntry(
        kind=kind, amount=amount, program_id=program.id, idempotency_key=key, created_at=now, actor_id=actor_id,
        award_id=award.id if award else None,
        allocation_id=award.allocation_id if award else None,
        startup_id=award.startup_id if award else startup_id,
        carrier_id=award.carrier_id if award else carrier_id,
        reverses_id=reverses.id if reverses else None,
        reason=reason, note=note, reference=reference, usage_report_id=usage_report_id,
        fiscal_year=year or (award.fiscal_year if award else fiscal_year(now)),
    )
    session.add(entry)
    session.flush()
    return entry


def reversed_amount(session: Session, entry_id: int) -> Decimal:
    return session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0, type_=Money()))
        .where(LedgerEntry.kind == LedgerKind.reverse, LedgerEntry.reverses_id == entry_id)
    )


def commit_row(session: Session, award: Award) -> LedgerEntry:
    """The row that made the award."""
    return session.scalars(
        sa.select(LedgerEntry).where(LedgerEntry.award_id == award.id, LedgerEntry.kind == LedgerKind.commit)
        .order_by(LedgerEntry.id)
    ).first()


# -- balances, derived from the rows ----------------------------------------------------------


@dataclass
class Balance:
    """One program's money (or one startup's share of it, or one fiscal year's), from its rows."""

    program_id: int | None = None
    startup_id: int | None = None
    fiscal_year: int | None = None
    budget: Decimal = ZERO
    committed: Decimal = ZERO
    redeemed: Decimal = ZERO
    written_off: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return self.budget - self.committed

    @property
    def outstanding(self) -> Decimal:
        """Committed, not yet redeemed by usage."""
        return self.committed - self.redeemed

    @property
    def payable(self) -> Decimal:
        """Redeemed, not yet written off."""
        return self.redeemed - self.written_off

    def add(self, changes: dict[str, Decimal]) -> None:
        for name, value in changes.items():
            setattr(self, name, getattr(self, name) + value)


_GROUPINGS = {"program": LedgerEntry.program_id, "startup": LedgerEntry.startup_id, "fiscal_year": LedgerEntry.fiscal_year}


def balances(session: Session, by: tuple[str, ...] = ("program",), **where: int | None) -> list[Balance]:
    """Balances per `by` (any of program, startup, fiscal_year), from the rows matching `where`
    (program_id, startup_id, carrier_id, fiscal_year)."""
    target = aliased(LedgerEntry)
    keys = [_GROUPINGS[name] for name in by]
    query = (
        sa.select(*keys, LedgerEntry.kind, target.kind, LedgerEntry.award_id.is_not(None),
                  sa.func.sum(LedgerEntry.amount, type_=Money()))
        .outerjoin(target, target.id == LedgerEntry.reverses_id)
        .group_by(*keys, LedgerEntry.kind, target.kind, LedgerEntry.award_id.is_not(None))
    )
    for name, value in where.items():
        if value is not None:
            query = query.where(getattr(LedgerEntry, name) == value)
    found: dict[tuple, Balance] = {}
    for *group, kind, target_kind, on_award, total in session.execute(query):
        balance = found.setdefault(tuple(group), Balance(**{f"{n}_id" if n != "fiscal_year" else n: v for n, v in zip(by, group)}))
        balance.add(moves(kind, total, target_kind=target_kind, on_award=on_award))
    return [found[k] for k in sorted(found, key=lambda k: tuple((v is None, v) for v in k))]


def program_balance(session: Session, program_id: int) -> Balance:
    found = balances(session, ("program",), program_id=program_id)
    return found[0] if found else Balance(program_id=program_id)


# -- reconciliation ---------------------------------------------------------------------------


@dataclass
class Difference:
    """A cache, or a rule, that the rows do not bear out."""

    what: str
    balance: str
    stored: Decimal | None
    derived: Decimal | None
    detail: str = ""


@dataclass
class Reconciliation:
    programs: list[tuple[SubsidyProgram, Balance]] = field(default_factory=list)
    awards_checked: int = 0
    rows: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def reconcile(session: Session) -> Reconciliation:
    """Recompute every program's and award's balances from the rows and compare the caches."""
    result = Reconciliation(rows=session.scalar(sa.select(sa.func.count(LedgerEntry.id))))
    derived = {b.program_id: b for b in balances(session, ("program",))}
    for program in session.scalars(sa.select(SubsidyProgram).order_by(SubsidyProgram.id)):
        balance = derived.get(program.id, Balance(program_id=program.id))
        result.programs.append((program, balance))
        _compare(result, f"program {program.code}", program, balance)
        if balance.committed > balance.budget:
            result.differences.append(Difference(f"program {program.code}", "committed", balance.budget, balance.committed,
                                                 "committed more than its budget"))
    per_award = _award_balances(session)
    for award in session.scalars(sa.select(Award).order_by(Award.id)):
        result.awards_checked += 1
        balance = per_award.pop(award.id, Balance())
        _compare(result, f"award {award.id}", award, balance, names=("committed", "redeemed", "written_off"))
        if balance.redeemed > balance.committed:
            result.differences.append(Difference(f"award {award.id}", "redeemed", balance.committed, balance.redeemed,
                                                 "redeemed more than it committed"))
    for award_id in per_award:
        result.differences.append(Difference(f"award {award_id}", "rows", None, None, "rows name an award that does not exist"))
    target = aliased(LedgerEntry)
    for row_id, reversed_total, amount in session.execute(
        sa.select(LedgerEntry.reverses_id, sa.func.sum(LedgerEntry.amount, type_=Money()), target.amount)
        .join(target, target.id == LedgerEntry.reverses_id)
        .where(LedgerEntry.kind == LedgerKind.reverse)
        .group_by(LedgerEntry.reverses_id, target.amount)
    ):
        if reversed_total > amount:
            result.differences.append(Difference(f"ledger entry {row_id}", "reversed", amount, reversed_total,
                                                 "reversed by more than its amount"))
    return result


def _award_balances(session: Session) -> dict[int, Balance]:
    target = aliased(LedgerEntry)
    found: dict[int, Balance] = defaultdict(Balance)
    for award_id, kind, target_kind, total in session.execute(
        sa.select(LedgerEntry.award_id, LedgerEntry.kind, target.kind, sa.func.sum(LedgerEntry.amount, type_=Money()))
        .outerjoin(target, target.id == LedgerEntry.reverses_id)
        .where(LedgerEntry.award_id.is_not(None))
        .group_by(LedgerEntry.award_id, LedgerEntry.kind, target.kind)
    ):
        found[award_id].add(moves(kind, total, target_kind=target_kind, on_award=True))
    return found


def _compare(result: Reconciliation, what: str, cached: object, balance: Balance, names: tuple[str, ...] = BALANCES) -> None:
    for name in names:
        stored, derived = getattr(cached, name), getattr(balance, name)
        if stored != derived:
            result.differences.append(Difference(what, name, stored, derived, "cache differs from the rows"))


# -- use cases: staff move budget, everyone reads what is theirs --------------------------------


def lock_program(session: Session, program_id: int) -> SubsidyProgram:
    """One program, locked and read as it is now; 404 if there is none."""
    program = session.scalar(
        sa.select(SubsidyProgram).where(SubsidyProgram.id == program_id).with_for_update(of=SubsidyProgram)
        .execution_options(populate_existing=True)
    )
    if program is None:
        raise NotFound("No such subsidy program.")
    return program


@transaction
def deposit(session: Session, actor: Account, program_id: int, data: dict[str, Any], now: dt.datetime) -> LedgerEntry:
    """Staff record budget coming in for a program, with its funding document."""
    accounts.require_role(actor, Role.staff, Role.admin)
    program = lock_program(session, program_id)
    return post(session, program, LedgerKind.deposit, data["amount"], key=f"deposit:{uuid.uuid4()}", now=now,
                actor_id=actor.id, reference=data["funding_document"], note=data.get("note"), year=data.get("fiscal_year"))


@transaction
def adjust(session: Session, actor: Account, program_id: int, data: dict[str, Any], now: dt.datetime) -> LedgerEntry:
    """Staff correct a program's budget, or what one award earned, with a reason and a note."""
    accounts.require_role(actor, Role.staff, Role.admin)
    program = lock_program(session, program_id)
    award = None
    if data.get("award_id") is not None:
        award = session.scalar(
            sa.select(Award).where(Award.id == data["award_id"]).with_for_update(of=Award)
            .execution_options(populate_existing=True)
        )
        if award is None or award.program_id != program.id:
            raise InvalidInput("No such award in this program.", {"award_id": ["Not an award of this program."]})
    return post(session, program, LedgerKind.adjust, data["amount"], key=f"adjust:{uuid.uuid4()}", now=now,
                actor_id=actor.id, award=award, reason=data["reason"].value, note=data["note"])


def _own(actor: Account, query: sa.Select, startup_column: Any, carrier_column: Any) -> sa.Select:
    """A startup sees its own rows, a carrier what it supplied, staff and admins everything."""
    if actor.role is Role.startup:
        return query.where(startup_column == actor.startup_id)
    if actor.role is Role.carrier:
        return query.where(carrier_column == actor.carrier_id)
    accounts.require_role(actor, Role.staff, Role.admin)
    return query


def list_entries(session: Session, actor: Account, filters: dict[str, Any]) -> sa.Select:
    """Ledger rows the actor may see, oldest first (the order an auditor reads them)."""
    query = _own(actor, sa.select(LedgerEntry).order_by(LedgerEntry.id), LedgerEntry.startup_id, LedgerEntry.carrier_id)
    for name, value in filters.items():
        query = query.where(getattr(LedgerEntry, name) == value)
    return query


def list_awards(session: Session, actor: Account, filters: dict[str, Any]) -> sa.Select:
    query = _own(actor, sa.select(Award).order_by(Award.id), Award.startup_id, Award.carrier_id)
    for name, value in filters.items():
        query = query.where(getattr(Award, name) == value)
    return query


def get_award(session: Session, actor: Account, award_id: int) -> Award:
    """One award the actor may see, with its ledger rows."""
    award = session.scalar(_own(actor, sa.select(Award).where(Award.id == award_id), Award.startup_id, Award.carrier_id))
    if award is None:
        raise NotFound(f"No award {award_id}.")
    award.entries = list(session.scalars(sa.select(LedgerEntry).where(LedgerEntry.award_id == award.id).order_by(LedgerEntry.id)))
    return award


def visible_balances(session: Session, actor: Account, by: tuple[str, ...], filters: dict[str, Any]) -> list[Balance]:
    """Balances the actor may see: a startup its own share, a carrier what it supplied."""
    if actor.role is Role.startup:
        filters = {**filters, "startup_id": actor.startup_id}
    elif actor.role is Role.carrier:
        filters = {**filters, "carrier_id": actor.carrier_id}
    else:
        accounts.require_role(actor, Role.staff, Role.admin)
    return balances(session, by, **filters)
