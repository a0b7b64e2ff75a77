"""Carrier pledges (运营商承诺资源) in a real browser: a person of 中国移动上海分公司 records its GPU pledge for
this quarter on 承诺资源 and sees it in its own tracking; district staff open 运营商承诺 and see every
carrier's pledged, published, allocated and delivered figures with the chart drawn above its table, and
download the CSV. axe-core finds nothing serious; the screenshots are docs/screenshots/carrier_pledges.png
and staff_pledges.png."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Account, Carrier, Role
from broker.models.people import Person
from broker.services import accounts, market, people, pledges
from broker.services.passwords import hash_password
from tests.conftest import make_uscc
from tests.browser.support import sign_in

PASSWORD = "移动上海-承诺资源-2026"
STAFF_PASSWORD = "长宁区硅巷-运营商承诺-2026"
CARRIER_EMAIL = "wu.lei@mobile-pledges.example.cn"
STAFF_EMAIL = "gu.yan@changning.example.gov.cn"
MONDAY = dt.datetime(2027, 1, 4, 1, 0, tzinfo=dt.timezone.utc)  # 2027-Q1 in Shanghai


@pytest.fixture
def carriers(app, session):
    """Two carriers with offers in 2027-Q1, one with a pledge staff recorded; made once in the committed database."""
    clock = FrozenClock(MONDAY)
    install_clock(app, clock)
    if session.scalar(sa.select(Carrier.id).where(Carrier.code == "mobile_pledges")) is None:
        staff, _, _ = accounts.create_user(session, Role.staff, "承诺录入")
        for code, name, n, kinds in (("mobile_pledges", "中国移动上海分公司", 9401, ("gpu", "storage")),
                                     ("telecom_pledges", "中国电信上海分公司", 9402, ("gpu", "cpu"))):
            carrier, token, _ = accounts.register_carrier(session, code, name, "telecom", ["telecom"])
            carrier.uscc = make_uscc(n)
            account = session.get(Account, token.account_id)
            attributes = {"gpu": {"gpu_model": "910B", "gpu_memory_gb": 64}, "cpu": {"arch": "x86_64"},
                          "storage": {"tier": "standard"}}
            market.upsert_offers(session, account, [dict(
                external_id=f"{code}-{kind}", kind=kind, region="sh", attributes=attributes[kind],
                quantity=Decimal(1500 if kind == "gpu" else 40000), window_start=dt.date(2027, 1, 1),
                window_end=dt.date(2027, 3, 31), list_price=Decimal("12"), unit_price=Decimal("9.5"), divisible=True)
                for kind in kinds])
        pledges.set_pledges(session, staff, "telecom_pledges", "2027-Q1", [
            {"kind": "gpu", "quantity": Decimal(2000), "terms": "free"},
            {"kind": "cpu", "quantity": Decimal(30000), "terms": "discounted", "discount_rate": Decimal("0.3")}])
        person = people.find_or_link(session, make_uscc(9401), CARRIER_EMAIL, "吴磊", "legal_representative", MONDAY)
        person.password_hash = hash_password(PASSWORD)
    if session.scalar(sa.select(Person.id).where(Person.email_key == STAFF_EMAIL)) is None:
        people.create_district_person(session, STAFF_EMAIL, "顾燕", Role.staff, STAFF_PASSWORD)
    session.commit()  # on SQLite an open transaction would hold the write lock the server needs
    yield
    install_clock(app, None)


def test_a_carrier_records_a_pledge_and_staff_see_the_tracking(page, carriers, axe, screenshot):
    sign_in(page, CARRIER_EMAIL, PASSWORD)
    page.wait_for_url(re.compile(r"/carrier/"))
    page.get_by_role("link", name="承诺资源").click()
    page.wait_for_url(re.compile(r"/carrier/pledges$"))
    assert page.locator("h1").inner_text() == "承诺资源"
    gpu = page.locator("#pledge-gpu")
    gpu.get_by_label("数量（卡时）").fill("1800")
    gpu.get_by_label("条件").select_option("discounted")
    gpu.get_by_label("承诺单价（元/卡时）").fill("8.5")
    gpu.get_by_label("备注").fill("910B 集群，一季度分批上架")
    gpu.get_by_role("button", name="保存承诺").click()
    page.wait_for_url(re.compile(r"done=saved"))
    assert page.locator("#done").inner_text() == "承诺已保存。"
    row = page.locator("#tracking-mobile_pledges-gpu")
    assert row.locator(".pledged").inner_text() == "1,800" and row.locator(".published").inner_text() == "1,500"
    assert row.locator(".shortfall").inner_text() == "300"
    assert axe(page) == []
    screenshot(page, "carrier_pledges")

    page.context.clear_cookies()
    sign_in(page, STAFF_EMAIL, STAFF_PASSWORD)
    page.wait_for_url(re.compile(r"/staff$"))
    page.get_by_role("link", name="运营商承诺").click()
    page.wait_for_url(re.compile(r"/staff/pledges$"))
    page.locator("#pledges-chart svg").first.wait_for()
    assert page.locator("#pledges-chart").get_attribute("aria-hidden") == "true"
    table = page.get_by_role("table", name=re.compile("各运营商承诺执行情况"))
    assert "中国移动上海分公司" in table.inner_text() and "中国电信上海分公司" in table.inner_text()
    assert page.locator("#tracking-telecom_pledges-gpu .shortfall").inner_text() == "500"
    assert axe(page) == []
    screenshot(page, "staff_pledges")
    with page.expect_download() as downloaded:
        page.locator("#export").click()
    raw = open(downloaded.value.path(), "rb").read()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert ["2027-Q1", "mobile_pledges", "中国移动上海分公司", "GPU 算力", "卡时"] == rows[1][:5]
    assert rows[1][5:] == ["1800.000", "1500.000", "0.000", "0.000", "300.000"]
