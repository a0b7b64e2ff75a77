"""Email notifications: each event of a notifiable kind, once to every active person of the company
it concerns who has that kind on, in the person's language.

`notify` is called by `broker.services.events._queue` for every batch of new events, inside the use
case's transaction: the emails are outbox rows (`broker.outbox`, delivered and retried by the
`deliver_email` job) that commit with the change they tell of. Each row's unique `dedupe_key`
("event:<id>:person:<id>") is inserted with ON CONFLICT DO NOTHING, so an event reaches a person at
most once however often it is processed or by how many workers at once. A batch (a cycle proposes
thousands) costs three reads and one insert, whatever its size.

Who each event reaches (``KINDS``):

| event                           | what happened                                   | startup's people | carrier's people |
|---------------------------------|-------------------------------------------------|------------------|------------------|
| startup.verified                | registration verified                           | yes              |                  |
| startup.rejected                | registration rejected, with the reason          | yes              |                  |
| allocation.proposed             | a cycle proposed an allocation, with the deadline | yes            |                  |
| allocation.approved             | staff approved it (the carrier is to provision) | yes              | yes              |
| allocation.rejected             | staff rejected it, with the reason              | yes              |                  |
| allocation.lapsed               | undecided at the deadline                       | yes              |                  |
| allocation.provisioned          | set up, with the carrier's reference            | yes              |                  |
| allocation.provisioning_failed  | the carrier's retries ran out                   | yes              | yes              |
| allocation.expiring             | its window ends within 7 days                   | yes              |                  |
| appeal.answered                 | the district answered an appeal                 | yes              |                  |
| subsidy.committed               | a subsidy award was committed, with the amount  | yes              |                  |
| evidence.rejected               | a piece of evidence was rejected, with the reason | yes            | yes, its own piece |
| notice.started                  | a public notice naming the startup started      | yes              |                  |
| monthly_report                  | the district's monthly report (no event: the `monthly_report` job, broker.services.monthly_report) | district staff and admins | |

The carrier hears of what it must act on (an approval to provision, a provisioning that failed)
and of its own rejected evidence; the rest is the startup's business. (An evidence event carries
the carrier only when the piece was the carrier's.)

Templates: one Jinja text file per language (broker/email_templates/zh_CN.txt, en.txt), one macro
per kind, rendered by a standalone environment (no request, so no Flask-Babel locale). A whole
email per language reads as one text for its translator, where gettext would cut it into
sentences whose order the two languages don't share.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.orm import Session

from broker.clock import SHANGHAI
from broker.db import transaction
from broker.errors import InvalidInput, NotFound
from broker.models import Account, Allocation, Carrier, Offer, ResourceRequest, Role, Startup
from broker.models.outbox import EmailStatus, OutboxEmail
from broker.models.people import Person, PersonStatus, Side
from broker.models.workflow import Event
from broker.resources import KINDS as RESOURCE_KINDS
from broker.services import accounts

log = logging.getLogger(__name__)

STARTUP, CARRIER, DISTRICT = "startup", "carrier", "district"
EVENT_KINDS: dict[str, tuple[str, ...]] = {
    "startup.verified": (STARTUP,),
    "startup.rejected": (STARTUP,),
    "allocation.proposed": (STARTUP,),
    "allocation.approved": (STARTUP, CARRIER),
    "allocation.rejected": (STARTUP,),
    "allocation.lapsed": (STARTUP,),
    "allocation.provisioned": (STARTUP,),
    "allocation.provisioning_failed": (STARTUP, CARRIER),
    "allocation.expiring": (STARTUP,),
    "appeal.answered": (STARTUP,),
    "subsidy.committed": (STARTUP,),
    "evidence.rejected": (STARTUP, CARRIER),
    "notice.started": (STARTUP,),
}
# Every kind a person can turn off: the events, and the district's monthly report (written by
# broker.services.monthly_report, not by an event).
KINDS: dict[str, tuple[str, ...]] = {**EVENT_KINDS, "monthly_report": (DISTRICT,)}
LANGUAGES = ("zh_CN", "en")
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"
INBOX_PATH = "/inbox"
UNSUBSCRIBE_PATH = "/unsubscribe/"
TOKEN_SALT = "broker.notifications.unsubscribe"
TOKEN_LIFETIME = dt.timedelta(days=90)


# -- the opt-out token ------------------------------------------------------------------------


class BadToken(Exception):
    """An opt-out link that was not ours, was altered, or is too old."""


def unsubscribe_token(secret_key: str, person_id: int, kind: str, now: dt.datetime) -> str:
    """A signed link token that turns `kind` off for the person, valid for TOKEN_LIFETIME."""
    return URLSafeSerializer(secret_key, salt=TOKEN_SALT).dumps({"p": person_id, "k": kind, "t": int(now.timestamp())})


def read_token(secret_key: str, token: str, now: dt.datetime) -> tuple[int, str]:
    """(person id, kind) of a token, or BadToken."""
    try:
        data = URLSafeSerializer(secret_key, salt=TOKEN_SALT).loads(token)
    except BadSignature:
        raise BadToken("not a valid link") from None
    if not isinstance(data, dict) or data.get("k") not in KINDS or not isinstance(data.get("p"), int):
        raise BadToken("not a valid link")
    issued = dt.datetime.fromtimestamp(int(data.get("t", 0)), dt.timezone.utc)
    if now - issued > TOKEN_LIFETIME:
        raise BadToken("the link has expired")
    return data["p"], data["k"]


# -- rendering --------------------------------------------------------------------------------


@cache
def _environment() -> Environment:
    return Environment(loader=PackageLoader("broker", "email_templates"), autoescape=False, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)


def render(language: str, kind: str, facts: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, body) of a kind's email in `language`: the macro's first line is the subject."""
    module = _environment().get_template(f"{language if language in LANGUAGES else 'zh_CN'}.txt").module
    text = str(getattr(module, kind.replace(".", "_"))(facts)).strip("\n")
    subject, _, body = text.partition("\n")
    footer = str(module.footer(facts)).strip("\n")
    return subject.strip(), f"{body.strip()}\n\n{footer}\n"


