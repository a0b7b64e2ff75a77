"""People: sign-in (password and OIDC), invitations, deactivation, password reset, own API tokens.

A person acts through their own `Account`: pass `person.account` as the actor to every other
service. Each use case here names the acting person's account in the audit log (`set_actor`).

Error messages are English; what the console shows is chosen by the web layer: password
refusals carry a key (`PasswordRefused.key`, see broker/services/passwords.py), the others are
the module constants below (`WRONG_CREDENTIALS`...), which the catalogues translate.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from broker import outbox
from broker.clock import SHANGHAI
from broker.db import transaction, unit_of_work
from broker.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound, TooManyAttempts
from broker.models import TURNED_AWAY_STARTUP_STATUSES, Account, ApiToken, Carrier, Role, Startup
from broker.models.audit import set_actor
from broker.models.parties import MAX_TOKEN_LIFETIME, hash_token
from broker.models.people import (
    MAX_ADMINISTRATORS,
    AgentScope,
    CompanyRole,
    Invitation,
    PasswordReset,
    Person,
    PersonStatus,
    Side,
    SignInAttempt,
    SignInOutcome,
    normalise_email,
)
from broker.services import accounts
from broker.services.passwords import check_password, hash_password, needs_rehash, spend_a_verification, verify_password
from broker.uniques import conflict_for, duplicate
from config import DEFAULT_DISTRICT_CONTACT

LOCK_AFTER = 5  # failures in a row before a lockout
FIRST_LOCKOUT = dt.timedelta(minutes=1)  # then doubling with each further failure
LONGEST_LOCKOUT = dt.timedelta(hours=1)
UNKNOWN_EMAIL_MEMORY = dt.timedelta(days=1)  # how far back an unknown email's failures count
INVITATION_LIFETIME = dt.timedelta(hours=72)
RESET_LIFETIME = dt.timedelta(hours=1)
MAX_AGENT_TERM = dt.timedelta(days=366)
# Where the console serves the links sent by email (the web layer routes these paths).
INVITATION_PATH = "/invitations/"
RESET_PATH = "/password-reset/"

WRONG_CREDENTIALS = "The email or the password is wrong."
DEACTIVATED = "This person has been deactivated: ask your administrator or district staff."
AGENT_EXPIRED = "Your authority as the company's agent has expired: ask your administrator to renew it."
BAD_LINK = "This link is not valid: it has been used, it has expired, or it never existed."
ONLY_ADMIN_INVITES_ADMIN = "Only an admin invites an admin, or withdraws an admin's invitation."
ONLY_ADMIN_DEACTIVATES_ADMIN = "Only an admin deactivates an admin."
ALREADY_DEACTIVATED = "This person is already deactivated."
INVITATION_GONE = "This invitation has already been accepted, withdrawn or has expired."
LAST_COMPANY_ADMINISTRATOR = "This is the company's last administrator: invite another before deactivating them."
NOT_YOURSELF = "You cannot deactivate yourself: another staff member or admin does."
LAST_ADMIN = "This is the last active admin of the platform: invite another admin before deactivating them."
NO_SUCH_COMPANY = "No company with this unified social credit code is registered on the broker."
NOT_REGISTERED = "This identity is not registered on the platform: ask district staff or your administrator for an invitation."
UNVERIFIED = "(no verified identity)"  # the email recorded for a unified-login answer that did not hold

DISTRICT_ROLES = frozenset({Role.staff, Role.admin})
ROLE_NAMES = {  # (zh_CN, en), for emails
    Role.staff: ("区科委工作人员", "district staff"),
    Role.admin: ("平台管理员", "administrator of the broker"),
    CompanyRole.legal_representative: ("法定代表人", "legal representative"),
    CompanyRole.administrator: ("管理员", "administrator"),
    CompanyRole.agent: ("经办人", "agent"),
}


# --- sign-in -------------------------------------------------------------------------------


def lockout_for(failures: int) -> dt.timedelta | None:
    """How long `failures` failures in a row lock a person out: none before LOCK_AFTER, then
    1 minute, doubling with each further failure, at most an hour."""
    if failures < LOCK_AFTER:
        return None
    return min(LONGEST_LOCKOUT, FIRST_LOCKOUT * 2 ** (failures - LOCK_AFTER))


def sign_in(session: Session, email: str, password: str, now: dt.datetime, source: str = "password") -> Person:
    """The person with this email and password, signed in; every try is recorded and audited.

    An unknown email and a wrong password get the same NotAuthenticated and take about the same
    time (a dummy hash is checked). After LOCK_AFTER failures in a row the person is locked out
    (TooManyAttempts with `retry_at`), even the right password, for `lockout_for(failures)`.
    Success resets the count and rehashes the password if the hasher's parameters changed.
    The attempt is committed before any refusal is raised, so failures count.
    """
    with unit_of_work(session):
        person = session.scalar(
            _person_with_email(email)
            .with_for_update().execution_options(populate_existing=True)
        )
        refusal = _check_password_sign_in(session, person, email, password, now, source)
    if refusal is not None:
        raise refusal
    assert person is not None
    return person


def _check_password_sign_in(
    session: Session, person: Person | None, email: str, password: str, now: dt.datetime, source: str
) -> Exception | None:
    if person is None:
        spend_a_verification(password)
        return _unknown_email(session, email, source, now)
    if person.locked_until is not None and now < person.locked_until:
        spend_a_verification(password)
        _record(session, email, person, SignInOutcome.locked, source, now)
        return _locked(person.locked_until)
    if not verify_password(person.password_hash, password):
        person.audit_as("sign_in_failed")
        person.failed_sign_ins += 1
        lockout = lockout_for(person.failed_sign_ins)
        if lockout is not None:
            person.locked_until = now + lockout
        _record(session, email, person, SignInOutcome.wrong_password, source, now)
        return _locked(person.locked_until) if lockout is not None else NotAuthenticated(WRONG_CREDENTIALS)
    refusal = _refuse_inactive(session, person, email, source, now)
    if refusal is not None:
        return refusal
    assert person.password_hash is not None
    if needs_rehash(person.password_hash):
        person.password_hash = hash_password(password)
    _succeed(session, person, email, source, now)
    return None


def _unknown_email(session: Session, email: str, source: str, now: dt.datetime) -> Exception:
    """An email no person has is locked out exactly as a person would be, counted from its
    recorded failures (of the last UNKNOWN_EMAIL_MEMORY), so a lockout tells nothing either."""
    failures, last = session.execute(
        sa.select(sa.func.count(SignInAttempt.id), sa.func.max(SignInAttempt.at)).where(
            SignInAttempt.email_key == normalise_email(email), SignInAttempt.outcome == SignInOutcome.unknown_email,
            SignInAttempt.at > now - UNKNOWN_EMAIL_MEMORY,
        )
    ).one()
    lockout = lockout_for(failures)
    if lockout is not None and last is not None and now < last + lockout:
        _record(session, email, None, SignInOutcome.locked, source, now)
        return _locked(last + lockout)
    _record(session, email, None, SignInOutcome.unknown_email, source, now)
    lockout = lockout_for(failures + 1)
    return _locked(now + lockout) if lockout is not None else NotAuthenticated(WRONG_CREDENTIALS)


def _locked(until: dt.datetime) -> TooManyAttempts:
    local = until.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    return TooManyAttempts(f"Too many failed sign-ins: try again after {local} (Asia/Shanghai).", until)


def _refuse_inactive(session: Session, person: Person, email: str, source: str, now: dt.datetime) -> Exception | None:
    if not person.is_active:
        _record(session, email, person, SignInOutcome.deactivated, source, now)
        return NotAuthenticated(DEACTIVATED)
    if person.agent_has_expired(now):
        _record(session, email, person, SignInOutcome.agent_expired, source, now)
        return NotAuthenticated(AGENT_EXPIRED)
    return None


def _succeed(session: Session, person: Person, email: str, source: str, now: dt.datetime) -> None:
    set_actor(session, person.account_id)
    person.audit_as("sign_in")
    person.failed_sign_ins = 0
    person.locked_until = None
    person.last_sign_in_at = now
    _record(session, email, person, SignInOutcome.success, source, now)


def _record(
    session: Session, email: str, person: Person | None, outcome: SignInOutcome, source: str, now: dt.datetime
) -> None:
    attempt = SignInAttempt(
        at=now, email=email.strip()[:254], email_key=normalise_email(email)[:254], person_id=person.id if person else None, outcome=outcome, source=source[:64]
    )
    attempt.audit_as("sign_in" if outcome is SignInOutcome.success else "sign_in_failed")
    session.add(attempt)


def sign_in_verified(session: Session, person: Person, now: dt.datetime, source: str = "oidc") -> Person:
    """Sign in a person whose identity something else verified (the OIDC callback): refused if
    deactivated or an expired agent; recorded and audited like a password sign-in. It ends a
    password lockout too, as a successful sign-in does."""
    with unit_of_work(session):
        current = session.scalar(
            sa.select(Person).where(Person.id == person.id).with_for_update().execution_options(populate_existing=True)
        )
        if current is None:
            raise NotFound("No such person.")
        refusal = _refuse_inactive(session, current, current.email, source, now)
        if refusal is None:
            _succeed(session, current, current.email, source, now)
    if refusal is not None:
        raise refusal
    return current


@transaction
def find_or_link(session: Session, uscc: str, email: str, name: str, role: str | CompanyRole | None, now: dt.datetime) -> Person:
    """The person an identity provider vouches for: a company's person by its credit code and email.

    - No startup (one holding the code: not rejected or removed) or carrier with `uscc`: NotFound.
    - A person with `email` of that company: returned, and on their first OIDC sign-in
      `oidc_linked_at` is set (audited as link_oidc). Their role is not changed by the claim.
    - A person with `email` of another company or the district: Forbidden.
    - No person with `email`: if `role` is legal_representative, they are created as the
      company's legal representative (no password; OIDC only until they reset one), unless the
      company already has an active one (Conflict: staff deactivate the old one first).
      Any other role: NotFound, telling them to ask the company's administrator for an invitation.
    The caller then calls `sign_in_verified` (this does not sign in).
    """
    side, company_id = _company_by_uscc(session, uscc)
    person = session.scalar(
        _person_with_email(email).execution_options(populate_existing=True)
    )
    if person is not None:
        if person.side is not side or person.company_id != company_id:
            raise Forbidden("This email belongs to a person of another organisation on the broker.")
        if person.oidc_linked_at is None:
            set_actor(session, person.account_id)
            person.audit_as("link_oidc")
            person.oidc_linked_at = now
        return person
    if role != CompanyRole.legal_representative.value:
        raise NotFound("You have no access to this company on the broker yet: ask its administrator for an invitation.")
    _lock_company(session, side, company_id)
    if _count_active(session, side, company_id, CompanyRole.legal_representative):
        raise Conflict("The company already has a legal representative on the broker: district staff deactivate them first.")
    person = _new_person(
        session, email=email, name=name or email, password_hash=None, side=side,
        startup_id=company_id if side is Side.startup else None, carrier_id=company_id if side is Side.carrier else None,
        company_role=CompanyRole.legal_representative,
    )
    set_actor(session, person.account_id)
    person.audit_as("link_oidc")
    person.oidc_linked_at = now
    return person


def _company_by_uscc(session: Session, uscc: str) -> tuple[Side, int]:
    code = uscc.strip().upper()
    startup_id = session.scalar(
        sa.select(Startup.id).where(Startup.uscc == code, Startup.status.not_in(TURNED_AWAY_STARTUP_STATUSES))
    )
    if startup_id is not None:
        return Side.startup, startup_id
    carrier_id = session.scalar(sa.select(Carrier.id).where(Carrier.uscc == code).order_by(Carrier.id))
    if carrier_id is not None:
        return Side.carrier, carrier_id
    raise NotFound(NO_SUCH_COMPANY)


def get_active_person(session: Session, person_id: int, now: dt.datetime) -> Person | None:
    """The person a browser session names, if they may still act (active, not an expired agent)."""
    person = session.get(Person, person_id)
    if person is None or not person.is_active or person.agent_has_expired(now):
        return None
    return person


def _person_with_email(email: str) -> sa.Select:
    return sa.select(Person).where(Person.email_key == normalise_email(email))


def district_person_by_email(session: Session, email: str) -> Person:
    """The district person (staff or admin) the identity provider vouches for by email; district
    people are never created at sign-in, only invited, so an unknown one is refused as a wrong
    sign-in is."""
    person = session.scalar(_person_with_email(email))
    if person is None or person.side is not Side.district:
        raise NotAuthenticated(NOT_REGISTERED)
    return person


@transaction
def record_refused_sign_in(session: Session, email: str | None, source: str, now: dt.datetime) -> None:
    """A sign-in refused before any person was found (the unified login vouched for nobody the
    platform knows, or its answer did not hold): recorded and audited like an unknown email."""
    _record(session, email or UNVERIFIED, None, SignInOutcome.unknown_email, source, now)


def person_for_account(session: Session, account_id: int) -> Person | None:
    return session.scalar(sa.select(Person).where(Person.account_id == account_id))


# --- people and their companies ------------------------------------------------------------


def _new_person(
    session: Session, *, email: str, name: str, password_hash: str | None, side: Side,
    role: Role | None = None, startup_id: int | None = None, carrier_id: int | None = None,
    company_role: CompanyRole | None = None, scopes: list[str] | None = None,
    agent_expires_at: dt.datetime | None = None,
) -> Person:
    key = normalise_email(email)
    if session.scalar(sa.select(Person.id).where(Person.email_key == key)) is not None:
        raise duplicate("uq_people_email_key")
    account_role = role if side is Side.district else Role(side.value)
    account = Account(role=account_role, name=name, startup_id=startup_id, carrier_id=carrier_id)
    session.add(account)
    session.flush()
    person = Person(
        name=name, email=email.strip(), email_key=key, password_hash=password_hash, account=account, side=side,
        company_role=company_role, scopes=scopes, agent_expires_at=agent_expires_at, status=PersonStatus.active,
        failed_sign_ins=0,
    )
    session.add(person)
    session.flush()
    return person


def _lock_company(session: Session, side: Side, company_id: int) -> None:
    """Lock the company's row: of two changes to its people at once, the second sees the first."""
    model: Any = Startup if side is Side.startup else Carrier
    found = session.scalar(sa.select(model.id).where(model.id == company_id).with_for_update())
    if found is None:
        raise NotFound("No such company.")


