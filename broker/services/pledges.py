"""Carrier pledges (运营商承诺资源): what each carrier pledges to the district per period and kind,
and the tracking of it against what the broker saw happen.

`pledge_tracking(period)` gives per carrier × kind, each in the kind's unit:

- pledged: the quantity of the carrier's pledge for exactly that period label;
- published: the quantity of the carrier's offers of the kind whose window (first and last day,
  both inclusive) overlaps the period (its first day to its last day, Asia/Shanghai): an offer
  counts in full if it is open on at least one day of the period, whatever share of its window
  falls inside (a withdrawn offer counts what it still holds: withdrawal shrinks it to that);
- allocated: the quantity of approved, provisioning, active and released (completed) allocations
  on those same offers;
- delivered: the usage the carrier reported on allocations of its offers of the kind, with
  `recorded_at` in the period (whatever the offer's window);
- shortfall: pledged − published, or nothing where the carrier published as much or more.

Four aggregate queries (and one for the carriers' names), however many rows there are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from broker.db import transaction
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.models import Account, Allocation, AuditEntry, Carrier, Offer, Pledge, PledgeTerms, Role, UsageReport
from broker.models.audit import actor_columns
from broker.resources import KINDS
from broker.services.accounts import STAFF_ROLES
from broker.services.review import GRANTED  # approved, provisioning, active, released (completed)
from broker.services.settlement import Period, parse_period

ZERO = Decimal("0.000")


def terms_problems(terms: PledgeTerms | str | None, unit_price: Decimal | None,
                   discount_rate: Decimal | None) -> dict[str, list[str]]:
    """What is wrong with a pledge's terms: free has no price; discounted has a unit price or a rate, not both."""
    if terms == PledgeTerms.free:
        return {name: ["A free pledge has no price."] for name, value in
                (("unit_price", unit_price), ("discount_rate", discount_rate)) if value is not None}
    if terms == PledgeTerms.discounted:
        if unit_price is None and discount_rate is None:
            return {"unit_price": ["A discounted pledge needs a unit price or a discount rate."]}
        if unit_price is not None and discount_rate is not None:
            return {"discount_rate": ["Give a unit price or a discount rate, not both."]}
    return {}


def _carrier(session: Session, actor: Account, code: str) -> Carrier:
    """The carrier `code` if `actor` may see its pledges: the carrier itself and staff."""
    if actor.role not in STAFF_ROLES and actor.role is not Role.carrier:
        raise Forbidden("Only a carrier and staff see pledges.")
    carrier = session.scalar(sa.select(Carrier).where(Carrier.code == code))
    if carrier is None or (actor.role is Role.carrier and actor.carrier_id != carrier.id):
        raise NotFound(f"No carrier {code!r}.")  # another carrier's pledges are not there for this one
    return carrier


def own_carrier_code(session: Session, actor: Account) -> str:
    """The code of the carrier `actor` acts for (the carrier page has no code in its address)."""
    if actor.role is not Role.carrier or actor.carrier_id is None:
        raise Forbidden("Only a carrier records its own pledges.")
    return session.get_one(Carrier, actor.carrier_id).code


def last_day(period: Period) -> dt.date:
    return period.end_day - dt.timedelta(days=1)


def pledges(session: Session, actor: Account, carrier_code: str, period_text: str) -> list[Pledge]:
    """A carrier's pledges for a period, in the catalogue's order of kinds."""
    carrier = _carrier(session, actor, carrier_code)
    period = parse_period(period_text)
    found = session.scalars(sa.select(Pledge).options(selectinload(Pledge.carrier))
                            .where(Pledge.carrier_id == carrier.id, Pledge.period == period.label))
    order = list(KINDS)
    return sorted(found, key=lambda p: order.index(p.kind))


def _check(items: list[dict[str, Any]]) -> None:
    problems: dict[str, Any] = {}
    for index, item in enumerate(items):
        found = terms_problems(item["terms"], item.get("unit_price"), item.get("discount_rate"))
        if item["kind"] not in KINDS:
            found["kind"] = [f"Unknown kind {item['kind']!r}."]
        if found:
            problems[str(index)] = found
    if problems:
        raise InvalidInput("The pledges are not valid.", {"pledges": problems})


