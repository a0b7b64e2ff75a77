"""What a startup's people read on the portal's subsidies page: per program, the company's money
as the ledger derives it (committed, redeemed, what is left to redeem) and its cap left this fiscal
year as approval counts it; the company's awards, a page at a time, each with the evidence its
program asks for and what is still missing; and the warnings (a cap nearly used up, money about to
lapse with the end of its allocation's window).

Balances are `broker.services.ledger.visible_balances` and the cap's use is
`broker.services.subsidies.used_this_year`: the same reads the API and approval make, never a sum
of our own. Uploading a piece is `broker.services.evidence.upload`, as through the API.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.clock import local_date
from broker.models import Account, Allocation, Award, AwardStatus, Offer, ProgramStatus, ResourceRequest, Role, SubsidyProgram
from broker.models.evidence import Evidence, EvidenceStatus
from broker.services import ledger, subsidies
from broker.services.accounts import require_role

PAGE_SIZE = 50
LOW_CAP_SHARE = Decimal("0.10")  # a cap with less than this share left this year is flagged
EXPIRY_DAYS = 7  # money whose allocation's window ends within this many days is flagged, as "expiring in 7 days" is


@dataclass
class ProgramBalance:
    """One program as the company sees it: its share of the ledger, and its cap left this year."""

    program: SubsidyProgram
    balance: ledger.Balance  # the company's share of the program's rows
    cap_left: Decimal  # the program's per-startup cap this fiscal year, less what the company's awards hold

    @property
    def committed(self) -> Decimal:
        return self.balance.committed

    @property
    def redeemed(self) -> Decimal:
        return self.balance.redeemed

    @property
    def remaining(self) -> Decimal:
        """Committed, not yet redeemed by usage."""
        return self.balance.outstanding

    @property
    def low(self) -> bool:
        return self.program.cap_per_startup > 0 and self.cap_left < self.program.cap_per_startup * LOW_CAP_SHARE


@dataclass
class AwardRow:
    award: Award
    allocation_id: int
    kind: str
    window_end: dt.date
    pieces: list[Evidence] = field(default_factory=list)  # oldest first, rejected ones too
    expiring: bool = False  # committed money left to redeem, and the window ends within EXPIRY_DAYS

    @property
    def required(self) -> list[str]:
        return list(self.award.program.evidence_required or [])

    @property
    def missing(self) -> list[str]:
        """Required types with no piece pending review or verified: what the company should upload."""
        held = {p.type.value for p in self.pieces if p.status is not EvidenceStatus.rejected}
        return [t for t in self.required if t not in held]


@dataclass
class SubsidiesPage:
    year: int
    programs: list[ProgramBalance]
    awards: list[AwardRow]
    total: int
    page: int
    pages: int

    @property
    def low(self) -> list[ProgramBalance]:
        return [p for p in self.programs if p.low]

    @property
    def expiring(self) -> list[AwardRow]:
        return [a for a in self.awards if a.expiring]


def my_subsidies(session: Session, actor: Account, page: int, now: dt.datetime) -> SubsidiesPage:
    """The actor's startup's subsidy balances per program (those it has awards in, and the open ones
    it could get), and its awards, newest first, 50 a page, with their evidence."""
    require_role(actor, Role.startup)
    year = ledger.fiscal_year(now)
    balances = {b.program_id: b for b in ledger.visible_balances(session, actor, ("program",), {})}
    used = subsidies.used_this_year(session, [actor.startup_id], year)
    programs = session.scalars(
        sa.select(SubsidyProgram)
        .where(sa.or_(SubsidyProgram.id.in_(sorted(balances)), SubsidyProgram.status == ProgramStatus.open))
        .order_by(SubsidyProgram.id)
    ).all()
    rows = []
    for program in programs:
        balance = balances.get(program.id, ledger.Balance(program_id=program.id))
        held = used.get((program.id, actor.startup_id), subsidies.Used()).committed
        rows.append(ProgramBalance(program, balance, max(program.cap_per_startup - held, Decimal(0))))

    mine = Award.startup_id == actor.startup_id
    total = session.scalar(sa.select(sa.func.count(Award.id)).where(mine)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    found = session.execute(
        sa.select(Award, Allocation.id, Offer.kind, Offer.window_end, ResourceRequest.window_end)
        .join(Allocation, Allocation.id == Award.allocation_id)
        .join(Offer, Offer.id == Allocation.offer_id)
        .join(ResourceRequest, ResourceRequest.id == Allocation.request_id)
        .where(mine).order_by(Award.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    today = local_date(now)
    awards = []
    for award, allocation_id, kind, offer_end, request_end in found:
        ends = min(offer_end, request_end)
        expiring = award.status is AwardStatus.committed and award.unused > 0 and dt.timedelta(0) <= ends - today <= dt.timedelta(days=EXPIRY_DAYS)
        awards.append(AwardRow(award, allocation_id, kind, ends, expiring=expiring))
    pieces: dict[int, list[Evidence]] = defaultdict(list)
    if awards:
        for piece in session.scalars(sa.select(Evidence).where(Evidence.award_id.in_([a.award.id for a in awards]))
                                     .order_by(Evidence.id)):
            pieces[piece.award_id].append(piece)
    for row in awards:
        row.pieces = pieces[row.award.id]
    return SubsidiesPage(year, rows, awards, total, page, pages)
