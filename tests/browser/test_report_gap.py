"""The supply–demand gap report (供需缺口) in a real browser: signed in as district staff, in Chinese, a
filter applied through the form, the chart drawn above its table, then a region chosen from the regions
known, the CSV export downloaded with both filters applied, axe-core finding nothing serious; the screenshot for docs/screenshots/."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from broker.models import Carrier, Role
from broker.models.people import Person
from broker.services import people
from tests.report_gap_data import build_gap_district

PASSWORD = "长宁区硅巷-缺口-2026"
EMAIL = "lu.yan@changning.example.gov.cn"


@pytest.fixture
def district(session) -> None:
    """Made once in the module's committed database; the transaction ends before the browser acts."""
    if session.scalar(sa.select(Person.id).where(Person.email_key == EMAIL)) is None:
        people.create_district_person(session, EMAIL, "陆妍", Role.staff, PASSWORD)
    if session.scalar(sa.select(Carrier.id).where(Carrier.code == "gap_sh71")) is None:
        build_gap_district(session, 71)
    session.commit()


def test_the_gap_report_filtered_and_exported(page, district, axe, screenshot):
    page.goto("/staff/reports/gap?start=2026-10-01&end=2026-12-31")
    page.wait_for_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("邮箱").fill(EMAIL)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(re.compile(r"/staff/reports/gap"))
    assert page.locator("h1").inner_text() == "供需缺口"
    assert page.get_by_role("navigation", name="区科委工作台").get_by_role("link", name="报表").get_attribute(
        "aria-current") == "page"
    page.get_by_label("起始日期（北京时间）").fill("2026-10-01")
    page.get_by_label("截止日期（北京时间，含当天）").fill("2026-12-31")
    page.get_by_label("资源类别").select_option("gpu")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"kind=gpu"))
    page.locator("#gap-chart svg").first.wait_for()
    assert page.locator("#gap-chart").get_attribute("aria-hidden") == "true"
    kinds = re.sub(r"\s+", " ", page.get_by_role("table", name="按资源类别").inner_text())
    assert kinds.endswith("GPU 算力 卡时 230 220 300 200 130 90")
    assert "预算不足" in page.get_by_role("table", name="未满足部分及原因").inner_text()
    assert axe(page) == []
    screenshot(page, "staff_report_gap")

    # Beijing: q2 (any region) and q3 (Shanghai or Beijing); no gpu offer there in Q4, and pledges name no region.
    page.get_by_label("地区").select_option("cn-north-bj")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"region=cn-north-bj"))
    kinds = re.sub(r"\s+", " ", page.get_by_role("table", name="按资源类别").inner_text())
    assert kinds.endswith("GPU 算力 卡时 0 100 0 0 60 40")
    assert "承诺不分地区" in page.locator("#kinds-heading + p").inner_text()
    with page.expect_download() as downloaded:
        page.locator("#export-csv").click()
    rows = list(csv.reader(io.StringIO(open(downloaded.value.path(), "rb").read().decode("utf-8-sig"))))
    assert ["资源类别", "GPU 算力"] in rows and ["地区", "cn-north-bj"] in rows
    assert ["GPU 算力", "卡时", "0", "100", "0", "0", "60", "40"] in rows
