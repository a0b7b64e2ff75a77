"""Report 5, the carrier statement (运营商对账): per carrier and month, pledged (the month's share by days),
delivered, redeemed, pending settlement and provisioning failures, computed by hand below and checked
on the API, the page, the CSV, the XLSX and the PDF (read back with pypdf); the carrier filter, only staff,
bad filters, statements flat; a carrier's own statement (/carrier/statement, its exports and the API with
its token) showing its figures and never another carrier's; a startup 403.

On the settlement tests' `period` fixture (a GPU lot at ¥250 an hour, a voucher paying half):

- pledges: 920 GPU-hours for 2026-Q4 (92 days: November's share 920 × 30 / 92 = 300, December's 310)
  and 400 million tokens for the month 2026-12;
- alpha is granted 1000 GPU-hours, beta 200, alpha 500 million tokens (not subsidised); windows 12-07 … 12-20;
- usage: alpha 400 h on 12-10 and 500 h on 12-18, beta 100 h on 12-18 (December: 1000 h delivered,
  redeemed 50,000 + 62,500 + 12,500 = ¥125,000), beta 50 h on 2027-01-05 (January: 50 h, ¥6,250);
- the tokens allocation's provisioning gives up on 12-08: one failure in December;
- the statement of the voucher for 2026-12, approved and written off on 2027-01-04, pays alpha's
  ¥112,500 and holds beta's (its notice is not final): pending in December ¥12,500, in January
  ¥6,250 (redeemed after the statement's end).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from broker.models import NoticeState, Role
from broker.services import people as people_service
from tests.conftest import statements_sent
from tests.e2e.test_carrier_allocations import PASSWORD as CARRIER_PASSWORD, person_of
from tests.e2e.test_staff_appeals import company_person_signed_in
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.e2e.test_settlement import at, period, reviewed, use  # noqa: F401 - the fixture
from tests.report_use_data import TOKENS_OFFER, give_up, grant
from tests.e2e.test_offers import publish

PAGE = "/staff/reports/carriers"
API = "/api/v1/reports/carriers"
QUERY = "start=2026-11-01&end=2027-01-31"


@pytest.fixture
def district(client, session, period):  # noqa: F811
    people = period
    assert publish(client, people["carrier"], TOKENS_OFFER).status_code == 200
    for period_text, kind, quantity in (("2026-Q4", "gpu", "920"), ("2026-12", "tokens", "400")):
        put = client.put(f"/api/v1/carriers/{people['carrier'].carrier_code}/pledges", headers=people["first"].headers,
                         json={"period": period_text, "pledges": [{"kind": kind, "quantity": quantity, "terms": "free"}]})
        assert put.status_code == 200, put.json
    ids = grant(client, people, {"alpha": ("alpha", "gpu", "1000"), "beta": ("beta", "gpu", "200"),
                                 "tokens": ("alpha", "tokens", "500")})
    give_up(session, ids["tokens"], at(dt.date(2026, 12, 8)))
    use(session, ids["alpha"], "400", at(dt.date(2026, 12, 10)), "u-1")
    use(session, ids["alpha"], "500", at(dt.date(2026, 12, 18)), "u-2")
    use(session, ids["beta"], "100", at(dt.date(2026, 12, 18)), "u-3")
    reviewed(session, ids["alpha"])
    reviewed(session, ids["beta"], notice=NoticeState.in_notice)
    people["clock"].set(at(dt.date(2027, 1, 4)))
    built = client.post("/api/v1/settlements", json={"program": "voucher", "period": "2026-12"},
                        headers=people["builder"].headers)
    assert built.status_code == 201, built.json
    for who in ("first", "second"):
        approved = client.post(f"/api/v1/settlements/{built.json['id']}/approve", headers=people[who].headers,
                               json={"disbursement_reference": "ICBC-20270104-001"})
        assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "written_off"
    use(session, ids["beta"], "50", at(dt.date(2027, 1, 5)), "u-4")
    people["clock"].set(at(dt.date(2027, 1, 10)))
    return ids


@pytest.fixture
def staff(session, client, district):
    person = people_service.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff,
                                                   PASSWORD)
    session.commit()
    sign_in(client, person.email, PASSWORD)
    return person


def _text(html: str, table: str) -> str:
    part = html.split(f'id="{table}-table"')[1].split("</table>")[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part)).strip()


def _qty(text: str) -> str:
    number = float(text)
    return str(int(number)) if number == int(number) else text


def test_the_api_gives_the_hand_computed_figures(client, district, period):  # noqa: F811
    answer = client.get(f"{API}?{QUERY}", headers=period["first"].headers)
    assert answer.status_code == 200, answer.json
    body = answer.json
    code = period["carrier"].carrier_code
    assert body["months"] == ["2026-11", "2026-12", "2027-01"]
    assert [(m["carrier_code"], m["month"], m["redeemed"], m["pending"], m["failures"]) for m in body["money"]] == [
        (code, "2026-11", "0.00", "0.00", 0), (code, "2026-12", "125000.00", "12500.00", 1),
        (code, "2027-01", "6250.00", "6250.00", 0)]
    assert [(k["month"], k["kind"], _qty(k["pledged"]), _qty(k["delivered"])) for k in body["kinds"]] == [
        ("2026-11", "gpu", "300", "0"), ("2026-12", "gpu", "310", "1000"), ("2026-12", "tokens", "400", "0"),
        ("2027-01", "gpu", "0", "50")]


def test_the_default_period_and_the_carrier_filter(client, district, period, make_actor):  # noqa: F811
    other = make_actor("carrier")
    body = client.get(API, headers=period["first"].headers).json  # today 2027-01-10: the first quarter
    assert body["months"] == ["2027-01", "2027-02", "2027-03"]
    assert {m["carrier_code"] for m in body["money"]} == {period["carrier"].carrier_code, other.carrier_code}
    only = client.get(f"{API}?{QUERY}&carrier={other.carrier_code}", headers=period["first"].headers).json
    assert [(m["redeemed"], m["pending"], m["failures"]) for m in only["money"]] == [("0.00", "0.00", 0)] * 3
    assert only["kinds"] == []


@pytest.mark.parametrize("query", ["carrier=nobody", "start=2026-13-01", "start=2026-12-01&end=2026-11-01"])
def test_bad_filters_are_refused(client, staff, period, query):  # noqa: F811
    assert client.get(f"{API}?{query}", headers=period["first"].headers).status_code == 422
    page = client.get(f"{PAGE}?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 422 and "筛选条件有误" in html and 'aria-invalid="true"' in html
    if query.startswith("carrier"):
        assert "请选择列表中的运营商。" in html
    for extension in ("csv", "xlsx", "pdf"):
        assert client.get(f"{PAGE}.{extension}?{query}").status_code == 422


def test_the_page_shows_the_figures_and_its_chart_data(client, district, staff, period):  # noqa: F811
    page = client.get(f"{PAGE}?{QUERY}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>运营商对账</h1>" in html and 'aria-current="page"' in html
    money = _text(html, "money")
    name = "Carrier " + period["carrier"].carrier_code.removeprefix("carrier")
    assert f"{name} 2026-12 ¥125,000.00 ¥12,500.00 1" in money and f"{name} 2027-01 ¥6,250.00 ¥6,250.00 0" in money
    kinds = _text(html, "kinds")
    assert f"{name} 2026-12 GPU 算力 卡时 310 1,000 322.6" in kinds and f"{name} 2026-11 GPU 算力 卡时 300 0 0" in kinds
    assert f"{name} 2027-01 GPU 算力 卡时 0 50 —" in kinds
    assert '"values": [0.0, 125000.0, 6250.0]' in html and "vendor/echarts/echarts.min.js" in html
    assert "/staff/reports/carriers.xlsx?start=2026-11-01&amp;end=2027-01-31" in html
    assert '<a href="/staff/reports/carriers.pdf?start=2026-11-01&amp;end=2027-01-31" id="export-pdf">PDF</a>' in html


def test_in_english_through_the_language_switch(client, district, staff):
    switched = client.post("/language", data={"language": "en", "next": PAGE, "csrf_token": token_of(client, PAGE)})
    assert switched.status_code == 303
    html = client.get(PAGE).get_data(as_text=True)
    assert "<h1>Carrier statement</h1>" in html and "运营商对账" not in html and "Pending settlement" in html


def test_the_csv_and_the_xlsx_have_the_same_numbers(client, district, staff, period):  # noqa: F811
    answer = client.get(f"{PAGE}.csv?{QUERY}")
    assert answer.status_code == 200 and answer.get_data().startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(answer.get_data().decode("utf-8-sig"))))
    name = "Carrier " + period["carrier"].carrier_code.removeprefix("carrier")
    assert ["期间（北京时间）", "2026-11-01 — 2027-01-31"] in rows and ["运营商", "全部"] in rows
    assert [name, "2026-12", "125000", "12500", "1"] in rows
    assert [name, "2026-12", "GPU 算力", "卡时", "310", "1000", "322.6"] in rows
    book = load_workbook(io.BytesIO(client.get(f"{PAGE}.xlsx?{QUERY}").get_data()))
    assert book.sheetnames == ["筛选条件", "补贴兑现与开通失败", "承诺与交付"]
    money = list(book["补贴兑现与开通失败"].iter_rows(values_only=True))
    assert money[0] == ("运营商", "月份", "已兑现补贴（元）", "待结算（元）", "开通失败")
    assert [(r[1], float(r[2]), float(r[3]), r[4]) for r in money[1:]] == [
        ("2026-11", 0, 0, 0), ("2026-12", 125000, 12500, 1), ("2027-01", 6250, 6250, 0)]
    assert book["补贴兑现与开通失败"]["C2"].number_format == "#,##0.00"
    kinds = list(book["承诺与交付"].iter_rows(values_only=True))[1:]
    assert [(r[1], r[2], float(r[4]), float(r[5])) for r in kinds] == [
        ("2026-11", "GPU 算力", 300, 0), ("2026-12", "GPU 算力", 310, 1000), ("2026-12", "大模型 Tokens", 400, 0),
        ("2027-01", "GPU 算力", 0, 50)]


def _pdf_text(answer) -> str:
    assert answer.status_code == 200 and answer.mimetype == "application/pdf", answer.get_data(as_text=True)[:500]
    reader = PdfReader(io.BytesIO(answer.get_data()))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def test_the_pdf_is_the_page_for_print_with_the_same_numbers(client, district, staff, period, make_actor):  # noqa: F811
    answer = client.get(f"{PAGE}.pdf?{QUERY}")
    assert "carriers-2026-11-01-2027-01-31.pdf" in answer.headers["Content-Disposition"]
    text = _pdf_text(answer)
    name = "Carrier " + period["carrier"].carrier_code.removeprefix("carrier")
    assert "运营商对账" in text and "补贴兑现与开通失败" in text and "承诺与交付" in text  # the CJK font reads back
    # The CSV's figures (125000, 12500, 1; 310, 1000, 322.6; January 6250 pending) as the page writes them.
    assert f"{name} 2026-12 ¥125,000.00 ¥12,500.00 1" in text and f"{name} 2027-01 ¥6,250.00 ¥6,250.00 0" in text
    assert f"{name} 2026-12 GPU 算力 卡时 310 1,000 322.6" in text and f"{name} 2027-01 GPU 算力 卡时 0 50 —" in text
    assert "筛选" not in text and "跳到正文" not in text and "需求满足情况" not in text  # no filters, nav or tabs
    other = _pdf_text(client.get(f"{PAGE}.pdf?{QUERY}&carrier={make_actor('carrier').carrier_code}"))
    assert "运营商对账" in other and name not in other and "125,000" not in other  # the page's filter, honoured


def test_a_server_without_pango_says_so_for_the_statement_too(client, district, staff, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # importing it now fails, as without pango
    answer = client.get(f"{PAGE}.pdf?{QUERY}")
    assert answer.status_code == 503 and "pango" in answer.get_data(as_text=True)
    assert client.get(f"{PAGE}.csv?{QUERY}").status_code == 200


def test_only_staff_and_carriers_for_their_own(client, district, period):  # noqa: F811
    assert client.get(PAGE).status_code == 302
    assert client.get(API, headers=period["alpha"].headers).status_code == 403
    own = client.get(f"{API}?{QUERY}", headers=period["carrier"].headers)  # a carrier's token: its own statement
    assert own.status_code == 200 and own.json["filters"]["carrier"] == period["carrier"].carrier_code
    assert [m["redeemed"] for m in own.json["money"]] == ["0.00", "125000.00", "6250.00"]


def test_a_carrier_sees_its_own_statement_and_no_other(app, client, session, district, period, make_actor):  # noqa: F811
    code, name = period["carrier"].carrier_code, "Carrier " + period["carrier"].carrier_code.removeprefix("carrier")
    other = make_actor("carrier")
    other_name = "Carrier " + other.carrier_code.removeprefix("carrier")
    person_of(session, period["carrier"].carrier_id, "zhou.min@carrier.example.cn", 9311, period["clock"]())
    assert sign_in(client, "zhou.min@carrier.example.cn", CARRIER_PASSWORD).status_code == 303
    page = client.get(f"/carrier/statement?{QUERY}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>对账单</h1>" in html
    assert re.search(r'<a href="/carrier/statement" aria-current="page">对账单</a>', html)
    assert 'name="carrier"' not in html and other_name not in html  # no carrier to choose, no other carrier shown
    assert f"{name} 2026-12 ¥125,000.00 ¥12,500.00 1" in _text(html, "money")
    assert f"{name} 2026-12 GPU 算力 卡时 310 1,000 322.6" in _text(html, "kinds")
    assert '/carrier/statement.pdf?start=2026-11-01&amp;end=2027-01-31" id="export-pdf"' in html
    rows = list(csv.reader(io.StringIO(client.get(f"/carrier/statement.csv?{QUERY}").get_data().decode("utf-8-sig"))))
    assert ["运营商", code] in rows and [name, "2026-12", "125000", "12500", "1"] in rows
    assert not any(other_name in row for row in rows)
    book = load_workbook(io.BytesIO(client.get(f"/carrier/statement.xlsx?{QUERY}").get_data()))
    assert [r[0] for r in list(book["补贴兑现与开通失败"].iter_rows(values_only=True))[1:]] == [name] * 3
    text = _pdf_text(client.get(f"/carrier/statement.pdf?{QUERY}"))
    assert "对账单" in text and f"{name} 2026-12 ¥125,000.00 ¥12,500.00 1" in text and other_name not in text
    # Naming another carrier is as naming none that exists: the carrier's own figures, the query refused.
    asked = client.get(f"/carrier/statement?{QUERY}&carrier={other.carrier_code}")
    assert asked.status_code == 422 and other_name not in asked.get_data(as_text=True)
    assert client.get(f"/carrier/statement.pdf?{QUERY}&carrier={other.carrier_code}").status_code == 422
    assert client.get(f"{API}?{QUERY}&carrier={other.carrier_code}", headers=period["carrier"].headers).status_code == 422
    assert client.get(f"{PAGE}.pdf?{QUERY}").status_code == 403  # staff's report is not the carrier's

    # The other carrier: its own, empty statement; none of the first one's money.
    client.post("/sign-out", data={"csrf_token": token_of(client, "/carrier/statement")})
    person_of(session, other.carrier_id, "wu.lei@other-carrier.example.cn", 9312, period["clock"]())
    assert sign_in(client, "wu.lei@other-carrier.example.cn", CARRIER_PASSWORD).status_code == 303
    elsewhere = client.get(f"/carrier/statement?{QUERY}").get_data(as_text=True)
    assert f"{other_name} 2026-12 ¥0.00 ¥0.00 0" in _text(elsewhere, "money") and name not in elsewhere
    assert "125,000" not in elsewhere and "期间内没有承诺或交付。" in elsewhere
    text = _pdf_text(client.get(f"/carrier/statement.pdf?{QUERY}"))
    assert other_name in text and name not in text and "125,000" not in text


def test_a_startups_person_and_staff_cannot_open_a_carriers_statement(app, client, session, district, staff,
                                                                     period):  # noqa: F811
    for extension in ("", ".csv", ".xlsx", ".pdf"):
        assert client.get(f"/carrier/statement{extension}").status_code == 403  # staff: their own report instead
    company_person_signed_in(app, client, session, period["alpha"].startup_id, "chen.jing@alpha.example.cn",
                             period["clock"]())
    for extension in ("", ".csv", ".xlsx", ".pdf"):
        assert client.get(f"/carrier/statement{extension}").status_code == 403
        assert client.get(f"{PAGE}{extension}").status_code == 403


def test_the_statements_sent_do_not_grow_with_the_rows(app, client, session, district, staff, period):  # noqa: F811
    few = len(statements_sent(app, client, f"{PAGE}?{QUERY}"))
    for n in range(5):
        use(session, district["beta"], "1", at(dt.date(2027, 1, 6)), f"more-{n}")
    assert len(statements_sent(app, client, f"{PAGE}?{QUERY}")) == few


def test_the_statements_sent_do_not_grow_with_the_months(app, client, district, staff):
    one_month = len(statements_sent(app, client, f"{PAGE}?start=2026-12-01&end=2026-12-31"))
    a_year = len(statements_sent(app, client, f"{PAGE}?start=2026-06-01&end=2027-05-31"))
    assert a_year == one_month
