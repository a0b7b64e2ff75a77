"""Report 6, compliance (合规情况): for a period, the clawbacks (by reason: related party, double subsidy,
false evidence, non-use), the programs refused at approval for a related party or a double subsidy, the
evidence rejected, and the objections raised against public notices and how they were answered — counts
over the whole period, and the latest rows of each listed.

What is counted, and when (Asia/Shanghai dates, both days included):

- **clawbacks**: `subsidy_bans` made in the period (one per clawed-back award, with its reason); the
  amount is what the award had redeemed and was taken back — its ledger `adjust` row with reason
  `clawback`, as report 3 (spend) counts *clawed back*;
- **refused at approval** (by reason: related party, double subsidy): the `subsidy.refused` events
  `subsidies.award_for` wrote in the period, one per program an approval skipped because the startup is a
  related party of the supplying carrier or holds another public subsidy the program excludes (a program
  refused for its own terms, its caps or its budget is not one);
- **evidence rejected**: pieces of evidence whose review in the period rejected them;
- **objections raised**: lodged in the period; **upheld** and **dismissed**: answered so in the period
  (an upheld objection takes its award out of the notice and reverses its commit).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from broker.db import Money
from broker.models import (
    Account,
    Allocation,
    Award,
    Carrier,
    ClawbackReason,
    Evidence,
    EvidenceStatus,
    Event,
    LedgerEntry,
    LedgerKind,
    Notice,
    NoticeItem,
    Objection,
    Offer,
    ObjectionStatus,
    Role,
    Startup,
    SubsidyBan,
    SubsidyProgram,
)
from broker.models.ledger import AdjustReason
from broker.services.accounts import require_role
from broker.services.district_reports import shanghai_day_start
from broker.services.subsidies import DOUBLE_SUBSIDY, RELATED_PARTY

REFUSAL_REASONS = (RELATED_PARTY, DOUBLE_SUBSIDY)  # in the order the counts list them
LIST_ROWS = 200  # the latest rows of each list; the counts cover the whole period
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class ComplianceFilters:
    start: dt.date
    end: dt.date  # inclusive
    program_id: int | None = None


@dataclass(frozen=True)
class CountRow:
    what: str  # clawback:<reason>, refused:<reason>, evidence_rejected, objections_raised, objections_upheld, objections_dismissed
    count: int
    amount: Decimal | None = None  # yuan taken back (clawbacks only)


@dataclass(frozen=True)
class ClawbackRow:
    at: dt.datetime
    award_id: int
    startup: str
    program: str
    reason: str
    amount: Decimal
    banned_until: dt.date


@dataclass(frozen=True)
class RefusalRow:
    at: dt.datetime
    allocation_id: int
    startup: str
    program: str
    carrier: str
    reason: str  # related_party, double_subsidy


@dataclass(frozen=True)
class EvidenceRow:
    at: dt.datetime
    award_id: int
    startup: str
    program: str
    type: str
    reason: str


@dataclass(frozen=True)
class ObjectionRow:
    at: dt.datetime  # lodged
    notice: str
    startup: str  # the item's firm; empty for an objection to the whole batch
    status: str
    answered_at: dt.datetime | None


@dataclass(frozen=True)
class ComplianceReport:
    filters: ComplianceFilters
    counts: list[CountRow]
    clawbacks: list[ClawbackRow] = field(default_factory=list)
    refusals: list[RefusalRow] = field(default_factory=list)
    evidence: list[EvidenceRow] = field(default_factory=list)
    objections: list[ObjectionRow] = field(default_factory=list)
    program_choices: list[tuple[int, str, str]] = field(default_factory=list)


def compliance(session: Session, actor: Account, filters: ComplianceFilters) -> ComplianceReport:
    """Report 6: clawbacks and refusals at approval by reason, evidence rejected, objections raised and answered, in a period."""
    require_role(actor, Role.staff, Role.admin)
    since, until = shanghai_day_start(filters.start), shanghai_day_start(filters.end + dt.timedelta(days=1))

    def within(column: sa.ColumnElement) -> sa.ColumnElement[bool]:
        return sa.and_(column >= since, column < until)

    def of_program(column: sa.ColumnElement) -> sa.ColumnElement[bool]:
        return column == filters.program_id if filters.program_id is not None else sa.true()

    taken = (sa.select(LedgerEntry.award_id, (-sa.func.sum(LedgerEntry.amount, type_=Money())).label("amount"))
             .where(LedgerEntry.kind == LedgerKind.adjust, LedgerEntry.reason == AdjustReason.clawback.value)
             .group_by(LedgerEntry.award_id).subquery("taken"))
    bans = (sa.select(SubsidyBan.created_at, SubsidyBan.award_id, Startup.name, SubsidyProgram.code, SubsidyBan.reason,
                      sa.func.coalesce(taken.c.amount, 0, type_=Money()), SubsidyBan.until)
            .join(Startup, Startup.id == SubsidyBan.startup_id)
            .join(SubsidyProgram, SubsidyProgram.id == SubsidyBan.program_id)
            .outerjoin(taken, taken.c.award_id == SubsidyBan.award_id)
            .where(within(SubsidyBan.created_at), of_program(SubsidyBan.program_id)))
    by_reason = {reason: (int(n), amount) for reason, n, amount in session.execute(
        sa.select(SubsidyBan.reason, sa.func.count(), sa.func.coalesce(sa.func.sum(taken.c.amount), 0, type_=Money()))
        .outerjoin(taken, taken.c.award_id == SubsidyBan.award_id)
        .where(within(SubsidyBan.created_at), of_program(SubsidyBan.program_id)).group_by(SubsidyBan.reason))}
    counts = [CountRow(f"clawback:{reason.value}", *by_reason.get(reason, (0, ZERO))) for reason in ClawbackReason]

    refused_program = Event.payload["program_id"].as_integer()
    refused_reason = Event.payload["reason"].as_string()
    refused_here = sa.and_(Event.type == "subsidy.refused", within(Event.created_at), of_program(refused_program))
    refusals = (sa.select(Event.created_at, Event.allocation_id, Startup.name, SubsidyProgram.code, Carrier.name,
                          refused_reason)
                .join(Startup, Startup.id == Event.startup_id)
                .join(SubsidyProgram, SubsidyProgram.id == refused_program)
                .join(Allocation, Allocation.id == Event.allocation_id).join(Offer, Offer.id == Allocation.offer_id)
                .join(Carrier, Carrier.id == Offer.carrier_id)
                .where(refused_here))
    refused = dict(session.execute(sa.select(refused_reason, sa.func.count()).where(refused_here).group_by(refused_reason)).all())
    counts += [CountRow(f"refused:{reason}", int(refused.get(reason, 0))) for reason in REFUSAL_REASONS]

    rejected = (sa.select(Evidence.reviewed_at, Evidence.award_id, Startup.name, SubsidyProgram.code, Evidence.type,
                          sa.func.coalesce(Evidence.reason, ""))
                .join(Award, Award.id == Evidence.award_id).join(Startup, Startup.id == Award.startup_id)
                .join(SubsidyProgram, SubsidyProgram.id == Award.program_id)
                .where(Evidence.status == EvidenceStatus.rejected, within(Evidence.reviewed_at), of_program(Award.program_id)))
    counts.append(CountRow("evidence_rejected", session.scalar(sa.select(sa.func.count()).select_from(rejected.subquery()))))

    # An objection to one item is its program's; one to the whole batch, every program with an item in the batch.
    batch_item = aliased(NoticeItem)
    listed = sa.select(batch_item.id).where(batch_item.notice_id == Objection.notice_id,
                                            batch_item.program_id == filters.program_id)
    in_program = (sa.or_(NoticeItem.program_id == filters.program_id, sa.and_(Objection.item_id.is_(None), listed.exists()))
                  if filters.program_id is not None else sa.true())
    objections = (sa.select(Objection.lodged_at, Notice.title, sa.func.coalesce(NoticeItem.startup_name, ""),
                            Objection.status, Objection.answered_at)
                  .join(Notice, Notice.id == Objection.notice_id).outerjoin(NoticeItem, NoticeItem.id == Objection.item_id)
                  .where(sa.or_(within(Objection.lodged_at), within(Objection.answered_at)),
                         in_program))
    raised, upheld, dismissed = session.execute(
        sa.select(sa.func.count().filter(within(Objection.lodged_at)),
                  sa.func.count().filter(within(Objection.answered_at), Objection.status == ObjectionStatus.upheld),
                  sa.func.count().filter(within(Objection.answered_at), Objection.status == ObjectionStatus.dismissed))
        .join(Notice, Notice.id == Objection.notice_id).outerjoin(NoticeItem, NoticeItem.id == Objection.item_id)
        .where(in_program)
    ).one()
    counts += [CountRow("objections_raised", int(raised)), CountRow("objections_upheld", int(upheld)),
               CountRow("objections_dismissed", int(dismissed))]

    return ComplianceReport(
        filters, counts,
        clawbacks=[ClawbackRow(at, award, who, program, reason.value, amount, ends) for at, award, who, program, reason, amount, ends
                   in session.execute(bans.order_by(SubsidyBan.created_at.desc(), SubsidyBan.id.desc()).limit(LIST_ROWS))],
        refusals=[RefusalRow(*row) for row in session.execute(
            refusals.order_by(Event.created_at.desc(), Event.id.desc()).limit(LIST_ROWS))],
        evidence=[EvidenceRow(at, award, who, program, kind.value, why) for at, award, who, program, kind, why
                  in session.execute(rejected.order_by(Evidence.reviewed_at.desc(), Evidence.id.desc()).limit(LIST_ROWS))],
        objections=[ObjectionRow(at, title, who, status.value, answered) for at, title, who, status, answered
                    in session.execute(objections.order_by(Objection.lodged_at.desc(), Objection.id.desc()).limit(LIST_ROWS))],
        program_choices=[tuple(row) for row in session.execute(
            sa.select(SubsidyProgram.id, SubsidyProgram.code, SubsidyProgram.name).order_by(SubsidyProgram.code))],
    )
