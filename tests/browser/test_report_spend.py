"""Reports 3 and 6 in a real browser: signed in as district staff, in Chinese, the subsidy spend report filtered
by firm size through the form, its chart drawn above its tables, the XLSX export downloaded with the filter
applied; then the compliance report; axe-core finding nothing serious on either; the screenshots for
docs/screenshots/ (staff_report_spend, staff_report_compliance)."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from broker.models import Role, SubsidyProgram
from broker.services import people
from tests.spend_data import build_spend_district

PASSWORD = "长宁区硅巷-报表-2026"
EMAIL = "lu.jing@changning.example.gov.cn"


@pytest.fixture
def district(client, session, make_actor, frozen_clock) -> dict:
    """The district of tests/spend_data.py, committed before the browser acts; the clock stays at 2027-01-04."""
    if session.scalar(sa.select(SubsidyProgram.id).where(SubsidyProgram.code == "voucher")) is None:
        found = build_spend_district(client, session, make_actor, frozen_clock)
    people.create_district_person(session, EMAIL, "陆静", Role.staff, PASSWORD)
    session.commit()
    return found


def test_the_spend_and_compliance_reports_filtered_and_exported(page, district, axe, screenshot):
    page.goto("/staff/reports/spend?start=2026-12-01&end=2027-01-31")
    page.wait_for_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("邮箱").fill(EMAIL)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(re.compile(r"/staff/reports/spend"))
    assert page.locator("h1").inner_text() == "补贴资金使用"
    assert page.get_by_role("navigation", name="区科委工作台").get_by_role("link", name="报表").get_attribute(
        "aria-current") == "page"
    total = page.get_by_role("table", name="补贴资金（期间合计）").inner_text()
    assert re.sub(r"\s+", " ", total).endswith("合计 ¥137,500.00 ¥125,000.00 ¥125,000.00 ¥12,500.00 ¥12,500.00 ¥0.00 ¥275,000.00 45.45")
    page.get_by_label("企业规模").select_option("medium")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"size=medium"))
    page.locator("#spend-chart svg").first.wait_for()
    total = page.get_by_role("table", name="补贴资金（期间合计）").inner_text()
    assert re.sub(r"\s+", " ", total).endswith("合计 ¥25,000.00 ¥12,500.00 ¥12,500.00 ¥12,500.00 ¥12,500.00 ¥0.00 ¥25,000.00 50.00")
    assert "50.00" in page.get_by_role("table", name="达到年度上限的企业").inner_text()
    assert axe(page) == []
    screenshot(page, "staff_report_spend")

    with page.expect_download() as downloaded:
        page.locator("#export-xlsx").click()
    book = load_workbook(io.BytesIO(open(downloaded.value.path(), "rb").read()))
    assert ("企业规模", "中型（100–299人）") in list(book["筛选条件"].iter_rows(values_only=True))
    assert list(book["补贴资金（期间合计）"].iter_rows(values_only=True))[1][:3] == ("合计", 25000, 12500)

    page.goto("/staff/reports/compliance?start=2026-12-01&end=2027-01-31")
    assert page.locator("h1").inner_text() == "合规情况"
    counts = re.sub(r"\s+", " ", page.get_by_role("table", name="合规事项（期间合计）").inner_text())
    assert "追回：重复享受补贴 1 ¥12,500.00" in counts
    page.locator("#compliance-chart svg").first.wait_for()
    assert "已获市级算力补贴" not in page.content()  # the clawback's note is not shown, its reason is
    page.get_by_label("补贴项目").select_option(str(district["program"]["id"]))
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(rf"program={district['program']['id']}"))
    page.locator("#compliance-chart svg").first.wait_for()
    assert axe(page) == []
    screenshot(page, "staff_report_compliance")
    with page.expect_download() as downloaded:
        page.locator("#export-csv").click()
    rows = list(csv.reader(io.StringIO(open(downloaded.value.path(), "rb").read().decode("utf-8-sig"))))
    assert ["追回：重复享受补贴", "1", "12500"] in rows  # the voucher's clawback, under the program's filter
    assert any(row[:1] == ["补贴项目"] and district["program"]["code"] in row[1] for row in rows), rows[:5]
