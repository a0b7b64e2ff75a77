"""Carriers, startups, the accounts that act for them and their API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, Money, utcnow
from broker.errors import Conflict, InvalidInput
from broker.models.audit import Audited
from broker.models.enums import TURNED_AWAY_STARTUP_STATUSES, Role, Sector, StartupStatus, enum_column_type

TOKEN_PREFIX = "sab_"  # Silicon Alley Broker; makes a leaked token easy to recognise in scans
MAX_TOKEN_LIFETIME = dt.timedelta(days=365)  # the furthest expiry a minted token may be given


class Carrier(Audited, Base):
    __tablename__ = "carriers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    adapter: Mapped[str] = mapped_column(sa.String(64))
    active: Mapped[bool] = mapped_column(default=True)
    # 统一社会信用代码, set by staff or the carrier: what a startup's related parties are matched against.
    uscc: Mapped[str | None] = mapped_column(sa.String(18))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("code <> ''", name="code_not_empty"),
        sa.CheckConstraint("uscc IS NULL OR length(uscc) = 18", name="uscc_length"),
    )


# What district staff may correct on a startup's record. Never the credit code: that is the company
# itself (a wrong one is a registration in another's name, removed instead), nor the status or
# the key-enterprise mark, which have their own decisions.
STAFF_EDITABLE_STARTUP_FIELDS = frozenset({
    "name", "sector", "founded_on", "headcount", "contact_name", "contact_email", "contact_phone",
    "registered_in_district", "cycle_budget",
})

_TURNED_AWAY_SQL = ", ".join(f"'{s.value}'" for s in sorted(TURNED_AWAY_STARTUP_STATUSES))


class Startup(Audited, Base):
    __tablename__ = "startups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    uscc: Mapped[str] = mapped_column(sa.String(18))  # 统一社会信用代码: one holder, see __table_args__
    sector: Mapped[Sector] = mapped_column(enum_column_type(Sector))
    founded_on: Mapped[dt.date]
    headcount: Mapped[int]
    contact_name: Mapped[str] = mapped_column(sa.String(100))
    contact_email: Mapped[str] = mapped_column(sa.String(254))
    contact_phone: Mapped[str | None] = mapped_column(sa.String(32))
    registered_in_district: Mapped[bool] = mapped_column(default=True)
    key_enterprise: Mapped[bool] = mapped_column(default=False)  # 重点企业
    # The most the startup will spend in one cycle (None: no limit); the engine keeps to it.
    cycle_budget: Mapped[Decimal | None] = mapped_column(Money())
    # A startup a carrier owns may not be subsidised on that carrier's capacity.
    affiliated_carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"))
    status: Mapped[StartupStatus] = mapped_column(
        enum_column_type(StartupStatus), default=StartupStatus.pending
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[dt.datetime | None]
    # The latest staff decision on the registration (verified, rejected or removed): by whom, when;
    # the audit log keeps every earlier one. No relationship: accounts already point at startups.
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", use_alter=True))
    reviewed_at: Mapped[dt.datetime | None]
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text)  # why it was rejected or removed

    __table_args__ = (
        sa.CheckConstraint("length(uscc) = 18", name="uscc_length"),
        sa.CheckConstraint("headcount >= 0", name="headcount_not_negative"),
        sa.CheckConstraint("cycle_budget IS NULL OR cycle_budget >= 0", name="cycle_budget_not_negative"),
        sa.CheckConstraint(
            f"(status IN ({_TURNED_AWAY_SQL})) = (rejection_reason IS NOT NULL)", name="turned_away_has_reason"
        ),
        sa.CheckConstraint("rejection_reason IS NULL OR reviewed_at IS NOT NULL", name="turned_away_has_review_time"),
        # One registration holds a code; those turned away keep theirs, for the record, beside it.
        sa.Index(
            "uq_startups_uscc_holder",
            "uscc",
            unique=True,
            sqlite_where=sa.text(f"status NOT IN ({_TURNED_AWAY_SQL})"),
            postgresql_where=sa.text(f"status NOT IN ({_TURNED_AWAY_SQL})"),
        ),
    )

    @property
    def is_verified(self) -> bool:
        return self.status is StartupStatus.verified

    @property
    def is_turned_away(self) -> bool:
        return self.status in TURNED_AWAY_STARTUP_STATUSES

    def verify(self, by_id: int | None, now: dt.datetime) -> None:
        """Staff have checked the company: it may now request resources."""
        if self.status is StartupStatus.verified:
            raise Conflict("Startup is already verified.")
        self._refuse_if_turned_away()
        self.audit_as("verify")
        self.status = StartupStatus.verified
        self.verified_at = now
        self.reviewed_by_id, self.reviewed_at = by_id, self.verified_at

    def reject(self, by_id: int | None, reason: str, now: dt.datetime) -> None:
        """Staff turn down a pending registration; the caller ends its tokens. Its code is free again."""
        self._refuse_if_turned_away()
        if self.status is not StartupStatus.pending:
            raise Conflict(
                f"Startup {self.id} is {self.status.value}: only a pending registration is rejected "
                "(remove one made in another company's name instead)."
            )
        self.audit_as("reject")
        self._turn_away(StartupStatus.rejected, by_id, reason, now)

    def remove(self, by_id: int | None, reason: str, now: dt.datetime) -> None:
        """Staff found the registration made in another company's name, at any stage; the caller
        ends its tokens and requests. Its code is free again for the real company."""
        self._refuse_if_turned_away()
        self.audit_as("remove")
        self._turn_away(StartupStatus.removed, by_id, reason, now)

    def amend(self, changes: dict[str, Any]) -> None:
        """Staff correct the record (fields of STAFF_EDITABLE_STARTUP_FIELDS); the audit log keeps
        each field before and after. A registration turned away stays as it was decided."""
        unknown = sorted(set(changes) - STAFF_EDITABLE_STARTUP_FIELDS)
        if unknown:
            raise InvalidInput(f"Staff do not change {', '.join(unknown)} here.", {name: ["Not editable."] for name in unknown})
        self._refuse_if_turned_away()
        self.audit_as("amend_by_staff")
        for name, value in changes.items():
            setattr(self, name, value)

    def mark_key_enterprise(self, key: bool) -> None:
        """Staff mark (or unmark) a key enterprise (重点企业): from the next cycle its requests weigh
        more by the policy's key_enterprise_bonus."""
        self._refuse_if_turned_away()
        if self.key_enterprise is key:
            raise Conflict(f"Startup {self.id} is {'already' if key else 'not'} a key enterprise.")
        self.audit_as("mark_key_enterprise" if key else "unmark_key_enterprise")
        self.key_enterprise = key

    def _turn_away(self, status: StartupStatus, by_id: int | None, reason: str, now: dt.datetime) -> None:
        self.status = status
        self.rejection_reason = reason
        self.reviewed_by_id, self.reviewed_at = by_id, now

    def _refuse_if_turned_away(self) -> None:
        if self.is_turned_away:
            raise Conflict(f"Startup {self.id} was {self.status.value}; its company registers again instead.")


