"""Demand survey (需求摸排): staff open a campaign, verified startups declare the demand they expect
(per kind, region and month, with the most they could pay and why) while it is open, staff read it
aggregated by sector, carriers read it anonymised, and a job reminds startups before it closes.

Carriers never see a firm: their aggregate has no sector and no name, and a cell that fewer than
`MIN_FIRMS_SHOWN` firms declared is left out (counted, so the page can say so), since a cell of one
or two firms would tell a carrier who they are.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError, validate
from sqlalchemy.orm import InstrumentedAttribute, Session

from broker.clock import local_date
from broker.db import transaction
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import (
    LIGHTHOUSE_SECTORS,
    TURNED_AWAY_STARTUP_STATUSES,
    Account,
    Role,
    Sector,
    Startup,
    StartupStatus,
)
from broker.models.parties import hash_token
from broker.models.people import Person, PersonStatus, Side
from broker.models.surveys import (
    MAX_CONTACT_NAME,
    MAX_EMAIL,
    MAX_FIRM_NAME,
    MAX_PURPOSE,
    MAX_REGION,
    MAX_TITLE,
    SurveyCampaign,
    SurveyDeclaration,
    SurveyRespondent,
)
from broker.inputs import text_problem
from broker.models.outbox import EmailStatus
from broker.resources import KINDS, MAX_QUANTITY, MAX_UNIT_PRICE, MONEY_PLACES, QUANTITY_PLACES
from broker.services import accounts, notifications
from broker.uscc import uscc_problem

MIN_FIRMS_SHOWN = 3  # a carrier's cell of fewer firms is suppressed
DEFAULT_REMINDER_DAYS = 3
PORTAL_PATH = "/portal/surveys"
ANSWER_PATH = "/surveys/answers/"  # + the secret: a firm not registered confirms and revises its answer there
# How long an answer's lines wait for their emailed link before another answer for the code may take their place.
PENDING_HOLD = dt.timedelta(days=1)
WAITING = "An answer is waiting for confirmation."  # the refusal of a second answer while one waits
# Answers waiting for confirmation one address may have in a campaign: a stranger can't flood an inbox
# by answering under many codes with its address.
MAX_WAITING_PER_EMAIL = 3
_PERIOD = re.compile(r"^(?P<year>20\d\d)(?:-(?:Q(?P<q>[1-4])|H(?P<h>[12])|(?P<m>0[1-9]|1[0-2])))?$")
STAFF_ROLES = (Role.staff, Role.admin)


def period_months(period: str) -> list[dt.date] | None:
    """The first days of the months of "2027", "2027-H1", "2027-Q1" or "2027-03"; None if not a period."""
    found = _PERIOD.match(period or "")
    if found is None:
        return None
    year = int(found["year"])
    if found["q"]:
        first, count = 3 * int(found["q"]) - 2, 3
    elif found["h"]:
        first, count = 6 * int(found["h"]) - 5, 6
    elif found["m"]:
        first, count = int(found["m"]), 1
    else:
        first, count = 1, 12
    return [dt.date(year, m, 1) for m in range(first, first + count)]


# -- campaigns --------------------------------------------------------------------------------


@transaction
def open_campaign(session: Session, actor: Account, data: dict[str, Any], now: dt.datetime) -> SurveyCampaign:
    """Staff: open a survey for a period and the kinds it covers, from opens_on to closes_on."""
    accounts.require_role(actor, *STAFF_ROLES)
    problems: dict[str, list[str]] = {}
    title = (data.get("title") or "").strip()
    if not title or len(title) > MAX_TITLE or text_problem(title):
        problems["title"] = [f"Between 1 and {MAX_TITLE} characters."]
    period = (data.get("period") or "").strip()
    if period_months(period) is None:
        problems["period"] = ["A year, half, quarter or month: 2027, 2027-H1, 2027-Q1 or 2027-03."]
    opens_on, closes_on = data.get("opens_on"), data.get("closes_on")
    if not isinstance(opens_on, dt.date):
        problems["opens_on"] = ["A date."]
    if not isinstance(closes_on, dt.date):
        problems["closes_on"] = ["A date."]
    elif isinstance(opens_on, dt.date) and closes_on < opens_on:
        problems["closes_on"] = ["Not before opens_on."]
    elif closes_on < local_date(now):
        problems["closes_on"] = ["Not in the past."]
    kinds = sorted(set(data.get("kinds") or []))
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        problems["kinds"] = [f"One or more of {', '.join(KINDS)}."]
    if problems:
        raise InvalidInput("The survey is not valid.", problems)
    campaign = SurveyCampaign(title=title, period=period, opens_on=opens_on, closes_on=closes_on, kinds=kinds,
                              allow_unregistered=bool(data.get("allow_unregistered")), created_by=actor.id,
                              created_at=now)
    session.add(campaign)
    session.flush()
    return campaign


def campaigns(session: Session, actor: Account, now: dt.datetime) -> list[SurveyCampaign]:
    """Every campaign, newest first: staff see all; companies those that have opened."""
    query = sa.select(SurveyCampaign).order_by(SurveyCampaign.opens_on.desc(), SurveyCampaign.id.desc())
    if actor.role not in STAFF_ROLES:
        query = query.where(SurveyCampaign.opens_on <= local_date(now))
    return list(session.scalars(query))


def campaign(session: Session, actor: Account, campaign_id: int, now: dt.datetime) -> SurveyCampaign:
    """One campaign; a company can't see one before it opens (NotFound)."""
    found = session.get(SurveyCampaign, campaign_id)
    if found is None or (actor.role not in STAFF_ROLES and found.opens_on > local_date(now)):
        raise NotFound(f"No survey {campaign_id}.")
    return found


