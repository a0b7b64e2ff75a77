"""Three carriers for the carriers screen's tests, built through the services and the API as
production builds them: 中国电信上海分公司 pulls its catalogue twice (the first feed quarantines
two records; the second shrinks a lot below what is promised, a conflict, and quarantines one),
two startups ask for its GPUs, a cycle proposes, staff approve, and every provisioning attempt
fails until the retries run out; 中国联通上海分公司's only pull failed; 中国移动上海分公司 never synced."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from adapters.base import AdapterError, FetchResult, OfferRecord, RecordError
from adapters.feed import rejected_record
from broker.models import Allocation, Role, Sector, SyncSource
from broker.services import accounts, sync
from broker.services.provisioning import MAX_PROVISION_ATTEMPTS, provision_due
from tests.conftest import Actor, make_uscc

MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Shanghai
STARTUPS = (("上海云驰智行科技有限公司", Sector.smart_driving), ("上海深瞳大模型技术有限公司", Sector.ai_models))


class CarrierDown:
    """A carrier whose API fails every call, as the simulators do at error_rate 1.0."""

    def fetch_offers(self):
        raise AdapterError("连接运营商接口超时（30 秒）", carrier_fault=True)

    def provision(self, order):
        raise AdapterError("运营商返回 503：资源池暂时无可用容量", carrier_fault=True)


def lot(external_id: str, quantity: str, kind: str = "gpu") -> OfferRecord:
    attributes = {"gpu_model": "H100", "gpu_memory_gb": 80} if kind == "gpu" else {"model": "telechat-2"}
    return OfferRecord(external_id=external_id, kind=kind, region="sh-changning", attributes=attributes,
                       quantity=Decimal(quantity), window_start=dt.date(2026, 12, 1), window_end=dt.date(2027, 3, 31),
                       list_price=Decimal("28.00"), unit_price=Decimal("12.50") if kind == "gpu" else Decimal("2"))


def build_carriers(client, session, suffix: str = "", base_uscc: int = 7100) -> dict:
    """The three carriers, the telecom syncs and its failed provisioning; returns codes and ids.
    The app's clock must read MONDAY_0900 (the cycle's approval window is counted from it)."""
    staff, _, staff_secret = accounts.create_user(session, Role.staff, "运营商管理")
    staff_actor = Actor(staff.id, staff_secret)
    codes = {name: f"{name}{suffix}" for name in ("telecom_sh", "cmcc_sh", "unicom_sh")}
    for name, title in (("telecom_sh", "中国电信上海分公司"), ("cmcc_sh", "中国移动上海分公司"), ("unicom_sh", "中国联通上海分公司")):
        accounts.register_carrier(session, codes[name], title, "telecom", ["telecom"])
    telecom = codes["telecom_sh"]

    first = FetchResult(telecom, [lot("CTC-H100-01", "1000"), lot("CTC-TOK-01", "50000", "tokens")], [
        rejected_record({"resource_id": "CTC-H100-09", "resource_type": "GPU", "region_code": "SH-CN"},
                        "page 1 item 3", "CTC-H100-09", KeyError("quantity")),
        rejected_record({"resource_id": "CTC-QPU-01", "resource_type": "QUANTUM"}, "page 1 item 4", "CTC-QPU-01",
                        RecordError("unknown resource_type 'QUANTUM'; known: GPU, CPU, LINE, ECS, OSS, TOKEN")),
    ], complete=True)
    sync.apply_feed(session, telecom, SyncSource.pull, first, MONDAY_0900 - dt.timedelta(hours=2), complete=True)
    sync.sync_carrier(session, codes["unicom_sh"], CarrierDown(), MONDAY_0900 - dt.timedelta(hours=1))

    for i, (name, sector) in enumerate(STARTUPS):
        startup, token, secret = accounts.register_startup(session, {
            "name": name, "uscc": make_uscc(base_uscc + i), "sector": sector, "founded_on": dt.date(2022, 3, 1),
            "headcount": 30 + i, "contact_name": "张伟", "contact_email": f"ceo{suffix}{i}@example.cn"})
        accounts.verify_startup(session, staff, startup.id, MONDAY_0900)
        body = {"kind": "gpu", "quantity": "300", "min_quantity": "100", "regions": ["sh-changning"],
                "attributes": {"gpu_model": ["H100"]}, "window_start": "2026-12-07", "window_end": "2026-12-20",
                "max_unit_price": "20", "purpose": "自动驾驶感知模型训练"}
        made = client.post("/api/v1/requests", json=body, headers=Actor(token.account_id, secret).headers)
        assert made.status_code == 201, made.json
    cycle = client.post("/api/v1/cycles", json={}, headers=staff_actor.headers)
    assert cycle.status_code == 201, cycle.json
    allocation_ids = list(session.scalars(
        sa.select(Allocation.id).where(Allocation.cycle_id == cycle.json["id"]).order_by(Allocation.id)))
    assert len(allocation_ids) == 2
    session.commit()  # ends the read: on SQLite it would hold the lock the API's writes need
    for allocation_id in allocation_ids:
        approved = client.post(f"/api/v1/allocations/{allocation_id}/approve", json={}, headers=staff_actor.headers)
        assert approved.status_code == 200, approved.json

    # Every attempt fails; each retry waits out its back-off, until none is left.
    moment = MONDAY_0900
    for _ in range(MAX_PROVISION_ATTEMPTS):
        provision_due(session, lambda carrier: CarrierDown(), moment)
        moment += dt.timedelta(hours=1)

    # The second pull asks for less than is promised (600 GPU-hours held): kept at 600, a conflict.
    second = FetchResult(telecom, [lot("CTC-H100-01", "400"), lot("CTC-TOK-01", "50000", "tokens")], [
        rejected_record({"resource_id": "CTC-H100-02", "quantity": "-5"}, "page 1 item 2", "CTC-H100-02",
                        RecordError("quantity is negative: '-5'")),
    ], complete=True)
    sync.apply_feed(session, telecom, SyncSource.pull, second, MONDAY_0900 + dt.timedelta(hours=6), complete=True)
    session.commit()
    return {"codes": codes, "allocations": allocation_ids, "staff": staff_actor}
