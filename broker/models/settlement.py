"""Settlement (核销): a statement per program and period freezes what each award may be paid, staff
approve it (two of them over a threshold: four eyes), and the approval writes the write-off rows.
A clawback bans the startup from the program until a date (`SubsidyBan`)."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, Money, utcnow
from broker.errors import Conflict, Forbidden
from broker.models.audit import Audited
from broker.models.enums import enum_column_type
from broker.models.ledger import Claimant, NoticeState


class StatementStatus(enum.StrEnum):
    draft = "draft"  # built, lines frozen; waiting for its approvals
    approved = "approved"  # approved with nothing to write off (every line held or nothing payable)
    written_off = "written_off"  # approved, and its write-off rows are written


class ClawbackReason(enum.StrEnum):
    false_evidence = "false_evidence"
    related_party = "related_party"  # a related party found later
    non_use = "non_use"
    double_subsidy = "double_subsidy"


class SettlementStatement(Audited, Base):
    """What one program pays for one period (a quarter `2026-Q4` or a month `2026-11`, Asia/Shanghai)."""

    __tablename__ = "settlement_statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_programs.id"), index=True)
    period: Mapped[str] = mapped_column(sa.String(7))
    # The period in Shanghai time, as UTC instants: [starts_at, ends_at).
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    status: Mapped[StatementStatus] = mapped_column(enum_column_type(StatementStatus), default=StatementStatus.draft)
    total_payable: Mapped[Decimal] = mapped_column(Money())
    # 2 when the total is over the four-eyes threshold in force when it was built, else 1.
    approvals_needed: Mapped[int]
    built_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))  # None: built by the CLI
    built_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    first_approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    first_approved_at: Mapped[dt.datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))  # the final approval
    approved_at: Mapped[dt.datetime | None]
    disbursement_reference: Mapped[str | None] = mapped_column(sa.String(100))

    program = relationship("SubsidyProgram", lazy="joined", innerjoin=True)
    lines: Mapped[list[SettlementLine]] = relationship(
        back_populates="statement", order_by="SettlementLine.id", cascade="all")

    __table_args__ = (
        sa.UniqueConstraint("program_id", "period"),
        sa.CheckConstraint("total_payable >= 0", name="total_not_negative"),
        sa.CheckConstraint("approvals_needed IN (1, 2)", name="approvals_one_or_two"),
        sa.CheckConstraint("starts_at < ends_at", name="period_ordered"),
        sa.CheckConstraint("status = 'draft' OR (approved_by_id IS NOT NULL AND disbursement_reference IS NOT NULL)",
                           name="approved_documented"),
    )

    def approve(self, actor_id: int, reference: str, now: dt.datetime) -> bool:
        """Record one staff approval; True when it is the final one (the write-off may be written).

        Nobody approves a statement they built, nor approves one twice (four eyes)."""
        if self.status is not StatementStatus.draft:
            raise Conflict(f"Settlement statement {self.id} is already {self.status.value}.")
        if self.built_by_id == actor_id:
            raise Forbidden(f"Approval of one's own statement is refused: you built statement {self.id}; "
                            "another staff account must approve it.")
        if self.first_approved_by_id == actor_id:
            raise Conflict(f"You already approved statement {self.id}; over the four-eyes threshold a second, "
                           "different staff account must approve it.")
        self.audit_as("approve")
        # The reference each approver gives is kept (so the audit log has the first one too);
        # the final approval's is the one written on the write-off rows.
        self.disbursement_reference = reference
        if self.approvals_needed == 2 and self.first_approved_by_id is None:
            self.first_approved_by_id, self.first_approved_at = actor_id, now
            return False
        self.approved_by_id, self.approved_at = actor_id, now
        self.status = StatementStatus.written_off if self.total_payable > 0 else StatementStatus.approved
        return True


class SettlementLine(Base):
    """One award on a statement, frozen when the statement was built: what it may be paid, or why it is held."""

    __tablename__ = "settlement_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed with the line's id (ix_settlement_lines_statement_id_id): a statement's lines a page at a time.
    statement_id: Mapped[int] = mapped_column(sa.ForeignKey("settlement_statements.id"))
    award_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_awards.id"), index=True)
    # Whom it is paid to: the startup, or the carrier where the program's claimant is the carrier.
    payee_kind: Mapped[Claimant] = mapped_column(enum_column_type(Claimant))
    payee_startup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    payee_carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    payee_name: Mapped[str] = mapped_column(sa.String(200))
    committed: Mapped[Decimal] = mapped_column(Money())
    redeemed_before: Mapped[Decimal] = mapped_column(Money())  # by usage before the period
    redeemed_in_period: Mapped[Decimal] = mapped_column(Money())  # by usage in the period
    written_off_before: Mapped[Decimal] = mapped_column(Money())
    outstanding: Mapped[Decimal] = mapped_column(Money())  # redeemed by the period's end, not written off
    evidence: Mapped[str] = mapped_column(sa.String(16))  # not_required, complete, incomplete
    notice_state: Mapped[NoticeState] = mapped_column(enum_column_type(NoticeState))
    payable: Mapped[Decimal] = mapped_column(Money())  # what the approval writes off
    held: Mapped[str | None] = mapped_column(sa.String(300))  # why it is not (all) payable

    statement: Mapped[SettlementStatement] = relationship(back_populates="lines")

    __table_args__ = (
        sa.Index("ix_settlement_lines_statement_id_id", "statement_id", "id"),
        sa.UniqueConstraint("statement_id", "award_id"),
        sa.CheckConstraint("payable >= 0", name="payable_not_negative"),
        sa.CheckConstraint("(payee_kind = 'startup' AND payee_startup_id IS NOT NULL) OR "
                           "(payee_kind = 'carrier' AND payee_carrier_id IS NOT NULL)", name="payee_named"),
    )


class SubsidyBan(Audited, Base):
    """After a clawback: the startup gets nothing more from the program until `until` (exclusive)."""

    __tablename__ = "subsidy_bans"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_programs.id"), index=True)
    startup_id: Mapped[int] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    award_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_awards.id"), unique=True)
    until: Mapped[dt.date]
    reason: Mapped[ClawbackReason] = mapped_column(enum_column_type(ClawbackReason))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
