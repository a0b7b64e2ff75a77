"""A founder's whole journey in a real browser, against real parts: the telecom carrier's offers come
from its API simulator through the real adapter, emails go through a real SMTP server on 127.0.0.1
(aiosmtpd), the provisioning job orders from the simulator.

上海云雀智能科技有限公司's founder registers the company in the portal and waits for verification;
district staff verify it; the founder asks for LLM tokens twice through the wizard, seeing the net
price after the district's voucher; the cycle proposes both, and the proposal email arrives (read
from the SMTP server) with the deadline in Beijing time and a link into the portal, which the founder
follows; staff approve one and reject the other with a reason; the carrier provisions the approved
one, which the founder sees active with the carrier's reference and its net price; the founder
appeals the rejection from the allocation's page. A founder of another company gets 404 on every one
of these pages. (The carrier's side of the journey — template, GBK upload with a bad row, the
startup's name on approved but not proposed allocations — is tests/browser/test_carrier_catalogue.py
and test_carrier_allocations.py.)"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

import sqlalchemy as sa
from aiosmtpd.controller import Controller

from adapters.base import CarrierConfig
from adapters.simulators import telecom as telecom_sim
from broker.clock import FrozenClock, install_clock
from broker.models import Allocation, AllocationStatus, Carrier, Offer, Role, Sector, Startup
from broker.models.people import Side
from broker.services import accounts, people
from config import CarrierSettings
from scheduler import jobs
from tests.conftest import Actor, make_uscc
from tests.e2e.adapters.conftest import Simulator
from tests.e2e.test_access_details import TOKEN_VARIABLE
from tests.e2e.test_ledger import program_body
from tests.integration.test_outbox import Inbox, _free_port
from tests.integration.test_sync import FAST
from tests.browser.support import sign_in as sign_in_as

PASSWORD = "长宁区硅巷-创业者全程-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Shanghai


def sign_in(page, email: str) -> None:
    sign_in_as(page, email, PASSWORD)
    page.wait_for_url("**/portal/requests")


def ask_like(page, offer: Offer, quantity: int, net: str) -> int:
    """Through the wizard, for what `offer` is: the quote step shows the telecom's offer at `net` after
    the voucher; submitting lands on the new request. Returns its id."""
    page.goto("/portal/requests/new")
    page.get_by_label("资源类型").select_option(offer.kind)
    page.get_by_label("数量", exact=True).fill(str(quantity))
    page.get_by_label("开始日期").fill(offer.window_start.isoformat())
    page.get_by_label("结束日期").fill(offer.window_end.isoformat())
    page.get_by_label("可接受的地区（选填）").fill(offer.region)
    for name, value in offer.attributes.items():
        page.locator(f"#attr-{offer.kind}-{name}").fill(str(value))
    page.get_by_role("button", name="查看报价").click()
    page.wait_for_url("**/portal/requests/new/quote?**")
    offers = page.locator("#offers").inner_text()
    assert "中国电信上海分公司" in offers and net in offers, offers
    assert "长宁区算力券：可享受，补贴比例 30%" in offers
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_url("**/portal/requests/*?done=submitted")
    return int(re.search(r"/portal/requests/(\d+)", page.url).group(1))


def yuan(amount: Decimal) -> str:
    return f"¥{amount:,.2f}"


def test_a_founder_registers_asks_is_told_by_email_uses_and_appeals(app, client, session, page, browser, live_server,
                                                                    monkeypatch, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    simulator = Simulator(telecom_sim.create_app(seed=3, offers=20, first_month=dt.date(2026, 12, 1)))
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    try:
        # The district: the telecom's offers synced from its API, a 30% voucher on them, staff.
        monkeypatch.setenv(TOKEN_VARIABLE, telecom_sim.DEFAULT_TOKEN)
        monkeypatch.setitem(app.config["CARRIERS"], "telecom", CarrierSettings(
            "telecom", CarrierConfig(simulator.url, {"token": TOKEN_VARIABLE}, **FAST)))
        monkeypatch.setitem(app.config, "PUBLIC_URL", live_server)  # the emails' links lead to this console
        carrier, _, _ = accounts.register_carrier(session, "telecom", "中国电信上海分公司", "telecom", ["telecom"])
        session.execute(sa.update(Carrier).where(Carrier.id == carrier.id).values(adapter="telecom"))
        staff, _, staff_secret = accounts.create_user(session, Role.staff, "创业者全程")
        staff_actor = Actor(staff.id, staff_secret)
        session.commit()
        jobs.sync_carrier(app, MONDAY_0900, "telecom")
        program = client.post("/api/v1/subsidy-programs", headers=staff_actor.headers, json=program_body(
            f"voucher-{uuid.uuid4().hex[:6]}", name="长宁区算力券", kinds=["gpu"], rate="0.3", ends_on="2028-01-01",
            supplier_carrier_ids=[carrier.id]))
        assert program.status_code == 201, program.json
        offer = session.scalars(sa.select(Offer).where(Offer.carrier_id == carrier.id, Offer.kind == "gpu",
                                                       Offer.unit_price > 0, Offer.window_start > MONDAY_0900.date())
                                .order_by(Offer.window_start, Offer.id)).first()
        assert offer is not None and offer.available >= 20
        session.commit()  # on SQLite an open transaction would hold the lock the server needs

        # The founder registers the company in the portal and waits for the district.
        email = f"founder{uuid.uuid4().hex[:6]}@yunque.example.cn"
        code = make_uscc(int(uuid.uuid4().int % 10_000_000) * 10 + 7)
        page.goto("/sign-in")
        page.get_by_role("link", name="注册企业").click()
        page.get_by_label("企业名称").fill("上海云雀智能科技有限公司")
        page.get_by_label("统一社会信用代码（18 位）").fill(code)
        page.get_by_label("行业").select_option("ai_models")
        page.get_by_label("成立日期").fill("2024-03-18")
        page.get_by_label("员工人数").fill("12")
        page.get_by_label("姓名", exact=True).fill("林晓")
        page.get_by_label("邮箱（用于登录）").fill(email)
        page.get_by_label("密码（至少 12 个字符，不能是常见密码）").fill(PASSWORD)
        page.get_by_role("button", name="注册", exact=True).click()
        page.wait_for_url("**/company?done=registered")
        assert "待核验" in page.locator("main").inner_text()
        startup = session.scalar(sa.select(Startup).where(Startup.uscc == code))
        accounts.verify_startup(session, staff, startup.id, MONDAY_0900)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        # Twice through the wizard, seeing the net price: 10 and 20 GPU-hours, 70% of the gross each.
        first = ask_like(page, offer, 10, yuan(offer.unit_price * 10 * Decimal("0.7")))
        second = ask_like(page, offer, 20, yuan(offer.unit_price * 20 * Decimal("0.7")))

        # The cycle proposes both; the proposal emails arrive through the SMTP server.
        cycle = client.post("/api/v1/cycles", json={}, headers=staff_actor.headers)
        assert cycle.status_code == 201, cycle.json
        session.expire_all()
        proposed = {a.request_id: a for a in session.scalars(
            sa.select(Allocation).where(Allocation.request_id.in_([first, second])))}
        assert set(proposed) == {first, second}
        for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port, "SMTP_STARTTLS": False}.items():
            monkeypatch.setitem(app.config, key, value)
        session.commit()
        jobs.deliver_email(app, MONDAY_0900)  # the scheduler's job, through the SMTP server
        mine = [m for m in inbox.messages() if m["To"] == email]
        proposals = [m for m in mine if "新的分配方案待审批" in m["Subject"]]
        assert len(proposals) == 2, [m["Subject"] for m in mine]
        body = proposals[0].get_content()
        deadline = cycle.json["approval_deadline"]  # in Asia/Shanghai, e.g. 2026-12-02T18:00:00+08:00
        assert f"{deadline[:10]} {deadline[11:16]}（北京时间）" in body, body
        assert proposals[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = re.search(rf"{re.escape(live_server)}/\S+", body).group(0)
        page.goto(link)  # the founder follows the email's link into the console
        assert page.url.startswith(live_server) and page.locator("h1").is_visible()

        # Staff approve the first and reject the second; the carrier provisions the first.
        approved, rejected = proposed[first].id, proposed[second].id
        assert client.post(f"/api/v1/allocations/{approved}/approve", json={},
                           headers=staff_actor.headers).status_code == 200
        assert client.post(f"/api/v1/allocations/{rejected}/reject", json={"reason": "同一用途已获分配"},
                           headers=staff_actor.headers).status_code == 200
        session.commit()
        jobs.provision(app, MONDAY_0900)
        session.expire_all()
        active = session.get(Allocation, approved)
        assert active.status is AllocationStatus.active and active.carrier_ref
        session.commit()  # on SQLite every transaction takes the write lock: end the read before the browser acts

        page.goto(f"/portal/allocations/{approved}")
        main = page.locator("main").inner_text()
        gross = active.unit_price * active.quantity
        assert active.carrier_ref in main and yuan(gross) in main and yuan(gross * Decimal("0.7")) in main
        assert page.locator("#how-to-use").is_visible()
        assert axe(page) == []
        screenshot(page, "journey_allocation_active")

        # The founder appeals the rejection from its allocation's page.
        page.goto(f"/portal/allocations/{rejected}")
        assert "同一用途已获分配" in page.locator("main").inner_text()
        page.get_by_label("您对这一决定有什么疑问或补充？").fill("两次申请用途不同：第二笔用于新模型的评测，请复核。")
        page.get_by_role("button", name="提交诉求").click()
        page.wait_for_url("**/portal/appeals/*")
        thread = page.url.replace(live_server, "")
        assert "第二笔用于新模型的评测" in page.locator("main").inner_text()
        page.get_by_role("link", name="诉求", exact=True).click()
        page.wait_for_url("**/portal/appeals")
        assert f"分配 {rejected}" in page.locator("main").inner_text()

        # A founder of another company gets 404 on each of these pages.
        other, _, _ = accounts.register_startup(session, {
            "name": "上海青禾数据科技有限公司", "uscc": make_uscc(int(uuid.uuid4().int % 10_000_000) * 10 + 1),
            "sector": Sector.ai_models, "founded_on": dt.date(2022, 6, 1), "headcount": 9,
            "contact_name": "吴凡", "contact_email": "wufan@qinghe.example.cn"})
        other_email = f"wufan{uuid.uuid4().hex[:6]}@qinghe.example.cn"
        people.create_company_person(session, Side.startup, other.id, other_email, "吴凡", PASSWORD)
        session.commit()
        stranger = browser.new_context(base_url=live_server, locale="zh-CN").new_page()
        try:
            sign_in(stranger, other_email)
            for path in (f"/portal/requests/{first}", f"/portal/allocations/{approved}",
                         f"/portal/allocations/{rejected}", thread):
                assert stranger.goto(path).status == 404, path
        finally:
            stranger.context.close()
    finally:
        smtp.stop()
        simulator.close()
        install_clock(app, None)
