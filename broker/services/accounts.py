"""Accounts, carriers, startups and their tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import SHANGHAI
from broker.db import transaction
from broker.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound
from broker.models import TURNED_AWAY_STARTUP_STATUSES, Account, ApiToken, Carrier, Role, Startup
from broker.models.audit import set_actor
from broker.models.parties import MAX_TOKEN_LIFETIME, hash_token
from broker.services import allocations, events, survey_attach
from broker.uniques import duplicate
from config import DEFAULT_DISTRICT_CONTACT

STAFF_ROLES = frozenset({Role.staff, Role.admin})


def require_role(actor: Account, *roles: Role) -> None:
    """Refuse `actor` unless it has one of `roles`."""
    if actor.role not in roles:
        raise Forbidden(f"This needs the {' or '.join(r.value for r in roles)} role.")


def authenticate(session: Session, secret: str, now: dt.datetime) -> ApiToken:
    """The bearer token `secret` is, if it is valid, not revoked and not expired (its account signs in)."""
    token = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or not token.is_active:
        raise NotAuthenticated("The token is unknown or revoked." + _turned_away_notice(token))
    if token.has_expired(now):
        raise NotAuthenticated("The token has expired.")
    return token


def _turned_away_notice(token: ApiToken | None) -> str:
    """What the holder of a turned-away startup's token is told: its only way to learn the reason."""
    startup = token.account.startup if token is not None else None
    if startup is None or not startup.is_turned_away or startup.reviewed_at is None:
        return ""
    when = startup.reviewed_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    return f" District staff {startup.status.value} this registration on {when} (Asia/Shanghai): {startup.rejection_reason}"