class Account(Audited, Base):
    """Someone who signs in: staff, an admin, or the one account of a carrier or a startup."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[Role] = mapped_column(enum_column_type(Role))
    name: Mapped[str] = mapped_column(sa.String(200))
    carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    startup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    carrier: Mapped[Carrier | None] = relationship()
    startup: Mapped[Startup | None] = relationship(foreign_keys=[startup_id])  # not startups.reviewed_by_id

    __table_args__ = (
        sa.CheckConstraint("(role = 'carrier') = (carrier_id IS NOT NULL)", name="carrier_role_has_carrier"),
        sa.CheckConstraint("(role = 'startup') = (startup_id IS NOT NULL)", name="startup_role_has_startup"),
    )


def hash_token(secret: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(Audited, Base):
    __tablename__ = "api_tokens"
    __audit_exclude__ = frozenset({"token_hash"})

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]  # None: until revoked
    # Who minted it through the API (staff or an admin); None for an account's first token.
    issued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))

    account: Mapped[Account] = relationship(foreign_keys=[account_id])

    @classmethod
    def issue(
        cls, account: Account, *, issued_by: Account | None = None, expires_at: dt.datetime | None = None
    ) -> tuple[ApiToken, str]:
        """A new token for `account` and its secret, which is never stored and shown only once."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls(
            account=account, prefix=secret[:12], token_hash=hash_token(secret), expires_at=expires_at,
            issued_by_id=issued_by.id if issued_by is not None else None,
        )
        return token, secret

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def acting_staff_id(self) -> int | None:
        """The staff member acting through this token: who minted it, when that was someone else."""
        return self.issued_by_id if self.issued_by_id not in (None, self.account_id) else None

    def revoke(self, now: dt.datetime) -> None:
        if self.revoked_at is not None:
            raise Conflict("Token is already revoked.")
        self.audit_as("revoke")
        self.revoked_at = now
