"""Staff screens 3, 8 and 9 in a real browser, in Chinese, on a small realistic market built
through the services and the API: a cycle's report (the chart and its table, reasons in words),
the policy (a bad value refused, then a new version saved), the audit log searched. axe-core
finds nothing serious; the screenshots are docs/screenshots/staff_cycle_report.png,
staff_policy.png and staff_audit.png."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from broker.clock import now
from broker.db import get_db
from broker.models import Allocation, Carrier, MatchingCycle, Offer, Role
from broker.services import accounts
from tests.browser.test_sign_in import PASSWORD, staff_email  # noqa: F401  (a fixture)
from tests.conftest import make_uscc, startup_payload
from tests.e2e.test_cycle_workflow import MONDAY_0900
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask

STARTUPS = [  # (name, sector, what it asks for)
    ("上海驭远智能驾驶科技有限公司", "smart_driving", ask(quantity="800", min_quantity="100", max_unit_price="20", regions=None)),
    ("上海澜舟大模型科技有限公司", "ai_models", ask(quantity="800", min_quantity="100", max_unit_price="20", regions=None)),
    ("上海瑞康智慧医疗科技有限公司", "smart_healthcare", ask(quantity="300", min_quantity="50", max_unit_price="20", regions=None)),
    ("上海光影数字文创有限公司", "digital_culture", {"kind": "tokens", "quantity": "5000"}),
    ("上海新桥电子商务有限公司", "ecommerce", ask(quantity="10", max_unit_price="1", regions=None, min_quantity=None)),
]
WINDOW = {"window_start": "2026-12-07", "window_end": "2026-12-20"}


class Holder:
    def __init__(self, secret: str) -> None:
        self.headers = {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def market_cycle(app, frozen_clock, staff_email) -> int:  # noqa: F811
    """A carrier's scarce H100 lot and tokens, five startups asking, one cycle run: built once
    (the browser tests share one committed database), its id returned."""
    frozen_clock(MONDAY_0900)
    session = get_db(app).sessionmaker()
    try:
        if session.scalar(sa.select(Carrier.id).where(Carrier.code == "ct_shanghai")) is None:
            staff_account, _token, staff_secret = accounts.create_user(session, Role.staff, "区科委 沈慧")
            _carrier, _token, carrier_secret = accounts.register_carrier(
                session, "ct_shanghai", "中国电信股份有限公司上海分公司", "telecom", ["telecom"])
            client = app.test_client()
            offers = publish(client, Holder(carrier_secret),
                             gpu_offer("h100-changning", quantity="1000", unit_price="10"),
                             gpu_offer("telechat-tokens", kind="tokens", attributes={"model": "telechat-2"},
                                       quantity="100000", unit_price="2", list_price="4"))
            assert offers.status_code == 200, offers.json
            for n, (name, sector, body) in enumerate(STARTUPS, start=7101):
                payload = {**startup_payload(n, sector=sector, parse=True), "name": name, "uscc": make_uscc(n)}
                startup, _token, secret = accounts.register_startup(session, payload)
                accounts.verify_startup(session, staff_account, startup.id, now(app))
                asked = client.post("/api/v1/requests", json={k: v for k, v in {**body, **WINDOW}.items() if v is not None},
                                    headers=Holder(secret).headers)
                assert asked.status_code == 201, asked.json
            ran = client.post("/api/v1/cycles", json={}, headers=Holder(staff_secret).headers)
            assert ran.status_code == 201, ran.json
        # Other browser tests run cycles of their own on this database: this district's is the one
        # that proposed from ct_shanghai's lots.
        cycle_id = session.scalar(
            sa.select(MatchingCycle.id).join(Allocation, Allocation.cycle_id == MatchingCycle.id)
            .join(Offer, Offer.id == Allocation.offer_id).join(Carrier, Carrier.id == Offer.carrier_id)
            .where(Carrier.code == "ct_shanghai").order_by(MatchingCycle.id).limit(1))
        session.commit()  # end the transaction before the browser acts (SQLite's write lock)
        return cycle_id
    finally:
        session.close()


def sign_in(page, email: str, path: str) -> None:
    page.goto(path)
    page.wait_for_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("邮箱").fill(email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(re.compile(re.escape(path) + "$"))


def test_a_cycle_report_with_its_chart_and_reasons_in_words(page, staff_email, market_cycle, axe, screenshot):  # noqa: F811
    sign_in(page, staff_email, "/staff/cycles")
    assert page.locator("h1").inner_text() == "撮合报告"
    page.get_by_role("link", name=f"第 {market_cycle} 轮").click()
    page.wait_for_url(re.compile(rf"/staff/cycles/{market_cycle}$"))
    assert page.locator("h1").inner_text() == f"第 {market_cycle} 轮撮合报告"
    page.locator("#sector-chart svg").wait_for()  # ECharts drew the chart (from /static/vendor/)
    sectors = page.locator("#by-sector tbody th").all_inner_texts()
    assert "智能驾驶" in sectors and "数字文创" in sectors
    short = page.locator("#short").inner_text()
    assert "份额上限" in short and "最高单价" in short and "上海新桥电子商务有限公司" in short
    assert "share_cap" not in page.content()
    assert axe(page) == []
    screenshot(page, "staff_cycle_report")


def test_the_policy_refuses_a_bad_value_then_saves_a_new_version(page, staff_email, market_cycle, axe, screenshot):  # noqa: F811
    sign_in(page, staff_email, "/staff/policy")
    assert page.locator("h1").inner_text() == "撮合政策"
    page.get_by_label("单家企业份额上限", exact=True).fill("1.5")
    page.get_by_role("button", name="保存新版本").click()
    assert "政策未保存" in page.locator("#error-message").inner_text()
    assert "份额上限须是大于 0、不超过 1 的小数" in page.locator("#share_cap-error").inner_text()
    assert axe(page) == []
    page.get_by_label("单家企业份额上限", exact=True).fill("0.4")
    page.get_by_label("重点企业加分", exact=True).fill("0.6")
    page.get_by_label("智能驾驶 ★").fill("2.5")
    page.get_by_role("button", name="保存新版本").click()
    page.wait_for_url(re.compile(r"/staff/policy$"))
    assert "新版本的撮合政策已生效" in page.locator("#policy-notice").inner_text()
    assert "40%" in page.locator("#in-force").inner_text()
    assert page.locator("#versions tbody tr").count() >= 1
    assert axe(page) == []
    screenshot(page, "staff_policy")


def test_the_audit_log_searched_by_object_type(page, staff_email, market_cycle, axe, screenshot):  # noqa: F811
    sign_in(page, staff_email, "/staff/audit")
    assert page.locator("h1").inner_text() == "审计日志"
    page.get_by_label("对象类型").select_option("startups")
    page.get_by_role("button", name="搜索").click()
    page.wait_for_url(re.compile(r"entity_type=startups"))
    table = page.locator("#audit").inner_text()
    assert "上海驭远智能驾驶科技有限公司" in table and "verify" in table
    assert axe(page) == []
    screenshot(page, "staff_audit")
