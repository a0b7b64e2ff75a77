"""Report 3, subsidy spend (补贴资金使用): the page, the API, the CSV and the XLSX give the figures computed by
hand in tests/spend_data.py (money built through the API and the services), the report's flows add up to the
balances the ledger derives, the filters change them as expected, only staff see them, bad filters are refused
(422) and the statements sent do not grow with the rows."""

from __future__ import annotations

import csv
import io
import datetime as dt
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from broker.models import Role
from broker.models.people import CompanyRole, Side
from broker.services import ledger, people
from broker.services.passwords import hash_password
from tests.conftest import statements_sent
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.spend_data import at, build_spend_district

PAGE = "/staff/reports/spend"
API = "/api/v1/reports/spend"
PERIOD = "start=2026-12-01&end=2027-01-31"
FLOWS = ("committed", "redeemed", "written_off", "released", "clawed_back", "adjusted")
# committed, redeemed, written off, released, clawed back, adjusted (tests/spend_data.py)
TOTAL = ["137500.00", "125000.00", "125000.00", "12500.00", "12500.00", "0.00"]
DECEMBER = ["137500.00", "125000.00", "0.00", "0.00", "0.00", "0.00"]
JANUARY = ["0.00", "0.00", "125000.00", "12500.00", "12500.00", "0.00"]
ALPHA = ["112500.00", "112500.00", "112500.00", "0.00", "0.00", "0.00"]  # ai_models, small
BETA = ["25000.00", "12500.00", "12500.00", "12500.00", "12500.00", "0.00"]  # smart_driving, medium


@pytest.fixture
def district(client, session, make_actor, frozen_clock):
    return build_spend_district(client, session, make_actor, frozen_clock)


@pytest.fixture
def staff(session, client, district):
    person = people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)
    session.commit()
    sign_in(client, person.email, PASSWORD)
    return person


def _flows(row: dict) -> list[str]:
    return [row[name] for name in FLOWS]


def _text(html: str, table: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.split(f'id="{table}-table"')[1].split("</table>")[0])).strip()


def test_the_api_gives_the_hand_computed_figures(client, district):
    answer = client.get(f"{API}?{PERIOD}", headers=district["first"].headers)
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["filters"] == {"start": "2026-12-01", "end": "2027-01-31", "program": None, "sector": None,
                               "carrier": None, "size": None}
    assert _flows(body["total"]) == TOTAL
    assert (body["total"]["usage_value"], body["total"]["leverage"]) == ("275000.00", "0.4545")  # 1,100 h × ¥250
    assert [(m["key"], _flows(m), m["leverage"]) for m in body["months"]] == [
        ("2026-12", DECEMBER, "0.4545"), ("2027-01", JANUARY, None)]
    assert [(p["key"], p["name"], _flows(p)) for p in body["programs"]] == [("voucher", "算力券", TOTAL)]
    assert [(s["key"], _flows(s), s["usage_value"], s["leverage"]) for s in body["sectors"]] == [
        ("ai_models", ALPHA, "250000.00", "0.4500"), ("smart_driving", BETA, "25000.00", "0.5000")]
    assert [(s["key"], _flows(s)) for s in body["sizes"]] == [("small", ALPHA), ("medium", BETA)]
    assert [(c["key"], _flows(c)) for c in body["carriers"]] == [(district["carrier"].carrier_code, TOTAL)]
    code = district["carrier"].carrier_code
    assert [(d["program"], d["sector"], d["carrier"], d["size"], d["month"], _flows(d)) for d in body["detail"]] == [
        ("voucher", "ai_models", code, "small", "2026-12", ["112500.00", "112500.00", "0.00", "0.00", "0.00", "0.00"]),
        ("voucher", "ai_models", code, "small", "2027-01", ["0.00", "0.00", "112500.00", "0.00", "0.00", "0.00"]),
        ("voucher", "smart_driving", code, "medium", "2026-12", ["25000.00", "12500.00", "0.00", "0.00", "0.00", "0.00"]),
        ("voucher", "smart_driving", code, "medium", "2027-01", JANUARY[:2] + ["12500.00", "12500.00", "12500.00", "0.00"]),
    ]
    assert [(c["program"], c["fiscal_year"], c["cap"], c["firms"], c["at_cap"], c["share"]) for c in body["caps"]] == [
        ("voucher", 2026, "112500.00", 2, 1, "50.00")]


