"""Reports 4 and 5 in a real browser: signed in as district staff, in Chinese, the utilisation report
(资源使用率) with its chart, a filter applied through the form (a threshold), its CSV downloaded with
the filter applied; then the carrier statement (运营商对账) filtered by carrier with its XLSX and its PDF
downloaded (the PDF read back with the same numbers); axe-core finding nothing serious on either; the
screenshots for docs/screenshots/. Last, the carrier itself opens its own statement (对账单) from its
nav and downloads it as a PDF: its figures, the same as staff's.

The live server runs on the real clock, so the windows are in November 2026 (their middle, 11-16,
has passed whenever this runs) and the pages are asked for the fourth quarter of 2026.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from pypdf import PdfReader

from broker.models import (
    Allocation,
    AllocationStatus,
    Carrier,
    CycleStatus,
    MatchingCycle,
    Offer,
    Pledge,
    PledgeTerms,
    RequestStatus,
    ResourceRequest,
    Role,
    UsageReport,
)
from broker.models.people import Person
from broker.services import accounts, people, report_utilisation
from broker.services.passwords import hash_password
from tests.browser.support import sign_in
from tests.conftest import make_uscc, startup_payload

PASSWORD = "长宁区硅巷-报表-2026"
EMAIL = "lin.yue@changning.example.gov.cn"
CARRIER_EMAIL = "xu.tao@mobile-sh.example.cn"
CODE = "util_sh80"
PERIOD = "start=2026-10-01&end=2026-12-31"
# kind, attributes, quantity, usage: [(November day, quantity)]
GRANTS = [
    ("gpu", {"gpu_model": "H100"}, 1000, [(3, 50), (20, 450)]),  # 5 % by 11-16: idle
    ("gpu", {"gpu_model": "H100"}, 200, [(5, 120)]),  # 60 %
    ("tokens", {"model": "qwen-max"}, 500, [(4, 300)]),  # 60 %
    ("data_line", {"a_end": "长宁", "z_end": "浦东", "cross_border": "no"}, 100, [(2, 100), (9, 100), (21, 100)]),
]


def _at(day: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai


def _build(session) -> None:
    carrier, _, _ = accounts.register_carrier(session, CODE, "中国移动上海公司", "telecom", ["telecom"])
    carrier.uscc = make_uscc(9801)
    startup, _, _ = accounts.register_startup(session, startup_payload(981, sector="ai_models", parse=True))
    cycle = MatchingCycle(status=CycleStatus.closed, scheduled_for=_at(1), started_at=_at(1), finished_at=_at(1),
                          approval_deadline=_at(2), stats={})
    session.add(cycle)
    session.add(Pledge(carrier_id=carrier.id, period="2026-Q4", first_day=dt.date(2026, 10, 1),
                       last_day=dt.date(2026, 12, 31), kind="gpu", quantity=Decimal(920), terms=PledgeTerms.free))
    session.flush()
    for n, (kind, attributes, quantity, usage) in enumerate(GRANTS):
        offer = Offer(carrier_id=carrier.id, external_id=f"util-{n}", kind=kind, region="cn-east-sh",
                      attributes=attributes, quantity=Decimal(10000), promised=Decimal(0),
                      window_start=dt.date(2026, 10, 1), window_end=dt.date(2027, 3, 31),
                      list_price=Decimal("2.50"), unit_price=Decimal("2.00"), divisible=kind != "data_line")
        request = ResourceRequest(startup_id=startup.id, kind=kind, quantity=Decimal(quantity),
                                  window_start=dt.date(2026, 11, 1), window_end=dt.date(2026, 11, 30), attributes={},
                                  purpose="模型训练", status=RequestStatus.active, submitted_at=_at(1))
        session.add_all([offer, request])
        session.flush()
        allocation = Allocation(cycle_id=cycle.id, request_id=request.id, offer_id=offer.id, quantity=Decimal(quantity),
                                unit_price=Decimal("2.00"), status=AllocationStatus.active, decided_at=_at(1))
        session.add(allocation)
        session.flush()
        for m, (day, used) in enumerate(usage):
            session.add(UsageReport(carrier_id=carrier.id, external_id=f"util-{n}-{m}", allocation_id=allocation.id,
                                    quantity=Decimal(used), recorded_at=_at(day)))
    person = people.find_or_link(session, make_uscc(9801), CARRIER_EMAIL, "许涛", "legal_representative", _at(1))
    person.password_hash = hash_password(PASSWORD)


@pytest.fixture
def district(session) -> None:
    """Made once in the module's committed database; the transaction ends before the browser acts."""
    if session.scalar(sa.select(Person.id).where(Person.email_key == EMAIL)) is None:
        people.create_district_person(session, EMAIL, "林悦", Role.staff, PASSWORD)
    if session.scalar(sa.select(Carrier.id).where(Carrier.code == CODE)) is None:
        _build(session)
        session.flush()
        report_utilisation.refresh(session, _at(30))  # the scheduler's refresh_rollups job
    session.commit()


