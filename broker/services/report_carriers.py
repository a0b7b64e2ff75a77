"""Report 5, the carrier statement (运营商对账): per carrier and month, what it pledged and delivered
(per kind, in the kind's unit) and the subsidy money on its allocations: redeemed, still pending
settlement, and its provisioning failures (docs/reports.md, "Carrier statement"). Staff see every
carrier; a carrier's account sees its own statement only (the carrier page's 对账单).

The months: every Shanghai calendar month the period touches, each counted whole.

- **Pledged**, per kind: pledges are recorded per period (a quarter or a month,
  broker/services/pledges.py); a month gets its **share by days** of each pledge whose period it
  falls in: quantity × the month's days / the pledge period's days, to the thousandth (a month's
  own pledge whole; 900 GPU-hours pledged for 2027-Q1, 90 days, give January 310, February 280,
  March 310).
- **Delivered**, per kind: the usage the carrier reported with `recorded_at` in the month (Shanghai),
  the figure `pledges.pledge_tracking` gives for that month on the carrier's own pledge page; every
  month of the period in one grouped read.
- **Redeemed**: the ledger's redeem rows created in the month on awards of the carrier's
  allocations (yuan; the rows the carrier's delivery screen sums per usage report).
- **Pending settlement**: of those rows, the ones no approved settlement statement has paid yet:
  a row is settled once a statement of its program, approved (or written off), has a line for its
  award with something payable and ends after the row was written.
- **Provisioning failures**: the carrier's allocations whose provisioning attempts ran out in the
  month (the `allocation.provisioning_failed` event; a retry before that is not time-stamped).

A fixed number of statements whatever the months, carriers, allocations or ledger rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import Money
from broker.errors import InvalidInput
from broker.models import (
    Account,
    Allocation,
    Award,
    Carrier,
    LedgerEntry,
    LedgerKind,
    Offer,
    Pledge,
    Role,
    SettlementLine,
    SettlementStatement,
    UsageReport,
)
from broker.models.settlement import StatementStatus
from broker.models.workflow import Event
from broker.resources import KINDS
from broker.services import pledges
from broker.services.accounts import require_role
from broker.services.district_reports import _shanghai_month
from broker.services.settlement import Period, parse_period

ZERO_QTY = Decimal("0.000")
ZERO_MONEY = Decimal("0.00")
THOUSANDTH = Decimal("0.001")


@dataclass(frozen=True)
class CarrierFilters:
    start: dt.date
    end: dt.date  # inclusive
    carrier: str | None = None  # the carrier's code


@dataclass(frozen=True)
class KindMonth:
    carrier_code: str
    carrier_name: str
    month: str  # "2027-01"
    kind: str
    pledged: Decimal
    delivered: Decimal


@dataclass(frozen=True)
class MoneyMonth:
    carrier_code: str
    carrier_name: str
    month: str
    redeemed: Decimal
    pending: Decimal
    failures: int


@dataclass(frozen=True)
class CarrierReport:
    filters: CarrierFilters
    months: list[str]
    kinds: list[KindMonth]
    money: list[MoneyMonth]
    carriers: list[tuple[str, str]]  # (code, name): the filter's choices


def months_of(start: dt.date, end: dt.date) -> list[Period]:
    """Every month the period touches, as settlement periods (`2027-01`)."""
    found, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        found.append(parse_period(f"{year:04d}-{month:02d}"))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def pledged_share(quantity: Decimal, pledge_first: dt.date, pledge_last: dt.date, month: Period) -> Decimal:
    """The month's share of a pledge by days (see the module's note)."""
    overlap = (min(pledge_last + dt.timedelta(days=1), month.end_day) - max(pledge_first, month.first_day)).days
    if overlap <= 0:
        return ZERO_QTY
    return (quantity * overlap / ((pledge_last - pledge_first).days + 1)).quantize(THOUSANDTH)


def carrier_statement(session: Session, actor: Account, filters: CarrierFilters) -> CarrierReport:
    """Report 5: per carrier and month, pledged, delivered, redeemed, pending settlement, provisioning failures.

    Staff see every carrier or the one named; a carrier sees only its own statement (naming another is
    the same InvalidInput as naming no carrier at all, so nothing says which codes exist).
    """
    require_role(actor, Role.staff, Role.admin, Role.carrier)
    choices = sa.select(Carrier.code, Carrier.name).order_by(Carrier.code)
    if actor.role is Role.carrier:
        choices = choices.where(Carrier.code == pledges.own_carrier_code(session, actor))
    every = [(code, name) for code, name in session.execute(choices)]
    if filters.carrier and filters.carrier not in {code for code, _ in every}:
        raise InvalidInput("No such carrier.", {"carrier": [f"No carrier with code {filters.carrier!r}."]})
    if actor.role is Role.carrier:  # every query below is scoped by the filter's carrier
        filters = dataclasses.replace(filters, carrier=every[0][0])
    shown = [(c, n) for c, n in every if not filters.carrier or c == filters.carrier]
    names = dict(shown)
    months = months_of(filters.start, filters.end)
    starts_at, ends_at = months[0].starts_at, months[-1].ends_at

    # Pledged and delivered per carrier × month × kind, in the kind's unit.
    figures: dict[tuple[str, str, str], list[Decimal]] = defaultdict(lambda: [ZERO_QTY, ZERO_QTY])
    pledged = (sa.select(Carrier.code, Pledge.kind, Pledge.quantity, Pledge.first_day, Pledge.last_day)
               .join(Carrier, Carrier.id == Pledge.carrier_id)
               .where(Pledge.first_day < months[-1].end_day, Pledge.last_day >= months[0].first_day))
    if filters.carrier:
        pledged = pledged.where(Carrier.code == filters.carrier)
    for code, kind, quantity, first, last in session.execute(pledged):
        for month in months:
            share = pledged_share(quantity, first, last, month)
            if share:
                figures[(code, month.label, kind)][0] += share
    # Delivered: the usage recorded in each month (pledge tracking's figure), all the months in one read.
    month_of_use = _shanghai_month(session, UsageReport.recorded_at)
    delivered = (
        sa.select(Carrier.code, month_of_use, Offer.kind, sa.func.sum(UsageReport.quantity, type_=UsageReport.quantity.type))
        .join(Allocation, Allocation.id == UsageReport.allocation_id).join(Offer, Offer.id == Allocation.offer_id)
        .join(Carrier, Carrier.id == Offer.carrier_id)
        .where(UsageReport.recorded_at >= starts_at, UsageReport.recorded_at < ends_at)
        .group_by(Carrier.code, month_of_use, Offer.kind)
    )
    if filters.carrier:
        delivered = delivered.where(Carrier.code == filters.carrier)
    for code, month_label, kind, quantity in session.execute(delivered):
        if quantity:
            figures[(code, month_label, kind)][1] += quantity
    order = list(KINDS)
    kinds = [KindMonth(code, names[code], month, kind, *values) for (code, month, kind), values in
             sorted(figures.items(), key=lambda item: (item[0][0], item[0][1], order.index(item[0][2])))]

    # Money and failures per carrier × month.
    month_of_row = _shanghai_month(session, LedgerEntry.created_at)
    # A row is settled when a paying line of its award ends after it: so by the latest such end per award
    # (one grouped read joined once, rather than asking per ledger row).
    settled = (
        sa.select(SettlementLine.award_id, sa.func.max(SettlementStatement.ends_at).label("until"))
        .join(SettlementStatement, SettlementStatement.id == SettlementLine.statement_id)
        .join(Award, Award.id == SettlementLine.award_id)
        .where(SettlementStatement.program_id == Award.program_id,
               SettlementStatement.status.in_((StatementStatus.approved, StatementStatus.written_off)),
               SettlementLine.payable > 0)
        .group_by(SettlementLine.award_id)
        .subquery()
    )
    money = sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0, type_=Money())
    unpaid = sa.or_(settled.c.until.is_(None), settled.c.until <= LedgerEntry.created_at)
    pending = sa.func.coalesce(sa.func.sum(sa.case((unpaid, LedgerEntry.amount))), 0, type_=Money())
    redeemed = (
        sa.select(Carrier.code, month_of_row, money, pending)
        .join(Award, Award.id == LedgerEntry.award_id).join(Carrier, Carrier.id == Award.carrier_id)
        .outerjoin(settled, settled.c.award_id == LedgerEntry.award_id)
        .where(LedgerEntry.kind == LedgerKind.redeem, LedgerEntry.created_at >= starts_at, LedgerEntry.created_at < ends_at)
        .group_by(Carrier.code, month_of_row)
    )
    month_of_event = _shanghai_month(session, Event.created_at)
    failed = (
        sa.select(Carrier.code, month_of_event, sa.func.count(Event.id))
        .join(Carrier, Carrier.id == Event.carrier_id)
        .where(Event.type == "allocation.provisioning_failed", Event.created_at >= starts_at, Event.created_at < ends_at)
        .group_by(Carrier.code, month_of_event)
    )
    if filters.carrier:
        redeemed, failed = redeemed.where(Carrier.code == filters.carrier), failed.where(Carrier.code == filters.carrier)
    sums = {(code, month): (r or ZERO_MONEY, p or ZERO_MONEY) for code, month, r, p in session.execute(redeemed)}
    failures = {(code, month): int(n) for code, month, n in session.execute(failed)}
    rows = [
        MoneyMonth(code, name, month.label, *sums.get((code, month.label), (ZERO_MONEY, ZERO_MONEY)),
                   failures.get((code, month.label), 0))
        for code, name in shown for month in months
    ]
    return CarrierReport(filters, [m.label for m in months], kinds, rows, every)
