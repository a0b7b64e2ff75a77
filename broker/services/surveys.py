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
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date
from broker.db import transaction
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import LIGHTHOUSE_SECTORS, Account, Role, Startup, StartupStatus
from broker.models.people import Person, PersonStatus, Side
from broker.models.surveys import MAX_PURPOSE, MAX_REGION, MAX_TITLE, SurveyCampaign, SurveyDeclaration
from broker.inputs import text_problem
from broker.models.outbox import EmailStatus
from broker.resources import KINDS, MAX_QUANTITY, MAX_UNIT_PRICE, MONEY_PLACES, QUANTITY_PLACES
from broker.services import accounts, notifications

MIN_FIRMS_SHOWN = 3  # a carrier's cell of fewer firms is suppressed
DEFAULT_REMINDER_DAYS = 3
PORTAL_PATH = "/portal/surveys"
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
    return _upsert(session, found.id, startup.id, clean, now)


@transaction
def replace_lines(session: Session, actor: Account, campaign_id: int, lines: list[dict[str, Any]],
                  now: dt.datetime) -> list[SurveyDeclaration]:
    """The startup's whole declaration: these lines (same kind/region/month: revised), every other removed."""
    startup, found = _open_for(session, actor, campaign_id, now)
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
    kept = [_upsert(session, found.id, startup.id, c, now) for c in clean]
    session.execute(sa.delete(SurveyDeclaration).where(
        SurveyDeclaration.campaign_id == found.id, SurveyDeclaration.startup_id == startup.id,
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


def _upsert(session: Session, campaign_id: int, startup_id: int, clean: dict[str, Any], now: dt.datetime) -> SurveyDeclaration:
    line = session.scalar(sa.select(SurveyDeclaration).where(
        SurveyDeclaration.campaign_id == campaign_id, SurveyDeclaration.startup_id == startup_id,
        SurveyDeclaration.kind == clean["kind"], SurveyDeclaration.region == clean["region"],
        SurveyDeclaration.month == clean["month"]))
    if line is None:
        line = SurveyDeclaration(campaign_id=campaign_id, startup_id=startup_id, kind=clean["kind"],
                                 region=clean["region"], month=clean["month"])
        session.add(line)
    line.quantity, line.max_unit_price, line.purpose = clean["quantity"], clean["max_unit_price"], clean["purpose"]
    line.updated_at = now
    session.flush()
    return line


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


@dataclass(frozen=True)
class Aggregate:
    campaign: SurveyCampaign
    cells: list[Cell]
    firms: int  # startups with at least one line
    suppressed: int  # cells left out of a carrier's view for having fewer than MIN_FIRMS_SHOWN firms


def staff_aggregate(session: Session, actor: Account, campaign_id: int, now: dt.datetime) -> Aggregate:
    """Staff: the declared demand by kind × region × month × sector, with the number of firms."""
    accounts.require_role(actor, *STAFF_ROLES)
    found = campaign(session, actor, campaign_id, now)
    return Aggregate(found, _cells(session, found.id, by_sector=True), _firms(session, found.id), 0)


def carrier_aggregate(session: Session, actor: Account, campaign_id: int, now: dt.datetime) -> Aggregate:
    """Carriers: the declared demand by kind × region × month, no firm named, cells under 3 firms left out."""
    accounts.require_role(actor, Role.carrier, *STAFF_ROLES)
    found = campaign(session, actor, campaign_id, now)
    cells = _cells(session, found.id, by_sector=False)
    shown = [c for c in cells if c.firms >= MIN_FIRMS_SHOWN]
    return Aggregate(found, shown, _firms(session, found.id), len(cells) - len(shown))


def _cells(session: Session, campaign_id: int, *, by_sector: bool) -> list[Cell]:
    d = SurveyDeclaration
    keys = [d.kind, d.region, d.month] + ([Startup.sector] if by_sector else [])
    rows = session.execute(
        sa.select(*keys, sa.func.count(sa.distinct(d.startup_id)).label("firms"),
                  sa.func.sum(d.quantity).label("quantity"),
                  sa.func.sum(d.max_unit_price).label("price_sum"), sa.func.count(d.max_unit_price).label("priced"))
        .join(Startup, d.startup_id == Startup.id)
        .where(d.campaign_id == campaign_id)
        .group_by(*keys).order_by(*keys)
    ).all()
    cells = []
    for r in rows:
        sector = r.sector.value if by_sector else None
        average = (Decimal(r.price_sum) / r.priced).quantize(Decimal("0.01")) if r.priced else None
        cells.append(Cell(r.kind, r.region, r.month, sector, by_sector and r.sector in LIGHTHOUSE_SECTORS, r.firms,
                          Decimal(r.quantity), average))
    return cells


def _firms(session: Session, campaign_id: int) -> int:
    return session.scalar(sa.select(sa.func.count(sa.distinct(SurveyDeclaration.startup_id)))
                          .where(SurveyDeclaration.campaign_id == campaign_id)) or 0


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