def test_utilisation_and_the_carrier_statement_filtered_and_exported(page, district, axe, screenshot):
    page.goto(f"/staff/reports/utilisation?{PERIOD}&carrier={CODE}")
    page.wait_for_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("邮箱").fill(EMAIL)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(re.compile(r"/staff/reports/utilisation"))
    assert page.locator("h1").inner_text() == "资源使用率"
    assert page.get_by_role("navigation", name="区科委工作台").get_by_role("link", name="报表").get_attribute(
        "aria-current") == "page"
    kinds = re.sub(r"\s+", " ", page.get_by_role("table", name="按资源类别").inner_text())
    assert "GPU 算力 卡时 2 1,200 620 51.7 1" in kinds and "数据专线 线路·天 1 30 3 10 1" in kinds
    page.get_by_label("闲置阈值（中点前用量占分配的百分比）").fill("6")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"threshold=6"))
    page.locator("#utilisation-chart svg").first.wait_for()
    idle = page.get_by_role("table", name="闲置分配（待跟进）").inner_text()
    assert "GPU 算力" in idle and "数据专线" not in idle  # the GPU used 5 % by 11-16, the line 2 of 30 days: 6.7 %
    assert axe(page) == []
    screenshot(page, "staff_report_utilisation")
    with page.expect_download() as downloaded:
        page.locator("#export-csv").click()
    rows = list(csv.reader(io.StringIO(open(downloaded.value.path(), "rb").read().decode("utf-8-sig"))))
    assert ["闲置阈值（%）", "6"] in rows and ["数据专线", "", "线路·天", "1", "30", "3", "10", "0"] in rows

    page.goto(f"/staff/reports/carriers?{PERIOD}")
    assert page.locator("h1").inner_text() == "运营商对账"
    page.get_by_label("运营商").select_option(CODE)
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(rf"carrier={CODE}"))
    page.locator("#carriers-chart svg").first.wait_for()
    pledged = re.sub(r"\s+", " ", page.get_by_role("table", name="承诺与交付").inner_text())
    assert "中国移动上海公司 2026-11 GPU 算力 卡时 300 620 206.7" in pledged
    assert axe(page) == []
    screenshot(page, "staff_report_carriers")
    with page.expect_download() as downloaded:
        page.locator("#export-xlsx").click()
    book = load_workbook(io.BytesIO(open(downloaded.value.path(), "rb").read()))
    assert ("运营商", CODE) in list(book["筛选条件"].iter_rows(values_only=True))
    months = [row[1] for row in list(book["补贴兑现与开通失败"].iter_rows(values_only=True))[1:]]
    assert months == ["2026-10", "2026-11", "2026-12"]
    with page.expect_download() as downloaded:
        page.locator("#export-pdf").click()
    assert downloaded.value.suggested_filename == "carriers-2026-10-01-2026-12-31.pdf"
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(downloaded.value.path()).pages))
    assert "运营商对账" in text and "中国移动上海公司 2026-11 GPU 算力 卡时 300 620 206.7" in text
    assert "筛选" not in text


def test_the_carrier_downloads_its_own_statement(page, district, axe, screenshot):
    sign_in(page, CARRIER_EMAIL, PASSWORD)
    page.wait_for_url(re.compile(r"/carrier/"))
    page.get_by_role("navigation", name="运营商门户").get_by_role("link", name="对账单").click()
    page.wait_for_url(re.compile(r"/carrier/statement$"))
    assert page.locator("h1").inner_text() == "对账单"
    assert page.locator("select#carrier").count() == 0  # its own statement: no carrier to choose
    page.get_by_label("起始日期（北京时间）").fill("2026-10-01")
    page.get_by_label("截止日期（北京时间，含当天）").fill("2026-12-31")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"start=2026-10-01&end=2026-12-31"))
    page.locator("#carriers-chart svg").first.wait_for()
    pledged = re.sub(r"\s+", " ", page.get_by_role("table", name="承诺与交付").inner_text())
    assert "中国移动上海公司 2026-11 GPU 算力 卡时 300 620 206.7" in pledged
    assert axe(page) == []
    screenshot(page, "carrier_own_statement")
    with page.expect_download() as downloaded:
        page.locator("#export-pdf").click()
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(downloaded.value.path()).pages))
    assert "对账单" in text and "中国移动上海公司 2026-11 GPU 算力 卡时 300 620 206.7" in text