def local_time(moment: dt.datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def yuan(amount: Decimal | str | None) -> str:
    return "" if amount is None else f"¥{Decimal(amount):,.2f}"


# -- writing the emails -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Recipient:
    id: int
    name: str
    email: str
    language: str
    email_off: bool
    email_muted: list
    side: Side
    company_id: int


def notify(session: Session, new_events: list[Event]) -> int:
    """Write the emails of `new_events` (flushed, with ids) to the outbox; returns how many were new."""
    events = [e for e in new_events if e.type in EVENT_KINDS]
    if not events:
        return 0
    config = session.info.get("config") or {}
    secret = config.get("SECRET_KEY")
    if not secret:  # a session made outside the app (no settings): nothing can be signed
        log.warning("notifications of %d events not written: the session has no SECRET_KEY", len(events))
        return 0
    base_url = str(config.get("PUBLIC_URL") or DEFAULT_PUBLIC_URL).rstrip("/")
    people = _recipients(session, events)
    allocations = _allocation_facts(session, {e.allocation_id for e in events if e.allocation_id is not None})
    companies = _company_names(session, events)
    rows = []
    for event in events:
        for side in EVENT_KINDS[event.type]:
            company_id = event.startup_id if side == STARTUP else event.carrier_id
            for person in people.get((side, company_id), ()):
                if person.email_off or event.type in (person.email_muted or []):
                    continue
                rows.append(_email(event, person, allocations.get(event.allocation_id, {}),
                                   companies.get((side, company_id), ""), secret, base_url))
    return write_once(session, rows)


def write_once(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert outbox rows, skipping any whose dedupe_key is already there; returns how many were new."""
    if not rows:
        return 0
    table = OutboxEmail.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    written = session.execute(insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id), rows)
    return len(written.all())  # (rowcount is not reliable for an executemany)


def unsubscribe_link(secret: str, base_url: str, person_id: int, kind: str, now: dt.datetime) -> str:
    """The one-click opt-out link of `kind` for the person, for the email's footer and its List-Unsubscribe."""
    return f"{base_url}{UNSUBSCRIBE_PATH}{unsubscribe_token(secret, person_id, kind, now)}"


def unsubscribe_headers(link: str) -> dict[str, str]:
    """RFC 8058's one-click headers for `link`."""
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def _email(event: Event, person: _Recipient, allocation: Mapping[str, Any], company: str, secret: str,
           base_url: str) -> dict[str, Any]:
    unsubscribe = unsubscribe_link(secret, base_url, person.id, event.type, event.created_at)
    payload = event.payload or {}
    facts = {
        **allocation,
        "person": person.name, "company": company, "kind": event.type,
        "reason": payload.get("reason") or payload.get("answer") or "",
        "carrier_ref": payload.get("carrier_ref") or "", "error": payload.get("error") or "",
        "deadline": local_time(payload.get("approval_deadline")),
        "window_end": payload.get("window_end") or allocation.get("window_end", ""),
        "amount": yuan(payload.get("amount")), "program": payload.get("program_name") or "",
        "file_name": payload.get("file_name") or "", "title": payload.get("title") or "",
        "ends_on": payload.get("ends_on") or "", "allocation_id": event.allocation_id or "",
        "link": f"{base_url}{INBOX_PATH}", "unsubscribe": unsubscribe, "settings": f"{base_url}/settings/notifications",
    }
    subject, body = render(person.language, event.type, facts)
    return {
        "to_address": person.email, "subject": subject[:300], "body": body, "status": EmailStatus.pending,
        "attempts": 0, "next_attempt_at": event.created_at, "created_at": event.created_at,
        "dedupe_key": f"event:{event.id}:person:{person.id}",
        "headers": unsubscribe_headers(unsubscribe),
    }


def _recipients(session: Session, events: list[Event]) -> dict[tuple[str, int], list[_Recipient]]:
    startups = {e.startup_id for e in events if e.startup_id is not None and STARTUP in EVENT_KINDS[e.type]}
    carriers = {e.carrier_id for e in events if e.carrier_id is not None and CARRIER in EVENT_KINDS[e.type]}
    rows = session.execute(
        sa.select(Person.id, Person.name, Person.email, Person.language, Person.email_off, Person.email_muted,
                  Person.side, Account.startup_id, Account.carrier_id)
        .join(Account, Person.account_id == Account.id)
        .where(Person.status == PersonStatus.active,
               sa.or_(sa.and_(Person.side == Side.startup, Account.startup_id.in_(startups)),
                      sa.and_(Person.side == Side.carrier, Account.carrier_id.in_(carriers))))
        .order_by(Person.id)
    ).all()
    found: dict[tuple[str, int], list[_Recipient]] = {}
    for r in rows:
        company_id = r.startup_id if r.side is Side.startup else r.carrier_id
        found.setdefault((r.side.value, company_id), []).append(
            _Recipient(r.id, r.name, r.email, r.language, r.email_off, r.email_muted, r.side, company_id))
    return found


def _allocation_facts(session: Session, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = session.execute(
        sa.select(Allocation.id, Allocation.quantity, Offer.kind, Offer.region, Carrier.name.label("carrier"),
                  ResourceRequest.window_start, ResourceRequest.window_end)
        .join(Offer, Allocation.offer_id == Offer.id).join(Carrier, Offer.carrier_id == Carrier.id)
        .join(ResourceRequest, Allocation.request_id == ResourceRequest.id)
        .where(Allocation.id.in_(ids))
    ).all()
    return {
        r.id: {"resource": r.kind, "unit": RESOURCE_KINDS[r.kind].unit if r.kind in RESOURCE_KINDS else "",
               "quantity": f"{r.quantity.normalize():f}", "region": r.region, "carrier": r.carrier,
               "window_start": r.window_start.isoformat(), "window_end": r.window_end.isoformat()}
        for r in rows
    }


def _company_names(session: Session, events: list[Event]) -> dict[tuple[str, int], str]:
    startups = {e.startup_id for e in events if e.startup_id is not None}
    carriers = {e.carrier_id for e in events if e.carrier_id is not None}
    names: dict[tuple[str, int], str] = {}
    if startups:
        names.update({(STARTUP, i): n for i, n in session.execute(sa.select(Startup.id, Startup.name).where(Startup.id.in_(startups)))})
    if carriers:
        names.update({(CARRIER, i): n for i, n in session.execute(sa.select(Carrier.id, Carrier.name).where(Carrier.id.in_(carriers)))})
    return names


# -- the person's preferences, the opt-out link and the staff's delivery log ------------------


@dataclass(frozen=True)
class Preferences:
    kinds: list[tuple[str, bool]]  # every notifiable kind, in KINDS' order, and whether it is on
    email_off: bool
    language: str


def preferences(person: Person) -> Preferences:
    muted = set(person.email_muted or [])
    return Preferences([(k, k not in muted) for k in KINDS if _reaches(person, k)], person.email_off, person.language)


def _reaches(person: Person, kind: str) -> bool:
    return person.side.value in KINDS[kind]


@transaction
def save_preferences(session: Session, person_id: int, kinds_on: list[str], email_off: bool, language: str) -> Person:
    """Set which kinds reach the person by email, the all-off switch and the emails' language."""
    problems: dict[str, list[str]] = {}
    if language not in LANGUAGES:
        problems["language"] = [f"One of {', '.join(LANGUAGES)}."]
    unknown = sorted(set(kinds_on) - set(KINDS))
    if unknown:
        problems["kinds"] = [f"Unknown event kinds: {', '.join(unknown)}."]
    if problems:
        raise InvalidInput("The notification settings are not valid.", problems)
    person = _person(session, person_id)
    person.email_muted = [k for k in KINDS if _reaches(person, k) and k not in kinds_on]
    person.email_off, person.language = email_off, language
    return person


@transaction
def set_language(session: Session, person_id: int, language: str) -> None:
    """The person switched the console's language: their emails follow it."""
    if language in LANGUAGES:
        _person(session, person_id).language = language


@dataclass(frozen=True)
class OptOut:
    email: str
    kind: str


def opt_out_of(session: Session, secret_key: str, token: str, now: dt.datetime) -> OptOut:
    """What an opt-out link would stop (BadToken if it is not a good link)."""
    person_id, kind = read_token(secret_key, token, now)
    person = session.get(Person, person_id)
    if person is None:
        raise BadToken("not a valid link")
    return OptOut(person.email, kind)


@transaction
def opt_out(session: Session, secret_key: str, token: str, now: dt.datetime) -> OptOut:
    """Turn off the link's kind for its person (one click; doing it twice changes nothing more)."""
    person_id, kind = read_token(secret_key, token, now)
    person = session.get(Person, person_id)
    if person is None:
        raise BadToken("not a valid link")
    if kind not in (person.email_muted or []):
        person.email_muted = [*(person.email_muted or []), kind]
    return OptOut(person.email, kind)


def _person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"No person {person_id}.")
    return person


LOG_PAGE_SIZE = 50


@dataclass(frozen=True)
class EmailLog:
    emails: list[OutboxEmail]
    total: int
    page: int
    pages: int


def email_log(session: Session, actor: Account, status: str | None, recipient: str | None, page: int) -> EmailLog:
    """Every outbox email, newest first, for staff; filtered by status and (part of) the recipient, 50 a page."""
    accounts.require_role(actor, Role.staff, Role.admin)
    where = []
    if status:
        if status not in EmailStatus.__members__:
            raise InvalidInput("Unknown status.", {"status": [f"One of {', '.join(EmailStatus.__members__)}."]})
        where.append(OutboxEmail.status == EmailStatus(status))
    if recipient:
        where.append(OutboxEmail.to_address.ilike(f"%{recipient}%"))
    total = session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail).where(*where)) or 0
    pages = max(1, -(-total // LOG_PAGE_SIZE))
    page = min(max(page, 1), pages)
    emails = list(session.scalars(sa.select(OutboxEmail).where(*where).order_by(OutboxEmail.id.desc())
                                  .offset((page - 1) * LOG_PAGE_SIZE).limit(LOG_PAGE_SIZE)))
    return EmailLog(emails, total, page, pages)
