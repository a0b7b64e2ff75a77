"""Subsidy programs at work: who is eligible, which program (or stack) pays the most, the awards
approval makes, what usage redeems, and what goes back when an allocation ends before use.

Every movement of money is a ledger row (`broker.services.ledger.post`). Locks: programs in id
order, then awards in id order, after the caller's allocations and offers (the lock order in
`broker.services.allocations`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date
from broker.db import Money, Quantity
from broker.models import (
    Allocation,
    Award,
    AwardStatus,
    Carrier,
    LedgerEntry,
    LedgerKind,
    Offer,
    OtherSubsidy,
    ProgramMode,
    ProgramStatus,
    RelatedParty,
    Startup,
    SubsidyBan,
    SubsidyProgram,
    UsageReport,
)
from broker.services import events, ledger

FEN = Decimal("0.01")
ZERO = Decimal("0.00")


def _fen(value: Decimal) -> Decimal:
    return value.quantize(FEN, rounding=ROUND_DOWN)


# -- the rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldSubsidy:
    """Another public subsidy the startup declared for the contract in question."""

    level: str  # national, city, district
    name: str
    granting_body: str


@dataclass(frozen=True)
class Facts:
    """What eligibility needs to know beyond the program, the startup and the offer, read once per
    startup and offer from the database (`facts_for`)."""

    # Programs the startup is banned from after a clawback, and until when (exclusive).
    banned_until: dict[int, dt.date] = field(default_factory=dict)
    # Why the startup and the supplying carrier are related parties, if they are (None: not related).
    related_party: str | None = None
    # Other public subsidies the startup declared for the same contract.
    other_subsidies: tuple[HeldSubsidy, ...] = ()
    # Why each ban in `banned_until` was imposed (the clawback's reason).
    ban_reasons: dict[int, str] = field(default_factory=dict)


@dataclass
class Declarations:
    """What startups and carriers declared (related parties, other subsidies) and the carriers'
    own codes, read at once for many eligibility checks (a cycle's every startup and offer)."""

    parties: dict[int, list[RelatedParty]]  # startup id -> its declared parties
    affiliates: dict[int, list[RelatedParty]]  # carrier id -> its declared affiliates
    carriers: dict[int, Carrier]
    subsidies: dict[int, list[OtherSubsidy]]  # startup id -> other subsidies it holds
    bans: dict[int, list[SubsidyBan]] = field(default_factory=lambda: defaultdict(list))  # startup id -> its bans


def declarations_for(session: Session, startup_ids: Iterable[int], carrier_ids: Iterable[int]) -> Declarations:
    """The declarations of these startups and carriers, in four queries."""
    startup_ids, carrier_ids = sorted(set(startup_ids)), sorted(set(carrier_ids))
    declared = Declarations(defaultdict(list), defaultdict(list), {}, defaultdict(list))
    for party in session.scalars(sa.select(RelatedParty).where(sa.or_(
            RelatedParty.startup_id.in_(startup_ids), RelatedParty.carrier_id.in_(carrier_ids))).order_by(RelatedParty.uscc)):
        if party.startup_id is not None:
            declared.parties[party.startup_id].append(party)
        else:
            declared.affiliates[party.carrier_id].append(party)
    declared.carriers = {c.id: c for c in session.scalars(sa.select(Carrier).where(Carrier.id.in_(carrier_ids)))}
    for held in session.scalars(sa.select(OtherSubsidy).where(OtherSubsidy.startup_id.in_(startup_ids)).order_by(OtherSubsidy.id)):
        declared.subsidies[held.startup_id].append(held)
    for ban in session.scalars(sa.select(SubsidyBan).where(SubsidyBan.startup_id.in_(startup_ids))
                               .order_by(SubsidyBan.until, SubsidyBan.id)):
        declared.bans[ban.startup_id].append(ban)
    return declared


def facts_for(session: Session, startup: Startup, offer: Offer, allocation_id: int | None = None,
              declared: Declarations | None = None) -> Facts:
    """The facts about `startup` and `offer` (for allocation `allocation_id`, if it exists yet)
    eligibility checks beyond the program's own terms. `declared`: read beforehand, for many."""
    if declared is None:
        declared = declarations_for(session, [startup.id], [offer.carrier_id])
    bans = declared.bans.get(startup.id, [])  # in order of their end: the longest ban wins
    return Facts(
        banned_until={ban.program_id: ban.until for ban in bans},
        ban_reasons={ban.program_id: ban.reason.value for ban in bans},
        related_party=_related_party(startup, declared.parties.get(startup.id, []),
                                     declared.carriers.get(offer.carrier_id), declared.affiliates.get(offer.carrier_id, [])),
        other_subsidies=tuple(
            HeldSubsidy(held.level.value, held.name, held.granting_body)
            for held in declared.subsidies.get(startup.id, [])
            if (allocation_id is not None and held.allocation_id == allocation_id)
            or (held.carrier_id == offer.carrier_id and held.kind == offer.kind)
        ),
    )


def _related_party(startup: Startup, parties: list[RelatedParty], carrier: Carrier | None,
                   affiliates: list[RelatedParty]) -> str | None:
    """Why the startup and the supplying carrier are related, in words, or None: a code on the
    startup's side (its own, or a party it declared) that is on the carrier's side too (its own,
    or an affiliate it declared). The lowest such code is named, so the reason is always the same."""
    if carrier is None:
        return None
    mine = {party.uscc: f"the startup's declared {party.relation.value} {party.name}" for party in parties}
    mine[startup.uscc] = "the startup's own code"
    theirs = {party.uscc: f"the {party.relation.value} {party.name} that carrier {carrier.code} declared" for party in affiliates}
    if carrier.uscc is not None:
        theirs[carrier.uscc] = f"the code of the supplying carrier {carrier.code}"
    for code in sorted(set(mine) & set(theirs)):
        return f"{code} is {mine[code]} and {theirs[code]}"
    return None


# The refusals the compliance report counts (report 6): approval records each as `subsidy.refused`.
# The codes are the clawback reasons for the same rules found after an award (`ClawbackReason`).
RELATED_PARTY, DOUBLE_SUBSIDY = "related_party", "double_subsidy"


@dataclass(frozen=True)
class Refusal:
    """Why a program would not pay, in words, and its code when it is one of the declared rules
    (`RELATED_PARTY`, `DOUBLE_SUBSIDY`) rather than the program's own terms, caps or budget."""

    words: str
    code: str | None = None


def eligibility_problem(program: SubsidyProgram, startup: Startup, offer: Offer, starts_on: dt.date, today: dt.date,
                        facts: Facts = Facts()) -> str | None:
    """Why `program` would not pay for `offer` to `startup`, for an allocation starting on `starts_on`, or None."""
    refusal = eligibility_refusal(program, startup, offer, starts_on, today, facts)
    return None if refusal is None else refusal.words


def eligibility_refusal(program: SubsidyProgram, startup: Startup, offer: Offer, starts_on: dt.date, today: dt.date,
                        facts: Facts = Facts()) -> Refusal | None:
    """`eligibility_problem` with the refusal's code."""
    if program.status is not ProgramStatus.open:
        return Refusal(f"program {program.status.value}")
    if not program.starts_on <= starts_on < program.ends_on:
        return Refusal(f"starts on {starts_on}, outside the program's period {program.starts_on} to {program.ends_on}")
    if (program.kinds is not None and offer.kind not in program.kinds) or offer.kind in (program.excluded_kinds or []):
        return Refusal(f"program does not cover {offer.kind}")
    if program.supplier_carrier_ids is not None and offer.carrier_id not in program.supplier_carrier_ids:
        return Refusal("supplier not on the program's list")
    if program.supplier_offer_ids is not None and offer.id not in program.supplier_offer_ids:
        return Refusal("offer not on the program's list")
    if program.eligible_sectors is not None and startup.sector.value not in program.eligible_sectors:
        return Refusal("sector not eligible")
    if program.require_in_district and not startup.registered_in_district:
        return Refusal("not registered in the district")
    if program.max_company_age_years is not None and _age_over(startup, program.max_company_age_years, today):
        return Refusal(f"founded more than {program.max_company_age_years} years ago")
    if program.max_headcount is not None and startup.headcount > program.max_headcount:
        return Refusal("headcount above the program's limit")
    if program.exclude_carrier_affiliates and startup.affiliated_carrier_id == offer.carrier_id:
        return Refusal("affiliated with the supplying carrier", RELATED_PARTY)
    if program.id in facts.banned_until and today < facts.banned_until[program.id]:
        why = facts.ban_reasons.get(program.id)
        return Refusal(f"barred from this program until {facts.banned_until[program.id]} after a clawback" + (f" ({why})" if why else ""))
    if program.exclude_carrier_affiliates and facts.related_party:
        return Refusal(f"related party of the supplier: {facts.related_party}", RELATED_PARTY)
    held = _excluded_subsidy(program, offer, facts)
    if held is not None:
        kinds = "" if program.excludes_subsidy_kinds is None else f" for {', '.join(program.excludes_subsidy_kinds)}"
        return Refusal(f"the startup holds another {held.level}-level public subsidy for this contract ({held.name}, "
                       f"granted by {held.granting_body}); the program excludes {', '.join(program.excludes_subsidy_levels)}"
                       f"-level subsidies{kinds}", DOUBLE_SUBSIDY)
    return None


def _excluded_subsidy(program: SubsidyProgram, offer: Offer, facts: Facts) -> HeldSubsidy | None:
    """The first subsidy the startup holds for this contract that the program's exclusion rule names."""
    if not program.excludes_subsidy_levels:
        return None
    if program.excludes_subsidy_kinds is not None and offer.kind not in program.excludes_subsidy_kinds:
        return None
    return next((held for held in facts.other_subsidies if held.level in program.excludes_subsidy_levels), None)


def _age_over(startup: Startup, years: int, today: dt.date) -> bool:
    try:
        limit = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        limit = today.replace(year=today.year - years, day=28)
    return startup.founded_on < limit


def rate_for(program: SubsidyProgram, startup: Startup, offer: Offer, today: dt.date) -> Decimal:
    """The program's rate, or the highest of its rules that match what is supplied and who gets it."""
    best = program.rate
    for rule in program.rate_rules or []:
        attributes = rule.get("attributes") or {}
        if any(str(offer.attributes.get(name)) not in [str(v) for v in values] for name, values in attributes.items()):
            continue
        if rule.get("sectors") is not None and startup.sector.value not in rule["sectors"]:
            continue
        if rule.get("max_company_age_years") is not None and _age_over(startup, rule["max_company_age_years"], today):
            continue
        best = max(best, Decimal(rule["rate"]))
    return best


@dataclass(frozen=True)
class Candidate:
    """What one eligible program would pay alone, and the stack group it may pay with."""

    program_id: int
    most: Decimal
    group_id: int | None = None
    group_cap: Decimal | None = None


def choose(candidates: Iterable[Candidate], cost: Decimal) -> list[tuple[int, Decimal]]:
    """The single program, or the stack of one group's programs within the group's combined share
    of `cost`, that pays the startup the most (从优不重复). Ties go to fewer programs, then to the
    lower program ids, so the choice is the same every time. Returns (program id, amount) pairs."""
    paying = [c for c in candidates if c.most > 0]
    options = [[(c.program_id, c.most)] for c in paying]
    groups: dict[int, list[Candidate]] = defaultdict(list)
    for c in paying:
        if c.group_id is not None:
            groups[c.group_id].append(c)
    for members in groups.values():
        if len(members) < 2:
            continue
        room = _fen(cost * members[0].group_cap)
        stack = []
        for c in sorted(members, key=lambda c: (-c.most, c.program_id)):
            pay = min(c.most, room)
            if pay > 0:
                stack.append((c.program_id, pay))
                room -= pay
        options.append(sorted(stack))
    if not options:
        return []
    return max(options, key=lambda o: (sum(a for _, a in o), -len(o), [-p for p, _ in o]))


@dataclass(frozen=True)
class Terms:
    """What one program would pay for one allocation, alone, and on which terms."""

    amount: Decimal
    rate: Decimal
    units: Decimal  # the units it covers (an allotment may cover fewer than the allocation's)
    limit: str | None = None  # what held it below its rate, in words


def terms(session: Session, program: SubsidyProgram, startup: Startup, offer: Offer, quantity: Decimal, unit_price: Decimal,
          today: dt.date, year: int, used: Used | None = None) -> Terms:
    """The most `program` would pay alone: its rate (or the allotment's free units), within the
    allocation cap, the startup's cap left this fiscal year and the budget left. `used`: what the
    startup has of its awards this year, read beforehand for many (`used_this_year`)."""
    cost = quantity * unit_price
    rate = rate_for(program, startup, offer, today)
    units = quantity
    if used is None:
        used = Used(_committed_to(session, program, startup, year),
                    _units_used(session, program, startup, year) if program.mode is ProgramMode.allotment else ZERO)
    if program.mode is ProgramMode.allotment:
        rate = Decimal(1)
        units = min(quantity, program.allotment_per_startup - used.units)
        wanted = _fen(units * unit_price)
    else:
        wanted = _fen(cost * rate)
    limits = [
        (program.cap_per_allocation, "the cap per allocation"),
        (program.cap_per_startup - used.committed, f"the startup's cap for {year}"),
        (program.remaining, "the program's budget"),
    ]
    amount, limit = wanted, None
    for ceiling, why in limits:
        if ceiling is not None and ceiling < amount:
            amount, limit = max(ceiling, ZERO), why
    return Terms(amount, rate, max(units, Decimal(0)), limit)


@dataclass(frozen=True)
class Used:
    """What a startup's awards of one program hold in one fiscal year: committed money, and the
    units of the awards still committing any (what an allotment counts)."""

    committed: Decimal = ZERO
    units: Decimal = Decimal(0)


def used_this_year(session: Session, startup_ids: Iterable[int], year: int) -> dict[tuple[int, int], Used]:
    """`Used` per (program id, startup id) for these startups in fiscal year `year`, in one query
    (a pair that is not there has used nothing)."""
    ids = sorted(set(startup_ids))
    if not ids:
        return {}
    rows = session.execute(
        sa.select(Award.program_id, Award.startup_id,
                  sa.func.coalesce(sa.func.sum(Award.committed), 0, type_=Money()),
                  sa.func.coalesce(sa.func.sum(Award.quantity).filter(Award.committed > 0), 0, type_=Quantity()))
        .where(Award.startup_id.in_(ids), Award.fiscal_year == year)
        .group_by(Award.program_id, Award.startup_id)
    )
    return {(program_id, startup_id): Used(committed, units) for program_id, startup_id, committed, units in rows}


def _committed_to(session: Session, program: SubsidyProgram, startup: Startup, year: int) -> Decimal:
    return session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Award.committed), 0, type_=Money()))
        .where(Award.program_id == program.id, Award.startup_id == startup.id, Award.fiscal_year == year)
    )


