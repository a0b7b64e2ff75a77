"""Report 2, fulfilment (需求满足情况): the page, the API, the CSV and the XLSX give the figures computed by
hand in tests/report_data.py, the filters change them as expected, only staff see them, bad filters are
refused (422) and the statements sent do not grow with the rows."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from broker.models import Role
from broker.models.people import CompanyRole, Side
from broker.services import people
from broker.services.passwords import hash_password
from tests.conftest import statements_sent
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.report_data import NOW, build_fulfilment_district

PAGE = "/staff/reports/fulfilment"
API = "/api/v1/reports/fulfilment"
# (requests, proposed, approved, active) and their quantities, per table of tests/report_data.py
TOTAL = [8, 7, 4, 2, "1485", "1285", "1190", "130"]
OCTOBER = [2, 2, 1, 1, "105", "105", "80", "80"]
NOVEMBER = [6, 5, 3, 1, "1380", "1180", "1110", "50"]
CYCLE_1 = [3, 3, 2, 1, "1105", "1085", "1080", "80"]
CYCLE_2 = [5, 5, 2, 1, "280", "200", "110", "50"]
TIMES = [("approved", 4, 30.0, 68.0), ("active", 2, 65.0, 93.0)]  # median of 10,20,40,80 h; of 30,100 h


@pytest.fixture
def district(session, frozen_clock):
    frozen_clock(NOW)
    ids = build_fulfilment_district(session)
    session.commit()
    return ids


@pytest.fixture
def staff(session, client, frozen_clock):
    person = people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)
    session.commit()
    sign_in(client, person.email, PASSWORD)
    return person


def _funnel(row: dict) -> list:
    return [row["requests"], row["proposed"], row["approved"], row["active"],
            *(str(int(float(row[q]))) if float(row[q]) == int(float(row[q])) else row[q]
              for q in ("requested_qty", "proposed_qty", "approved_qty", "active_qty"))]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_the_api_gives_the_hand_computed_figures(client, district, make_actor):
    staff = make_actor("staff")
    report = client.get(API, headers=staff.headers)
    assert report.status_code == 200, report.json
    body = report.json
    assert body["filters"] == {"start": "2026-10-01", "end": "2026-12-31", "kind": None, "sector": None,
                               "lighthouse": False, "cycle": None}
    assert _funnel(body["total"]) == TOTAL
    assert [(m["key"], _funnel(m)) for m in body["months"]] == [("2026-10", OCTOBER), ("2026-11", NOVEMBER)]
    c1, c2 = district["cycles"][1], district["cycles"][2]
    assert [(c["key"], _funnel(c)) for c in body["cycles"]] == [(str(c1), CYCLE_1), (str(c2), CYCLE_2)]
    assert [(t["stage"], t["requests"], t["median_hours"], t["p90_hours"]) for t in body["times"]] == TIMES
    assert [(r["reason"], r["allocations"], float(r["quantity"])) for r in body["reasons"]] == [
        ("预算不足", 2, 50.0), ("重复申请", 1, 5.0)]  # r8's is in the third quarter
    assert body["lapsed"] == 1 and float(body["lapsed_qty"]) == 40


@pytest.mark.parametrize(("query", "total", "times"), [
    # gpu: r1 r3 r4 r5 r7 r9; approved after 10, 40, 80 h
    ("kind=gpu", [6, 6, 3, 2, "285", "285", "190", "130"], [("approved", 3, 40.0, 72.0), ("active", 2, 65.0, 93.0)]),
    # the Lighthouse startup A: r1 r2 r9
    ("lighthouse=true", [3, 3, 2, 1, "1105", "1105", "1080", "80"], [("approved", 2, 15.0, 19.0), ("active", 1, 30.0, 30.0)]),
    ("sector=fintech", [3, 2, 1, 0, "300", "100", "60", "0"], [("approved", 1, 80.0, 80.0), ("active", 0, None, None)]),
    # the third quarter's last Shanghai day holds r8 only (r9 is already 1 October there)
    ("start=2026-09-30&end=2026-09-30", [1, 1, 0, 0, "10", "10", "0", "0"], [("approved", 0, None, None), ("active", 0, None, None)]),
])
def test_filters_change_the_figures(client, district, make_actor, query, total, times):
    body = client.get(f"{API}?{query}", headers=make_actor("staff").headers).json
    assert _funnel(body["total"]) == total
    assert [(t["stage"], t["requests"], t["median_hours"], t["p90_hours"]) for t in body["times"]] == times


def test_a_cycle_filter_counts_only_that_cycles_allocations(client, district, make_actor):
    body = client.get(f"{API}?cycle={district['cycles'][1]}", headers=make_actor("staff").headers).json
    assert _funnel(body["total"]) == CYCLE_1
    assert [(r["reason"], r["allocations"]) for r in body["reasons"]] == [("重复申请", 1)]
    assert body["lapsed"] == 0 and [c["key"] for c in body["cycles"]] == [str(district["cycles"][1])]


@pytest.mark.parametrize("query", ["start=2026-13-01", "start=2026-12-01&end=2026-11-01", "kind=quantum",
                                   "sector=mining", "cycle=0", "cycle=abc"])
def test_bad_filters_are_refused(client, district, make_actor, staff, query):
    assert client.get(f"{API}?{query}", headers=make_actor("staff").headers).status_code == 422
    page = client.get(f"{PAGE}?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 422 and "筛选条件有误" in html and 'aria-invalid="true"' in html
    assert "2026-10-01" in html  # the defaults, shown instead
    assert client.get(f"{PAGE}.csv?{query}").status_code == 422
    assert client.get(f"{PAGE}.xlsx?{query}").status_code == 422


def test_the_page_shows_the_figures_and_its_chart_data(client, district, staff):
    page = client.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>需求满足情况</h1>" in html and 'aria-current="page"' in html
    funnel = _text(html.split('id="funnel-table"')[1].split("</table>")[0])
    assert "合计 8 7 4 2 1,485 1,285 1,190 130" in funnel
    months = _text(html.split('id="months-table"')[1].split("</table>")[0])
    assert "2026-10 2 2 1 1 105 105 80 80" in months and "2026-11 6 5 3 1 1,380 1,180 1,110 50" in months
    cycles = _text(html.split('id="cycles-table"')[1].split("</table>")[0])
    assert f"第{district['cycles'][2]}轮 5 5 2 1 280 200 110 50" in cycles
    times = _text(html.split('id="times-table"')[1].split("</table>")[0])
    assert "提交至获批 4 30.00 68.00" in times and "提交至开通 2 65.00 93.00" in times
    reasons = _text(html.split('id="reasons-table"')[1].split("</table>")[0])
    assert reasons.index("预算不足 2 50") < reasons.index("重复申请 1 5")
    assert "1 40" in _text(html.split('id="lapses-table"')[1].split("</table>")[0])
    assert '"values": [8, 7, 4, 2]' in html  # the chart draws the table's numbers
    assert "vendor/echarts/echarts.min.js" in html
    # The exports carry the page's filters.
    filtered = client.get(f"{PAGE}?kind=gpu&lighthouse=true").get_data(as_text=True)
    assert "/staff/reports/fulfilment.csv?kind=gpu&amp;lighthouse=true" in filtered


def test_in_english_through_the_language_switch(client, district, staff):
    switched = client.post("/language", data={"language": "en", "next": PAGE, "csrf_token": token_of(client, PAGE)})
    assert switched.status_code == 303
    html = client.get(PAGE).get_data(as_text=True)
    assert "<h1>Fulfilment</h1>" in html and "需求满足情况" not in html and "Submission to approval" in html


def test_the_csv_has_the_same_numbers_and_the_filters(client, district, staff):
    answer = client.get(f"{PAGE}.csv?kind=gpu")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    raw = answer.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert ["资源类别", "GPU 算力"] in rows and ["期间（北京时间）", "2026-10-01 — 2026-12-31"] in rows
    assert ["合计", "6", "6", "3", "2", "285", "285", "190", "130"] in rows
    assert ["提交至获批", "3", "40.0", "72.0"] in rows
    everything = list(csv.reader(io.StringIO(client.get(f"{PAGE}.csv").get_data().decode("utf-8-sig"))))
    assert ["合计", *map(str, TOTAL)] in everything and ["2026-11", *map(str, NOVEMBER)] in everything
    assert ["预算不足", "2", "50"] in everything and ["1", "40"] in everything


def test_the_xlsx_has_a_sheet_per_table_with_header_and_number_formats(client, district, staff):
    answer = client.get(f"{PAGE}.xlsx")
    assert answer.status_code == 200 and answer.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(answer.get_data()))
    assert book.sheetnames == ["筛选条件", "需求满足漏斗（期间合计）", "按提交月份", "按撮合轮次", "办理时长（小时）",
                               "驳回原因（前20项）", "逾期未审"]
    funnel = book["需求满足漏斗（期间合计）"]
    header, total = list(funnel.iter_rows(values_only=True))
    assert header[:5] == ("范围", "申请数", "获方案", "获批", "已开通") and funnel["A1"].font.bold
    assert [total[0], *total[1:5], *(str(v) for v in total[5:])] == ["合计", *TOTAL]
    assert funnel["F2"].number_format == "#,##0.###" and funnel["B2"].number_format == "#,##0"
    times = list(book["办理时长（小时）"].iter_rows(values_only=True))[1:]
    assert times == [("提交至获批", 4, 30.0, 68.0), ("提交至开通", 2, 65.0, 93.0)]
    assert book["办理时长（小时）"]["C2"].number_format == "0.00"
    months = list(book["按提交月份"].iter_rows(values_only=True))[1:]
    assert [list(m[:5]) for m in months] == [["2026-10", *OCTOBER[:4]], ["2026-11", *NOVEMBER[:4]]]
    assert ("资源类别", "全部") in list(book["筛选条件"].iter_rows(values_only=True))


def test_only_staff(client, session, district, make_actor, frozen_clock):
    assert client.get(PAGE).status_code == 302  # nobody signed in: the sign-in page
    startup = make_actor("startup")
    assert client.get(API, headers=startup.headers).status_code == 403
    people._new_person(session, email="ceo@startup.example.cn", name="王芳", password_hash=hash_password(PASSWORD),
                       side=Side.startup, startup_id=startup.startup_id, company_role=CompanyRole.administrator)
    session.commit()
    sign_in(client, "ceo@startup.example.cn", PASSWORD)
    for path in (PAGE, f"{PAGE}.csv", f"{PAGE}.xlsx"):
        assert client.get(path).status_code == 403


def test_the_statements_sent_do_not_grow_with_the_rows(app, client, session, staff, frozen_clock):
    frozen_clock(NOW)
    build_fulfilment_district(session, n=1)
    session.commit()
    few = len(statements_sent(app, client, PAGE))
    build_fulfilment_district(session, n=2, copies=5)
    session.commit()
    assert len(statements_sent(app, client, PAGE)) == few


def test_every_report_shows_the_tabs_to_every_other(client, staff):
    """The nav's 报表 leads to the first report; each report's tabs reach the other six, this one marked."""
    from broker.web.guards import REPORT_SCREENS

    paths = ["/staff/reports/fulfilment", "/staff/reports/gap", "/staff/reports/spend", "/staff/reports/utilisation",
             "/staff/reports/carriers", "/staff/reports/compliance", "/staff/reports/pack", "/staff/exports"]
    assert len(REPORT_SCREENS) == len(paths)
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        tabs = page[page.index('class="report-tabs"'):page.index("</nav>", page.index('class="report-tabs"'))]
        assert [p for p in paths if f'href="{p}"' in tabs] == paths, path
        assert f'<a href="{path}" aria-current="page">' in tabs, path
