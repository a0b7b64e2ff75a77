"""People who sign in to the console, their invitations, password resets and sign-in attempts.

A person acts through an `Account` of their own (created with them), so every service that
takes an account as its actor works unchanged with `person.account`, and the audit log names
the person's account. A company's people follow the e-business licence (电子营业执照) model:
one legal representative, at most five administrators, and agents with scopes and an expiry.
"""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, utcnow
from broker.models.audit import Audited
from broker.models.enums import Role, enum_column_type
from broker.models.parties import Account


class Side(enum.StrEnum):
    district = "district"  # the district's staff and admins (Account.role staff/admin)
    startup = "startup"
    carrier = "carrier"


class CompanyRole(enum.StrEnum):
    """A company person's role as the e-business licence has it."""

    legal_representative = "legal_representative"  # 法定代表人: comes from the identity provider
    administrator = "administrator"  # 管理员: at most MAX_ADMINISTRATORS per company
    agent = "agent"  # 经办人: acts within scopes until an expiry


class PersonStatus(enum.StrEnum):
    active = "active"
    deactivated = "deactivated"


class AgentScope(enum.StrEnum):
    """What an agent may be given to do for the company (the console checks them per screen)."""

    requests = "requests"  # resource requests
    allocations = "allocations"  # accepting, using and reporting on allocations
    subsidies = "subsidies"  # subsidy claims, evidence, declarations
    appeals = "appeals"  # appeals (诉求) to the district
    settings = "settings"  # the company's record and contacts
    offers = "offers"  # a carrier's offers and catalogue


class SignInOutcome(enum.StrEnum):
    success = "success"
    wrong_password = "wrong_password"
    unknown_email = "unknown_email"
    locked = "locked"  # refused while locked out, even with the right password
    deactivated = "deactivated"
    agent_expired = "agent_expired"


MAX_ADMINISTRATORS = 5  # per company, as the e-business licence allows


def normalise_email(email: str) -> str:
    """Emails are compared case-insensitively: stored as typed but matched by this key."""
    return email.strip().lower()


class Person(Audited, Base):
    __tablename__ = "people"
    __audit_exclude__ = frozenset({"password_hash"})

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(254))
    email_key: Mapped[str] = mapped_column(sa.String(254), unique=True)  # normalise_email(email)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))  # argon2id; None: OIDC only
    # When the password was last set (not rehashed): what the audit log shows of a password change.
    password_changed_at: Mapped[dt.datetime | None]
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), unique=True)
    side: Mapped[Side] = mapped_column(enum_column_type(Side))
    company_role: Mapped[CompanyRole | None] = mapped_column(enum_column_type(CompanyRole))
    scopes: Mapped[list | None] = mapped_column(sa.JSON)  # an agent's AgentScope values
    agent_expires_at: Mapped[dt.datetime | None]
    status: Mapped[PersonStatus] = mapped_column(enum_column_type(PersonStatus), default=PersonStatus.active)
    failed_sign_ins: Mapped[int] = mapped_column(default=0)  # since the last success
    locked_until: Mapped[dt.datetime | None]
    last_sign_in_at: Mapped[dt.datetime | None]
    oidc_linked_at: Mapped[dt.datetime | None]  # the first sign-in through the identity provider
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[dt.datetime | None]
    # The newest event of the company's inbox the person has seen: a higher id is unread. Not a
    # foreign key: the inbox compares ids, and an event is never deleted under it.
    inbox_seen_event_id: Mapped[int | None]
    # The language of the person's emails, set when they switch the console's language.
    language: Mapped[str] = mapped_column(sa.String(8), default="zh_CN", server_default="zh_CN")
    # Email notifications: all on by default; `email_off` stops every one, `email_muted` lists
    # the event kinds (broker.services.notifications.KINDS) turned off one by one.
    email_off: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    email_muted: Mapped[list] = mapped_column(sa.JSON, default=list, server_default=sa.text("'[]'"))

    account: Mapped[Account] = relationship()

    __table_args__ = (
        sa.CheckConstraint("language IN ('zh_CN', 'en')", name="language_known"),
        sa.CheckConstraint("(side = 'district') = (company_role IS NULL)", name="company_role_for_companies"),
        sa.CheckConstraint("(company_role = 'agent') = (agent_expires_at IS NOT NULL)", name="agent_has_expiry"),
        sa.CheckConstraint("failed_sign_ins >= 0", name="failed_sign_ins_not_negative"),
        sa.CheckConstraint("(status = 'deactivated') = (deactivated_at IS NOT NULL)", name="deactivated_has_time"),
    )

    @property
    def is_active(self) -> bool:
        return self.status is PersonStatus.active

    @property
    def role(self) -> Role:
        return self.account.role

    @property
    def company_id(self) -> int | None:
        return self.account.startup_id if self.side is Side.startup else self.account.carrier_id

    def is_company_manager(self) -> bool:
        """Whether this person manages the company's people (its legal representative or an administrator)."""
        return self.company_role in (CompanyRole.legal_representative, CompanyRole.administrator)

    def agent_has_expired(self, now: dt.datetime) -> bool:
        return self.company_role is CompanyRole.agent and self.agent_expires_at is not None and self.agent_expires_at <= now

    def deactivate(self, now: dt.datetime) -> None:
        self.audit_as("deactivate")
        self.status = PersonStatus.deactivated
        self.deactivated_at = now


