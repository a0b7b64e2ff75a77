"""A small district with a known performance-evaluation pack (issue 14, report 7), built as the
services leave it: a carrier and three startups through the account services, then one program
"SV26" (算力券, gpu only) with its deposits, cycles, allocations decided at known times, awards,
usage reports, a public notice with objections, and ratings.

The figures, by hand, for SV26 and the fiscal year 2026:

决策  deposits 2026: 沪长科〔2026〕12号 ¥600,000.00 and 沪长科〔2026〕30号 ¥400,000.00 → year budget ¥1,000,000.00
      (2025's 沪长科〔2025〕88号 ¥500,000.00 is another year's). Rate 50%, cap ¥100,000.00 a firm.
过程  gpu allocations of the cycles started in 2026 (c1 2026-03-02, c2 2026-06-01; deadline start + 3 days):
      a1 a2 a4 a8 decided before the deadline, a3 after it, a5 lapsed → 6 reviewed, 4 on time, 66.67%.
      (a6 is tokens, not the program's kind; a7 is in c0, a 2025 cycle.)
      Notice N1 (2026) holds the awards of a1, a2 and a8; a8 was taken out by an upheld objection;
      objections: 1 upheld, 1 dismissed, 1 open. N0 (the 2025 award of a7) is another year's.
产出  awards of 2026 not taken out: a1 (A, ¥100.00, redeemed ¥80.00), a2 (B, ¥100.00, ¥25.00),
      a3 (C, ¥100.00, ¥100.00) → 3 firms, 3 awards, committed ¥300.00, redeemed ¥205.00, 68.33%;
      budget used 300 ÷ 1,000,000 = 0.03%.
效益  delivered: a1 80 × ¥2.00 = ¥160.00, a2 12.5 × ¥4.00 = ¥50.00, a3 200 × ¥1.00 = ¥200.00 → ¥410.00;
      leverage 205 ÷ 410 = 0.50. Lighthouse (A, smart_driving): 1 firm of 3 = 33.33%, ¥100.00 of ¥300.00 = 33.33%.
满意度 a1 rated 5 and a3 rated 4 (a7's rating 1 is for a 2025 award) → 2 ratings, mean 4.50, 5分 1 (50.00%),
      4分 1 (50.00%), 3–1分 0.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from broker.models import (
    Allocation,
    AllocationRating,
    AllocationStatus,
    Award,
    CycleStatus,
    MatchingCycle,
    Offer,
    RequestStatus,
    ResourceRequest,
    SubsidyProgram,
)
from broker.models.ledger import Claimant, LedgerEntry, LedgerKind, NoticeState, ProgramMode
from broker.models.notices import Notice, NoticeItem, Objection, ObjectionStatus
from broker.models.workflow import UsageReport
from broker.services import accounts
from tests.conftest import startup_payload

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
A = AllocationStatus
SECTORS = {"A": "smart_driving", "B": "ai_models", "C": "fintech"}


def utc(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


# allocation: (startup, kind, cycle, quantity, unit price, status, decided after the cycle started (h),
#              award (fiscal year, amount, redeemed, notice state) or None, used quantity, rating)
ALLOCATIONS = {
    "a1": ("A", "gpu", 1, "100", "2.00", A.released, 24, (2026, "100.00", "80.00", NoticeState.final), "80", 5),
    "a2": ("B", "gpu", 1, "50", "4.00", A.active, 48, (2026, "100.00", "25.00", NoticeState.final), "12.5", None),
    "a3": ("C", "gpu", 2, "200", "1.00", A.released, 100, (2026, "100.00", "100.00", NoticeState.not_noticed), "200", 4),
    "a4": ("A", "gpu", 2, "30", "2.00", A.rejected, 10, None, None, None),
    "a5": ("C", "gpu", 2, "10", "2.00", A.lapsed, None, None, None, None),
    "a6": ("B", "tokens", 2, "1000", "0.02", A.approved, 10, None, None, None),
    "a7": ("A", "gpu", 0, "20", "2.00", A.released, 10, (2025, "50.00", "50.00", NoticeState.final), "20", 1),
    "a8": ("B", "gpu", 2, "40", "2.00", A.cancelled, 20, (2026, "40.00", "0.00", NoticeState.removed), None, None),
}
CYCLE_STARTS = {0: utc(2025, 12, 1), 1: utc(2026, 3, 2), 2: utc(2026, 6, 1)}


def build_pack_district(session: Session, staff_id: int, n: int = 0, *, rated: bool = True) -> dict:
    """The district of the docstring (without its ratings unless `rated`). Returns ids and the startups' API secrets."""
    carrier, _, _ = accounts.register_carrier(session, f"pack_sh{n}", "中国移动上海公司", "mobile", ["mobile"])
    startups, secrets = {}, {}
    for i, (name, sector) in enumerate(SECTORS.items()):
        startup, _, secret = accounts.register_startup(session, startup_payload(700 + n * 10 + i + 1, sector=sector, parse=True))
        startups[name], secrets[name] = startup, secret
    program = SubsidyProgram(code=f"SV26{n or ''}", name="长宁区算力券", mode=ProgramMode.after, kinds=["gpu"],
                             rate=Decimal("0.5"), cap_per_startup=Decimal("100000"), budget=Decimal("1500000"),
                             committed=Decimal("390"), redeemed=Decimal("255"), starts_on=dt.date(2025, 1, 1),
                             ends_on=dt.date(2027, 12, 31), requires_notice=True)
    session.add(program)
    offers = {kind: Offer(carrier_id=carrier.id, external_id=f"pack-{kind}-{n}", kind=kind, region="cn-east-sh",
                          attributes={}, quantity=Decimal(100000), promised=Decimal(0), window_start=dt.date(2025, 12, 1),
                          window_end=dt.date(2026, 12, 31), list_price=Decimal("3"), unit_price=Decimal("2"))
              for kind in ("gpu", "tokens")}
    session.add_all(offers.values())
    cycles = {number: MatchingCycle(status=CycleStatus.closed, scheduled_for=start, started_at=start, finished_at=start,
                                    approval_deadline=start + dt.timedelta(days=3), stats={})
              for number, start in CYCLE_STARTS.items()}
    session.add_all(cycles.values())
    session.flush()
    for year, reference, amount, day in ((2026, "沪长科〔2026〕12号", "600000", utc(2026, 1, 10)),
                                         (2026, "沪长科〔2026〕30号", "400000", utc(2026, 7, 1)),
                                         (2025, "沪长科〔2025〕88号", "500000", utc(2025, 2, 1))):
        session.add(LedgerEntry(kind=LedgerKind.deposit, amount=Decimal(amount), program_id=program.id, reference=reference,
                                fiscal_year=year, actor_id=staff_id, idempotency_key=f"pack-deposit-{n}-{reference}",
                                created_at=day))
    ids: dict = {"program": program.id, "allocations": {}, "awards": {}, "startups": {k: s.id for k, s in startups.items()},
                 "secrets": secrets}
    for key, (who, kind, cycle, qty, price, status, decided_after, award, used, rating) in ALLOCATIONS.items():
        started = CYCLE_STARTS[cycle]
        request = ResourceRequest(startup_id=startups[who].id, kind=kind, quantity=Decimal(qty),
                                  window_start=dt.date(2026, 1, 1), window_end=dt.date(2026, 12, 31), attributes={},
                                  purpose="模型训练", status=RequestStatus.proposed, submitted_at=started - dt.timedelta(days=1))
        session.add(request)
        session.flush()
        allocation = Allocation(cycle_id=cycles[cycle].id, request_id=request.id, offer_id=offers[kind].id,
                                quantity=Decimal(qty), unit_price=Decimal(price), status=status,
                                decided_at=None if decided_after is None else started + dt.timedelta(hours=decided_after))
        session.add(allocation)
        session.flush()
        ids["allocations"][key] = allocation.id
        if award:
            year, amount, redeemed, state = award
            gross = Decimal(qty) * Decimal(price)
            row = Award(program_id=program.id, allocation_id=allocation.id, startup_id=startups[who].id,
                        carrier_id=carrier.id, fiscal_year=year, mode=ProgramMode.after, claimant=Claimant.startup,
                        rate=Decimal("0.5"), quantity=Decimal(qty), gross=gross, amount=Decimal(amount),
                        committed=Decimal(0) if state is NoticeState.removed else Decimal(amount),
                        redeemed=Decimal(redeemed), notice_state=state)
            session.add(row)
            session.flush()
            ids["awards"][key] = row.id
        if used:
            session.add(UsageReport(carrier_id=carrier.id, external_id=f"pack-use-{n}-{key}", allocation_id=allocation.id,
                                    quantity=Decimal(used), recorded_at=started + dt.timedelta(days=10)))
        if rating and rated:
            session.add(AllocationRating(allocation_id=allocation.id, startup_id=startups[who].id, score=rating,
                                         created_at=NOW))
    notices = {}
    for year, starts, keys in ((2025, dt.date(2025, 12, 10), ("a7",)), (2026, dt.date(2026, 3, 10), ("a1", "a2", "a8"))):
        notice = Notice(title=f"{year}年度算力券公示", program_id=program.id, fiscal_year=year, starts_on=starts,
                        working_days=5, ends_on=starts + dt.timedelta(days=6), created_by=staff_id)
        session.add(notice)
        session.flush()
        notices[year] = notice
        for key in keys:
            item = NoticeItem(notice_id=notice.id, award_id=ids["awards"][key], program_id=program.id,
                              startup_name=startups[ALLOCATIONS[key][0]].name, program_name=program.name,
                              amount=Decimal(ALLOCATIONS[key][7][1]),
                              removed_at=utc(2026, 3, 14) if key == "a8" else None)
            session.add(item)
            session.flush()
            if key == "a8":
                upheld_item = item.id
    answered = {"answer": "已核实", "answered_by": staff_id, "answered_at": utc(2026, 3, 14)}
    for status, item_id, extra in ((ObjectionStatus.upheld, upheld_item, answered),
                                   (ObjectionStatus.dismissed, None, answered), (ObjectionStatus.open, None, {})):
        session.add(Objection(notice_id=notices[2026].id, item_id=item_id, name="李先生", contact="13800000000",
                              text="该企业不在长宁区", status=status, lodged_at=utc(2026, 3, 12), **extra))
    session.add(Objection(notice_id=notices[2025].id, name="张女士", contact="13900000000", text="异议",
                          status=ObjectionStatus.open, lodged_at=utc(2025, 12, 11)))
    session.flush()
    return ids