def _count_active(session: Session, side: Side, company_id: int, company_role: CompanyRole) -> int:
    column = Account.startup_id if side is Side.startup else Account.carrier_id
    return session.scalar(
        sa.select(sa.func.count(Person.id)).join(Account, Person.account_id == Account.id).where(
            Person.side == side, column == company_id, Person.company_role == company_role,
            Person.status == PersonStatus.active,
        )
    ) or 0


def _refuse_sixth_administrator(session: Session, side: Side, company_id: int) -> None:
    _lock_company(session, side, company_id)
    if _count_active(session, side, company_id, CompanyRole.administrator) >= MAX_ADMINISTRATORS:
        raise Conflict(
            f"A company has at most {MAX_ADMINISTRATORS} administrators: deactivate one first.",
            {"company_role": [f"At most {MAX_ADMINISTRATORS} administrators."]},
        )


def _require_active(actor: Person) -> None:
    if not actor.is_active:
        raise Forbidden(DEACTIVATED)


@transaction
def create_company_person(session: Session, side: Side, company_id: int, email: str, name: str, password: str) -> Person:
    """A company's legal representative with a password, made at the server (the demo's founder and
    carrier person); a company that already has an active one is refused, as at the unified login."""
    if side is Side.district:
        raise InvalidInput("A company's person belongs to a startup or a carrier.", {"side": ["Must be startup or carrier."]})
    check_password(password)
    _lock_company(session, side, company_id)
    if _count_active(session, side, company_id, CompanyRole.legal_representative):
        raise Conflict("The company already has a legal representative on the broker: district staff deactivate them first.")
    return _new_person(
        session, email=email, name=name.strip(), password_hash=hash_password(password), side=side,
        startup_id=company_id if side is Side.startup else None, carrier_id=company_id if side is Side.carrier else None,
        company_role=CompanyRole.legal_representative,
    )