def _issue(
    session: Session, account: Account, *, issued_by: Account | None = None, expires_at: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    if account.startup is not None and account.startup.is_turned_away:
        raise Conflict(f"Startup {account.startup.id} was {account.startup.status.value}: it gets no new token.")
    token, secret = ApiToken.issue(account, issued_by=issued_by, expires_at=expires_at)
    session.add(token)
    return token, secret


def issue_for(
    session: Session, account: Account, *, issued_by: Account | None = None, expires_at: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for `account` inside the caller's transaction (a person's own tokens)."""
    return _issue(session, account, issued_by=issued_by, expires_at=expires_at)


@transaction
def create_user(session: Session, role: Role, name: str) -> tuple[Account, ApiToken, str]:
    """A new staff or admin account with its first token."""
    if role not in STAFF_ROLES:
        raise InvalidInput("Only staff and admin accounts are created by hand.", {"role": ["Must be staff or admin."]})
    if not name.strip():
        raise InvalidInput("A name is needed.", {"name": ["Must not be empty."]})
    account = Account(role=role, name=name.strip())
    session.add(account)
    token, secret = _issue(session, account)
    return account, token, secret


@transaction
def register_carrier(
    session: Session, code: str, name: str, adapter: str, known_adapters: Iterable[str]
) -> tuple[Carrier, ApiToken, str]:
    """A carrier, its account and its first token; the adapter must be a registered one."""
    known = sorted(known_adapters)
    if adapter not in known:
        raise InvalidInput(
            f"Unknown adapter {adapter!r}; registered adapters: {', '.join(known) or 'none'}.",
            {"adapter": ["Unknown adapter."]},
        )
    if not code or not code.replace("_", "").isalnum() or code != code.lower() or len(code) > 32:
        raise InvalidInput("A carrier code is 1-32 lower-case letters, digits or _.", {"code": ["Invalid code."]})
    if session.scalar(sa.select(Carrier.id).where(Carrier.code == code)) is not None:
        raise duplicate("uq_carriers_code")
    carrier = Carrier(code=code, name=name, adapter=adapter)
    account = Account(role=Role.carrier, name=name, carrier=carrier)
    session.add_all([carrier, account])
    token, secret = _issue(session, account)
    return carrier, token, secret


@transaction
def register_startup(
    session: Session, data: dict[str, Any], district_contact: str = DEFAULT_DISTRICT_CONTACT
) -> tuple[Startup, ApiToken, str]:
    """A startup signing itself up through the API: pending until staff verify it, with an account
    and its first token (the console's registration makes a person instead: `people.register_startup`)."""
    startup = add_startup(session, data, district_contact)
    account = Account(role=Role.startup, name=data["name"], startup=startup)
    session.add(account)
    token, secret = _issue(session, account)
    return startup, token, secret


def add_startup(session: Session, data: dict[str, Any], district_contact: str = DEFAULT_DISTRICT_CONTACT) -> Startup:
    """A new startup registration (pending) inside the caller's transaction, from data the
    registration schema loaded. A code is free again once the registration holding it is rejected
    or removed (the database's partial unique index says so too)."""
    # The early, friendly answer; two registrations racing past it meet the partial unique index,
    # which the API answers with the same 409 (broker.uniques).
    holder = sa.select(Startup.id).where(
        Startup.uscc == data["uscc"], Startup.status.not_in(TURNED_AWAY_STARTUP_STATUSES)
    )
    if session.scalar(holder) is not None:
        raise duplicate("uq_startups_uscc_holder", district_contact=district_contact)
    startup = Startup(**data)
    session.add(startup)
    return startup


def get_startup(session: Session, actor: Account, startup_id: int) -> Startup:
    """A startup as staff see it, or a startup's own record; others' records don't exist for it."""
    startup = session.get(Startup, startup_id)
    if startup is None or not (actor.role in STAFF_ROLES or actor.startup_id == startup_id):
        raise NotFound("No such startup.")
    return startup


def list_startups(session: Session, actor: Account, filters: dict[str, Any]) -> sa.Select:
    """Staff see every startup; a startup sees itself."""
    query = sa.select(Startup).order_by(Startup.id)
    if actor.role not in STAFF_ROLES:
        require_role(actor, Role.startup)
        query = query.where(Startup.id == actor.startup_id)
    if "status" in filters:
        query = query.where(Startup.status == filters["status"])
    if "sector" in filters:
        query = query.where(Startup.sector == filters["sector"])
    return query


@transaction
def update_startup(session: Session, actor: Account, startup_id: int, changes: dict[str, Any]) -> Startup:
    """A startup updates its contacts and its budget per cycle."""
    startup = get_startup(session, actor, startup_id)
    if actor.startup_id != startup.id:
        raise Forbidden("A startup's details are changed by the startup itself.")
    for name, value in changes.items():
        setattr(startup, name, value)
    return startup


def _startup_to_decide(session: Session, actor: Account, startup_id: int) -> Startup:
    """The startup staff decide on, its row locked: of two decisions at once, the second sees the first."""
    require_role(actor, Role.staff, Role.admin)
    _name_actor(session, actor)
    startup = session.scalar(
        sa.select(Startup).where(Startup.id == startup_id).with_for_update().execution_options(populate_existing=True)
    )
    if startup is None:
        raise NotFound("No such startup.")
    return startup


def _name_actor(session: Session, actor: Account) -> None:
    """The audit log names `actor` for a change made from the console, where no bearer token did
    (broker.auth sets the actor, and any staff member acting through the token, for the API)."""
    if session.info.get("actor_id") is None:
        set_actor(session, actor.id)


@transaction
def edit_startup_as_staff(
    session: Session, actor: Account, startup_id: int, changes: dict[str, Any], now: dt.datetime
) -> Startup:
    """Staff correct a startup's record (name, sector, contacts, headcount, founding date, whether
    registered in the district, budget per cycle), as loaded by `StartupStaffEditSchema`: the row
    locked, every field's before and after in the audit log (which keeps its own time: the
    startups table has no edit time, so `now` is taken for the use case's usual shape only)."""
    startup = _startup_to_decide(session, actor, startup_id)
    startup.amend(changes)
    return startup


@transaction
def set_key_enterprise(session: Session, actor: Account, startup_id: int, key: bool, now: dt.datetime) -> Startup:
    """Staff mark a startup a key enterprise (重点企业), or no longer: it changes the weight of its
    requests in every cycle from the next one (the policy's key_enterprise_bonus). Audited."""
    startup = _startup_to_decide(session, actor, startup_id)
    startup.mark_key_enterprise(key)
    return startup


@transaction
def verify_startup(session: Session, actor: Account, startup_id: int, now: dt.datetime) -> Startup:
    """Staff confirm a startup, which may then request resources; the demand-survey answers its firm gave
    before it registered (by its credit code) become its own."""
    startup = _startup_to_decide(session, actor, startup_id)
    startup.verify(actor.id, now)
    survey_attach.attach_answers(session, startup, now)
    events.record(session, "startup.verified", None, startup.id, None, now)
    return startup


@transaction
def reject_startup(session: Session, actor: Account, startup_id: int, reason: str, now: dt.datetime) -> Startup:
    """Staff turn down a pending registration: its tokens end, and its code is free to register again."""
    startup = _startup_to_decide(session, actor, startup_id)
    startup.reject(actor.id, reason, now)
    _end_tokens_and_requests(session, startup, f"startup rejected by district staff: {reason}", now)
    events.record(session, "startup.rejected", None, startup.id, None, now, reason=reason)
    return startup


@transaction
def remove_startup(session: Session, actor: Account, startup_id: int, reason: str, now: dt.datetime) -> Startup:
    """Staff remove a registration made in another company's name (pending or verified): its tokens
    and requests end, nothing is deleted, and the real company can register the code."""
    startup = _startup_to_decide(session, actor, startup_id)
    startup.remove(actor.id, reason, now)
    _end_tokens_and_requests(session, startup, f"startup removed by district staff: {reason}", now)
    return startup


def _end_tokens_and_requests(session: Session, startup: Startup, why: str, now: dt.datetime) -> None:
    """What turning a startup away ends besides its status: every token, every live request."""
    tokens = session.scalars(
        sa.select(ApiToken)
        .join(Account, ApiToken.account_id == Account.id)
        .where(Account.startup_id == startup.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.id)
    )
    for token in tokens:
        token.revoke(now)
    allocations.end_requests_of(session, startup.id, why, now)


def list_carriers(session: Session) -> list[Carrier]:
    return list(session.scalars(sa.select(Carrier).order_by(Carrier.code)))


def list_tokens(session: Session, actor: Account, filters: dict[str, Any], now: dt.datetime) -> sa.Select:
    """Staff and admins see tokens (never their secrets); others see their own. Active: neither revoked nor expired."""
    query = sa.select(ApiToken).order_by(ApiToken.id)
    if actor.role not in STAFF_ROLES:
        query = query.where(ApiToken.account_id == actor.id)
    if "account_id" in filters:
        query = query.where(ApiToken.account_id == filters["account_id"])
    if "active" in filters:
        active = sa.and_(ApiToken.revoked_at.is_(None), sa.or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))
        query = query.where(active if filters["active"] else sa.not_(active))
    return query


@transaction
def revoke_token(session: Session, actor: Account, token_id: int, now: dt.datetime) -> ApiToken:
    """Staff revoke carriers' and startups' tokens; admins revoke any; anyone revokes their own."""
    token = session.get(ApiToken, token_id)
    own = token is not None and token.account_id == actor.id
    if token is None or not (own or actor.role in STAFF_ROLES):
        raise NotFound("No such token.")
    if not own and actor.role is Role.staff and token.account.role in STAFF_ROLES:
        raise Forbidden("Only an admin revokes staff and admin tokens.")
    session.refresh(token, with_for_update=True)  # a concurrent revoke waits, then finds it revoked (409)
    token.revoke(now)
    return token


@transaction
def revoke_token_as_operator(session: Session, token_id: int, now: dt.datetime) -> ApiToken:
    """The operator, at the server's console, revokes any token."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"No token {token_id}.")
    session.refresh(token, with_for_update=True)
    token.revoke(now)
    return token


def reissue_carrier_token(session: Session, code: str) -> tuple[ApiToken, str]:
    """The operator, at the server's console, gets a fresh token for carrier `code`."""
    account = session.scalar(sa.select(Account).join(Carrier, Account.carrier_id == Carrier.id).where(Carrier.code == code))
    if account is None:
        known = ", ".join(session.scalars(sa.select(Carrier.code).order_by(Carrier.code))) or "none"
        raise NotFound(f"No carrier {code!r}; registered carriers: {known}.")
    return _issue_at_console(session, account)


def reissue_startup_token(session: Session, startup_id: int) -> tuple[ApiToken, str]:
    """The operator, at the server's console, gets a fresh token for startup `startup_id`."""
    account = session.scalar(sa.select(Account).where(Account.startup_id == startup_id))
    if account is None:
        raise NotFound(f"No startup {startup_id}.")
    return _issue_at_console(session, account)


@transaction
def _issue_at_console(session: Session, account: Account) -> tuple[ApiToken, str]:
    token, secret = _issue(session, account)
    token.audit_as("issue_at_console")  # no signed-in actor: the audit entry names the console instead
    return token, secret


@transaction
def issue_token(
    session: Session, actor: Account, account_id: int, now: dt.datetime, *,
    expires_at: dt.datetime | None = None, expires_in_days: int | None = None,
) -> tuple[ApiToken, str]:
    """A new token for an account (admins for anyone, staff for carriers and startups), optionally expiring.

    The token records who minted it: what is done with a token minted for another account
    is audited as that account, acted for by the one who minted it.
    """
    require_role(actor, Role.staff, Role.admin)
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    if actor.role is Role.staff and account.role in STAFF_ROLES and account.id != actor.id:
        raise Forbidden("Only an admin issues tokens for staff and admin accounts.")
    field = "expires_at"
    if expires_in_days is not None:
        expires_at, field = now + dt.timedelta(days=expires_in_days), "expires_in_days"
    if expires_at is not None and not now < expires_at <= now + MAX_TOKEN_LIFETIME:
        raise InvalidInput(
            f"A token expires in the future, at most {MAX_TOKEN_LIFETIME.days} days from now.",
            {field: [f"Must be after now and at most {MAX_TOKEN_LIFETIME.days} days from now."]},
        )
    token, secret = _issue(session, account, issued_by=actor, expires_at=expires_at)
    return token, secret


def require_verified_startup(actor: Account) -> Startup:
    require_role(actor, Role.startup)
    assert actor.startup is not None
    if not actor.startup.is_verified:
        raise Forbidden("The startup is not verified yet: district staff must verify it before it can request resources.")
    return actor.startup
