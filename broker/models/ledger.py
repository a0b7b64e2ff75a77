"""The subsidy ledger: every movement of subsidy money as an immutable row, and the awards it pays.

A row is never updated or deleted (triggers refuse it, as for the audit log). Balances are
derived from the rows; the totals stored on programs and awards are caches that every posting
moves in the same flush and that `broker ledger reconcile` checks against the rows.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, Money, Quantity, Ratio, utcnow
from broker.errors import Conflict
from broker.models.audit import Audited
from broker.models.enums import enum_column_type


class LedgerKind(enum.StrEnum):
    deposit = "deposit"  # budget coming in, with its funding document number
    commit = "commit"  # an award on an approved allocation
    redeem = "redeem"  # spend against an award, from carrier-reported usage
    reverse = "reverse"  # undoes (part of) one earlier row, linked to it
    adjust = "adjust"  # a signed correction with a reason: on an award, or on the budget
    write_off = "write_off"  # 核销: redeemed money settled and paid, with its disbursement reference


class AdjustReason(enum.StrEnum):
    correction = "correction"
    clawback = "clawback"
    good_faith = "good_faith"


class ProgramMode(enum.StrEnum):
    after = "after"  # 事后补贴: a share of the cost, paid after usage
    instant = "instant"  # 即时抵扣: deducted at approval, the startup sees and pays the net price
    allotment = "allotment"  # a free allotment of units, no cash value, not transferable


class Claimant(enum.StrEnum):
    startup = "startup"
    carrier = "carrier"  # the provider claims settlement (as Beijing's 2026 service vouchers)


class EvidenceType(enum.StrEnum):
    contract = "contract"
    invoice = "invoice"
    payment = "payment"  # proof of payment
    usage_statement = "usage_statement"


class NoticeState(enum.StrEnum):
    """Where an award stands in the public notice (公示) its program may require before payment."""

    not_noticed = "not_noticed"
    in_notice = "in_notice"  # frozen into a notice batch; objections may be lodged
    final = "final"  # the notice ended without an upheld objection: it may be disbursed
    removed = "removed"  # an upheld objection took it out (its commit was reversed)


class AwardStatus(enum.StrEnum):
    committed = "committed"  # usage may redeem what is left
    released = "released"  # closed: what usage had not redeemed went back to the budget
    clawed_back = "clawed_back"



# What one row moves, per yuan of its amount: a reverse moves what its target moved, the other
# way; an adjust on an award moves what the startup earned (committed and redeemed together),
# one without an award moves the budget. The one place the rule is written: posting moves the
# caches by it and reconciliation recomputes them by it.
BALANCES = ("budget", "committed", "redeemed", "written_off")
_MOVES: dict[LedgerKind, tuple[str, ...]] = {
    LedgerKind.deposit: ("budget",),
    LedgerKind.commit: ("committed",),
    LedgerKind.redeem: ("redeemed",),
    LedgerKind.write_off: ("written_off",),
}
REVERSIBLE = frozenset(_MOVES)


def moves(kind: LedgerKind, amount: Decimal, *, target_kind: LedgerKind | None = None, on_award: bool = False) -> dict[str, Decimal]:
    """How a row of `kind` and `amount` changes each balance (of its program, and of its award)."""
    if kind is LedgerKind.reverse:
        if target_kind not in REVERSIBLE:
            raise Conflict(f"A {target_kind} row cannot be reversed; post an adjustment instead.")
        return {name: -amount for name in _MOVES[target_kind]}
    if kind is LedgerKind.adjust:
        return {"committed": amount, "redeemed": amount} if on_award else {"budget": amount}
    return {name: amount for name in _MOVES[kind]}


class StackGroup(Audited, Base):
    """Programs that may pay together for one allocation (市区协同), within a combined share of its cost."""

    __tablename__ = "subsidy_stack_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    combined_cap: Mapped[Decimal] = mapped_column(Ratio())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.CheckConstraint("combined_cap > 0 AND combined_cap <= 10000", name="combined_cap_fraction"),)


class Award(Audited, Base):
    """What one program pays towards one approved allocation; one per allocation and program.

    `committed`, `redeemed` and `written_off` are caches of the award's ledger rows.
    """

    __tablename__ = "subsidy_awards"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_programs.id"), index=True)
    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id"), index=True)
    startup_id: Mapped[int] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    fiscal_year: Mapped[int]
    mode: Mapped[ProgramMode] = mapped_column(enum_column_type(ProgramMode))
    claimant: Mapped[Claimant] = mapped_column(enum_column_type(Claimant))
    rate: Mapped[Decimal] = mapped_column(Ratio())  # the share of the cost it pays
    quantity: Mapped[Decimal] = mapped_column(Quantity())  # the units it covers
    gross: Mapped[Decimal] = mapped_column(Money())  # the allocation's cost it was figured on
    amount: Mapped[Decimal] = mapped_column(Money())  # what was awarded at approval; usage redeems it pro rata
    committed: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    redeemed: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    written_off: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    status: Mapped[AwardStatus] = mapped_column(enum_column_type(AwardStatus), default=AwardStatus.committed)
    # Set by the evidence review: every piece the program requires is verified (always, if it requires none).
    evidence_complete: Mapped[bool] = mapped_column(default=False)
    notice_state: Mapped[NoticeState] = mapped_column(enum_column_type(NoticeState), default=NoticeState.not_noticed)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]

    program = relationship("SubsidyProgram", lazy="joined", innerjoin=True)

    __table_args__ = (
        sa.UniqueConstraint("allocation_id", "program_id"),
        sa.CheckConstraint("amount > 0 AND quantity > 0", name="amount_positive"),
        sa.CheckConstraint("committed >= 0", name="committed_not_negative"),
        sa.CheckConstraint("redeemed >= 0 AND redeemed <= committed", name="redeemed_within_committed"),
        sa.CheckConstraint("written_off >= 0", name="written_off_not_negative"),
        sa.CheckConstraint("rate > 0 AND rate <= 10000", name="rate_fraction"),
    )

    @property
    def unused(self) -> Decimal:
        """What usage may still redeem."""
        return self.committed - self.redeemed if self.status is AwardStatus.committed else Decimal(0)

    @property
    def payable(self) -> Decimal:
        """Redeemed and not yet written off (negative: money to recover after a clawback)."""
        return self.redeemed - self.written_off

    def move(self, changes: dict[str, Decimal], action: str) -> None:
        """Move the cached balances as one ledger row does (the caller holds this row's lock)."""
        committed = self.committed + changes.get("committed", Decimal(0))
        redeemed = self.redeemed + changes.get("redeemed", Decimal(0))
        written_off = self.written_off + changes.get("written_off", Decimal(0))
        if not 0 <= redeemed <= committed or written_off < 0:
            raise Conflict(f"Award {self.id} cannot take {changes}: it has {self.committed} committed, "
                           f"{self.redeemed} redeemed, {self.written_off} written off.")
        self.audit_as(action)
        self.committed, self.redeemed, self.written_off = committed, redeemed, written_off

    def close(self, status: AwardStatus, now: dt.datetime) -> None:
        # A released award may still be clawed back (what it redeemed is taken back by an adjustment).
        reopened = self.status is AwardStatus.released and status is AwardStatus.clawed_back
        if self.status is not AwardStatus.committed and not reopened:
            raise Conflict(f"Award {self.id} is already {self.status.value}.")
        self.audit_as(status.value)
        self.status = status
        self.closed_at = now

    def move_notice(self, state: NoticeState) -> None:
        """Into a notice (from not_noticed), or out of one: final when it ended, removed by an upheld objection."""
        allowed = {NoticeState.in_notice: NoticeState.not_noticed}.get(state, NoticeState.in_notice)
        if self.notice_state is not allowed:
            raise Conflict(f"Award {self.id} is {self.notice_state.value} in its public notice: it cannot become {state.value}.")
        self.audit_as(f"notice_{state.value}")
        self.notice_state = state


class LedgerEntry(Base):
    """One movement of subsidy money. Written once; a database trigger refuses any change."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[LedgerKind] = mapped_column(enum_column_type(LedgerKind))
    amount: Mapped[Decimal] = mapped_column(Money())  # stored in integer fen; signed only for adjust
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_programs.id"), index=True)
    startup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    allocation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("allocations.id"), index=True)
    award_id: Mapped[int | None] = mapped_column(sa.ForeignKey("subsidy_awards.id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_entries.id"), index=True)
    usage_report_id: Mapped[int | None] = mapped_column(sa.ForeignKey("usage_reports.id"))
    reason: Mapped[str | None] = mapped_column(sa.String(32))
    note: Mapped[str | None] = mapped_column(sa.Text)
    # A deposit's funding document (沪经信智〔2025〕489号); a write-off's disbursement reference.
    reference: Mapped[str | None] = mapped_column(sa.String(100))
    fiscal_year: Mapped[int]
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (
        sa.CheckConstraint(
            "(kind = 'adjust' AND amount <> 0 AND reason IS NOT NULL) OR (kind <> 'adjust' AND amount > 0)",
            name="amount_sign",
        ),
        sa.CheckConstraint("kind <> 'reverse' OR reverses_id IS NOT NULL", name="reverse_links"),
        sa.CheckConstraint("kind <> 'deposit' OR reference IS NOT NULL", name="deposit_documented"),
        sa.CheckConstraint("kind NOT IN ('commit', 'redeem', 'write_off') OR award_id IS NOT NULL", name="award_rows_name_award"),
        sa.CheckConstraint("fiscal_year BETWEEN 2000 AND 2200", name="fiscal_year_range"),
        # A program's deposits (its funding documents, on every statement page): a few rows among
        # the program's hundred thousand, found without reading the others.
        sa.Index("ix_ledger_entries_deposits", "program_id", "id", sqlite_where=sa.text("kind = 'deposit'"),
                 postgresql_where=sa.text("kind = 'deposit'")),
    )