@transaction
def register_startup(
    session: Session, registration: dict[str, Any], *, email: str, name: str, password: str | None, now: dt.datetime,
    district_contact: str = DEFAULT_DISTRICT_CONTACT, source: str = "register",
) -> Person:
    """A company registers itself at the console: the startup (pending until staff verify it, as
    `accounts.register_startup` makes it, from data the registration schema loaded) and the person
    registering it as its legal representative, signed in, in one transaction.

    `password` None: the identity provider vouched for the person (the unified login found no
    company with their code), so they sign in there and are linked to it (`oidc_linked_at`);
    else the password rules apply. A bad name, email or password, an email a person already has,
    or a code another registration holds: InvalidInput or Conflict naming the field, nothing made.
    """
    name = name.strip()
    if not name:
        raise InvalidInput("A name is needed.", {"person_name": ["Must not be empty."]})
    email = _checked_email(session, email)
    if password is not None:
        check_password(password)
    try:
        startup = accounts.add_startup(session, registration, district_contact)
        startup.created_at = now
        session.flush()
        person = _new_person(
            session, email=email, name=name, password_hash=None if password is None else hash_password(password),
            side=Side.startup, startup_id=startup.id, company_role=CompanyRole.legal_representative,
        )
    except IntegrityError as error:  # a registration or a person made at the same time got there first
        raise conflict_for(error, district_contact=district_contact) or error from error
    set_actor(session, person.account_id)
    if password is None:
        person.audit_as("link_oidc")
        person.oidc_linked_at = now
        session.flush()
    _succeed(session, person, email, source, now)
    return person