def test_the_flows_add_up_to_the_balances_the_ledger_derives(client, session, district):
    body = client.get(f"{API}?start=2026-01-01&end=2027-12-31", headers=district["first"].headers).json
    [balance] = ledger.balances(session, ("program",), program_id=district["program"]["id"])
    committed, redeemed, written_off, released, clawed_back, adjusted = (Decimal(v) for v in _flows(body["total"]))
    assert committed - released + adjusted - clawed_back == balance.committed == Decimal("112500.00")
    assert redeemed + adjusted - clawed_back == balance.redeemed
    assert written_off == balance.written_off


@pytest.mark.parametrize(("query", "total"), [
    ("sector=smart_driving", BETA), ("size=small", ALPHA), ("size=micro", ["0.00"] * 6),
    ("start=2027-01-01&end=2027-01-31", JANUARY), ("start=2026-12-15&end=2026-12-31",  # the 12-18 usage only
                                                   ["0.00", "80000.00", "0.00", "0.00", "0.00", "0.00"]),
])
def test_filters_change_the_figures(client, district, query, total):
    query = query if "start" in query else f"{PERIOD}&{query}"  # the default is the quarter of 2027-01-04
    body = client.get(f"{API}?{query}", headers=district["first"].headers).json
    assert _flows(body["total"]) == total


def test_program_and_carrier_filters(client, district):
    headers = district["first"].headers
    program, carrier = district["program"]["id"], district["carrier"].carrier_id
    assert _flows(client.get(f"{API}?{PERIOD}&program={program}&carrier={carrier}", headers=headers).json["total"]) == TOTAL
    assert _flows(client.get(f"{API}?{PERIOD}&program={program + 1000}", headers=headers).json["total"]) == ["0.00"] * 6
    assert client.get(f"{API}?{PERIOD}&carrier={carrier + 1000}", headers=headers).json["caps"][0]["firms"] == 2


@pytest.mark.parametrize("query", ["start=2026-13-01", "start=2027-01-01&end=2026-12-01", "sector=mining",
                                   "size=huge", "program=0", "carrier=abc"])