def _units_used(session: Session, program: SubsidyProgram, startup: Startup, year: int) -> Decimal:
    # An award given back unused (committed nothing) no longer holds its units.
    return session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Award.quantity), 0, type_=Quantity()))
        .where(Award.program_id == program.id, Award.startup_id == startup.id, Award.fiscal_year == year,
               Award.committed > 0)
    )


def _candidates(session: Session, programs: Iterable[SubsidyProgram], startup: Startup, offer: Offer, quantity: Decimal,
                unit_price: Decimal, starts_on: dt.date, now: dt.datetime,
                allocation_id: int | None = None, facts: Facts | None = None,
                used: dict[tuple[int, int], Used] | None = None) -> tuple[dict[int, Terms], dict[int, Refusal]]:
    """What each program would pay alone, or why not. `facts` and `used`: read beforehand, for many."""
    today, year = local_date(now), ledger.fiscal_year(now)
    facts = facts or facts_for(session, startup, offer, allocation_id)
    offered: dict[int, Terms] = {}
    refused: dict[int, Refusal] = {}
    for program in programs:
        problem = eligibility_refusal(program, startup, offer, starts_on, today, facts)
        if problem is None:
            offered[program.id] = terms(session, program, startup, offer, quantity, unit_price, today, year,
                                        None if used is None else used.get((program.id, startup.id), Used()))
            if offered[program.id].amount <= 0:
                refused[program.id] = Refusal(f"{offered.pop(program.id).limit or 'its allotment'} is used up")
        else:
            refused[program.id] = problem
    return offered, refused


