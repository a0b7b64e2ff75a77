"""A background export (后台导出) in a real browser: staff filter the fulfilment report, click 后台导出, land
on 我的导出 with the export queued; the run_exports job runs in-process; the page then shows 已完成 and the
download is the report's CSV with the filter applied. axe-core finds nothing serious on 我的导出."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from broker.clock import now
from broker.models import Carrier, Role
from broker.models.people import Person
from broker.services import people
from scheduler import jobs
from tests.browser.support import sign_in
from tests.report_data import build_fulfilment_district

PASSWORD = "长宁区硅巷-导出-2026"
EMAIL = "wu.lan@changning.example.gov.cn"


@pytest.fixture
def district(session) -> None:
    """Made once in the module's committed database; the transaction ends before the browser acts."""
    if session.scalar(sa.select(Person.id).where(Person.email_key == EMAIL)) is None:
        people.create_district_person(session, EMAIL, "吴岚", Role.staff, PASSWORD)
    if session.scalar(sa.select(Carrier.id).where(Carrier.code == "report_sh71")) is None:
        build_fulfilment_district(session, 71)
    session.commit()


def test_a_background_export_asked_for_run_and_downloaded(app, page, district, axe):
    sign_in(page, EMAIL, PASSWORD)
    page.wait_for_url(re.compile(r"/staff"))
    page.goto("/staff/reports/fulfilment?start=2026-10-01&end=2026-12-31&kind=gpu")
    page.get_by_label("后台导出格式").select_option("csv")
    page.get_by_role("button", name="后台导出").click()
    page.wait_for_url(re.compile(r"/staff/exports$"))
    assert page.locator("h1").inner_text() == "我的导出"
    row = page.locator("#exports tbody tr").first
    assert "排队中" in row.inner_text() and "需求满足情况" in row.inner_text()

    jobs.run_exports(app, now(app))

    page.reload()
    row = page.locator("#exports tbody tr").first
    assert "已完成" in row.inner_text() and "CSV" in row.inner_text()
    assert axe(page) == []
    with page.expect_download() as downloaded:
        row.get_by_role("link", name=re.compile(r"fulfilment-2026-10-01-2026-12-31\.csv")).click()
    rows = list(csv.reader(io.StringIO(open(downloaded.value.path(), "rb").read().decode("utf-8-sig"))))
    assert ["资源类别", "GPU 算力"] in rows and ["合计", "6", "6", "3", "2", "285", "285", "190", "130"] in rows