class SignInAttempt(Audited, Base):
    """One sign-in or failed try; its audit entry is what the audit log shows for it, for an
    unknown email too (person_id None, the email as typed kept here)."""

    __tablename__ = "sign_in_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    email: Mapped[str] = mapped_column(sa.String(254))
    email_key: Mapped[str] = mapped_column(sa.String(254), index=True)  # normalise_email(email)
    person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("people.id"), index=True)
    outcome: Mapped[SignInOutcome] = mapped_column(enum_column_type(SignInOutcome))
    source: Mapped[str] = mapped_column(sa.String(64))  # "password", "oidc", and where from (an IP address)


class Invitation(Audited, Base):
    """A single-use link that lets someone become a person with the role they were invited to."""

    __tablename__ = "invitations"
    __audit_exclude__ = frozenset({"token_hash"})

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    side: Mapped[Side] = mapped_column(enum_column_type(Side))
    role: Mapped[Role] = mapped_column(enum_column_type(Role))  # the account's role
    startup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    company_role: Mapped[CompanyRole | None] = mapped_column(enum_column_type(CompanyRole))
    scopes: Mapped[list | None] = mapped_column(sa.JSON)
    agent_expires_at: Mapped[dt.datetime | None]
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[dt.datetime]
    invited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))  # None: at the console
    accepted_at: Mapped[dt.datetime | None]
    person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("people.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("(side = 'district') = (company_role IS NULL)", name="company_role_for_companies"),
        sa.CheckConstraint("(side = 'startup') = (startup_id IS NOT NULL)", name="startup_side_has_startup"),
        sa.CheckConstraint("(side = 'carrier') = (carrier_id IS NOT NULL)", name="carrier_side_has_carrier"),
        sa.CheckConstraint("(accepted_at IS NULL) = (person_id IS NULL)", name="accepted_has_person"),
    )

    def usable(self, now: dt.datetime) -> bool:
        return self.accepted_at is None and now < self.expires_at

    def accept(self, person: Person, now: dt.datetime) -> None:
        self.audit_as("accept")
        self.accepted_at = now
        self.person = person

    def revoke(self, now: dt.datetime) -> None:
        """Withdraw the invitation: its link stops working now (it expires at once), and the
        audit entry names the change a revocation."""
        self.audit_as("revoke")
        self.expires_at = now

    person: Mapped[Person | None] = relationship()


class PasswordReset(Audited, Base):
    """A single-use "forgot password" link."""

    __tablename__ = "password_resets"
    __audit_exclude__ = frozenset({"token_hash"})

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship()

    def usable(self, now: dt.datetime) -> bool:
        return self.used_at is None and now < self.expires_at

    def use(self, now: dt.datetime) -> None:
        self.audit_as("use")
        self.used_at = now