# -- a startup's declarations -----------------------------------------------------------------


def own_lines(session: Session, actor: Account, campaign_id: int, now: dt.datetime) -> list[SurveyDeclaration]:
    """The startup's own lines in a campaign, by kind, region and month."""
    startup = accounts.require_verified_startup(actor)
    campaign(session, actor, campaign_id, now)
    return list(session.scalars(
        sa.select(SurveyDeclaration)
        .where(SurveyDeclaration.campaign_id == campaign_id, SurveyDeclaration.startup_id == startup.id)
        .order_by(SurveyDeclaration.kind, SurveyDeclaration.region, SurveyDeclaration.month, SurveyDeclaration.id)))


@transaction
def declare(session: Session, actor: Account, campaign_id: int, line: dict[str, Any], now: dt.datetime) -> SurveyDeclaration:
    """Declare one line, or revise the line of the same kind, region and month (it is replaced)."""
    startup, found = _open_for(session, actor, campaign_id, now)
    clean = _line(found, line, "")
    return _upsert(session, found.id, SurveyDeclaration.startup_id, startup.id, clean, now)


@transaction
def replace_lines(session: Session, actor: Account, campaign_id: int, lines: list[dict[str, Any]],
                  now: dt.datetime) -> list[SurveyDeclaration]:
    """The startup's whole declaration: these lines (same kind/region/month: revised), every other removed."""
    startup, found = _open_for(session, actor, campaign_id, now)
    clean = _clean_lines(found, lines)
    return _replace(session, found.id, SurveyDeclaration.startup_id, startup.id, clean, now)


