"""如何使用 in a real browser: the provisioning job orders a founder's token allocation from the telecom
simulator, and the founder signs in, opens 我的分配 and the allocation, and reads how to use it: the
carrier reference, the API endpoint, the model, the carrier's console and instructions, and that the
API key is in the carrier's console. axe-core finds nothing serious; the screenshot is
docs/screenshots/portal_allocation.png."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from adapters.base import CarrierConfig
from adapters.simulators import telecom as telecom_sim
from broker.models import Allocation, Carrier, Offer, Sector
from broker.models.people import Side
from broker.services import accounts, people
from config import CarrierSettings
from scheduler import jobs
from tests.conftest import make_uscc
from tests.e2e.adapters.conftest import Simulator
from tests.e2e.test_access_details import NOW, TOKEN_VARIABLE
from tests.integration.test_sync import FAST
from tests.world import approved_allocation
from tests.browser.support import sign_in

PASSWORD = "长宁区硅巷-如何使用-2026"
EMAIL = "ceo@zhiyu.example.cn"


def test_a_founder_reads_how_to_use_an_active_allocation(
        app, session, make_actor, monkeypatch, page, axe, screenshot):
    simulator = Simulator(telecom_sim.create_app(seed=3, offers=20, first_month=dt.date(2026, 12, 1)))
    try:
        monkeypatch.setenv(TOKEN_VARIABLE, telecom_sim.DEFAULT_TOKEN)
        monkeypatch.setitem(app.config["CARRIERS"], "telecom", CarrierSettings(
            "telecom", CarrierConfig(simulator.url, {"token": TOKEN_VARIABLE}, **FAST)))
        carrier, _, _ = accounts.register_carrier(session, "telecom", "中国电信上海分公司", "telecom", ["telecom"])
        session.execute(sa.update(Carrier).where(Carrier.id == carrier.id).values(adapter="telecom"))
        startup, _, _ = accounts.register_startup(session, {
            "name": "上海智语大模型科技有限公司", "uscc": make_uscc(4_242_420), "sector": Sector.ai_models,
            "founded_on": dt.date(2023, 5, 1), "headcount": 18, "contact_name": "周敏", "contact_email": EMAIL})
        staff, _, _ = accounts.create_user(session, "staff", "如何使用")
        accounts.verify_startup(session, staff, startup.id, NOW)
        people.create_company_person(session, Side.startup, startup.id, EMAIL, "周敏", PASSWORD)
        session.commit()
        jobs.sync_carrier(app, NOW, "telecom")
        tokens = session.scalar(sa.select(Offer).where(Offer.kind == "tokens").order_by(Offer.id))
        allocation_id = approved_allocation(session, startup.id, tokens, NOW).id
        session.commit()
        jobs.provision(app, NOW)
        reference = session.scalar(sa.select(Allocation.carrier_ref).where(Allocation.id == allocation_id))
        assert reference and reference.startswith("CTC-ORD-")
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, EMAIL, PASSWORD)
        page.wait_for_url("**/portal/requests")
        page.get_by_role("link", name="我的分配", exact=True).click()
        page.get_by_role("link", name=f"分配 {allocation_id}", exact=True).click()
        page.wait_for_url(f"**/portal/allocations/{allocation_id}")
        how = page.locator("#how-to-use")
        assert how.get_by_role("heading", name="如何使用").is_visible()
        assert reference in how.inner_text()
        details = page.locator("#access-details").inner_text()
        assert "https://maas.ctyun.example/v1" in details and "模型名称" in details
        assert page.get_by_role("link", name=f"https://console.ctyun.example/orders/{reference}").is_visible()
        assert "请登录运营商控制台查看" in page.locator("#secret-at-carrier").inner_text()
        assert "sk-" not in page.content()
        assert axe(page) == []
        screenshot(page, "portal_allocation")
    finally:
        simulator.close()
