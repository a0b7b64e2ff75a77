"""Subsidy programs at work: who is eligible, what a program commits, and what usage redeems."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date
from broker.db import Money
from broker.models import Allocation, Offer, ProgramStatus, Startup, SubsidyCommitment, SubsidyProgram

FEN = Decimal("0.01")


def eligibility_problem(program: SubsidyProgram, startup: Startup, kind: str, carrier_id: int, today: dt.date) -> str | None:
    """Why `startup` cannot have `program` pay for `kind` from this carrier today, or None."""
    if program.status is not ProgramStatus.open or not program.starts_on <= today < program.ends_on:
        return "program not running"
    if kind not in program.kinds:
        return f"program does not cover {kind}"
    if program.eligible_sectors is not None and startup.sector.value not in program.eligible_sectors:
        return "sector not eligible"
    if program.require_in_district and not startup.registered_in_district:
        return "not registered in the district"
    if program.max_company_age_years is not None:
        founded_limit = today.replace(year=today.year - program.max_company_age_years)
        if startup.founded_on < founded_limit:
            return f"founded more than {program.max_company_age_years} years ago"
    if program.max_headcount is not None and startup.headcount > program.max_headcount:
        return "headcount above the program's limit"
    if program.exclude_carrier_affiliates and startup.affiliated_carrier_id == carrier_id:
        return "affiliated with the supplying carrier"
    return None


def commit_for(session: Session, allocation: Allocation, startup: Startup, offer: Offer, now: dt.datetime) -> SubsidyCommitment | None:
    """Commit the first eligible program's share of an approved allocation's cost, within every cap.

    Every open program's row is locked (in id order, the lock order's place for programs)
    before any per-startup cap is summed or budget raised, so concurrent approvals can never
    overspend, and a batch of approvals paid by different programs locks them alike.
    """
    today = local_date(now)
    cost = allocation.cost
    if cost <= 0:
        return None
    programs = session.scalars(
        sa.select(SubsidyProgram)
        .where(SubsidyProgram.status == ProgramStatus.open)
        .order_by(SubsidyProgram.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for program in programs:
        if eligibility_problem(program, startup, offer.kind, offer.carrier_id, today):
            continue
        amount = _share(session, program, startup, cost, now)
        if amount <= 0:
            continue
        program.commit(amount)  # behind CHECK (committed <= budget) as well
        commitment = SubsidyCommitment(program_id=program.id, allocation_id=allocation.id, startup_id=startup.id, amount=amount, created_at=now)
        session.add(commitment)
        return commitment
    return None


def give_back_for(session: Session, allocation_ids: list[int], now: dt.datetime) -> Decimal:
    """These allocations ended before use: their commitments give every unused fen back.

    Locks the programs (id order), then the commitments (id order), after the caller's
    allocations and offers, as the lock order says. Returns the total given back.
    """
    if not allocation_ids:
        return Decimal(0)
    program_ids = session.scalars(
        sa.select(SubsidyCommitment.program_id).where(SubsidyCommitment.allocation_id.in_(allocation_ids)).distinct()
    ).all()
    if not program_ids:
        return Decimal(0)
    programs = {
        p.id: p
        for p in session.scalars(
            sa.select(SubsidyProgram).where(SubsidyProgram.id.in_(program_ids)).order_by(SubsidyProgram.id)
            .with_for_update().execution_options(populate_existing=True)
        )
    }
    commitments = session.scalars(
        sa.select(SubsidyCommitment)
        .where(SubsidyCommitment.allocation_id.in_(allocation_ids), SubsidyCommitment.released_at.is_(None))
        .order_by(SubsidyCommitment.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    total = Decimal(0)
    for commitment in commitments:
        unused = commitment.release(now)
        programs[commitment.program_id].give_back(unused)
        total += unused
    return total


def redeem_usage(session: Session, allocation: Allocation, used: Decimal) -> Decimal:
    """Usage of `used` units of an allocation turns its share of the commitment into money paid.

    Program, then commitment, as the lock order says; never more than the commitment has
    left unused (nothing, once it was given back).
    """
    program_id = session.scalar(sa.select(SubsidyCommitment.program_id).where(SubsidyCommitment.allocation_id == allocation.id))
    if program_id is None:
        return Decimal(0)
    program = session.scalar(
        sa.select(SubsidyProgram).where(SubsidyProgram.id == program_id).with_for_update().execution_options(populate_existing=True)
    )
    commitment = session.scalar(
        sa.select(SubsidyCommitment).where(SubsidyCommitment.allocation_id == allocation.id)
        .with_for_update().execution_options(populate_existing=True)
    )
    share = (used * allocation.unit_price * program.rate).quantize(FEN, rounding=ROUND_DOWN)
    amount = min(share, commitment.unused)
    if amount > 0:
        commitment.redeem(amount)
        program.redeem(amount)
    return max(amount, Decimal(0))


@dataclass
class Quote:
    """What a startup would pay for `quantity` of an offer, after the subsidy it would get today."""

    offer: Offer
    quantity: Decimal
    gross: Decimal
    subsidy: Decimal
    program: SubsidyProgram | None
    not_eligible: dict[str, str]

    @property
    def net(self) -> Decimal:
        return self.gross - self.subsidy


def quote(session: Session, startup: Startup, offer: Offer, quantity: Decimal, now: dt.datetime) -> Quote:
    """The price before and after subsidy, by the same rules approval applies (nothing is reserved)."""
    gross = (quantity * offer.unit_price).quantize(FEN)
    not_eligible: dict[str, str] = {}
    for program in session.scalars(sa.select(SubsidyProgram).order_by(SubsidyProgram.id)):
        problem = eligibility_problem(program, startup, offer.kind, offer.carrier_id, local_date(now))
        if problem:
            not_eligible[program.code] = problem
            continue
        amount = _share(session, program, startup, gross, now)
        if amount > 0:
            return Quote(offer, quantity, gross, amount, program, not_eligible)
        not_eligible[program.code] = "cap or budget used up"
    return Quote(offer, quantity, gross, Decimal("0.00"), None, not_eligible)


def _share(session: Session, program: SubsidyProgram, startup: Startup, cost: Decimal, now: dt.datetime) -> Decimal:
    """What `program` would pay of `cost` for `startup` now: its rate, within the startup's cap and the budget."""
    return min(
        (cost * program.rate).quantize(FEN, rounding=ROUND_DOWN),
        _cap_left(session, program, startup, now),
        program.budget - program.committed,
    )


def _cap_left(session: Session, program: SubsidyProgram, startup: Startup, now: dt.datetime) -> Decimal:
    period_start = now - dt.timedelta(days=30 * program.cap_period_months)
    # What is still committed counts against the cap; what went back when an allocation
    # ended before use does not.
    still_committed = SubsidyCommitment.amount - SubsidyCommitment.released
    used = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(still_committed), Decimal(0), type_=Money())).where(
            SubsidyCommitment.program_id == program.id,
            SubsidyCommitment.startup_id == startup.id,
            SubsidyCommitment.created_at >= period_start,
        )
    )
    return program.cap_per_startup - used