def _pick(programs: dict[int, SubsidyProgram], offered: dict[int, Terms], cost: Decimal) -> list[tuple[int, Decimal]]:
    return choose(
        [Candidate(pid, t.amount, programs[pid].stack_group_id,
                   programs[pid].stack_group.combined_cap if programs[pid].stack_group else None)
         for pid, t in offered.items()],
        cost,
    )


# -- the price the matching engine sees ------------------------------------------------------


def engine_prices(session: Session, wanted: Iterable[tuple[Startup, Offer, dt.date]], now: dt.datetime) -> dict[tuple[int, int], Decimal]:
    """Per (startup id, offer id) of `wanted` (with the date its allocation would start), the unit
    price after the rate of the best program that would pay (or of the best allowed stack, within
    its combined share), where one would: what the engine checks budgets and price ceilings on.

    The rate only: caps, allotments and what is left of each program's budget are settled at
    approval (`award_for`), so the startup may end up paying more than this if a cap binds.
    Allotment programs (free units, no rate) and programs with nothing left are not counted.
    """
    wanted = list(wanted)
    if not wanted:
        return {}
    programs = [p for p in session.scalars(
        sa.select(SubsidyProgram).where(SubsidyProgram.status == ProgramStatus.open).order_by(SubsidyProgram.id))
        if p.mode is not ProgramMode.allotment and p.remaining > 0]
    if not programs:
        return {}
    today = local_date(now)
    declared = declarations_for(session, [s.id for s, _, _ in wanted], [o.carrier_id for _, o, _ in wanted])
    # What an offer changes in the answer: its carrier and kind (supplier lists, related parties,
    # other subsidies, covered kinds), its attributes (rate rules), and its id only where a
    # program lists offers. A cycle's thousands of lots come in a few such shapes.
    by_offer = any(p.supplier_offer_ids is not None for p in programs)
    rate_of: dict[tuple, Decimal] = {}
    prices = {}
    for startup, offer, starts_on in wanted:
        shape = (startup.id, starts_on, offer.carrier_id, offer.kind, offer.id if by_offer else None,
                 tuple(sorted((name, str(value)) for name, value in offer.attributes.items())))
        if shape not in rate_of:
            facts = facts_for(session, startup, offer, declared=declared)
            rates = {p.id: rate_for(p, startup, offer, today) for p in programs
                     if eligibility_problem(p, startup, offer, starts_on, today, facts) is None}
            rate_of[shape] = best_rate(programs, rates)
        if rate_of[shape] > 0:
            prices[startup.id, offer.id] = offer.unit_price * (1 - rate_of[shape])
    return prices


