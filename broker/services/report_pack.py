"""The performance-evaluation pack (绩效自评, issue 14 report 7): one subsidy program's year laid out
under the evaluation's headings, read in a fixed handful of aggregate queries (docs/reports.md).

The year is a fiscal year (the awards' and the ledger's `fiscal_year`). The figures:

- **决策** (decision basis): the program's terms (mode, rate, cap per startup, period) and its
  funding documents: the year's deposits with their document numbers, and their sum, the year's budget.
- **过程** (process): review timeliness — the allocations of the year's cycles (started in the year,
  Shanghai) on offers of the kinds the program covers, decided (approved or rejected) before or after
  their cycle's approval deadline, and lapsed undecided; the on-time rate is decided on time ÷
  (decided + lapsed). Public notices (公示) of the year's awards: batches, awards noticed and taken
  out, objections lodged and how they were answered.
- **产出** (output): the year's awards, not taken out by an upheld objection: firms served (distinct
  startups), awards, committed (what each award was at approval), redeemed (by usage, net of clawbacks)
  and the redemption rate, redeemed ÷ committed; the share of the year's budget committed.
- **效益** (benefit): leverage, the redeemed subsidy ÷ the gross value of the usage delivered on those
  awards' allocations (reported quantity × the allocation's unit price); the Lighthouse (灯塔) sectors'
  share of the firms served and of the amount committed.
- **满意度** (satisfaction): the ratings startups gave the allocations those awards paid for: their
  count, mean and distribution over 1–5.

Rates are percentages and the leverage a ratio, each rounded half up to two places.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import SHANGHAI
from broker.errors import NotFound
from broker.models import (
    LIGHTHOUSE_SECTORS,
    Account,
    Allocation,
    AllocationStatus,
    Award,
    MatchingCycle,
    Offer,
    Role,
    Startup,
    SubsidyProgram,
)
from broker.models.ledger import LedgerEntry, LedgerKind, NoticeState
from broker.models.notices import NoticeItem, Objection, ObjectionStatus
from broker.models.ratings import RATING_SCORES, AllocationRating
from broker.models.workflow import UsageReport
from broker.resources import MONEY_PLACES, QUANTITY_PLACES, UNIT_PRICE_PLACES
from broker.services.accounts import require_role

HUNDREDTH = Decimal("0.01")
FEN = Decimal(1).scaleb(-MONEY_PLACES)
DECIDED = (AllocationStatus.approved, AllocationStatus.provisioning, AllocationStatus.active,
           AllocationStatus.released, AllocationStatus.rejected, AllocationStatus.cancelled)


@dataclass(frozen=True)
class PackFilters:
    year: int
    program_id: int | None = None  # None: the first program


@dataclass(frozen=True)
class ProgramChoice:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class Deposit:
    reference: str
    amount: Decimal
    day: dt.date  # when it was booked, Shanghai


@dataclass(frozen=True)
class Decision:
    status: str
    mode: str
    rate_percent: Decimal
    cap_per_startup: Decimal
    starts_on: dt.date
    ends_on: dt.date
    deposits: list[Deposit]
    year_budget: Decimal


@dataclass(frozen=True)
class Process:
    reviewed: int  # decided + lapsed
    on_time: int
    late: int
    lapsed: int
    on_time_percent: Decimal | None
    notices: int
    noticed: int
    removed: int
    objections: int
    upheld: int
    dismissed: int
    open_objections: int


@dataclass(frozen=True)
class Output:
    firms: int
    awards: int
    committed: Decimal
    redeemed: Decimal
    redemption_percent: Decimal | None
    budget_percent: Decimal | None  # committed ÷ the year's budget


@dataclass(frozen=True)
class Benefit:
    redeemed: Decimal
    delivered_gross: Decimal
    leverage: Decimal | None
    lighthouse_firms: int
    lighthouse_firms_percent: Decimal | None
    lighthouse_committed: Decimal
    lighthouse_amount_percent: Decimal | None


@dataclass(frozen=True)
class Satisfaction:
    ratings: int
    mean: Decimal | None
    distribution: list[tuple[int, int]]  # (score, ratings) for 5 down to 1


@dataclass(frozen=True)
class PackReport:
    filters: PackFilters
    programs: list[ProgramChoice]
    program: ProgramChoice | None
    decision: Decision | None
    process: Process
    output: Output
    benefit: Benefit
    satisfaction: Satisfaction


def percent_of(part: Decimal | int, whole: Decimal | int, scale: int = 100) -> Decimal | None:
    """part ÷ whole × scale, rounded half up to two places; None when there is no whole."""
    if not whole:
        return None
    return (Decimal(part) * scale / Decimal(whole)).quantize(HUNDREDTH, ROUND_HALF_UP)


def _sum(expr: sa.ColumnElement) -> sa.ColumnElement[int]:
    return sa.type_coerce(sa.func.coalesce(sa.func.sum(expr), 0), sa.BigInteger)


def _money(stored: int | Decimal | None) -> Decimal:
    return Award.amount.type.process_result_value(int(stored or 0), None)


def _year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(year, 1, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)
    return start, dt.datetime(year + 1, 1, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)


def pack(session: Session, actor: Account, filters: PackFilters) -> PackReport:
    """Report 7: one program's year under 决策, 过程, 产出, 效益 and 满意度 (staff only)."""
    require_role(actor, Role.staff, Role.admin)
    programs = [ProgramChoice(*found) for found in session.execute(
        sa.select(SubsidyProgram.id, SubsidyProgram.code, SubsidyProgram.name).order_by(SubsidyProgram.id))]
    if filters.program_id is None:
        chosen = programs[0] if programs else None
    else:
        chosen = next((choice for choice in programs if choice.id == filters.program_id), None)
        if chosen is None:
            raise NotFound("No such subsidy program.")
    if chosen is None:
        empty = Output(0, 0, Decimal(0), Decimal(0), None, None)
        return PackReport(filters, programs, None, None, _process(session, None, filters.year), empty,
                          Benefit(Decimal(0), Decimal(0), None, 0, None, Decimal(0), None), Satisfaction(0, None, []))
    program = session.get(SubsidyProgram, chosen.id)
    decision = _decision(session, program, filters.year)
    awards = (sa.select(Award.id, Award.allocation_id, Award.startup_id, Award.amount, Award.redeemed)
              .where(Award.program_id == program.id, Award.fiscal_year == filters.year,
                     Award.notice_state != NoticeState.removed).subquery("year_awards"))
    output, benefit = _output_benefit(session, awards, decision.year_budget)
    return PackReport(filters, programs, chosen, decision, _process(session, program, filters.year), output, benefit,
                      _satisfaction(session, awards))