def test_bad_filters_are_refused(client, district, staff, query):
    assert client.get(f"{API}?{query}", headers=district["first"].headers).status_code == 422
    page = client.get(f"{PAGE}?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 422 and "筛选条件有误" in html and 'aria-invalid="true"' in html
    assert client.get(f"{PAGE}.csv?{query}").status_code == 422
    assert client.get(f"{PAGE}.xlsx?{query}").status_code == 422
    if "size" in query:
        assert "请选择列表中的企业规模。" in html


def test_the_page_shows_the_figures_and_its_chart_data(client, district, staff):
    page = client.get(f"{PAGE}?{PERIOD}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>补贴资金使用</h1>" in html and 'aria-current="page"' in html
    assert _text(html, "total").endswith(
        "合计 ¥137,500.00 ¥125,000.00 ¥125,000.00 ¥12,500.00 ¥12,500.00 ¥0.00 ¥275,000.00 45.45")
    months = _text(html, "months")
    assert "2026-12 ¥137,500.00 ¥125,000.00 ¥0.00" in months and "2027-01 ¥0.00 ¥0.00 ¥125,000.00 ¥12,500.00 ¥12,500.00" in months
    assert "大模型与AI应用 ¥112,500.00" in _text(html, "sectors")
    assert "中型（100–299人） ¥25,000.00 ¥12,500.00" in _text(html, "sizes")
    assert "算力券（voucher） 2026 ¥112,500.00 2 1 50.00" in _text(html, "caps")
    assert "voucher 智能驾驶" in _text(html, "detail")
    assert '"months": ["2026-12", "2027-01"]' in html and '"137500.00"' in html  # the chart draws the table's numbers
    filtered = client.get(f"{PAGE}?{PERIOD}&size=small").get_data(as_text=True)
    assert "/staff/reports/spend.csv?start=2026-12-01&amp;end=2027-01-31&amp;size=small" in filtered
    assert "合计 ¥112,500.00" in _text(filtered, "total")


def test_in_english_through_the_language_switch(client, district, staff):
    switched = client.post("/language", data={"language": "en", "next": PAGE, "csrf_token": token_of(client, PAGE)})
    assert switched.status_code == 303
    html = client.get(f"{PAGE}?{PERIOD}").get_data(as_text=True)
    assert "<h1>Subsidy spend</h1>" in html and "补贴资金使用" not in html and "Clawback" in html


def test_the_csv_has_the_same_numbers_and_the_filters(client, district, staff):
    answer = client.get(f"{PAGE}.csv?{PERIOD}&sector=smart_driving")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    raw = answer.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert ["领域", "智能驾驶"] in rows and ["期间（北京时间）", "2026-12-01 — 2027-01-31"] in rows
    assert ["合计", "25000", "12500", "12500", "12500", "12500", "0", "25000", "50"] in rows
    everything = list(csv.reader(io.StringIO(client.get(f"{PAGE}.csv?{PERIOD}").get_data().decode("utf-8-sig"))))
    assert ["合计", "137500", "125000", "125000", "12500", "12500", "0", "275000", "45.45"] in everything
    assert ["算力券（voucher）", "2026", "112500", "2", "1", "50"] in everything


def test_the_xlsx_has_a_sheet_per_table_with_header_and_number_formats(client, district, staff):
    answer = client.get(f"{PAGE}.xlsx?{PERIOD}")
    assert answer.status_code == 200 and answer.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(answer.get_data()))
    assert book.sheetnames == ["筛选条件", "补贴资金（期间合计）", "按月份", "按补贴项目", "按领域", "按运营商", "按企业规模",
                               "达到年度上限的企业", "明细：项目×领域×运营商×规模×月份"]
    total = book["补贴资金（期间合计）"]
    header, row = list(total.iter_rows(values_only=True))
    assert header[:3] == ("范围", "承诺", "核验使用") and total["A1"].font.bold
    assert [row[0], *(str(Decimal(str(v)).quantize(Decimal("0.01"))) for v in row[1:7])] == ["合计", *TOTAL]
    assert total["B2"].number_format == "#,##0.00"
    months = list(book["按月份"].iter_rows(values_only=True))[1:]
    assert [(m[0], m[1], m[3]) for m in months] == [("2026-12", 137500, 0), ("2027-01", 0, 125000)]
    assert list(book["达到年度上限的企业"].iter_rows(values_only=True))[1] == ("算力券（voucher）", "2026", 112500, 2, 1, 50)
    assert ("企业规模", "全部") in list(book["筛选条件"].iter_rows(values_only=True))


def test_only_staff(client, session, district, make_actor):
    assert client.get(PAGE).status_code == 302  # nobody signed in: the sign-in page
    assert client.get(API, headers=district["alpha"].headers).status_code == 403
    assert client.get(API, headers=district["carrier"].headers).status_code == 403
    people._new_person(session, email="ceo@startup.example.cn", name="王芳", password_hash=hash_password(PASSWORD),
                       side=Side.startup, startup_id=district["alpha"].startup_id, company_role=CompanyRole.administrator)
    session.commit()
    sign_in(client, "ceo@startup.example.cn", PASSWORD)
    for path in (PAGE, f"{PAGE}.csv", f"{PAGE}.xlsx"):
        assert client.get(path).status_code == 403


def test_the_statements_sent_do_not_grow_with_the_rows(app, client, session, district, staff):
    few = len(statements_sent(app, client, f"{PAGE}?start=2026-12-01&end=2027-06-30"))
    program, award = district["program"]["id"], district["awards"]["alpha"]
    for month in range(2, 7):  # a correction on alpha's award in each month: more rows, more groups
        district["clock"].set(at(dt.date(2027, month, 1)))
        corrected = client.post(f"/api/v1/subsidy-programs/{program}/adjustments", headers=district["first"].headers,
                                json={"amount": "10.00", "reason": "correction", "note": "更正", "award_id": award})
        assert corrected.status_code == 201, corrected.json
    body = client.get(f"{API}?start=2026-12-01&end=2027-06-30", headers=district["first"].headers).json
    assert body["total"]["adjusted"] == "50.00" and len(body["months"]) == 7
    sign_in(client, staff.email, PASSWORD)  # five months on, the console session has ended
    assert len(statements_sent(app, client, f"{PAGE}?start=2026-12-01&end=2027-06-30")) == few
