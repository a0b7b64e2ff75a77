"""A small district for the staff dashboard's tests, built in the database as the services leave
it: carriers and startups through the account services (Chinese names), then offers, requests,
cycles, proposals, appeals, programs and syncs as rows."""

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
    RequestStatus,
    ResourceRequest,
    Sector,
    SubsidyProgram,
)
from broker.models.sync import CarrierSync, SyncSource, SyncStatus
from broker.models.workflow import Appeal
from broker.services import accounts
from tests.conftest import startup_payload

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.timezone.utc)  # 10:00 in Shanghai
CARRIERS = (("telecom_sh", "中国电信上海公司"), ("unicom_sh", "中国联通上海分公司"), ("cloud_cn", "长宁云计算中心"))
NAMES = ("上海驭光智能驾驶科技有限公司", "上海能衡能源管理有限公司", "上海瑞康智慧医疗科技有限公司",
         "上海深言大模型科技有限公司", "上海工软信息技术有限公司", "上海金链金融科技有限公司")
SECTORS = (Sector.smart_driving, Sector.energy_management, Sector.smart_healthcare,
           Sector.ai_models, Sector.industrial_software, Sector.fintech)


def build_district(session: Session, n: int = 0, *, startups: int = 6) -> dict:
    """`startups` startups (numbered from n*100), three carriers, two cycles, two programs. Returns the ids."""
    carriers = []
    for i, (code, name) in enumerate(CARRIERS):
        carrier, _, _ = accounts.register_carrier(session, f"{code}{n or ''}", name, "telecom", ["telecom"])
        carriers.append(carrier)
        if i < 2:  # the third has never synced
            session.add(CarrierSync(carrier_id=carrier.id, source=SyncSource.pull, status=SyncStatus.succeeded,
                                    complete=True, started_at=NOW - dt.timedelta(days=1), new=10))
            session.add(CarrierSync(carrier_id=carrier.id, source=SyncSource.pull,
                                    status=SyncStatus.failed if i == 1 else SyncStatus.succeeded,
                                    complete=i == 0, started_at=NOW - dt.timedelta(hours=2 + i),
                                    finished_at=NOW - dt.timedelta(hours=1 + i), quarantined=3 * i, conflicts=i,
                                    error="连接超时" if i == 1 else None))
    offers = {}
    for kind, quantity, carrier in (("gpu", 5000, 0), ("cpu", 200000, 1), ("tokens", 80000, 2), ("storage", 900, 2)):
        offer = Offer(carrier_id=carriers[carrier].id, external_id=f"{kind}-{n}", kind=kind, region="cn-east-sh",
                      attributes={}, quantity=Decimal(quantity), promised=Decimal(quantity) / 4,
                      window_start=dt.date(2026, 12, 1), window_end=dt.date(2027, 3, 31),
                      list_price=Decimal("2.50"), unit_price=Decimal("2.00"))
        session.add(offer)
        offers[kind] = offer
    cycles = []
    for days, stats in ((14, {"fulfilment_by_kind": {"gpu": 0.52, "cpu": 0.91, "tokens": 0.75}}),
                        (7, {"fulfilment_by_kind": {"gpu": 0.64, "cpu": 0.97, "tokens": 0.82, "storage": 1.0}})):
        cycle = MatchingCycle(status=CycleStatus.proposed, scheduled_for=NOW - dt.timedelta(days=days),
                              started_at=NOW - dt.timedelta(days=days), finished_at=NOW - dt.timedelta(days=days),
                              approval_deadline=NOW + dt.timedelta(days=3 - days // 7), stats=stats)
        session.add(cycle)
        cycles.append(cycle)
    session.add(MatchingCycle(status=CycleStatus.failed, scheduled_for=NOW, started_at=NOW, finished_at=NOW,
                              error="求解器超时", stats={}))  # the latest, failed: no point on the trend
    session.flush()
    made = []
    for i in range(startups):
        payload = startup_payload(n * 100 + i + 1, sector=SECTORS[i % len(SECTORS)].value, parse=True)
        payload["name"] = NAMES[i % len(NAMES)] if i < len(NAMES) else f"{NAMES[i % len(NAMES)][:-6]}{i}有限公司"
        startup, _, _ = accounts.register_startup(session, payload)
        made.append(startup)
    session.flush()
    statuses = (RequestStatus.submitted, RequestStatus.proposed, RequestStatus.approved, RequestStatus.rejected,
                RequestStatus.active, RequestStatus.expired)
    for i, startup in enumerate(made):
        for j, kind in enumerate(("gpu", "tokens")):
            status = statuses[(i + j) % len(statuses)]
            request = ResourceRequest(startup_id=startup.id, kind=kind, quantity=Decimal(800 + 100 * i),
                                      window_start=dt.date(2026, 12, 1), window_end=dt.date(2027, 2, 28),
                                      attributes={}, purpose="模型训练", status=status)
            session.add(request)
            session.flush()
            if status is RequestStatus.proposed:
                allocation = Allocation(cycle_id=cycles[-1].id, request_id=request.id, offer_id=offers[kind].id,
                                        quantity=request.quantity, unit_price=Decimal("2.00"),
                                        status=AllocationStatus.proposed)
                session.add(allocation)
                session.flush()
                session.add(Appeal(allocation_id=allocation.id, startup_id=startup.id, message="分配数量不足，请复核",
                                   created_at=NOW - dt.timedelta(days=2, hours=i)))
    for code, name, budget, committed, redeemed in (
            (f"TOKENS{n}", "模型券（Tokens专项补贴）", 5_000_000, 1_250_000, 430_000),
            (f"COMPUTE{n}", "算力券", 20_000_000, 8_600_000, 5_120_000)):
        session.add(SubsidyProgram(code=code, name=name, rate=Decimal("0.3"), cap_per_startup=Decimal(500_000),
                                   budget=Decimal(budget), committed=Decimal(committed), redeemed=Decimal(redeemed),
                                   starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 12, 31)))
    session.flush()
    return {"latest_cycle": cycles[-1].id, "startups": [s.id for s in made]}