def best_rate(programs: Iterable[SubsidyProgram], rates: dict[int, Decimal]) -> Decimal:
    """The highest share of the cost the eligible programs (`rates`: program id -> its rate) pay,
    alone or stacked within one group's combined share: `choose`'s rule, on rates alone."""
    best = max(rates.values(), default=ZERO)
    groups: dict[int, list[SubsidyProgram]] = defaultdict(list)
    for program in programs:
        if program.id in rates and program.stack_group is not None:
            groups[program.stack_group_id].append(program)
    for members in groups.values():
        if len(members) > 1:
            best = max(best, min(sum(rates[p.id] for p in members), members[0].stack_group.combined_cap))
    return min(best, Decimal(1))


# -- awards, redemption, give-back ------------------------------------------------------------


def award_for(session: Session, allocation: Allocation, startup: Startup, offer: Offer, now: dt.datetime,
              actor_id: int | None = None) -> list[Award]:
    """Award an approved allocation the best program's share of its cost (or the best allowed stack).

    Every open program's row is locked (in id order) before any cap is summed or budget
    committed, so concurrent approvals can never overspend, and a batch of approvals locks
    them alike. Each award is unique per allocation and program, and its commit row's
    idempotency key is too: an award can never be written twice.

    A program refused for a related party of the supplier or another excluded public subsidy is
    recorded as `subsidy.refused` with its reason's code, in the startup's feed (what report 6,
    compliance, counts); a program refused for its own terms, caps or budget is not.
    """
    cost = allocation.cost
    if cost <= 0:
        return []
    programs = {
        p.id: p for p in session.scalars(
            sa.select(SubsidyProgram).where(SubsidyProgram.status == ProgramStatus.open)
            .order_by(SubsidyProgram.id).with_for_update(of=SubsidyProgram).execution_options(populate_existing=True)
        )
    }
    offered, refused = _candidates(session, programs.values(), startup, offer, allocation.quantity, allocation.unit_price,
                                   allocation.request.window_start, now, allocation.id)
    for program_id, refusal in refused.items():
        if refusal.code is not None:
            program = programs[program_id]
            events.record(session, "subsidy.refused", allocation, startup.id, None, now, program_id=program.id,
                          program=program.code, program_name=program.name, reason=refusal.code)
    awards = []
    for program_id, amount in _pick(programs, offered, cost):
        program, term = programs[program_id], offered[program_id]
        award = Award(
            program_id=program.id, allocation_id=allocation.id, startup_id=startup.id, carrier_id=offer.carrier_id,
            fiscal_year=ledger.fiscal_year(now), mode=program.mode, claimant=program.claimant, rate=term.rate,
            quantity=term.units, gross=cost, amount=amount, created_at=now,
            evidence_complete=not program.evidence_required,
        )
        session.add(award)
        session.flush()
        ledger.post(session, program, LedgerKind.commit, amount, key=f"commit:allocation:{allocation.id}:program:{program.id}",
                    award=award, now=now, actor_id=actor_id)
        events.record(session, "subsidy.committed", allocation, startup.id, None, now, award_id=award.id,
                      program_id=program.id, program_name=program.name, amount=str(amount))
        awards.append(award)
    return awards