def _clean_lines(found: SurveyCampaign, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every line checked against the campaign (`lines.<i>.<field>` for a refused one), one per kind, region and month."""
    problems: dict[str, list[str]] = {}
    clean = []
    for i, line in enumerate(lines):
        try:
            clean.append(_line(found, line, f"lines.{i}."))
        except InvalidInput as bad:
            problems.update(bad.errors)
    keys = [(c["kind"], c["region"], c["month"]) for c in clean]
    if len(set(keys)) != len(keys):
        problems["lines"] = ["One line per kind, region and month."]
    if problems:
        raise InvalidInput("The declaration is not valid.", problems)
    return clean


def _replace(session: Session, campaign_id: int, owner: InstrumentedAttribute, owner_id: int,
             clean: list[dict[str, Any]], now: dt.datetime) -> list[SurveyDeclaration]:
    """The owner's (a startup's or a respondent's) lines become `clean`: same kind/region/month revised, others removed."""
    kept = [_upsert(session, campaign_id, owner, owner_id, c, now) for c in clean]
    session.execute(sa.delete(SurveyDeclaration).where(
        SurveyDeclaration.campaign_id == campaign_id, owner == owner_id,
        SurveyDeclaration.id.not_in([k.id for k in kept] or [0])))
    return sorted(kept, key=lambda d: (d.kind, d.region, d.month))


@transaction
def remove_line(session: Session, actor: Account, campaign_id: int, line_id: int, now: dt.datetime) -> None:
    """Remove one of the startup's lines while the campaign is open."""
    startup, found = _open_for(session, actor, campaign_id, now)
    line = session.get(SurveyDeclaration, line_id)
    if line is None or line.campaign_id != found.id or line.startup_id != startup.id:
        raise NotFound(f"No line {line_id} of this startup in survey {campaign_id}.")
    session.delete(line)


def _open_for(session: Session, actor: Account, campaign_id: int, now: dt.datetime) -> tuple[Startup, SurveyCampaign]:
    startup = accounts.require_verified_startup(actor)
    found = campaign(session, actor, campaign_id, now)
    if found.status(local_date(now)) != "open":
        raise Conflict(f"Survey {campaign_id} closed on {found.closes_on.isoformat()}: its declarations can't change.")
    return startup, found


def _decimal(value: Any, places: int, most: Decimal) -> Decimal | None:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number < 0 or number > most or -number.as_tuple().exponent > places:  # type: ignore[operator]
        return None
    return number


def _line(found: SurveyCampaign, line: dict[str, Any], prefix: str) -> dict[str, Any]:
    problems: dict[str, list[str]] = {}
    kind = line.get("kind")
    if kind not in found.kinds:
        problems[prefix + "kind"] = [f"One of the survey's kinds: {', '.join(found.kinds)}."]
    quantity = _decimal(line.get("quantity"), QUANTITY_PLACES, MAX_QUANTITY)
    if quantity is None or quantity <= 0:
        problems[prefix + "quantity"] = [f"A number above 0, at most {QUANTITY_PLACES} decimal places."]
    region = str(line.get("region") or "").strip()
    if not region or len(region) > MAX_REGION or text_problem(region):
        problems[prefix + "region"] = [f"Between 1 and {MAX_REGION} characters."]
    month = line.get("month")
    if isinstance(month, str):
        try:
            month = dt.date.fromisoformat(month if len(month) > 7 else f"{month}-01")
        except ValueError:
            month = None
    if not isinstance(month, dt.date) or month not in (period_months(found.period) or []):
        problems[prefix + "month"] = [f"The first day of a month of {found.period}."]
    price = line.get("max_unit_price")
    if price in (None, ""):
        price = None
    else:
        price = _decimal(price, MONEY_PLACES, MAX_UNIT_PRICE)
        if price is None:
            problems[prefix + "max_unit_price"] = [f"Yuan, 0 or more, at most {MONEY_PLACES} decimal places."]
    purpose = str(line.get("purpose") or "").strip()
    if not purpose or len(purpose) > MAX_PURPOSE or text_problem(purpose):
        problems[prefix + "purpose"] = [f"Between 1 and {MAX_PURPOSE} characters."]
    if problems:
        raise InvalidInput("The declared line is not valid.", problems)
    return {"kind": kind, "quantity": quantity, "region": region, "month": month, "max_unit_price": price,
            "purpose": purpose}


def _upsert(session: Session, campaign_id: int, owner: InstrumentedAttribute, owner_id: int,
            clean: dict[str, Any], now: dt.datetime) -> SurveyDeclaration:
    line = session.scalar(sa.select(SurveyDeclaration).where(
        SurveyDeclaration.campaign_id == campaign_id, owner == owner_id,
        SurveyDeclaration.kind == clean["kind"], SurveyDeclaration.region == clean["region"],
        SurveyDeclaration.month == clean["month"]))
    if line is None:
        line = SurveyDeclaration(campaign_id=campaign_id, kind=clean["kind"], region=clean["region"],
                                 month=clean["month"], **{owner.key: owner_id})
        session.add(line)
    line.quantity, line.max_unit_price, line.purpose = clean["quantity"], clean["max_unit_price"], clean["purpose"]
    line.updated_at = now
    session.flush()
    return line


# -- firms not registered, by unified social credit code ---------------------------------------


@transaction
def set_allow_unregistered(session: Session, actor: Account, campaign_id: int, allow: bool,
                           now: dt.datetime) -> SurveyCampaign:
    """Staff: whether firms not registered may answer, until the campaign closes (answers already confirmed stay)."""
    accounts.require_role(actor, *STAFF_ROLES)
    found = campaign(session, actor, campaign_id, now)
    if found.status(local_date(now)) == "closed":
        raise Conflict(f"Survey {campaign_id} closed on {found.closes_on.isoformat()}: it can't change.")
    found.allow_unregistered = allow
    return found


def public_campaign(session: Session, campaign_id: int, now: dt.datetime) -> SurveyCampaign:
    """A campaign open today to firms not registered; any other (unknown, not yet open, closed, not allowing them): NotFound."""
    found = session.get(SurveyCampaign, campaign_id)
    if found is None or not found.allow_unregistered or found.status(local_date(now)) != "open":
        raise NotFound(f"No survey {campaign_id} open to firms not registered.")
    return found


@dataclass(frozen=True)
class AnswerSent:
    respondent: SurveyRespondent
    revision: bool  # an answer already confirmed: its contact was asked to confirm the new lines


@transaction
def submit_answer(session: Session, campaign_id: int, data: dict[str, Any], now: dt.datetime,
                  language: str = "zh_CN") -> AnswerSent:
    """A firm not registered answers a campaign open to it: the lines wait, unconfirmed and uncounted, until
    the link emailed to the contact (to the confirmed contact, for an answer already confirmed) confirms them.

    One answer per code and campaign, with at most one set of lines waiting: another while they wait
    (PENDING_HOLD) is refused; a code held by a registered startup is told to answer from the portal."""
    found = public_campaign(session, campaign_id, now)
    firm = _firm(data)
    problems = firm.pop("problems")
    try:
        clean = _clean_lines(found, list(data.get("lines") or []))
    except InvalidInput as bad:
        problems.update(bad.errors)
        clean = []
    if not problems and not clean:
        problems["lines"] = ["At least one line."]
    if problems:
        raise InvalidInput("The answer is not valid.", problems)
    if session.scalar(sa.select(Startup.id).where(Startup.uscc == firm["uscc"],
                                                 Startup.status.not_in(TURNED_AWAY_STARTUP_STATUSES))) is not None:
        raise Conflict("A startup registered with this code answers from the portal: sign in.",
                       {"uscc": ["Registered: sign in and answer from the portal."]})
    respondent = session.scalar(
        sa.select(SurveyRespondent).where(SurveyRespondent.campaign_id == found.id, SurveyRespondent.uscc == firm["uscc"])
        .with_for_update().execution_options(populate_existing=True))
    if respondent is not None and respondent.startup_id is not None:
        raise Conflict("This answer became a registered startup's: sign in.", {"uscc": ["Registered: sign in."]})
    if respondent is not None and respondent.pending_since is not None and now - respondent.pending_since < PENDING_HOLD:
        raise Conflict("An answer for this code is waiting for its emailed link to be confirmed.",
                       {"uscc": [WAITING]})
    to_address = firm["contact_email"] if respondent is None or respondent.confirmed_at is None else respondent.contact_email
    waiting = session.scalar(sa.select(sa.func.count()).select_from(SurveyRespondent).where(
        SurveyRespondent.campaign_id == found.id, sa.func.lower(SurveyRespondent.contact_email) == to_address.lower(),
        SurveyRespondent.pending_since > now - PENDING_HOLD))
    if waiting >= MAX_WAITING_PER_EMAIL:
        raise Conflict("This address already has answers waiting for confirmation.",
                       {"contact_email": [f"At most {MAX_WAITING_PER_EMAIL} answers waiting per address."]})
    if respondent is None:
        respondent = SurveyRespondent(campaign_id=found.id, created_at=now, **firm)
        session.add(respondent)
    elif respondent.confirmed_at is None:  # never confirmed and left waiting: this answer takes its place
        for name, value in firm.items():
            setattr(respondent, name, value)
    respondent.pending_lines = [_stored(c) for c in clean]
    respondent.pending_since = now
    secret = _new_link(respondent)
    session.flush()
    _email_link(session, respondent, found, secret, now, language)
    return AnswerSent(respondent, respondent.confirmed_at is not None)


@dataclass(frozen=True)
class Answer:
    respondent: SurveyRespondent
    campaign: SurveyCampaign
    is_open: bool
    lines: list[SurveyDeclaration]  # confirmed, counted
    pending: list[dict[str, Any]]  # sent and waiting for this link's confirmation


def answer_by_link(session: Session, secret: str, now: dt.datetime) -> Answer:
    """What an emailed link opens: the answer's confirmed lines and those waiting; an unknown or replaced link: NotFound."""
    respondent = _by_link(session, secret)
    found = session.get(SurveyCampaign, respondent.campaign_id)
    lines = list(session.scalars(sa.select(SurveyDeclaration).where(SurveyDeclaration.respondent_id == respondent.id)
                                 .order_by(SurveyDeclaration.kind, SurveyDeclaration.region, SurveyDeclaration.month)))
    return Answer(respondent, found, found.status(local_date(now)) == "open", lines, list(respondent.pending_lines or []))


@transaction
def confirm_answer(session: Session, secret: str, now: dt.datetime) -> SurveyRespondent:
    """The link's owner confirms the lines waiting: they replace the answer's lines and count from now."""
    respondent, found = _answer_to_change(session, secret, now)
    if respondent.pending_lines is None:
        return respondent  # confirmed already (a second click)
    clean = _clean_lines(found, respondent.pending_lines)
    _replace(session, found.id, SurveyDeclaration.respondent_id, respondent.id, clean, now)
    respondent.pending_lines, respondent.pending_since = None, None
    respondent.confirmed_at = respondent.confirmed_at or now
    return respondent


@transaction
def revise_answer(session: Session, secret: str, lines: list[dict[str, Any]], now: dt.datetime) -> SurveyRespondent:
    """A confirmed answer's whole set of lines, revised through its link until the campaign closes (lines
    waiting for confirmation are dropped: this is the contact's newest word)."""
    respondent, found = _answer_to_change(session, secret, now)
    if respondent.confirmed_at is None:
        raise Conflict("Confirm the answer first.", {"token": ["Not confirmed yet."]})
    clean = _clean_lines(found, lines)
    if not clean:
        raise InvalidInput("The answer is not valid.", {"lines": ["At least one line."]})
    _replace(session, found.id, SurveyDeclaration.respondent_id, respondent.id, clean, now)
    respondent.pending_lines, respondent.pending_since = None, None
    return respondent


def _answer_to_change(session: Session, secret: str, now: dt.datetime) -> tuple[SurveyRespondent, SurveyCampaign]:
    respondent = _by_link(session, secret, lock=True)
    found = session.get(SurveyCampaign, respondent.campaign_id)
    if respondent.startup_id is not None:
        raise Conflict("This answer became a registered startup's: sign in and revise it from the portal.",
                       {"token": ["Registered."]})
    if found.status(local_date(now)) != "open":
        raise Conflict(f"Survey {found.id} closed on {found.closes_on.isoformat()}: its answers can't change.")
    return respondent, found


def _by_link(session: Session, secret: str, *, lock: bool = False) -> SurveyRespondent:
    query = sa.select(SurveyRespondent).where(SurveyRespondent.token_hash == hash_token(secret or ""))
    respondent = session.scalar(query.with_for_update().execution_options(populate_existing=True) if lock else query)
    if respondent is None:
        raise NotFound("No answer for this link (it may have been replaced by a newer one).")
    return respondent


def _firm(data: dict[str, Any]) -> dict[str, Any]:
    """The firm's facts cleaned, and `problems` by field."""
    problems: dict[str, list[str]] = {}
    uscc = str(data.get("uscc") or "").strip().upper()
    if uscc_problem(uscc):
        problems["uscc"] = [str(uscc_problem(uscc))]
    texts = {}
    for name, most in (("firm_name", MAX_FIRM_NAME), ("contact_name", MAX_CONTACT_NAME)):
        texts[name] = str(data.get(name) or "").strip()
        if not texts[name] or len(texts[name]) > most or text_problem(texts[name]):
            problems[name] = [f"Between 1 and {most} characters."]
    email = str(data.get("contact_email") or "").strip()
    try:
        validate.Email()(email)
        if len(email) > MAX_EMAIL:
            raise ValidationError("too long")
    except ValidationError:
        problems["contact_email"] = [f"An email address of at most {MAX_EMAIL} characters."]
    sector = data.get("sector")
    if sector not in Sector.__members__:
        problems["sector"] = [f"One of {', '.join(Sector.__members__)}."]
    return {"uscc": uscc, **texts, "contact_email": email, "sector": Sector(sector) if not problems.get("sector") else None,
            "problems": problems}


def _stored(clean: dict[str, Any]) -> dict[str, Any]:
    """A checked line as JSON keeps it (checked again when confirmed: the campaign is the same)."""
    price = clean["max_unit_price"]
    return {"kind": clean["kind"], "quantity": str(clean["quantity"]), "region": clean["region"],
            "month": clean["month"].isoformat(), "max_unit_price": None if price is None else str(price),
            "purpose": clean["purpose"]}


def _new_link(respondent: SurveyRespondent) -> str:
    """A new secret for the answer's link; the one emailed before stops working."""
    secret = secrets.token_urlsafe(32)
    respondent.token_hash = hash_token(secret)
    return secret


def _email_link(session: Session, respondent: SurveyRespondent, found: SurveyCampaign, secret: str,
                now: dt.datetime, language: str) -> None:
    config = session.info.get("config") or {}
    base_url = str(config.get("PUBLIC_URL") or notifications.DEFAULT_PUBLIC_URL).rstrip("/")
    facts = {"person": respondent.contact_name, "company": respondent.firm_name, "uscc": respondent.uscc,
             "title": found.title, "period": found.period, "ends_on": found.closes_on.isoformat(),
             "lines": len(respondent.pending_lines or []), "link": f"{base_url}{ANSWER_PATH}{secret}"}
    kind = "survey.revision" if respondent.confirmed_at is not None else "survey.answer"
    subject, body = notifications.render(language, kind, facts)
    notifications.write_once(session, [{
        "to_address": respondent.contact_email, "subject": subject[:300], "body": body, "attempts": 0,
        "status": EmailStatus.pending, "next_attempt_at": now, "created_at": now,
        "dedupe_key": f"survey-answer:{respondent.id}:{respondent.token_hash[:16]}", "headers": None}])


# -- the aggregates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    kind: str
    region: str
    month: dt.date
    sector: str | None  # None in the carriers' aggregate
    lighthouse: bool
    firms: int
    quantity: Decimal
    avg_max_price: Decimal | None  # the mean of the prices declared in the cell (lines without one left out)
    unregistered: int = 0  # of `firms`, those that answered without registering (by credit code)


@dataclass(frozen=True)
class Aggregate:
    campaign: SurveyCampaign
    cells: list[Cell]
    firms: int  # firms (startups and unregistered respondents) with at least one line
    suppressed: int  # cells left out of a carrier's view for having fewer than MIN_FIRMS_SHOWN firms
    unregistered: list[SurveyRespondent] = field(default_factory=list)  # staff only: every unregistered answer


def staff_aggregate(session: Session, actor: Account, campaign_id: int, now: dt.datetime) -> Aggregate:
    """Staff: the declared demand by kind × region × month × sector, with the number of firms."""
    accounts.require_role(actor, *STAFF_ROLES)
    found = campaign(session, actor, campaign_id, now)
    respondents = list(session.scalars(sa.select(SurveyRespondent).where(SurveyRespondent.campaign_id == found.id)
                                       .order_by(SurveyRespondent.firm_name, SurveyRespondent.id)))
    return Aggregate(found, _cells(session, found.id, by_sector=True), _firms(session, found.id), 0, respondents)


def carrier_aggregate(session: Session, actor: Account, campaign_id: int, now: dt.datetime) -> Aggregate:
    """Carriers: the declared demand by kind × region × month, no firm named, cells under 3 firms left out."""
    accounts.require_role(actor, Role.carrier, *STAFF_ROLES)
    found = campaign(session, actor, campaign_id, now)
    cells = _cells(session, found.id, by_sector=False)
    shown = [c for c in cells if c.firms >= MIN_FIRMS_SHOWN]
    return Aggregate(found, shown, _firms(session, found.id), len(cells) - len(shown))


def _cells(session: Session, campaign_id: int, *, by_sector: bool) -> list[Cell]:
    d = SurveyDeclaration
    sector = declared_sector().label("sector")
    keys = [d.kind, d.region, d.month] + ([sector] if by_sector else [])
    rows = session.execute(
        with_declarants(sa.select(*keys, _firm_count().label("firms"),
                                  sa.func.count(sa.distinct(d.respondent_id)).label("unregistered"),
                                  sa.func.sum(d.quantity).label("quantity"),
                                  sa.func.sum(d.max_unit_price).label("price_sum"),
                                  sa.func.count(d.max_unit_price).label("priced")))
        .where(d.campaign_id == campaign_id)
        .group_by(*keys).order_by(*keys)
    ).all()
    cells = []
    for r in rows:
        average = (Decimal(r.price_sum) / r.priced).quantize(Decimal("0.01")) if r.priced else None
        cells.append(Cell(r.kind, r.region, r.month, r.sector.value if by_sector else None,
                          by_sector and r.sector in LIGHTHOUSE_SECTORS, r.firms, Decimal(r.quantity), average,
                          r.unregistered))
    return cells


def _firm_count() -> sa.ColumnElement[int]:
    # A line is a startup's or a respondent's, never both, so the two distinct counts add up to the firms.
    return (sa.func.count(sa.distinct(SurveyDeclaration.startup_id))
            + sa.func.count(sa.distinct(SurveyDeclaration.respondent_id)))


def with_declarants(query: sa.Select) -> sa.Select:
    """`query` over declaration lines, joined to whoever declared each: its startup or its respondent."""
    return (query.outerjoin(Startup, SurveyDeclaration.startup_id == Startup.id)
            .outerjoin(SurveyRespondent, SurveyDeclaration.respondent_id == SurveyRespondent.id))


def declared_sector() -> sa.ColumnElement:
    """A line's sector: its startup's, or the one an unregistered respondent gave (after `with_declarants`)."""
    return sa.func.coalesce(Startup.sector, SurveyRespondent.sector)


def _firms(session: Session, campaign_id: int) -> int:
    return session.scalar(sa.select(_firm_count()).where(SurveyDeclaration.campaign_id == campaign_id)) or 0


# -- reminders --------------------------------------------------------------------------------


@transaction
def send_reminders(session: Session, now: dt.datetime, days_before: int = DEFAULT_REMINDER_DAYS) -> int:
    """Email every active person of every verified startup once per open campaign closing within
    `days_before` days; returns how many emails were new (running again writes none)."""
    today = local_date(now)
    due = list(session.scalars(sa.select(SurveyCampaign).where(
        SurveyCampaign.opens_on <= today, SurveyCampaign.closes_on >= today,
        SurveyCampaign.closes_on <= today + dt.timedelta(days=days_before)).order_by(SurveyCampaign.id)))
    if not due:
        return 0
    config = session.info.get("config") or {}
    base_url = str(config.get("PUBLIC_URL") or notifications.DEFAULT_PUBLIC_URL).rstrip("/")
    people = session.execute(
        sa.select(Person.id, Person.name, Person.email, Person.language, Startup.name.label("company"))
        .join(Account, Person.account_id == Account.id).join(Startup, Account.startup_id == Startup.id)
        .where(Person.side == Side.startup, Person.status == PersonStatus.active, Person.email_off.is_(False),
               Startup.status == StartupStatus.verified)
        .order_by(Person.id)).all()
    rows = []
    for found in due:
        for person in people:
            facts = {"person": person.name, "company": person.company, "title": found.title, "period": found.period,
                     "ends_on": found.closes_on.isoformat(), "link": f"{base_url}{PORTAL_PATH}",
                     "unsubscribe": f"{base_url}/settings/notifications",
                     "settings": f"{base_url}/settings/notifications"}
            subject, body = notifications.render(person.language, "survey.reminder", facts)
            rows.append({"to_address": person.email, "subject": subject[:300], "body": body, "attempts": 0,
                         "status": EmailStatus.pending, "next_attempt_at": now, "created_at": now,
                         "dedupe_key": f"survey:{found.id}:person:{person.id}", "headers": None})
        found.reminded_at = now
    return notifications.write_once(session, rows)


# -- what the console's pages read ------------------------------------------------------------


@dataclass(frozen=True)
class PortalCampaign:
    campaign: SurveyCampaign
    status: str
    lines: list[SurveyDeclaration]


def portal_surveys(session: Session, actor: Account, now: dt.datetime) -> list[PortalCampaign]:
    """A verified startup's page: every survey that has opened, newest first, with its own lines (two reads)."""
    startup = accounts.require_verified_startup(actor)
    found = campaigns(session, actor, now)
    lines: dict[int, list[SurveyDeclaration]] = {c.id: [] for c in found}
    if found:
        for line in session.scalars(
                sa.select(SurveyDeclaration)
                .where(SurveyDeclaration.startup_id == startup.id, SurveyDeclaration.campaign_id.in_(list(lines)))
                .order_by(SurveyDeclaration.kind, SurveyDeclaration.region, SurveyDeclaration.month)):
            lines[line.campaign_id].append(line)
    today = local_date(now)
    return [PortalCampaign(c, c.status(today), lines[c.id]) for c in found]


@dataclass(frozen=True)
class CarrierDemand:
    campaigns: list[SurveyCampaign]
    aggregate: Aggregate | None  # of the campaign asked for, else of the newest


def carrier_demand(session: Session, actor: Account, campaign_id: int | None, now: dt.datetime) -> CarrierDemand:
    """A carrier's page: the surveys that have opened and the anonymised demand of one of them."""
    accounts.require_role(actor, Role.carrier)
    found = campaigns(session, actor, now)
    if campaign_id is None and found:
        campaign_id = found[0].id
    return CarrierDemand(found, carrier_aggregate(session, actor, campaign_id, now) if campaign_id else None)