def _decision(session: Session, program: SubsidyProgram, year: int) -> Decision:
    deposits = [
        Deposit(reference or "", amount, created.astimezone(SHANGHAI).date())
        for reference, amount, created in session.execute(
            sa.select(LedgerEntry.reference, LedgerEntry.amount, LedgerEntry.created_at)
            .where(LedgerEntry.program_id == program.id, LedgerEntry.kind == LedgerKind.deposit,
                   LedgerEntry.fiscal_year == year)
            .order_by(LedgerEntry.id))
    ]
    return Decision(program.status.value, program.mode.value, (program.rate * 100).quantize(HUNDREDTH),
                    program.cap_per_startup, program.starts_on, program.ends_on, deposits,
                    sum((deposit.amount for deposit in deposits), Decimal(0)))


def _process(session: Session, program: SubsidyProgram | None, year: int) -> Process:
    start, end = _year_bounds(year)
    status = Allocation.status
    on_time = sa.and_(status.in_(DECIDED), Allocation.decided_at <= MatchingCycle.approval_deadline)
    late = sa.and_(status.in_(DECIDED), Allocation.decided_at > MatchingCycle.approval_deadline)
    review = (
        sa.select(sa.func.count(sa.case((on_time, 1))), sa.func.count(sa.case((late, 1))),
                  sa.func.count(sa.case((status == AllocationStatus.lapsed, 1))))
        .join(MatchingCycle, MatchingCycle.id == Allocation.cycle_id)
        .join(Offer, Offer.id == Allocation.offer_id)
        .where(MatchingCycle.started_at >= start, MatchingCycle.started_at < end)
    )
    if program is None:
        review = review.where(sa.false())
    else:
        if program.kinds is not None:
            review = review.where(Offer.kind.in_(program.kinds))
        if program.excluded_kinds:
            review = review.where(Offer.kind.not_in(program.excluded_kinds))
    timely, late_n, lapsed = (int(n) for n in session.execute(review).one())
    reviewed = timely + late_n + lapsed

    year_items = (
        sa.select(NoticeItem.notice_id, NoticeItem.removed_at)
        .join(Award, Award.id == NoticeItem.award_id)
        .where(Award.program_id == (program.id if program else -1), Award.fiscal_year == year)
        .subquery("year_items")
    )
    notices, noticed, removed = session.execute(
        sa.select(sa.func.count(sa.distinct(year_items.c.notice_id)), sa.func.count(),
                  sa.func.count(year_items.c.removed_at))
    ).one()
    objection_counts = dict(session.execute(
        sa.select(Objection.status, sa.func.count())
        .where(Objection.notice_id.in_(sa.select(year_items.c.notice_id)))
        .group_by(Objection.status)).all())
    return Process(
        reviewed, timely, late_n, lapsed, percent_of(timely, reviewed), int(notices), int(noticed), int(removed),
        sum(int(n) for n in objection_counts.values()), int(objection_counts.get(ObjectionStatus.upheld, 0)),
        int(objection_counts.get(ObjectionStatus.dismissed, 0)), int(objection_counts.get(ObjectionStatus.open, 0)),
    )