def _lock(session: Session, award_filter: sa.ColumnElement[bool]) -> tuple[dict[int, SubsidyProgram], list[Award]]:
    """The open awards matching `award_filter` and their programs, locked: programs, then awards, each in id order."""
    program_ids = session.scalars(sa.select(Award.program_id).where(award_filter).distinct()).all()
    if not program_ids:
        return {}, []
    programs = {
        p.id: p for p in session.scalars(
            sa.select(SubsidyProgram).where(SubsidyProgram.id.in_(program_ids)).order_by(SubsidyProgram.id)
            .with_for_update(of=SubsidyProgram).execution_options(populate_existing=True)
        )
    }
    awards = session.scalars(
        sa.select(Award).where(award_filter, Award.status == AwardStatus.committed).order_by(Award.id)
        .with_for_update(of=Award).execution_options(populate_existing=True)
    ).all()
    return programs, list(awards)


def release(session: Session, program: SubsidyProgram, award: Award, why: str, now: dt.datetime, *,
            status: AwardStatus = AwardStatus.released, actor_id: int | None = None) -> Decimal:
    """Close a (locked) award: what usage has not redeemed goes back to the budget by a reverse row
    of its commit. Returns how much went back."""
    unused = award.unused
    if unused > 0:
        commit = ledger.commit_row(session, award)
        back = min(unused, commit.amount - ledger.reversed_amount(session, commit.id))
        ledger.post(session, program, LedgerKind.reverse, back, key=f"release:award:{award.id}", reverses=commit,
                    award=award, reason=why, now=now, actor_id=actor_id)
    else:
        back = ZERO
    award.close(status, now)
    return back


