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

    The program row is locked while its per-startup cap is summed and its budget raised, and
    the budget update is itself guarded, so concurrent approvals can never overspend it.
    """
    today = local_date(now)
    cost = allocation.cost
    if cost <= 0:
        return None
    programs = session.scalars(sa.select(SubsidyProgram).where(SubsidyProgram.status == ProgramStatus.open).order_by(SubsidyProgram.id)).all()
    for candidate in programs:
        if eligibility_problem(candidate, startup, offer.kind, offer.carrier_id, today):
            continue
        program = session.scalar(
            sa.select(SubsidyProgram)
            .where(SubsidyProgram.id == candidate.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        amount = _share(session, program, startup, cost, now)
        if amount <= 0:
            continue
        raised = session.execute(
            sa.update(SubsidyProgram)
            .where(SubsidyProgram.id == program.id, SubsidyProgram.committed + amount <= SubsidyProgram.budget)
            .values(committed=SubsidyProgram.committed + amount)
            .execution_options(synchronize_session=False)
        )
        if raised.rowcount != 1:  # pragma: no cover - the row lock makes this unreachable
            continue
        commitment = SubsidyCommitment(program_id=program.id, allocation_id=allocation.id, startup_id=startup.id, amount=amount, created_at=now)
        session.add(commitment)
        return commitment
    return None


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
    used = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(SubsidyCommitment.amount), Decimal(0), type_=Money())).where(
            SubsidyCommitment.program_id == program.id,
            SubsidyCommitment.startup_id == startup.id,
            SubsidyCommitment.created_at >= period_start,
        )
    )
    return program.cap_per_startup - used
