"""Public notice (公示): a frozen batch of awards shown to anyone for a number of working days, and
the objections lodged against it.

An item keeps the startup's name, the program's name and the amount as they were when the batch
was frozen: the public list must not change when a startup renames itself. It holds nothing
private (no USCC, no contact, no ids but its own).
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, Money, utcnow
from broker.errors import Conflict
from broker.models.audit import Audited
from broker.models.enums import enum_column_type

MAX_WORKING_DAYS = 60
MAX_BATCH = 500  # awards in one notice
MAX_OBJECTION_TEXT = 2000
MAX_OBJECTION_NAME = 100
MAX_OBJECTION_CONTACT = 200
MAX_ANSWER = 2000


class NoticeStatus(enum.StrEnum):
    open = "open"  # on show; objections may be lodged until the end of its last working day
    final = "final"  # ended with every objection answered: its remaining awards may be disbursed


class ObjectionStatus(enum.StrEnum):
    open = "open"
    upheld = "upheld"  # the award it names leaves the batch (its commit is reversed)
    dismissed = "dismissed"


class Notice(Audited, Base):
    """One batch of awards on public notice, from `starts_on` for `working_days` working days."""

    __tablename__ = "subsidy_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    # Set when the batch was frozen by program and fiscal year; each item names its own program.
    program_id: Mapped[int | None] = mapped_column(sa.ForeignKey("subsidy_programs.id"), index=True)
    fiscal_year: Mapped[int | None]
    starts_on: Mapped[dt.date]
    working_days: Mapped[int]
    ends_on: Mapped[dt.date]  # the last working day, on the Chinese calendar (broker.workdays)
    status: Mapped[NoticeStatus] = mapped_column(enum_column_type(NoticeStatus), default=NoticeStatus.open)
    created_by: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finalised_at: Mapped[dt.datetime | None]

    items: Mapped[list[NoticeItem]] = relationship(back_populates="notice", order_by="NoticeItem.id")

    __table_args__ = (
        sa.CheckConstraint(f"working_days BETWEEN 1 AND {MAX_WORKING_DAYS}", name="working_days_range"),
        sa.CheckConstraint("starts_on <= ends_on", name="period_ordered"),
        sa.CheckConstraint("(status = 'final') = (finalised_at IS NOT NULL)", name="final_has_time"),
    )

    def finalise(self, now: dt.datetime) -> None:
        if self.status is not NoticeStatus.open:
            raise Conflict(f"Notice {self.id} is already {self.status.value}.")
        self.audit_as("finalise")
        self.status = NoticeStatus.final
        self.finalised_at = now


class NoticeItem(Audited, Base):
    """One award in a notice, as the public sees it, frozen when the batch was made."""

    __tablename__ = "subsidy_notice_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_notices.id"), index=True)
    # An award is noticed once: after a notice it is final or removed, never noticed again.
    award_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_awards.id"), unique=True)
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_programs.id"))
    startup_name: Mapped[str] = mapped_column(sa.String(200))
    program_name: Mapped[str] = mapped_column(sa.String(200))
    amount: Mapped[Decimal] = mapped_column(Money())
    removed_at: Mapped[dt.datetime | None]  # an upheld objection took it out of the batch

    notice: Mapped[Notice] = relationship(back_populates="items")

    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)

    def remove(self, now: dt.datetime) -> None:
        if self.removed_at is not None:
            raise Conflict(f"Notice item {self.id} was already removed.")
        self.audit_as("remove")
        self.removed_at = now


class Objection(Audited, Base):
    """An objection anyone lodged during a notice, against the batch or one item of it, and its answer."""

    __tablename__ = "subsidy_objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_notices.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("subsidy_notice_items.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(MAX_OBJECTION_NAME))
    contact: Mapped[str] = mapped_column(sa.String(MAX_OBJECTION_CONTACT))
    text: Mapped[str] = mapped_column(sa.Text)
    lodged_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[ObjectionStatus] = mapped_column(enum_column_type(ObjectionStatus), default=ObjectionStatus.open)
    answer: Mapped[str | None] = mapped_column(sa.Text)
    answered_by: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    answered_at: Mapped[dt.datetime | None]

    __table_args__ = (
        sa.CheckConstraint(
            "(status = 'open') = (answer IS NULL AND answered_by IS NULL AND answered_at IS NULL)",
            name="answered_when_decided",
        ),
        # Upholding removes an award: an objection to the batch as a whole names none to remove.
        sa.CheckConstraint("status <> 'upheld' OR item_id IS NOT NULL", name="upheld_names_item"),
        sa.CheckConstraint(f"length(text) BETWEEN 1 AND {MAX_OBJECTION_TEXT}", name="text_length"),
    )

    def decide(self, status: ObjectionStatus, answer: str, actor_id: int, now: dt.datetime) -> None:
        if self.status is not ObjectionStatus.open:
            raise Conflict(f"Objection {self.id} was already answered ({self.status.value}).")
        self.audit_as(status.value)
        self.status, self.answer, self.answered_by, self.answered_at = status, answer, actor_id, now