def revoke(session: Session, program: SubsidyProgram, award: Award, why: str, now: dt.datetime, *,
           actor_id: int | None = None) -> Decimal:
    """Take a (locked) award back whole before it is paid: every redemption not yet written off is
    reversed, then its commit, so nothing of it stays spent or promised. Returns how much went back
    to the budget."""
    if award.written_off == 0:
        redeems = session.scalars(
            sa.select(LedgerEntry).where(LedgerEntry.award_id == award.id, LedgerEntry.kind == LedgerKind.redeem)
            .order_by(LedgerEntry.id)
        ).all()
        for redeem in redeems:
            left = redeem.amount - ledger.reversed_amount(session, redeem.id)
            if left > 0:
                ledger.post(session, program, LedgerKind.reverse, left, key=f"revoke:redeem:{redeem.id}", reverses=redeem,
                            award=award, reason=why, now=now, actor_id=actor_id)
    return release(session, program, award, why, now, actor_id=actor_id)


def give_back_for(session: Session, allocation_ids: list[int], now: dt.datetime) -> Decimal:
    """These allocations ended before use: their awards give every unused fen back. Returns the total."""
    if not allocation_ids:
        return ZERO
    programs, awards = _lock(session, Award.allocation_id.in_(allocation_ids))
    return sum((release(session, programs[a.program_id], a, "ended_before_use", now) for a in awards), ZERO)