@transaction
def create_district_person(session: Session, email: str, name: str, role: Role, password: str) -> Person:
    """A staff or admin person with a password, made at the server (the demo's staff person)."""
    if role not in DISTRICT_ROLES:
        raise InvalidInput("District people are staff or admins.", {"role": ["Must be staff or admin."]})
    check_password(password)
    return _new_person(session, email=email, name=name.strip(), password_hash=hash_password(password),
                       side=Side.district, role=role)


def list_people(session: Session, actor: Person) -> list[Person]:
    """District staff see everyone; a company's legal representative and administrators see its people."""
    query = sa.select(Person).join(Account, Person.account_id == Account.id).order_by(Person.id)
    if actor.side is Side.district:
        return list(session.scalars(query))
    if not actor.is_company_manager():
        raise Forbidden("Only the company's legal representative and administrators manage its people.")
    column = Account.startup_id if actor.side is Side.startup else Account.carrier_id
    return list(session.scalars(query.where(Person.side == actor.side, column == actor.company_id)))


def list_invitations(session: Session, actor: Person, now: dt.datetime) -> list[Invitation]:
    """The invitations not yet accepted nor expired that `actor` may see (as `list_people`)."""
    query = sa.select(Invitation).where(Invitation.accepted_at.is_(None), Invitation.expires_at > now).order_by(Invitation.id)
    if actor.side is not Side.district:
        if not actor.is_company_manager():
            raise Forbidden("Only the company's legal representative and administrators manage its people.")
        column = Invitation.startup_id if actor.side is Side.startup else Invitation.carrier_id
        query = query.where(Invitation.side == actor.side, column == actor.company_id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class PendingInvitation:
    invitation: Invitation
    invited_by: str | None  # the inviter's name; None: invited at the server's console


@dataclass(frozen=True)
class DistrictPeople:
    """One page of the district's people (staff and admins), how many match in all, and the
    district invitations still pending."""

    people: list[Person]
    total: int
    invitations: list[PendingInvitation]


def district_people(
    session: Session, actor: Person, now: dt.datetime, *, search: str = "", offset: int = 0, limit: int = 50
) -> DistrictPeople:
    """The district's staff and admins, for district people only: active first, then in the order
    they joined; `search` matches a part of the name or email. Paged and counted in SQL (three
    queries whatever the district's size), with the pending invitations."""
    _require_district(actor)
    where = [Person.side == Side.district]
    term = search.strip().lower()
    if term:
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(sa.or_(sa.func.lower(Person.name).like(pattern, escape="\\"),
                            Person.email_key.like(pattern, escape="\\")))
    total = session.scalar(sa.select(sa.func.count(Person.id)).where(*where)) or 0
    rows = session.scalars(
        sa.select(Person).join(Person.account).options(contains_eager(Person.account)).where(*where)
        .order_by(sa.case((Person.status == PersonStatus.active, 0), else_=1), Person.id)
        .offset(offset).limit(limit)
    )
    return DistrictPeople(list(rows), total, _pending_district_invitations(session, now))


def district_person(session: Session, actor: Person, person_id: int) -> Person:
    """One district person, for district people only (a company's person is not found here)."""
    _require_district(actor)
    person = session.get(Person, person_id)
    if person is None or person.side is not Side.district:
        raise NotFound("No such person.")
    return person


def _pending_district_invitations(session: Session, now: dt.datetime, limit: int = 100) -> list[PendingInvitation]:
    """The district invitations not yet accepted nor expired, soonest to expire first, with who
    sent each (one query; they live 72 hours, so there are few)."""
    rows = session.execute(
        sa.select(Invitation, Account.name).outerjoin(Account, Invitation.invited_by_id == Account.id)
        .where(Invitation.side == Side.district, Invitation.accepted_at.is_(None), Invitation.expires_at > now)
        .order_by(Invitation.expires_at, Invitation.id).limit(limit)
    )
    return [PendingInvitation(invitation, inviter) for invitation, inviter in rows]


@dataclass(frozen=True)
class CompanyPeople:
    """A company's page for one of its people: its record (a startup's or a carrier's), one page
    of its people (active first, then in the order they joined) and how many in all, its pending
    invitations, and whether `actor` manages its people (invites, withdraws, deactivates)."""

    startup: Startup | None
    carrier: Carrier | None
    people: list[Person]
    total: int
    invitations: list[PendingInvitation]
    manages: bool


def company_people(session: Session, actor: Person, now: dt.datetime, *, offset: int = 0, limit: int = 50) -> CompanyPeople:
    """Any active person of a company sees its record, its people and its pending invitations;
    only its legal representative and administrators may change them (the changes check again).
    Three queries whatever the company's size, besides the company's row."""
    _require_active(actor)
    if actor.side is Side.district or actor.company_id is None:
        raise Forbidden("A company's page is for its own people.")
    column = Account.startup_id if actor.side is Side.startup else Account.carrier_id
    where = [Person.side == actor.side, column == actor.company_id]
    total = session.scalar(sa.select(sa.func.count(Person.id)).join(Person.account).where(*where)) or 0
    rows = session.scalars(
        sa.select(Person).join(Person.account).options(contains_eager(Person.account)).where(*where)
        .order_by(sa.case((Person.status == PersonStatus.active, 0), else_=1), Person.id)
        .offset(offset).limit(limit)
    )
    invited_to = Invitation.startup_id if actor.side is Side.startup else Invitation.carrier_id
    invitations = session.execute(
        sa.select(Invitation, Account.name).outerjoin(Account, Invitation.invited_by_id == Account.id)
        .where(Invitation.side == actor.side, invited_to == actor.company_id, Invitation.accepted_at.is_(None),
               Invitation.expires_at > now)
        .order_by(Invitation.expires_at, Invitation.id).limit(100)
    )
    startup = session.get(Startup, actor.company_id) if actor.side is Side.startup else None
    carrier = session.get(Carrier, actor.company_id) if actor.side is Side.carrier else None
    return CompanyPeople(startup, carrier, list(rows), total,
                         [PendingInvitation(invitation, inviter) for invitation, inviter in invitations],
                         actor.is_company_manager())


def _require_district(actor: Person) -> None:
    if actor.side is not Side.district:
        raise Forbidden("Only district staff manage the district's people.")


# --- invitations ---------------------------------------------------------------------------


@transaction
def invite(
    session: Session, actor: Person, email: str, now: dt.datetime, base_url: str, *,
    name: str | None = None, role: Role | None = None, startup_id: int | None = None, carrier_id: int | None = None,
    company_role: CompanyRole | None = None, scopes: Iterable[str] | None = None,
    agent_expires_at: dt.datetime | None = None,
) -> tuple[Invitation, str]:
    """Invite someone by email: returns the invitation and its link (also emailed, via the outbox).
    The rules are `_invite`'s."""
    return _invite(session, actor, email, now, base_url, name=name, role=role, startup_id=startup_id,
                   carrier_id=carrier_id, company_role=company_role, scopes=scopes, agent_expires_at=agent_expires_at)


def _invite(
    session: Session, actor: Person, email: str, now: dt.datetime, base_url: str, *,
    name: str | None = None, role: Role | None = None, startup_id: int | None = None, carrier_id: int | None = None,
    company_role: CompanyRole | None = None, scopes: Iterable[str] | None = None,
    agent_expires_at: dt.datetime | None = None,
) -> tuple[Invitation, str]:
    """An invitation inside the caller's transaction, emailed through the outbox:

    - District people (`role` staff or admin): invited by district staff; admins only by an admin.
    - A company's person (`company_role` administrator or agent): invited by the company's legal
      representative or an administrator, for their own company. District staff invite a
      company's first administrator (`startup_id` or `carrier_id`, while it has no active one).
    - An agent needs `scopes` (AgentScope values) and `agent_expires_at` (within a year).
    - At most MAX_ADMINISTRATORS active administrators (checked here, and again on acceptance).
    The link is single-use and expires after INVITATION_LIFETIME; only its hash is stored.
    """
    _require_active(actor)
    set_actor(session, actor.account_id)
    email = _checked_email(session, email)
    if company_role is None:
        side, role = _district_invitation(actor, role)
        company_id = None
    else:
        company_role = CompanyRole(company_role)
        side, company_id = _company_invitation(session, actor, company_role, startup_id, carrier_id)
        role = Role(side.value)
    agent_scopes, expires = _agent_terms(company_role, scopes, agent_expires_at, now)
    if company_role is CompanyRole.administrator:
        assert company_id is not None
        _refuse_sixth_administrator(session, side, company_id)
    secret = secrets.token_urlsafe(32)
    invitation = Invitation(
        email=email, name=(name or "").strip() or None, side=side, role=role,
        startup_id=company_id if side is Side.startup else None, carrier_id=company_id if side is Side.carrier else None,
        company_role=company_role, scopes=agent_scopes, agent_expires_at=expires, token_hash=hash_token(secret),
        expires_at=now + INVITATION_LIFETIME, invited_by_id=actor.account_id,
    )
    session.add(invitation)
    session.flush()
    link = _link(base_url, INVITATION_PATH, secret)
    _email_invitation(session, invitation, link, actor.name, _company_name(session, invitation), now)
    return invitation, link


def _checked_email(session: Session, email: str) -> str:
    """The email to invite, trimmed: an address (one @, a dotted domain, no spaces, at most 254
    characters) that no person has yet, in any case."""
    email = email.strip()
    local, at, domain = email.partition("@")
    if (not at or not local or "@" in domain or "." not in domain or domain.startswith(".") or domain.endswith(".")
            or any(c.isspace() for c in email) or len(email) > 254):
        raise InvalidInput("An email address is needed.", {"email": ["Not a valid email address."]})
    if session.scalar(sa.select(Person.id).where(Person.email_key == normalise_email(email))) is not None:
        raise duplicate("uq_people_email_key")
    return email


def _district_invitation(actor: Person, role: Role | None) -> tuple[Side, Role]:
    if role not in DISTRICT_ROLES:
        raise InvalidInput("Invite district people as staff or admin, or a company's person with a company role.",
                           {"role": ["Must be staff or admin."]})
    if actor.side is not Side.district:
        raise Forbidden("Only district staff invite district people.")
    if role is Role.admin and actor.role is not Role.admin:
        raise Forbidden(ONLY_ADMIN_INVITES_ADMIN)
    return Side.district, role


def _company_invitation(
    session: Session, actor: Person, company_role: CompanyRole, startup_id: int | None, carrier_id: int | None
) -> tuple[Side, int]:
    if company_role is CompanyRole.legal_representative:
        raise InvalidInput("The legal representative comes from the identity provider, not by invitation.",
                           {"company_role": ["Must be administrator or agent."]})
    if actor.side is Side.district:
        if (startup_id is None) == (carrier_id is None):
            raise InvalidInput("Name one startup or one carrier.", {"startup_id": ["Give startup_id or carrier_id."]})
        side, company_id = (Side.startup, startup_id) if startup_id is not None else (Side.carrier, carrier_id)
        assert company_id is not None
        if company_role is not CompanyRole.administrator:
            raise Forbidden("District staff invite a company's first administrator; it invites its own people.")
        _lock_company(session, side, company_id)
        if _count_active(session, side, company_id, CompanyRole.administrator):
            raise Forbidden("The company has an administrator already: its administrators invite its people.")
        if side is Side.startup:
            startup = session.get(Startup, company_id)
            if startup is not None and startup.is_turned_away:
                raise Conflict(f"Startup {company_id} was {startup.status.value}: it gets no new people.")
        return side, company_id
    if not actor.is_company_manager():
        raise Forbidden("Only the company's legal representative and administrators invite its people.")
    if startup_id not in (None, actor.company_id) or carrier_id not in (None, actor.company_id) or (
        (startup_id is not None and actor.side is not Side.startup) or (carrier_id is not None and actor.side is not Side.carrier)
    ):
        raise NotFound("No such company.")
    assert actor.company_id is not None
    return actor.side, actor.company_id


def _agent_terms(
    company_role: CompanyRole | None, scopes: Iterable[str] | None, expires_at: dt.datetime | None, now: dt.datetime
) -> tuple[list[str] | None, dt.datetime | None]:
    if company_role is not CompanyRole.agent:
        if scopes or expires_at is not None:
            raise InvalidInput("Only an agent has scopes and an expiry.", {"scopes": ["Only for agents."]})
        return None, None
    known = {scope.value for scope in AgentScope}
    chosen = sorted(set(scopes or ()))
    unknown = [scope for scope in chosen if scope not in known]
    if not chosen or unknown:
        raise InvalidInput(
            f"An agent needs one or more scopes of: {', '.join(sorted(known))}.",
            {"scopes": [f"Unknown scope: {', '.join(unknown)}." if unknown else "Choose at least one."]},
        )
    if expires_at is None or not now < expires_at <= now + MAX_AGENT_TERM:
        raise InvalidInput("An agent's authority ends in the future, within a year.",
                           {"agent_expires_at": [f"Must be after now and at most {MAX_AGENT_TERM.days} days from now."]})
    return chosen, expires_at


@transaction
def invite_at_console(session: Session, email: str, name: str, role: Role, now: dt.datetime, base_url: str) -> tuple[Invitation, str]:
    """The operator, at the server's console, invites a district person (the first staff member
    of a fresh install): the link is printed, not emailed."""
    if role not in DISTRICT_ROLES:
        raise InvalidInput("District people are staff or admins.", {"role": ["Must be staff or admin."]})
    email = _checked_email(session, email)
    secret = secrets.token_urlsafe(32)
    invitation = Invitation(
        email=email, name=name.strip() or None, side=Side.district, role=role, token_hash=hash_token(secret),
        expires_at=now + INVITATION_LIFETIME, invited_by_id=None,
    )
    invitation.audit_as("invite_at_console")
    session.add(invitation)
    return invitation, _link(base_url, INVITATION_PATH, secret)


@transaction
def revoke_invitation(session: Session, actor: Person, invitation_id: int, now: dt.datetime) -> Invitation:
    """Withdraw a pending invitation so its link stops working: as `invite` allows, district
    staff a district person's (an admin's only by an admin), a company's legal representative or
    administrators their company's. Audited as revoke; one already accepted or expired: Conflict."""
    _require_active(actor)
    set_actor(session, actor.account_id)
    invitation = session.scalar(
        sa.select(Invitation).where(Invitation.id == invitation_id)
        .with_for_update().execution_options(populate_existing=True)
    )
    if invitation is None:
        raise NotFound("No such invitation.")
    if actor.side is Side.district:
        if invitation.role is Role.admin and actor.role is not Role.admin:
            raise Forbidden(ONLY_ADMIN_INVITES_ADMIN)
    else:
        company_id = invitation.startup_id if actor.side is Side.startup else invitation.carrier_id
        if invitation.side is not actor.side or company_id != actor.company_id:
            raise NotFound("No such invitation.")
        if not actor.is_company_manager():
            raise Forbidden("Only the company's legal representative and administrators manage its people.")
    if not invitation.usable(now):
        raise Conflict(INVITATION_GONE)
    invitation.revoke(now)
    return invitation


def find_invitation(session: Session, token: str, now: dt.datetime) -> Invitation:
    """The usable invitation behind a link (for the page that asks for a name and password)."""
    invitation = session.scalar(sa.select(Invitation).where(Invitation.token_hash == hash_token(token)))
    if invitation is None or not invitation.usable(now):
        raise NotFound(BAD_LINK)
    return invitation


@transaction
def accept_invitation(session: Session, token: str, name: str, password: str, now: dt.datetime) -> Person:
    """Become the invited person: once per link, before it expires. The person signs in next."""
    invitation = session.scalar(
        sa.select(Invitation).where(Invitation.token_hash == hash_token(token))
        .with_for_update().execution_options(populate_existing=True)
    )
    if invitation is None or not invitation.usable(now):
        raise NotFound(BAD_LINK)
    name = name.strip() or (invitation.name or "")
    if not name:
        raise InvalidInput("A name is needed.", {"name": ["Must not be empty."]})
    check_password(password)
    if invitation.agent_expires_at is not None and invitation.agent_expires_at <= now:
        raise Conflict("The agent's term this invitation offered has already ended: ask for a new invitation.")
    company_id = invitation.startup_id or invitation.carrier_id
    if company_id is not None:
        if invitation.company_role is CompanyRole.administrator:
            _refuse_sixth_administrator(session, invitation.side, company_id)
        else:
            _lock_company(session, invitation.side, company_id)
        if invitation.startup_id is not None:
            startup = session.get(Startup, invitation.startup_id)
            if startup is not None and startup.is_turned_away:
                raise Conflict(f"Startup {startup.id} was {startup.status.value}: it gets no new people.")
    if invitation.invited_by_id is not None:
        set_actor(session, invitation.invited_by_id)
    person = _new_person(
        session, email=invitation.email, name=name, password_hash=hash_password(password), side=invitation.side,
        role=invitation.role, startup_id=invitation.startup_id, carrier_id=invitation.carrier_id,
        company_role=invitation.company_role, scopes=invitation.scopes, agent_expires_at=invitation.agent_expires_at,
    )
    set_actor(session, person.account_id)
    invitation.accept(person, now)
    return person


# --- deactivation --------------------------------------------------------------------------


@transaction
def deactivate_person(session: Session, actor: Person, person_id: int, now: dt.datetime) -> Person:
    """Deactivate a person: district staff anyone but themselves (an admin only by an admin), a
    company's legal representative or administrator anyone of their company but its legal
    representative; never the platform's last active admin nor a company's last active
    administrator. Their API tokens are revoked, and their console sessions end at their next
    request (`get_active_person` no longer finds them)."""
    _require_active(actor)
    set_actor(session, actor.account_id)
    role = session.scalar(sa.select(Account.role).join(Person, Person.account_id == Account.id).where(Person.id == person_id))
    # An admin's deactivation first locks every active admin's row in id order (its own among
    # them): two admins deactivating each other at once wait for each other, never deadlock, and
    # the second counts what the first left.
    active_admins = _lock_active_admins(session) if role is Role.admin else []
    person = session.scalar(
        sa.select(Person).where(Person.id == person_id).with_for_update().execution_options(populate_existing=True)
    )
    if person is None:
        raise NotFound("No such person.")
    if actor.side is Side.district:
        if person.role is Role.admin and actor.role is not Role.admin:
            raise Forbidden(ONLY_ADMIN_DEACTIVATES_ADMIN)
    else:
        if person.side is not actor.side or person.company_id != actor.company_id:
            raise NotFound("No such person.")
        if not actor.is_company_manager():
            raise Forbidden("Only the company's legal representative and administrators manage its people.")
        if person.company_role is CompanyRole.legal_representative and person.id != actor.id:
            raise Forbidden("District staff deactivate a company's legal representative.")
    if not person.is_active:
        raise Conflict(ALREADY_DEACTIVATED)
    if person.role is Role.admin and len(active_admins) <= 1:
        raise Conflict(LAST_ADMIN)  # the platform always keeps an active admin
    if person.side is Side.district and person.id == actor.id:
        raise Forbidden(NOT_YOURSELF)
    if person.company_role is CompanyRole.administrator:
        assert person.company_id is not None
        _lock_company(session, person.side, person.company_id)
        if _count_active(session, person.side, person.company_id, CompanyRole.administrator) <= 1:
            raise Conflict(LAST_COMPANY_ADMINISTRATOR)
    person.deactivate(now)
    for token in session.scalars(
        sa.select(ApiToken).where(ApiToken.account_id == person.account_id, ApiToken.revoked_at.is_(None))
    ):
        token.revoke(now)
    return person


def _lock_active_admins(session: Session) -> list[int]:
    """The active admins' ids, their rows locked in id order."""
    return list(session.scalars(
        sa.select(Person.id).join(Account, Person.account_id == Account.id)
        .where(Account.role == Role.admin, Person.side == Side.district, Person.status == PersonStatus.active)
        .order_by(Person.id).with_for_update(of=Person)
    ))


# --- password reset ------------------------------------------------------------------------


@transaction
def request_password_reset(session: Session, email: str, now: dt.datetime, base_url: str) -> None:
    """"Forgot password": email an active person a single-use link (RESET_LIFETIME). Returns
    nothing and raises nothing about the email, so the answer is the same whether it exists."""
    person = session.scalar(_person_with_email(email))
    if person is None or not person.is_active:
        return
    _send_reset(session, person, now, base_url)


def _send_reset(session: Session, person: Person, now: dt.datetime, base_url: str, *, by_staff: bool = False) -> PasswordReset:
    """A single-use reset link for `person`, emailed through the outbox in the caller's transaction."""
    secret = secrets.token_urlsafe(32)
    reset = PasswordReset(person_id=person.id, token_hash=hash_token(secret), expires_at=now + RESET_LIFETIME)
    if by_staff:
        reset.audit_as("reissue_access")
    session.add(reset)
    link = _link(base_url, RESET_PATH, secret)
    expires = _local(reset.expires_at)
    why_zh, why_en = (
        ("区科委工作人员应您的要求，为您重新开通了上海硅巷资源撮合平台的登录。",
         "District staff, at your request, sent you a way back into the Silicon Alley Resource Broker.")
        if by_staff else
        ("有人请求重置您在上海硅巷资源撮合平台的密码。",
         "Someone asked to reset your password on the Silicon Alley Resource Broker.")
    )
    outbox.enqueue(
        session, person.email, "重置您的密码 / Reset your password",
        f"{person.name}，您好：\n\n"
        f"{why_zh}请在 {expires}（北京时间）之前打开以下链接设置新密码：\n\n"
        f"{link}\n\n"
        "此链接只能使用一次。如果不是您本人操作，请忽略这封邮件，您的密码不会改变。\n\n"
        "----\n\n"
        f"Hello {person.name},\n\n"
        f"{why_en} Open this link before "
        f"{expires} (Asia/Shanghai) to set a new one:\n\n"
        f"{link}\n\n"
        "The link works once. If it was not you, ignore this email: your password stays as it is.\n",
        now,
    )
    return reset


@dataclass(frozen=True)
class Reissued:
    """What `reissue_access` sent: a reset link to a person, or an invitation to the contact email."""

    email: str
    expires_at: dt.datetime
    invited: bool  # True: an invitation (the company had no active person); False: a reset link


@transaction
def reissue_access(
    session: Session, actor: Person, person_id: int | None, now: dt.datetime, base_url: str, *, startup_id: int
) -> Reissued:
    """District staff give a startup's person who lost access a way back in, by email (the outbox).

    - `person_id` names an active person of startup `startup_id`: they are emailed a single-use
      password-reset link (RESET_LIFETIME), the one "forgot password" sends, which also ends a
      lockout; the reset is audited as reissue_access, by the staff member. A person of another
      company, or none: NotFound. A deactivated person: Conflict (a reset would not let them in).
    - `person_id` None, and the startup has no active person at all: its contact email is invited
      as the company's first administrator, as district staff invite one (`invite`). Not as its
      legal representative: that role comes only from the identity provider (`find_or_link`), so
      the legal representative signs in there, and the invited administrator manages the rest.
      A startup that still has an active person: InvalidInput (choose the person instead).
    A rejected or removed startup gets no access: Conflict.
    """
    _require_active(actor)
    if actor.side is not Side.district:
        raise Forbidden("District staff reissue a company's access.")
    set_actor(session, actor.account_id)
    _lock_company(session, Side.startup, startup_id)
    startup = session.get(Startup, startup_id)
    assert startup is not None
    if startup.is_turned_away:
        raise Conflict(f"Startup {startup_id} was {startup.status.value}: it gets no access.")
    if person_id is None:
        active = session.scalar(
            sa.select(sa.func.count(Person.id)).join(Account, Person.account_id == Account.id).where(
                Person.side == Side.startup, Account.startup_id == startup_id, Person.status == PersonStatus.active)
        )
        if active:
            raise InvalidInput("The company has people on the broker: choose the one who lost access.",
                               {"person_id": ["Choose a person."]})
        invitation, _link_sent = _invite(session, actor, startup.contact_email, now, base_url, name=startup.contact_name,
                                         startup_id=startup_id, company_role=CompanyRole.administrator)
        return Reissued(invitation.email, invitation.expires_at, invited=True)
    person = session.scalar(
        sa.select(Person).where(Person.id == person_id).with_for_update().execution_options(populate_existing=True)
    )
    if person is None or person.side is not Side.startup or person.company_id != startup_id:
        raise NotFound("No such person of this startup.")
    if not person.is_active:
        raise Conflict("This person is deactivated: a reset link would not let them in. Invite someone instead.")
    reset = _send_reset(session, person, now, base_url, by_staff=True)
    return Reissued(person.email, reset.expires_at, invited=False)


@transaction
def reset_password(session: Session, token: str, password: str, now: dt.datetime) -> Person:
    """Set a new password through a reset link (once, within the hour); it ends a lockout too."""
    reset = session.scalar(
        sa.select(PasswordReset).where(PasswordReset.token_hash == hash_token(token))
        .with_for_update().execution_options(populate_existing=True)
    )
    if reset is None or not reset.usable(now) or not reset.person.is_active:
        raise NotFound(BAD_LINK)
    check_password(password)
    person = reset.person
    set_actor(session, person.account_id)
    person.audit_as("reset_password")
    person.password_hash = hash_password(password)
    person.password_changed_at = now
    person.failed_sign_ins = 0
    person.locked_until = None
    reset.use(now)
    for other in session.scalars(
        sa.select(PasswordReset).where(PasswordReset.person_id == person.id, PasswordReset.used_at.is_(None),
                                       PasswordReset.id != reset.id)
    ):
        other.use(now)  # one reset ends every other link sent before it
    return person


@transaction
def change_password(session: Session, person: Person, current: str, new: str, now: dt.datetime) -> Person:
    """A signed-in person changes their password, giving the current one (a person with none,
    linked through OIDC, sets a first one through "forgot password")."""
    _require_active(person)
    set_actor(session, person.account_id)
    if not verify_password(person.password_hash, current):
        raise InvalidInput("The current password is wrong.", {"current_password": ["Wrong password."]})
    check_password(new)
    person.audit_as("change_password")
    person.password_hash = hash_password(new)
    person.password_changed_at = now
    return person


# --- one's own API tokens ------------------------------------------------------------------


def list_own_tokens(session: Session, person: Person, now: dt.datetime) -> list[ApiToken]:
    """The person's own tokens (never their secrets), newest first."""
    query = accounts.list_tokens(session, person.account, {"account_id": person.account_id}, now)
    return list(session.scalars(query.order_by(None).order_by(ApiToken.id.desc())))


@transaction
def create_own_token(
    session: Session, person: Person, now: dt.datetime, *, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """A new API token for the person's own account; the secret is returned once and never stored."""
    _require_active(person)
    set_actor(session, person.account_id)
    expires_at = None
    if expires_in_days is not None:
        expires_at = now + dt.timedelta(days=expires_in_days)
        if not now < expires_at <= now + MAX_TOKEN_LIFETIME:
            raise InvalidInput(f"A token expires in 1 to {MAX_TOKEN_LIFETIME.days} days.",
                               {"expires_in_days": [f"Must be 1 to {MAX_TOKEN_LIFETIME.days}."]})
    return accounts.issue_for(session, person.account, issued_by=person.account, expires_at=expires_at)


@transaction
def revoke_own_token(session: Session, person: Person, token_id: int, now: dt.datetime) -> ApiToken:
    """Revoke one of the person's own tokens; another's token does not exist for them (NotFound)."""
    set_actor(session, person.account_id)
    token = session.get(ApiToken, token_id)
    if token is None or token.account_id != person.account_id:
        raise NotFound("No such token.")
    session.refresh(token, with_for_update=True)  # a concurrent revoke waits, then finds it revoked (409)
    token.revoke(now)
    return token


# --- emails --------------------------------------------------------------------------------


def _link(base_url: str, path: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}{path}{secret}"


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _company_name(session: Session, invitation: Invitation) -> str | None:
    if invitation.startup_id is not None:
        return session.get(Startup, invitation.startup_id).name  # type: ignore[union-attr]
    if invitation.carrier_id is not None:
        return session.get(Carrier, invitation.carrier_id).name  # type: ignore[union-attr]
    return None


def _email_invitation(
    session: Session, invitation: Invitation, link: str, inviter: str, company: str | None, now: dt.datetime
) -> None:
    zh_role, en_role = ROLE_NAMES[invitation.company_role or invitation.role]
    expires = _local(invitation.expires_at)
    zh_company = f"，代表“{company}”" if company else ""
    en_company = f" for {company}" if company else ""
    greeting_zh = f"{invitation.name}，您好：" if invitation.name else "您好："
    greeting_en = f"Hello {invitation.name}," if invitation.name else "Hello,"
    outbox.enqueue(
        session, invitation.email, "邀请您加入上海硅巷资源撮合平台 / Invitation to the Silicon Alley Resource Broker",
        f"{greeting_zh}\n\n"
        f"{inviter} 邀请您以“{zh_role}”身份加入上海硅巷资源撮合平台{zh_company}。"
        f"请在 {expires}（北京时间）之前打开以下链接，设置您的姓名和密码：\n\n"
        f"{link}\n\n"
        "此链接只能使用一次。如果您没有预期收到这封邮件，请忽略它。\n\n"
        "----\n\n"
        f"{greeting_en}\n\n"
        f"{inviter} has invited you to the Silicon Alley Resource Broker as {en_role}{en_company}. "
        f"Open this link before {expires} (Asia/Shanghai) to set your name and password:\n\n"
        f"{link}\n\n"
        "The link works once. If you did not expect this email, ignore it.\n",
        now,
    )
