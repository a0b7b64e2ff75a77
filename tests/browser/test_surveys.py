"""Demand surveys (需求摸排) in a real browser: a founder declares a line in the open survey on the
portal, then a district staff member opens the survey's page and sees it in the aggregate by sector
with its chart. axe-core finds nothing serious; the screenshots are docs/screenshots/portal_surveys.png
and staff_surveys.png."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from broker.clock import FrozenClock, install_clock
from broker.models import Account, Role, Startup
from broker.services import people, surveys
from broker.services.passwords import hash_password
from tests.browser.support import sign_in as sign_in_as

PASSWORD = "需求摸排-浏览器-2026"
DEC_01_0900 = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.timezone.utc)


def sign_in(page, email: str) -> None:
    sign_in_as(page, email, PASSWORD)
    page.wait_for_load_state()


def test_a_founder_declares_and_staff_see_the_aggregate(app, session, page, axe, screenshot, make_actor):
    install_clock(app, FrozenClock(DEC_01_0900))
    try:
        staff = make_actor("staff")
        campaign = surveys.open_campaign(session, session.get(Account, staff.account_id), {
            "title": "2027年一季度算力需求摸排", "period": "2027-Q1", "opens_on": dt.date(2026, 12, 1),
            "closes_on": dt.date(2026, 12, 31), "kinds": ["gpu", "tokens"]}, DEC_01_0900)
        founder = make_actor("startup", sector="smart_driving")
        for n, (sector, qty, price) in enumerate((("smart_driving", "400", "9.5"), ("ai_models", "250", None),
                                                  ("ai_models", "120", "11"))):
            other = make_actor("startup", sector=sector)
            surveys.declare(session, session.get(Account, other.account_id), campaign.id, {
                "kind": "gpu", "quantity": qty, "region": "上海", "month": "2027-01-01", "max_unit_price": price,
                "purpose": "模型训练与推理"}, DEC_01_0900)
        person = people.find_or_link(session, session.get(Startup, founder.startup_id).uscc, "li.na@example.cn", "李娜",
                                     "legal_representative", DEC_01_0900)
        person.password_hash = hash_password(PASSWORD)
        people.create_district_person(session, "wu.lei@changning.example.gov.cn", "吴磊", Role.staff, PASSWORD)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, "li.na@example.cn")
        page.goto("/portal/surveys")
        assert page.locator("h1").inner_text() == "需求摸排"
        section = page.locator(f"#survey-{campaign.id}")
        section.get_by_label("资源类型").select_option("gpu")
        section.get_by_label("需求量").fill("300")
        section.get_by_label("地区").fill("上海")
        section.get_by_label("月份").select_option("2027-01-01")
        section.get_by_label("可承受的最高单价（元/单位，可不填）").fill("10")
        section.get_by_label("用途").fill("自动驾驶感知模型训练")
        section.get_by_role("button", name="保存").click()
        page.wait_for_selector("#done")
        assert "自动驾驶感知模型训练" in page.locator(f"#s{campaign.id}-lines").inner_text()
        assert axe(page) == []
        screenshot(page, "portal_surveys")
        session.expire_all()
        assert [line.quantity for line in surveys.own_lines(session, session.get(Account, person.account_id),
                                                           campaign.id, DEC_01_0900)] == [Decimal(300)]
        session.commit()

        page.get_by_role("button", name="退出").click()
        sign_in(page, "wu.lei@changning.example.gov.cn")
        page.goto("/staff/surveys")
        page.get_by_role("link", name="2027年一季度算力需求摸排").click()
        page.wait_for_selector("#demand")
        assert "已有 4 家企业填报" in page.locator("#survey-facts").inner_text()
        rows = page.locator("#demand tbody tr")
        assert rows.count() == 2  # gpu · 上海 · 2027-01: ai_models (2 firms), smart_driving ★ (2 firms)
        assert "700" in rows.nth(1).inner_text() and "★" in rows.nth(1).inner_text()
        page.wait_for_selector("#survey-chart svg")
        assert axe(page) == []
        screenshot(page, "staff_surveys")
    finally:
        install_clock(app, None)
