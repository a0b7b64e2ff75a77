"""A small district with known supply–demand gap figures (issue 14, report 1): a carrier's offers and
pledges, three startups' survey lines, requests, granted and other allocations, and cycles that left
requests short for known reasons.

By hand, for 2026-Q4 (the default on 2026-12-01; the campaign "Q4" has exactly that period):

| line | startup (sector)     | kind   | what                                                   |
|------|----------------------|--------|--------------------------------------------------------|
| s1   | A smart_driving (LH) | gpu    | survey Q4: cn-east-sh, 2026-10, 100                    |
| s2   | A                    | gpu    | survey Q4: cn-east-sh, 2026-11, 50                     |
| s3   | B ai_models          | gpu    | survey Q4: cn-east-sh, 2026-12, 80                     |
| s4   | C fintech            | cpu    | survey Q4: cn-north-bj, 2026-11, 300                   |
| s5   | B                    | gpu    | survey 2027-Q1: cn-east-sh, 2027-01, 999 (not Q4)      |
| q1   | A                    | gpu    | 120, cn-east-sh, 11-01..12-31: 70 active, 20 proposed → unmet 50; c1 capacity_taken, c2 price_ceiling → price |
| q2   | B                    | gpu    | 60, any region, 12-15..01-31: 60 approved → unmet 0 |
| q3   | B                    | gpu    | 40, sh or bj (several), 10-01..10-31: none → unmet 40; c2 budget → budget |
| q4   | C                    | cpu    | 200, cn-north-bj, 10-01..12-31: 50 released, 30 rejected → unmet 150; c1 region → no compatible offer (c3 failed: ignored) |
| q5   | C                    | cpu    | 10, cn-north-bj, 12-20..01-10: none, in no cycle → unmet 10, no reason |
| q6   | A                    | gpu    | 500, 2027-01..03: outside the period                  |
| q7   | C                    | cpu    | 30, withdrawn: not counted                             |
| q8   | A                    | tokens | 1000, cn-east-sh, 10-01..10-31: 1000 provisioning → unmet 0 |

Offers: gpu cn-east-sh 200 (2026-10-01..2027-03-31), cpu cn-north-bj 400 (12-01..12-31), tokens
cn-east-sh 5000 (2026-09-01..10-01: one day in Q4 counts in full), gpu cn-north-bj 100 (2027: not
in Q4). Pledges: 2026-Q4 gpu 300, cpu 500; 2026-12 gpu 50; 2027-Q1 gpu 999.

Per kind (surveyed, requested, pledged, published, allocated, unmet):
gpu 230, 220, 300, 200, 130, 90; cpu 300, 210, 500, 400, 50, 160; tokens 0, 1000, 0, 5000, 1000, 0.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from broker.models import (
    Allocation,
    AllocationStatus,
    CycleStatus,
    MatchingCycle,
    Offer,
    Pledge,
    PledgeTerms,
    RequestStatus,
    ResourceRequest,
)
from broker.models.surveys import SurveyCampaign, SurveyDeclaration
from broker.services import accounts
from tests.conftest import startup_payload

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai, in 2026-Q4
A = AllocationStatus
D = dt.date
SH, BJ = "cn-east-sh", "cn-north-bj"
SECTORS = {"A": "smart_driving", "B": "ai_models", "C": "fintech"}

# (startup, kind, quantity, regions, window, status, [(cycle, quantity, allocation status)])
REQUESTS = {
    "q1": ("A", "gpu", 120, [SH], (D(2026, 11, 1), D(2026, 12, 31)), RequestStatus.proposed,
           [(1, 70, A.active), (2, 20, A.proposed)]),
    "q2": ("B", "gpu", 60, None, (D(2026, 12, 15), D(2027, 1, 31)), RequestStatus.approved, [(2, 60, A.approved)]),
    "q3": ("B", "gpu", 40, [SH, BJ], (D(2026, 10, 1), D(2026, 10, 31)), RequestStatus.submitted, []),
    "q4": ("C", "cpu", 200, [BJ], (D(2026, 10, 1), D(2026, 12, 31)), RequestStatus.proposed,
           [(1, 50, A.released), (2, 30, A.rejected)]),
    "q5": ("C", "cpu", 10, [BJ], (D(2026, 12, 20), D(2027, 1, 10)), RequestStatus.submitted, []),
    "q6": ("A", "gpu", 500, [SH], (D(2027, 1, 1), D(2027, 3, 31)), RequestStatus.submitted, []),
    "q7": ("C", "cpu", 30, [BJ], (D(2026, 11, 1), D(2026, 11, 30)), RequestStatus.withdrawn, []),
    "q8": ("A", "tokens", 1000, [SH], (D(2026, 10, 1), D(2026, 10, 31)), RequestStatus.active,
           [(1, 1000, A.provisioning)]),
}
# cycle: (status, [(request, reason)])
CYCLES = {
    1: (CycleStatus.closed, [("q1", "capacity_taken"), ("q4", "region")]),
    2: (CycleStatus.closed, [("q1", "price_ceiling"), ("q3", "budget")]),
    3: (CycleStatus.failed, [("q4", "budget")]),
}
OFFERS = {  # key: (kind, region, quantity, window)
    "gpu": ("gpu", SH, 200, (D(2026, 10, 1), D(2027, 3, 31))),
    "cpu": ("cpu", BJ, 400, (D(2026, 12, 1), D(2026, 12, 31))),
    "tokens": ("tokens", SH, 5000, (D(2026, 9, 1), D(2026, 10, 1))),
    "gpu-2027": ("gpu", BJ, 100, (D(2027, 1, 1), D(2027, 6, 30))),
}
PLEDGES = [("2026-Q4", D(2026, 10, 1), D(2026, 12, 31), "gpu", 300), ("2026-Q4", D(2026, 10, 1), D(2026, 12, 31), "cpu", 500),
           ("2026-12", D(2026, 12, 1), D(2026, 12, 31), "gpu", 50), ("2027-Q1", D(2027, 1, 1), D(2027, 3, 31), "gpu", 999)]
# (campaign, startup, kind, region, month, quantity)
DECLARATIONS = [("Q4", "A", "gpu", SH, D(2026, 10, 1), 100), ("Q4", "A", "gpu", SH, D(2026, 11, 1), 50),
                ("Q4", "B", "gpu", SH, D(2026, 12, 1), 80), ("Q4", "C", "cpu", BJ, D(2026, 11, 1), 300),
                ("Q1", "B", "gpu", SH, D(2027, 1, 1), 999)]


def build_gap_district(session: Session, n: int = 0, copies: int = 1) -> dict:
    """The district of the table above (`copies` times over its requests, for counting statements). Returns the ids."""
    carrier, token, _ = accounts.register_carrier(session, f"gap_sh{n}", "中国电信上海公司", "telecom", ["telecom"])
    offers = {}
    for key, (kind, region, quantity, (first, last)) in OFFERS.items():
        offers[key] = Offer(carrier_id=carrier.id, external_id=f"{key}-{n}", kind=kind, region=region, attributes={},
                            quantity=Decimal(quantity), promised=Decimal(0), window_start=first, window_end=last,
                            list_price=Decimal("2.50"), unit_price=Decimal("2.00"))
        session.add(offers[key])
    for period, first, last, kind, quantity in PLEDGES:
        session.add(Pledge(carrier_id=carrier.id, period=period, first_day=first, last_day=last, kind=kind,
                           quantity=Decimal(quantity), terms=PledgeTerms.free))
    started = dt.datetime(2026, 11, 20, 1, tzinfo=dt.UTC)
    cycles = {number: MatchingCycle(status=status, scheduled_for=started, started_at=started, finished_at=started,
                                    approval_deadline=started + dt.timedelta(days=3), stats={})
              for number, (status, _) in CYCLES.items()}
    session.add_all(cycles.values())
    startups = {}
    for i, (name, sector) in enumerate(SECTORS.items()):
        startup, _, _ = accounts.register_startup(session, startup_payload(700 + n * 10 + i + 1, sector=sector, parse=True))
        startups[name] = startup
    campaigns = {
        "Q4": SurveyCampaign(title="2026年第四季度算力需求摸排", period="2026-Q4", opens_on=D(2026, 10, 1),
                             closes_on=D(2026, 10, 31), kinds=["cpu", "gpu"], created_by=token.account_id),
        "Q1": SurveyCampaign(title="2027年第一季度算力需求摸排", period="2027-Q1", opens_on=D(2026, 12, 1),
                             closes_on=D(2026, 12, 31), kinds=["gpu"], created_by=token.account_id),
    }
    session.add_all(campaigns.values())
    session.flush()
    for campaign, who, kind, region, month, quantity in DECLARATIONS:
        session.add(SurveyDeclaration(campaign_id=campaigns[campaign].id, startup_id=startups[who].id, kind=kind,
                                      region=region, month=month, quantity=Decimal(quantity), purpose="模型训练"))
    ids: dict = {"campaigns": {key: c.id for key, c in campaigns.items()}, "requests": {}}
    unfilled: dict[int, list] = {number: [] for number in CYCLES}
    for copy in range(copies):
        made = {}
        for key, (who, kind, quantity, regions, (first, last), status, allocations) in REQUESTS.items():
            request = ResourceRequest(startup_id=startups[who].id, kind=kind, quantity=Decimal(quantity), regions=regions,
                                      window_start=first, window_end=last, attributes={}, purpose="模型训练", status=status,
                                      submitted_at=NOW - dt.timedelta(days=40, minutes=copy))
            session.add(request)
            session.flush()
            made[key] = ids["requests"][key] = request.id
            for cycle, qty, allocation_status in allocations:
                session.add(Allocation(cycle_id=cycles[cycle].id, request_id=request.id, offer_id=offers[kind].id,
                                       quantity=Decimal(qty), unit_price=Decimal("2.00"), status=allocation_status))
        for number, (_, short) in CYCLES.items():
            unfilled[number] += [{"request_id": made[key], "reason": reason} for key, reason in short]
    for number, cycle in cycles.items():
        cycle.stats = {"unfilled": sorted(unfilled[number], key=lambda u: u["request_id"])}
    session.flush()
    return ids