def _output_benefit(session: Session, awards: sa.Subquery, year_budget: Decimal) -> tuple[Output, Benefit]:
    lighthouse = Startup.sector.in_(LIGHTHOUSE_SECTORS)
    firms, award_n, committed, redeemed, lh_firms, lh_committed = session.execute(
        sa.select(sa.func.count(sa.distinct(awards.c.startup_id)), sa.func.count(awards.c.id),
                  _sum(awards.c.amount), _sum(awards.c.redeemed),
                  sa.func.count(sa.distinct(sa.case((lighthouse, awards.c.startup_id)))),
                  _sum(sa.case((lighthouse, awards.c.amount))))
        .join(Startup, Startup.id == awards.c.startup_id)
    ).one()
    committed, redeemed, lh_committed = _money(committed), _money(redeemed), _money(lh_committed)
    # The gross value of what was delivered: usage × unit price, summed exactly in stored integers.
    stored_gross = session.scalar(
        sa.select(_sum(sa.type_coerce(UsageReport.quantity, sa.BigInteger) * sa.type_coerce(Allocation.unit_price, sa.BigInteger)))
        .join(Allocation, Allocation.id == UsageReport.allocation_id)
        .where(Allocation.id.in_(sa.select(awards.c.allocation_id)))
    )
    gross = (Decimal(int(stored_gross or 0)).scaleb(-(QUANTITY_PLACES + UNIT_PRICE_PLACES))).quantize(FEN, ROUND_HALF_UP)
    output = Output(int(firms), int(award_n), committed, redeemed, percent_of(redeemed, committed),
                    percent_of(committed, year_budget))
    benefit = Benefit(redeemed, gross, percent_of(redeemed, gross, scale=1), int(lh_firms), percent_of(lh_firms, firms),
                      lh_committed, percent_of(lh_committed, committed))
    return output, benefit


def _satisfaction(session: Session, awards: sa.Subquery) -> Satisfaction:
    counts = dict(session.execute(
        sa.select(AllocationRating.score, sa.func.count())
        .where(AllocationRating.allocation_id.in_(sa.select(awards.c.allocation_id)))
        .group_by(AllocationRating.score)).all())
    ratings = sum(int(n) for n in counts.values())
    total = sum(int(score) * int(n) for score, n in counts.items())
    return Satisfaction(ratings, percent_of(total, ratings, scale=1),
                        [(score, int(counts.get(score, 0))) for score in sorted(RATING_SCORES, reverse=True)])
