"""The performance-evaluation pack (绩效自评) in a real browser: signed in as district staff, in Chinese, the
program and the year chosen through the form, the satisfaction chart drawn above its table, the PDF
downloaded and read back with the same numbers, axe-core finding nothing serious; the screenshot for
docs/screenshots/."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from broker.models import Role, SubsidyProgram
from broker.models.people import Person
from broker.services import people
from tests.pack_data import build_pack_district

PASSWORD = "长宁区硅巷-绩效-2026"
EMAIL = "lu.jing@changning.example.gov.cn"


@pytest.fixture
def district(session) -> None:
    """Made once in the module's committed database; the transaction ends before the browser acts."""
    person = session.scalar(sa.select(Person).where(Person.email_key == EMAIL))
    if person is None:
        person = people.create_district_person(session, EMAIL, "陆静", Role.staff, PASSWORD)
    if session.scalar(sa.select(SubsidyProgram.id).where(SubsidyProgram.code == "SV2670")) is None:
        session.add(SubsidyProgram(code="AA01", name="先设立的项目", rate=1, cap_per_startup=1,
                                   starts_on=dt.date(2026, 1, 1),
                                   ends_on=dt.date(2027, 1, 1)))
        build_pack_district(session, person.account.id, 70)
    session.commit()


def test_the_pack_chosen_and_downloaded_as_pdf(page, district, axe, screenshot):
    page.goto("/staff/reports/pack")
    page.wait_for_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("邮箱").fill(EMAIL)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(re.compile(r"/staff/reports/pack"))
    assert page.locator("h1").inner_text().startswith("绩效自评：先设立的项目")  # the first program by default
    assert page.get_by_role("navigation", name="区科委工作台").get_by_role("link", name="报表").get_attribute(
        "aria-current") == "page"
    page.get_by_label("补贴项目").select_option(label="SV2670 长宁区算力券")
    page.get_by_label("年度").fill("2026")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"program=\d+&year=2026"))
    assert page.locator("h1").inner_text() == "绩效自评：长宁区算力券（SV2670）2026年度"
    assert [h.inner_text() for h in page.locator("main h2").all()] == ["一、决策", "二、过程", "三、产出", "四、效益"]
    page.locator("#scores-chart svg").first.wait_for()
    assert page.locator("#scores-chart").get_attribute("aria-hidden") == "true"
    output = re.sub(r"\s+", " ", page.get_by_role("table", name="产出指标").inner_text())
    assert output.endswith("3 3 ¥300.00 ¥205.00 68.33 0.03")
    assert "66.67" in page.get_by_role("table", name="评审及时性").inner_text()
    assert axe(page) == []
    screenshot(page, "staff_report_pack")

    with page.expect_download() as downloaded:
        page.locator("#export-pdf").click()
    assert downloaded.value.suggested_filename == "performance-pack-SV2670-2026.pdf"
    reader = PdfReader(downloaded.value.path())
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in reader.pages))
    assert "绩效自评：长宁区算力券（SV2670）2026年度" in text
    assert "3 3 ¥300.00 ¥205.00 68.33 0.03" in text and "¥205.00 ¥410.00 0.50 1 33.33 ¥100.00 33.33" in text
    assert "2 4.50" in text