def redeem_usage(session: Session, allocation: Allocation, usage: UsageReport, now: dt.datetime) -> Decimal:
    """Usage the carrier reported turns each award's pro-rata share of itself into money spent,
    never more than the award has left (nothing, once it was closed). Returns the total redeemed."""
    programs, awards = _lock(session, Award.allocation_id == allocation.id)
    total = ZERO
    for award in awards:
        amount = min(_fen(award.amount * usage.quantity / award.quantity), award.unused)
        if amount > 0:
            ledger.post(session, programs[award.program_id], LedgerKind.redeem, amount, award=award, now=now,
                        key=f"redeem:usage:{usage.id}:award:{award.id}", usage_report_id=usage.id)
            total += amount
    return total


# -- quotes -----------------------------------------------------------------------------------


@dataclass
class ProgramLine:
    """One program in a quote: what it would pay (within the best choice), alone, or why not."""

    program: SubsidyProgram
    pays: Decimal
    alone: Decimal | None
    reason: str | None


@dataclass
class Quote:
    """What a startup would pay for `quantity` of an offer, after the subsidy it would get today."""

    offer: Offer
    quantity: Decimal
    gross: Decimal
    lines: list[ProgramLine]

    @property
    def subsidy(self) -> Decimal:
        return sum((line.pays for line in self.lines), ZERO)

    @property
    def net(self) -> Decimal:
        return self.gross - self.subsidy

    @property
    def paid_by(self) -> list[ProgramLine]:
        return [line for line in self.lines if line.pays > 0]

    @property
    def not_eligible(self) -> dict[str, str]:
        return {line.program.code: line.reason for line in self.lines if line.reason}


def quote(session: Session, startup: Startup, offer: Offer, quantity: Decimal, now: dt.datetime,
          starts_on: dt.date | None = None) -> Quote:
    """The price before and after subsidy by the rules approval applies, every program listed with
    what it would pay or why it would not (nothing is reserved)."""
    return quotes(session, [(startup, offer, quantity, starts_on)], now)[0]


def quotes(session: Session, wanted: Sequence[tuple[Startup, Offer, Decimal, dt.date | None]],
           now: dt.datetime) -> list[Quote]:
    """`quote` for each (startup, offer, quantity, starts_on) of `wanted`, in its order: the programs,
    the declarations and what each startup has used this year are read once for all of them (a
    page of the review queue costs a handful of queries, not a handful per row)."""
    if not wanted:
        return []
    programs = {p.id: p for p in session.scalars(sa.select(SubsidyProgram).order_by(SubsidyProgram.id))}
    declared = declarations_for(session, [s.id for s, _o, _q, _d in wanted], [o.carrier_id for _s, o, _q, _d in wanted])
    used = used_this_year(session, [s.id for s, _o, _q, _d in wanted], ledger.fiscal_year(now))
    return [_quote(session, programs, startup, offer, quantity, now, starts_on or max(offer.window_start, local_date(now)),
                   facts_for(session, startup, offer, declared=declared), used)
            for startup, offer, quantity, starts_on in wanted]


def _quote(session: Session, programs: dict[int, SubsidyProgram], startup: Startup, offer: Offer, quantity: Decimal,
           now: dt.datetime, starts_on: dt.date, facts: Facts, used: dict[tuple[int, int], Used]) -> Quote:
    offered, refused = _candidates(session, programs.values(), startup, offer, quantity, offer.unit_price, starts_on, now,
                                   facts=facts, used=used)
    cost = quantity * offer.unit_price
    chosen = dict(_pick(programs, offered, cost))
    lines = []
    for pid, program in programs.items():
        alone = offered[pid].amount if pid in offered else None
        reason = refused[pid].words if pid in refused else None
        if reason is None and pid not in chosen:
            reason = "another program pays more (从优不重复)"
        lines.append(ProgramLine(program, chosen.get(pid, ZERO), alone, reason))
    return Quote(offer, quantity, (quantity * offer.unit_price).quantize(FEN), lines)
