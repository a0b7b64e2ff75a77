"""The fulfilment report (需求满足情况) in a real browser: signed in as district staff, in Chinese, a filter
applied through the form, the chart drawn above its table, the CSV export downloaded with the filter
applied, axe-core finding nothing serious; the screenshot for docs/screenshots/."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from broker.models import Carrier, Role
from broker.models.people import Person
from broker.services import people
from tests.report_data import build_fulfilment_district

PASSWORD = "长宁区硅巷-报表-2026"
EMAIL = "zhou.min@changning.example.gov.cn"


@pytest.fixture
def district(session) -> None:
    """Made once in the module's committed database; the transaction ends before the browser acts."""
    if session.scalar(sa.select(Person.id).where(Person.email_key == EMAIL)) is None:
        people.create_district_person(session, EMAIL, "周敏", Role.staff, PASSWORD)
    if session.scalar(sa.select(Carrier.id).where(Carrier.code == "report_sh70")) is None:
        build_fulfilment_district(session, 70)
    session.commit()


def test_the_fulfilment_report_filtered_and_exported(page, district, axe, screenshot):
    page.goto("/staff/reports/fulfilment?start=2026-10-01&end=2026-12-31")
    page.wait_for_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("邮箱").fill(EMAIL)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(re.compile(r"/staff/reports/fulfilment"))
    assert page.locator("h1").inner_text() == "需求满足情况"
    assert page.get_by_role("navigation", name="区科委工作台").get_by_role("link", name="报表").get_attribute(
        "aria-current") == "page"
    page.get_by_label("起始日期（北京时间）").fill("2026-10-01")
    page.get_by_label("截止日期（北京时间，含当天）").fill("2026-12-31")
    page.get_by_label("资源类别").select_option("gpu")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"kind=gpu"))
    page.locator("#funnel-chart svg").first.wait_for()
    assert page.locator("#funnel-chart").get_attribute("aria-hidden") == "true"
    funnel = page.get_by_role("table", name="需求满足漏斗（期间合计）").inner_text()
    assert re.sub(r"\s+", " ", funnel).endswith("合计 6 6 3 2 285 285 190 130")
    assert "72.00" in page.get_by_role("table", name="办理时长（小时）").inner_text()
    assert axe(page) == []
    screenshot(page, "staff_report_fulfilment")

    with page.expect_download() as downloaded:
        page.locator("#export-csv").click()
    rows = list(csv.reader(io.StringIO(open(downloaded.value.path(), "rb").read().decode("utf-8-sig"))))
    assert ["资源类别", "GPU 算力"] in rows and ["合计", "6", "6", "3", "2", "285", "285", "190", "130"] in rows
