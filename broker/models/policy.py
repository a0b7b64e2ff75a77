"""District policy (weights, share cap, approval window) and subsidy programs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from broker.db import Base, Money, ScaledDecimal, utcnow
from broker.errors import Conflict
from broker.models.audit import Audited
from broker.models.enums import ProgramStatus, enum_column_type
from broker.resources import KINDS, QUANTITY_PLACES


def Ratio() -> ScaledDecimal:
    return ScaledDecimal(4)


class Policy(Audited, Base):
    """One version of the matching policy; the newest row is in force."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    sector_weights: Mapped[dict] = mapped_column(sa.JSON)  # sector -> weight as a decimal string
    default_weight: Mapped[Decimal] = mapped_column(Ratio())
    key_enterprise_bonus: Mapped[Decimal] = mapped_column(Ratio())
    wait_bonus_per_cycle: Mapped[Decimal] = mapped_column(Ratio())
    share_cap: Mapped[Decimal] = mapped_column(Ratio())
    approval_window_hours: Mapped[int]
    # kind -> the most one request may ask for, a decimal string; a kind not named: its default
    max_request_quantity: Mapped[dict] = mapped_column(sa.JSON, default=dict, server_default=sa.text("'{}'"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))

    __table_args__ = (
        sa.CheckConstraint("share_cap > 0 AND share_cap <= 10000", name="share_cap_fraction"),
        sa.CheckConstraint("default_weight > 0", name="default_weight_positive"),
        sa.CheckConstraint("key_enterprise_bonus >= 0 AND wait_bonus_per_cycle >= 0", name="bonuses_not_negative"),
        sa.CheckConstraint("approval_window_hours BETWEEN 1 AND 720", name="approval_window_range"),
    )

    def request_limit(self, kind: str) -> Decimal:
        """The most one request of `kind` may ask for: staff's figure, else the kind's default."""
        value = (self.max_request_quantity or {}).get(kind)
        limit = KINDS[kind].max_request if value is None else Decimal(value)
        return limit.quantize(Decimal(1).scaleb(-QUANTITY_PLACES))

    @property
    def request_limits(self) -> dict[str, Decimal]:
        return {kind: self.request_limit(kind) for kind in KINDS}


class SubsidyProgram(Audited, Base):
    """A subsidy (e.g. the Tokens/API special subsidy, a compute voucher 算力券) with its budget."""

    __tablename__ = "subsidy_programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kinds: Mapped[list] = mapped_column(sa.JSON)
    rate: Mapped[Decimal] = mapped_column(Ratio())
    cap_per_startup: Mapped[Decimal] = mapped_column(Money())
    cap_period_months: Mapped[int] = mapped_column(default=12)
    budget: Mapped[Decimal] = mapped_column(Money())
    committed: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    redeemed: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    eligible_sectors: Mapped[list | None] = mapped_column(sa.JSON)  # None: every sector
    require_in_district: Mapped[bool] = mapped_column(default=True)
    max_company_age_years: Mapped[int | None]
    max_headcount: Mapped[int | None]
    exclude_carrier_affiliates: Mapped[bool] = mapped_column(default=True)
    starts_on: Mapped[dt.date]
    ends_on: Mapped[dt.date]
    status: Mapped[ProgramStatus] = mapped_column(enum_column_type(ProgramStatus), default=ProgramStatus.open)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("rate > 0 AND rate <= 10000", name="rate_fraction"),
        sa.CheckConstraint("budget > 0 AND cap_per_startup > 0", name="amounts_positive"),
        sa.CheckConstraint("committed >= 0 AND committed <= budget", name="committed_within_budget"),
        sa.CheckConstraint("redeemed >= 0 AND redeemed <= committed", name="redeemed_within_committed"),
        sa.CheckConstraint("starts_on < ends_on", name="period_ordered"),
        sa.CheckConstraint("cap_period_months BETWEEN 1 AND 120", name="cap_period_range"),
    )

    def commit(self, amount: Decimal) -> None:
        """Promise `amount` of the budget to one allocation (the caller holds this row's lock)."""
        if self.committed + amount > self.budget:
            raise Conflict(f"Subsidy program {self.code} has {self.budget - self.committed} left, not {amount}.")
        self.audit_as("commit")
        self.committed += amount

    def give_back(self, amount: Decimal) -> None:
        """An allocation ended before using `amount` of what was committed to it: the budget has it again."""
        self.audit_as("give_back")
        self.committed -= amount

    def redeem(self, amount: Decimal) -> None:
        """Usage turned `amount` of a commitment into money paid out."""
        self.audit_as("redeem")
        self.redeemed += amount


class SubsidyCommitment(Audited, Base):
    """What a program promised to pay for one approved allocation; unique, so never twice."""

    __tablename__ = "subsidy_commitments"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_programs.id"), index=True)
    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id"), unique=True)
    startup_id: Mapped[int] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    redeemed: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    # What went back to the program's budget because the allocation ended before using it.
    released: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    released_at: Mapped[dt.datetime | None]
    written_off_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("redeemed >= 0 AND redeemed <= amount", name="redeemed_within_amount"),
        sa.CheckConstraint("released >= 0 AND redeemed + released <= amount", name="released_within_amount"),
    )

    @property
    def unused(self) -> Decimal:
        """What usage may still redeem: neither redeemed nor given back."""
        return self.amount - self.redeemed - self.released

    def redeem(self, amount: Decimal) -> None:
        self.audit_as("redeem")
        self.redeemed += amount

    def release(self, now: dt.datetime) -> Decimal:
        """The allocation ended: give back what was never used, and return how much that is."""
        if self.released_at is not None:
            raise Conflict(f"Subsidy commitment {self.id} was already released.")
        unused = self.unused
        self.audit_as("release")
        self.released += unused
        self.released_at = now
        return unused


class IdempotencyRecord(Base):
    """What a POST carrying an Idempotency-Key created, so that a retry returns it again.

    Written in the same transaction as the object it points at, so a crash can never leave
    a created object without its key, or a key without its object.
    """

    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    entity_type: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("account_id", "key"),)
