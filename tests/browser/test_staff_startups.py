"""Startups (企业) in a real browser: a staff member signs in at the register, finds a pending
Chinese startup by its name, opens it and verifies it; rejects another, first without a reason
(the message by the field, nothing changed) and then with one; marks a startup with requests and
allocations a key enterprise. axe-core finds nothing serious; the screenshots are
docs/screenshots/staff_startups.png and staff_startup.png."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Role, Sector, Startup, StartupStatus
from broker.models.people import Person
from broker.services import accounts, people
from tests.conftest import Actor, make_uscc
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask

PASSWORD = "长宁区硅巷-企业浏览器-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
VERIFIED = (
    ("上海云驰智行科技有限公司", Sector.smart_driving, "李明"),
    ("上海深瞳大模型技术有限公司", Sector.ai_models, "王静"),
    ("上海墨韵数字文化创意有限公司", Sector.digital_culture, "陈晨"),
    ("上海仁济智慧医疗科技有限公司", Sector.smart_healthcare, "周婷"),
)
PENDING = (
    ("上海星河量子计算科技有限公司", Sector.industrial_software, "孙浩"),
    ("上海汇金数智金融科技有限公司", Sector.fintech, "吴倩"),
    ("上海澜星能源科技有限公司", Sector.energy_management, "郑凯"),
)


def _register(session, n: int, name: str, sector: Sector, contact: str):
    return accounts.register_startup(session, {
        "name": name, "uscc": make_uscc(5000 + n), "sector": sector, "founded_on": dt.date(2021, 5, 1 + n),
        "headcount": 20 + 7 * n, "contact_name": contact, "contact_email": f"contact{n}@startup{n}.example.cn",
        "contact_phone": f"021-6208 {1000 + n}"})


def test_staff_verify_reject_and_mark_a_key_enterprise(app, client, session, page, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        staff, _, staff_secret = accounts.create_user(session, Role.staff, "企业管理")
        carrier, token, secret = accounts.register_carrier(session, "cmcc", "中国移动上海分公司", "telecom", ["telecom"])
        published = publish(client, Actor(token.account_id, secret, carrier_id=carrier.id),
                            gpu_offer("h100-sh", quantity="600", unit_price="10", window_start="2026-12-01"))
        assert published.status_code == 200, published.json
        verified = []
        for n, (name, sector, contact) in enumerate(VERIFIED):
            startup, token, secret = _register(session, n, name, sector, contact)
            accounts.verify_startup(session, staff, startup.id, MONDAY_0900)
            verified.append(startup.id)
            made = client.post("/api/v1/requests", headers=Actor(token.account_id, secret).headers, json=ask(
                quantity="300", min_quantity="100", max_unit_price="20", regions=["sh-changning"],
                window_start="2026-12-07", window_end="2026-12-20"))
            assert made.status_code == 201, made.json
        pending = [_register(session, 10 + n, *row)[0].id for n, row in enumerate(PENDING)]
        cycle = client.post("/api/v1/cycles", json={}, headers=Actor(staff.id, staff_secret).headers)
        assert cycle.status_code == 201, cycle.json
        people.find_or_link(session, session.get(Startup, verified[0]).uscc, "li.ming@yunchi.example.cn", "李明",
                            "legal_representative", MONDAY_0900)
        email = "startups.browser@changning.example.gov.cn"
        if session.scalar(sa.select(Person.id).where(Person.email_key == email)) is None:
            people.create_district_person(session, email, "钱琳", Role.staff, PASSWORD)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        page.goto("/staff/startups")
        page.get_by_label("邮箱").fill(email)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        page.wait_for_url("**/staff/startups")
        assert page.locator("h1").inner_text() == "企业"
        rows = page.locator("#startups tbody tr")
        assert rows.count() == len(VERIFIED) + len(PENDING)
        assert "上海星河量子计算科技有限公司" in rows.nth(0).inner_text()  # pending, oldest first
        assert "待核验" in rows.nth(0).inner_text()
        assert "3" in page.locator("#count-pending").inner_text()
        assert axe(page) == []
        screenshot(page, "staff_startups")

        # Find one pending startup by name, open it, verify it.
        page.get_by_label("企业名称或统一社会信用代码").fill("星河量子")
        page.get_by_label("状态", exact=True).select_option("pending")
        page.get_by_role("button", name="筛选", exact=True).click()
        page.wait_for_url("**/staff/startups?**")
        assert rows.count() == 1
        page.get_by_role("link", name="上海星河量子计算科技有限公司").click()
        page.wait_for_url(f"**/staff/startups/{pending[0]}")
        page.get_by_role("button", name="核验通过").click()
        page.wait_for_selector("#startup-notice")
        assert "已核验" in page.locator("#startup-notice").inner_text()
        assert page.locator("#startup-status").inner_text() == "已核验"
        assert axe(page) == []

        # Reject another: first without a reason (refused, by the field), then with one.
        page.goto(f"/staff/startups/{pending[1]}")
        page.get_by_role("button", name="驳回登记").click()
        page.wait_for_selector("#reject_reason-error")
        assert "请填写理由" in page.locator("#reject_reason-error").inner_text()
        assert page.locator("#startup-status").inner_text() == "待核验"
        assert axe(page) == []
        page.get_by_label("驳回理由（企业会看到）").fill("营业执照上的名称与登记名称不一致，请核对后重新登记。")
        page.get_by_role("button", name="驳回登记").click()
        page.wait_for_selector("#startup-notice")
        assert "已驳回该登记" in page.locator("#startup-notice").inner_text()
        assert "营业执照上的名称" in page.locator("#rejection-reason").inner_text()

        # Mark a startup with requests and allocations a key enterprise.
        page.goto(f"/staff/startups/{verified[0]}")
        assert "共 1 条" in page.locator("#requests caption").inner_text()
        assert page.locator("#allocations tbody tr").count() >= 1
        page.get_by_role("button", name="标记为重点企业").click()
        page.wait_for_selector("#startup-notice")
        assert "已标记为重点企业" in page.locator("#startup-notice").inner_text()
        assert page.locator("#key-mark").inner_text() == "重点企业"
        assert axe(page) == []
        screenshot(page, "staff_startup")

        session.expire_all()
        states = {s.id: (s.status, s.key_enterprise) for s in session.scalars(sa.select(Startup))}
        session.commit()
        assert states[pending[0]] == (StartupStatus.verified, False)
        assert states[pending[1]] == (StartupStatus.rejected, False)
        assert states[pending[2]] == (StartupStatus.pending, False)
        assert states[verified[0]] == (StartupStatus.verified, True)
    finally:
        install_clock(app, None)
