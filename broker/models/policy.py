"""District policy (weights, share cap, approval window) and subsidy programs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, Money, Quantity, Ratio, utcnow
from broker.errors import Conflict
from broker.models.audit import Audited
from broker.models.enums import ProgramStatus, enum_column_type
from broker.models.ledger import BALANCES, Claimant, ProgramMode, StackGroup
from broker.resources import KINDS, QUANTITY_PLACES


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


_STATUS_CHANGES = {
    "pause": ({ProgramStatus.open}, ProgramStatus.paused),
    "reopen": ({ProgramStatus.paused, ProgramStatus.draft}, ProgramStatus.open),
    "close": ({ProgramStatus.open, ProgramStatus.paused, ProgramStatus.draft}, ProgramStatus.closed),
}


class SubsidyProgram(Audited, Base):
    """A subsidy (the Tokens/API special subsidy 模型券, a compute voucher 算力券) and its terms.

    Terms apply to awards made after they change: an award keeps the rate it was made at.
    `budget`, `committed`, `redeemed` and `written_off` are caches of the program's ledger rows.
    """

    __tablename__ = "subsidy_programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    mode: Mapped[ProgramMode] = mapped_column(enum_column_type(ProgramMode), default=ProgramMode.after)
    claimant: Mapped[Claimant] = mapped_column(enum_column_type(Claimant), default=Claimant.startup)
    kinds: Mapped[list | None] = mapped_column(sa.JSON)  # None: every kind
    excluded_kinds: Mapped[list] = mapped_column(sa.JSON, default=list)
    # Only what these carriers, or these offers, supply (None: any).
    supplier_carrier_ids: Mapped[list | None] = mapped_column(sa.JSON)
    supplier_offer_ids: Mapped[list | None] = mapped_column(sa.JSON)
    rate: Mapped[Decimal] = mapped_column(Ratio())
    # [{"rate": "0.5", "attributes": {"gpu_model": ["910B"]}, "max_company_age_years": 3,
    #   "sectors": [...]}]: the highest rate among the rules that match, and `rate`, applies.
    rate_rules: Mapped[list] = mapped_column(sa.JSON, default=list)
    cap_per_startup: Mapped[Decimal] = mapped_column(Money())  # per fiscal year
    cap_per_allocation: Mapped[Decimal | None] = mapped_column(Money())
    # allotment: the units each startup may have free per fiscal year
    allotment_per_startup: Mapped[Decimal | None] = mapped_column(Quantity())
    # What must be uploaded and verified before redemptions are paid out (contract, invoice, payment,
    # usage_statement); and whether awards go through a public notice (公示) before payment.
    evidence_required: Mapped[list] = mapped_column(sa.JSON, default=list)
    requires_notice: Mapped[bool] = mapped_column(default=True)
    stack_group_id: Mapped[int | None] = mapped_column(sa.ForeignKey("subsidy_stack_groups.id"))
    budget: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    committed: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    redeemed: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    written_off: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    eligible_sectors: Mapped[list | None] = mapped_column(sa.JSON)  # None: every sector
    require_in_district: Mapped[bool] = mapped_column(default=True)
    max_company_age_years: Mapped[int | None]
    max_headcount: Mapped[int | None]
    exclude_carrier_affiliates: Mapped[bool] = mapped_column(default=True)
    # The exclusion rule for other public subsidies (e.g. 未获得其他市级算力补贴): a subsidy the
    # startup declared for the same contract at one of these levels blocks the program, if it
    # is for one of these kinds (None: whatever the kind).
    excludes_subsidy_levels: Mapped[list] = mapped_column(sa.JSON, default=list)
    excludes_subsidy_kinds: Mapped[list | None] = mapped_column(sa.JSON)
    # The allocation's start date must fall in [starts_on, ends_on).
    starts_on: Mapped[dt.date]
    ends_on: Mapped[dt.date]
    status: Mapped[ProgramStatus] = mapped_column(enum_column_type(ProgramStatus), default=ProgramStatus.open)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    stack_group = relationship(StackGroup, lazy="joined")

    __table_args__ = (
        sa.CheckConstraint("rate > 0 AND rate <= 10000", name="rate_fraction"),
        sa.CheckConstraint("cap_per_startup > 0", name="cap_positive"),
        sa.CheckConstraint("cap_per_allocation IS NULL OR cap_per_allocation > 0", name="allocation_cap_positive"),
        sa.CheckConstraint("budget >= 0", name="budget_not_negative"),
        sa.CheckConstraint("committed >= 0 AND committed <= budget", name="committed_within_budget"),
        sa.CheckConstraint("redeemed >= 0 AND redeemed <= committed", name="redeemed_within_committed"),
        sa.CheckConstraint("written_off >= 0", name="written_off_not_negative"),
        sa.CheckConstraint("starts_on < ends_on", name="period_ordered"),
        sa.CheckConstraint("mode <> 'allotment' OR allotment_per_startup > 0", name="allotment_sized"),
    )

    @property
    def remaining(self) -> Decimal:
        return self.budget - self.committed

    def change_status(self, change: str) -> None:
        """pause (no new awards), reopen, or close for good; awards already made stay."""
        allowed, new = _STATUS_CHANGES[change]
        if self.status not in allowed:
            raise Conflict(f"Subsidy program {self.code} is {self.status.value}: it cannot {change}.")
        self.audit_as(change)
        self.status = new

    def move(self, changes: dict[str, Decimal], action: str) -> None:
        """Move the cached balances as one ledger row does (the caller holds this row's lock)."""
        self.audit_as(action)
        after = {name: getattr(self, name) + changes.get(name, Decimal(0)) for name in BALANCES}
        if after["committed"] > after["budget"]:
            raise Conflict(f"Subsidy program {self.code} has {self.remaining} left, not {changes.get('committed')}.")
        if after["budget"] < 0 or after["committed"] < 0 or after["redeemed"] < 0 or after["written_off"] < 0:
            raise Conflict(f"Subsidy program {self.code} cannot go below zero: {changes}.")
        if after["redeemed"] > after["committed"]:
            raise Conflict(f"Subsidy program {self.code} would have redeemed more than it committed.")
        for name, value in after.items():
            setattr(self, name, value)


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
