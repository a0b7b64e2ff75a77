"""The staff dashboard (工作台) in a real browser: signed in as district staff, the figures of a
district with Chinese companies, the charts drawn by the vendored ECharts with their tables
beside them, axe-core finding nothing serious; the screenshot for docs/screenshots/."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from broker.models import Carrier, Role
from broker.models.people import Person
from broker.services import people
from tests.dashboard_data import build_district

PASSWORD = "长宁区硅巷-工作台-2026"
EMAIL = "lin.qing@changning.example.gov.cn"


@pytest.fixture
def district(session) -> None:
    """Made once in the browser tests' committed database; the transaction ends before the browser acts."""
    if session.scalar(sa.select(Person.id).where(Person.email_key == EMAIL)) is None:
        people.create_district_person(session, EMAIL, "林青", Role.staff, PASSWORD)
    if session.scalar(sa.select(Carrier.id).where(Carrier.code == "telecom_sh50")) is None:
        build_district(session, 50)
    session.commit()


def test_the_dashboard_in_chinese_with_its_charts_and_tables(page, district, axe, screenshot):
    page.goto("/staff")
    page.wait_for_url(re.compile(r"/sign-in\?next=/staff$"))
    page.get_by_label("邮箱").fill(EMAIL)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(re.compile(r"/staff$"))
    assert page.locator("h1").inner_text() == "工作台"
    assert page.get_by_role("navigation", name="区科委工作台").get_by_role("link", name="工作台").get_attribute(
        "aria-current") == "page"
    # The charts are drawn (SVG by ECharts), hidden from screen readers, who read the tables.
    for chart in ("supply-chart", "trend-chart", "program-chart"):
        page.locator(f"#{chart} svg").first.wait_for()
        assert page.locator(f"#{chart}").get_attribute("aria-hidden") == "true"
    assert page.get_by_role("table", name="各品类可供与需求").count() == 1
    assert "万元" in page.get_by_role("table", name="各补贴项目资金情况（万元）").inner_text()
    assert "从未同步" in page.get_by_role("table", name="各运营商最近一次同步").inner_text()
    assert "最早审批截止" in page.locator("#pending-decisions").inner_text()
    assert axe(page) == []
    screenshot(page, "staff_dashboard")
    # Each figure with a list behind it is a link a keyboard reaches.
    page.locator('#supply-table a[href="/api/v1/offers?kind=gpu"]').focus()
    assert page.evaluate("document.activeElement.closest('tr').querySelector('th').textContent") == "GPU算力"
