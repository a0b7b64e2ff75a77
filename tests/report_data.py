"""A small district with known fulfilment figures (issue 14, report 2), built as the services leave it:
startups and a carrier through the account services, then requests submitted at known times, two
cycles' allocations decided at known times, and the `allocation.provisioned` events of those set up.

The figures, by hand (period 2026-Q4 in Shanghai, the default on 2026-12-01):

| request | startup (sector)     | kind   | qty  | submitted (Shanghai)  | allocations: cycle qty status, decided/active after |
|---------|----------------------|--------|------|-----------------------|------------------------------------------------------|
| r1      | A smart_driving (LH) | gpu    | 100  | 10-05 10:00           | c1 80 active (approved +10 h, active +30 h); c2 20 rejected 预算不足 |
| r2      | A                    | tokens | 1000 | 11-01 04:00 (UTC: 10-31) | c1 1000 provisioning (approved +20 h)             |
| r3      | B ai_models          | gpu    | 50   | 11-10 08:00           | c2 50 released (approved +40 h, active +100 h)       |
| r4      | B                    | gpu    | 30   | 11-12 08:00           | c2 30 rejected 预算不足                               |
| r5      | C fintech            | gpu    | 40   | 11-20 08:00           | c2 40 lapsed                                         |
| r6      | C                    | cpu    | 200  | 11-25 08:00           | none                                                 |
| r7      | C                    | gpu    | 60   | 11-28 08:00           | c2 60 cancelled (approved +80 h)                     |
| r8      | B                    | gpu    | 10   | 09-30 23:00 (Q3)      | c1 10 rejected 重复申请                               |
| r9      | A                    | gpu    | 5    | 10-01 01:00 (UTC: 09-30) | c1 5 rejected 重复申请                             |
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from broker.models import Allocation, AllocationStatus, CycleStatus, MatchingCycle, Offer, RequestStatus, ResourceRequest
from broker.models.workflow import Event
from broker.services import accounts
from tests.conftest import startup_payload

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai, in 2026-Q4
A = AllocationStatus


def utc(month: int, day: int, hour: int, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


# request: (startup, kind, quantity, submitted at (UTC), [(cycle, quantity, status, reason, approved after h, active after h)])
REQUESTS = {
    "r1": ("A", "gpu", 100, utc(10, 5, 2), [(1, 80, A.active, None, 10, 30), (2, 20, A.rejected, "预算不足", None, None)]),
    "r2": ("A", "tokens", 1000, utc(10, 31, 20), [(1, 1000, A.provisioning, None, 20, None)]),
    "r3": ("B", "gpu", 50, utc(11, 10, 0), [(2, 50, A.released, None, 40, 100)]),
    "r4": ("B", "gpu", 30, utc(11, 12, 0), [(2, 30, A.rejected, "预算不足", None, None)]),
    "r5": ("C", "gpu", 40, utc(11, 20, 0), [(2, 40, A.lapsed, None, None, None)]),
    "r6": ("C", "cpu", 200, utc(11, 25, 0), []),
    "r7": ("C", "gpu", 60, utc(11, 28, 0), [(2, 60, A.cancelled, None, 80, None)]),
    "r8": ("B", "gpu", 10, utc(9, 30, 15), [(1, 10, A.rejected, "重复申请", None, None)]),
    "r9": ("A", "gpu", 5, utc(9, 30, 17), [(1, 5, A.rejected, "重复申请", None, None)]),
}
SECTORS = {"A": "smart_driving", "B": "ai_models", "C": "fintech"}


def build_fulfilment_district(session: Session, n: int = 0, copies: int = 1) -> dict:
    """The district of the table above (`copies` times over its requests, for counting statements). Returns the ids."""
    carrier, _, _ = accounts.register_carrier(session, f"report_sh{n}", "中国电信上海公司", "telecom", ["telecom"])
    offers = {}
    for kind in ("gpu", "tokens", "cpu"):
        offers[kind] = Offer(carrier_id=carrier.id, external_id=f"{kind}-{n}", kind=kind, region="cn-east-sh",
                             attributes={}, quantity=Decimal(100000), promised=Decimal(0),
                             window_start=dt.date(2026, 10, 1), window_end=dt.date(2027, 3, 31),
                             list_price=Decimal("2.50"), unit_price=Decimal("2.00"))
        session.add(offers[kind])
    cycles = {}
    for number, started in ((1, utc(10, 6, 1)), (2, utc(11, 30, 1))):
        cycles[number] = MatchingCycle(status=CycleStatus.closed, scheduled_for=started, started_at=started,
                                       finished_at=started, approval_deadline=started + dt.timedelta(days=3), stats={})
        session.add(cycles[number])
    startups = {}
    for i, (name, sector) in enumerate(SECTORS.items()):
        startup, _, _ = accounts.register_startup(session, startup_payload(900 + n * 10 + i + 1, sector=sector, parse=True))
        startups[name] = startup
    session.flush()
    ids: dict = {"cycles": {number: cycle.id for number, cycle in cycles.items()}, "requests": {}}
    for copy in range(copies):
        for key, (who, kind, quantity, submitted, allocations) in REQUESTS.items():
            request = ResourceRequest(startup_id=startups[who].id, kind=kind, quantity=Decimal(quantity),
                                      window_start=dt.date(2026, 12, 1), window_end=dt.date(2027, 2, 28), attributes={},
                                      purpose="模型训练", status=RequestStatus.proposed if allocations else RequestStatus.submitted,
                                      submitted_at=submitted + dt.timedelta(minutes=copy))
            session.add(request)
            session.flush()
            ids["requests"][key] = request.id
            for cycle, qty, status, reason, approved_after, active_after in allocations:
                decided = submitted + dt.timedelta(hours=approved_after) if approved_after is not None else None
                allocation = Allocation(cycle_id=cycles[cycle].id, request_id=request.id, offer_id=offers[kind].id,
                               quantity=Decimal(qty), unit_price=Decimal("2.00"), status=status, decision_reason=reason,
                               decided_at=decided or (submitted + dt.timedelta(days=2) if reason else None))
                session.add(allocation)
                session.flush()
                if active_after is not None:
                    session.add(Event(type="allocation.provisioned", startup_id=startups[who].id, carrier_id=carrier.id,
                                      allocation_id=allocation.id, payload={},
                                      created_at=submitted + dt.timedelta(hours=active_after)))
    session.flush()
    return ids