def _write(session: Session, actor: Account, carrier: Carrier, period: Period, pledge: Pledge | None,
           item: dict[str, Any]) -> Pledge:
    """Record `item` as a new pledge, or revise `pledge` (the same carrier, period and kind) with it."""
    figures = (item["quantity"], PledgeTerms(item["terms"]), item.get("unit_price"), item.get("discount_rate"),
               item.get("note") or "", actor.id)
    if pledge is None:
        pledge = Pledge(carrier_id=carrier.id, period=period.label, first_day=period.first_day,
                        last_day=last_day(period), kind=item["kind"], quantity=figures[0], terms=figures[1],
                        unit_price=figures[2], discount_rate=figures[3], note=figures[4], recorded_by_id=actor.id)
        session.add(pledge)
    else:
        pledge.revise(*figures)
    return pledge


def _remove(session: Session, pledge: Pledge) -> None:
    """Delete `pledge`, its last figures kept in the audit log (the flush hook records only inserts and updates)."""
    before = {"carrier_id": pledge.carrier_id, "period": pledge.period, "kind": pledge.kind,
              "quantity": str(pledge.quantity), "terms": pledge.terms.value,
              "unit_price": None if pledge.unit_price is None else str(pledge.unit_price),
              "discount_rate": None if pledge.discount_rate is None else str(pledge.discount_rate), "note": pledge.note}
    session.add(AuditEntry(**actor_columns(session), action="remove", entity_type=Pledge.__tablename__,
                           entity_id=pledge.id, before=before, after=None))
    session.delete(pledge)


@transaction
def set_pledges(session: Session, actor: Account, carrier_code: str, period_text: str,
                items: list[dict[str, Any]]) -> list[Pledge]:
    """Replace the carrier's pledges for the period by `items` (one per kind): a kind left out is removed.

    A carrier for itself, or staff for any carrier; a revised pledge keeps its row and the audit
    log records the figures it replaced.
    """
    carrier = _carrier(session, actor, carrier_code)
    period = parse_period(period_text)
    _check(items)
    existing = {p.kind: p for p in session.scalars(
        sa.select(Pledge).where(Pledge.carrier_id == carrier.id, Pledge.period == period.label).with_for_update())}
    for item in items:
        _write(session, actor, carrier, period, existing.pop(item["kind"], None), item)
    for gone in existing.values():
        _remove(session, gone)
    session.flush()
    return pledges(session, actor, carrier_code, period_text)


@transaction
def record_pledge(session: Session, actor: Account, carrier_code: str, period_text: str,
                  item: dict[str, Any]) -> Pledge:
    """Record or revise one kind's pledge for the period, leaving the other kinds as they are."""
    carrier = _carrier(session, actor, carrier_code)
    period = parse_period(period_text)
    _check([item])
    pledge = session.scalar(sa.select(Pledge).where(Pledge.carrier_id == carrier.id, Pledge.period == period.label,
                                                    Pledge.kind == item["kind"]).with_for_update())
    pledge = _write(session, actor, carrier, period, pledge, item)
    session.flush()
    return pledge


@transaction
def remove_pledge(session: Session, actor: Account, carrier_code: str, period_text: str, kind: str) -> None:
    """The carrier no longer pledges `kind` for the period."""
    carrier = _carrier(session, actor, carrier_code)
    period = parse_period(period_text)
    pledge = session.scalar(sa.select(Pledge).where(Pledge.carrier_id == carrier.id, Pledge.period == period.label,
                                                    Pledge.kind == kind))
    if pledge is None:
        raise NotFound(f"No pledge of {kind!r} for {period.label}.")
    _remove(session, pledge)


# -- tracking ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingLine:
    carrier_code: str
    carrier_name: str
    kind: str
    pledged: Decimal
    published: Decimal
    allocated: Decimal
    delivered: Decimal

    @property
    def shortfall(self) -> Decimal:
        return max(self.pledged - self.published, ZERO)


@dataclass(frozen=True)
class Tracking:
    period: Period
    lines: list[TrackingLine]
    carriers: list[tuple[str, str]]  # (code, name) of those the reader may choose: the filter's choices

    @property
    def last_day(self) -> dt.date:
        return last_day(self.period)

    def by_kind(self) -> dict[str, dict[str, Decimal]]:
        """Every carrier's figures summed per kind (the chart's bars), in the catalogue's order."""
        sums: dict[str, dict[str, Decimal]] = {}
        for line in self.lines:
            kind = sums.setdefault(line.kind, dict.fromkeys(FIGURES, ZERO))
            for name in FIGURES:
                kind[name] += getattr(line, name)
        return {k: sums[k] for k in KINDS if k in sums}


FIGURES = ("pledged", "published", "allocated", "delivered")


def pledge_tracking(session: Session, actor: Account, period_text: str, carrier_code: str | None = None) -> Tracking:
    """Pledged, published, allocated and delivered per carrier × kind for the period (see the module's note).

    Staff see every carrier or the one named; a carrier sees only its own (naming another is NotFound).
    """
    period = parse_period(period_text)
    if actor.role is Role.carrier:
        carrier_code = carrier_code or own_carrier_code(session, actor)
    elif actor.role not in STAFF_ROLES:
        raise Forbidden("Only a carrier and staff see pledge tracking.")
    only = _carrier(session, actor, carrier_code).id if carrier_code else None

    overlapping = sa.and_(Offer.window_start < period.end_day, Offer.window_end >= period.first_day)
    queries = {
        "pledged": sa.select(Pledge.carrier_id, Pledge.kind, sa.func.sum(Pledge.quantity))
        .where(Pledge.period == period.label).group_by(Pledge.carrier_id, Pledge.kind),
        "published": sa.select(Offer.carrier_id, Offer.kind, sa.func.sum(Offer.quantity))
        .where(overlapping).group_by(Offer.carrier_id, Offer.kind),
        "allocated": sa.select(Offer.carrier_id, Offer.kind, sa.func.sum(Allocation.quantity))
        .join(Offer, Offer.id == Allocation.offer_id)
        .where(overlapping, Allocation.status.in_(GRANTED)).group_by(Offer.carrier_id, Offer.kind),
        "delivered": sa.select(Offer.carrier_id, Offer.kind, sa.func.sum(UsageReport.quantity))
        .join(Allocation, Allocation.id == UsageReport.allocation_id).join(Offer, Offer.id == Allocation.offer_id)
        .where(UsageReport.recorded_at >= period.starts_at, UsageReport.recorded_at < period.ends_at)
        .group_by(Offer.carrier_id, Offer.kind),
    }
    carrier_column = {"pledged": Pledge.carrier_id, "published": Offer.carrier_id, "allocated": Offer.carrier_id,
                      "delivered": Offer.carrier_id}
    figures: dict[tuple[int, str], dict[str, Decimal]] = {}
    for name, query in queries.items():
        if only is not None:
            query = query.where(carrier_column[name] == only)
        for carrier_id, kind, total in session.execute(query):
            figures.setdefault((carrier_id, kind), dict.fromkeys(FIGURES, ZERO))[name] = total or ZERO
    visible = sa.select(Carrier.id, Carrier.code, Carrier.name).order_by(Carrier.code)
    if actor.role is Role.carrier:
        visible = visible.where(Carrier.id == actor.carrier_id)
    names = {carrier_id: (code, name) for carrier_id, code, name in session.execute(visible)}
    order = list(KINDS)
    lines = [TrackingLine(names[c][0], names[c][1], kind, **values) for (c, kind), values in figures.items()]
    lines.sort(key=lambda line: (line.carrier_code, order.index(line.kind)))
    return Tracking(period, lines, list(names.values()))
