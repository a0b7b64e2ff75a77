"""Report 1, the supply–demand gap (供需缺口): the page, the API, the CSV and the XLSX give the figures
computed by hand in tests/report_gap_data.py; the filters and the campaign change them as expected, only
staff see them, bad filters are refused (422) and the statements sent do not grow with the rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from broker.models import Role, Sector, SurveyDeclaration, SurveyRespondent
from broker.models.people import CompanyRole, Side
from broker.services import people
from broker.services.passwords import hash_password
from tests.conftest import make_uscc, statements_sent
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.report_gap_data import NOW, build_gap_district

PAGE = "/staff/reports/gap"
API = "/api/v1/reports/gap"
# per kind: surveyed, requested, pledged, published, allocated, unmet (tests/report_gap_data.py)
KINDS = [("gpu", [230, 220, 300, 200, 130, 90]), ("cpu", [300, 210, 500, 400, 50, 160]),
         ("tokens", [0, 1000, 0, 5000, 1000, 0])]
# kind, region, sector, lighthouse: surveyed, requests, requested, allocated, unmet
DEMAND = [
    ("gpu", "cn-east-sh", "smart_driving", True, [150, 1, 120, 70, 50]),
    ("gpu", "cn-east-sh", "ai_models", False, [80, 0, 0, 0, 0]),
    ("gpu", "", "ai_models", False, [0, 2, 100, 60, 40]),
    ("cpu", "cn-north-bj", "fintech", False, [300, 2, 210, 50, 160]),
    ("tokens", "cn-east-sh", "smart_driving", True, [0, 1, 1000, 1000, 0]),
]
SUPPLY = [("gpu", "cn-east-sh", 1, 200), ("cpu", "cn-north-bj", 1, 400), ("tokens", "cn-east-sh", 1, 5000)]
UNMET = [("gpu", "price", 1, 50), ("gpu", "budget", 1, 40), ("cpu", "no_compatible_offer", 1, 150), ("cpu", "none", 1, 10)]
KIND_FIGURES = ("surveyed", "requested", "pledged", "published", "allocated", "unmet")


@pytest.fixture
def district(session, frozen_clock):
    frozen_clock(NOW)
    ids = build_gap_district(session)
    session.commit()
    return ids


@pytest.fixture
def staff(session, client, frozen_clock):
    person = people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)
    session.commit()
    sign_in(client, person.email, PASSWORD)
    return person


def _n(value: str) -> float:
    return float(value)


def _kinds(body: dict) -> list:
    return [(row["kind"], [_n(row[f]) for f in KIND_FIGURES]) for row in body["kinds"]]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _table(html: str, key: str) -> str:
    return _text(html.split(f'id="{key}-table"')[1].split("</table>")[0])


def test_the_api_gives_the_hand_computed_figures(client, district, make_actor):
    body = client.get(API, headers=make_actor("staff").headers).json
    assert body["filters"] == {"start": "2026-10-01", "end": "2026-12-31", "kind": None, "sector": None,
                               "lighthouse": False, "campaign": None, "region": None}
    assert body["campaign"]["id"] == district["campaigns"]["Q4"] and body["pledge_period"] is True
    assert body["pledges_counted"] is True
    assert _kinds(body) == KINDS
    assert [(r["kind"], r["region"], r["sector"], r["lighthouse"],
             [_n(r["surveyed"]), r["requests"], _n(r["requested"]), _n(r["allocated"]), _n(r["unmet"])])
            for r in body["demand"]] == DEMAND
    assert [(r["kind"], r["region"], r["offers"], _n(r["published"])) for r in body["supply"]] == SUPPLY
    assert [(r["kind"], r["reason"], r["requests"], _n(r["unmet"])) for r in body["unmet"]] == UNMET


@pytest.mark.parametrize(("query", "kinds"), [
    ("kind=cpu", [("cpu", [300, 210, 500, 400, 50, 160])]),
    # the Lighthouse startup A: its demand; supply belongs to no sector and stays whole
    ("lighthouse=true", [("gpu", [150, 120, 300, 200, 70, 50]), ("cpu", [0, 0, 500, 400, 0, 0]),
                         ("tokens", [0, 1000, 0, 5000, 1000, 0])]),
    # December: no campaign has that period; the month's pledge; q3 and q8 end in October, the tokens offer too
    ("start=2026-12-01&end=2026-12-31", [("gpu", [0, 180, 50, 200, 130, 50]), ("cpu", [0, 210, 0, 400, 50, 160])]),
    # not a whole month or quarter: no pledges
    ("start=2026-12-02&end=2026-12-31", [("gpu", [0, 180, 0, 200, 130, 50]), ("cpu", [0, 210, 0, 400, 50, 160])]),
])
def test_filters_change_the_figures(client, district, make_actor, query, kinds):
    body = client.get(f"{API}?{query}", headers=make_actor("staff").headers).json
    assert _kinds(body) == kinds


# A region: survey lines and offers in it; requests accepting it (naming it, or any region: q2) with their allocations
# and unmet part; no pledges (they name no region).
@pytest.mark.parametrize(("region", "kinds", "demand", "unmet"), [
    # s1–s3; q1 (sh), q2 (any), q3 (sh or bj), q8 (sh); the gpu and tokens offers in sh
    ("cn-east-sh", [("gpu", [230, 220, 0, 200, 130, 90]), ("tokens", [0, 1000, 0, 5000, 1000, 0])],
     [("gpu", "cn-east-sh", "smart_driving", True, [150, 1, 120, 70, 50]),
      ("gpu", "cn-east-sh", "ai_models", False, [80, 0, 0, 0, 0]),
      ("gpu", "", "ai_models", False, [0, 2, 100, 60, 40]),
      ("tokens", "cn-east-sh", "smart_driving", True, [0, 1, 1000, 1000, 0])],
     [("gpu", "price", 1, 50), ("gpu", "budget", 1, 40)]),
    # s4; q2, q3 (gpu), q4, q5 (cpu); the cpu offer in bj (bj's gpu offer is 2027's)
    ("cn-north-bj", [("gpu", [0, 100, 0, 0, 60, 40]), ("cpu", [300, 210, 0, 400, 50, 160])],
     [("gpu", "", "ai_models", False, [0, 2, 100, 60, 40]),
      ("cpu", "cn-north-bj", "fintech", False, [300, 2, 210, 50, 160])],
     [("gpu", "budget", 1, 40), ("cpu", "no_compatible_offer", 1, 150), ("cpu", "none", 1, 10)]),
    # a region nobody offers or names: only q2, which accepts any
    ("cn-south-gz", [("gpu", [0, 60, 0, 0, 60, 0])], [("gpu", "", "ai_models", False, [0, 1, 60, 60, 0])], []),
])
def test_the_region_filter_narrows_every_source(client, district, make_actor, region, kinds, demand, unmet):
    body = client.get(f"{API}?region={region}", headers=make_actor("staff").headers).json
    assert body["filters"]["region"] == region and body["pledge_period"] is True and body["pledges_counted"] is False
    assert _kinds(body) == kinds
    assert [(r["kind"], r["region"], r["sector"], r["lighthouse"],
             [_n(r["surveyed"]), r["requests"], _n(r["requested"]), _n(r["allocated"]), _n(r["unmet"])])
            for r in body["demand"]] == demand
    assert {r["region"] for r in body["supply"]} <= {region}
    assert [(r["kind"], r["reason"], r["requests"], _n(r["unmet"])) for r in body["unmet"]] == unmet


def test_the_region_filter_on_the_page_and_in_the_exports(client, district, staff):
    page = client.get(f"{PAGE}?region=cn-north-bj")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert re.findall(r'<option value="([^"]*)"', html.split('id="region"')[1].split("</select>")[0]) == [
        "", "cn-east-sh", "cn-north-bj"]
    assert '<option value="cn-north-bj" selected>' in html and "承诺不分地区：按地区筛选时，承诺供给为零。" in html
    assert "CPU 算力 核时 300 210 0 400 50 160" in _table(html, "kinds")
    assert "/staff/reports/gap.csv?region=cn-north-bj" in html
    rows = list(csv.reader(io.StringIO(client.get(f"{PAGE}.csv?region=cn-north-bj").get_data().decode("utf-8-sig"))))
    assert ["地区", "cn-north-bj"] in rows and ["GPU 算力", "卡时", "0", "100", "0", "0", "60", "40"] in rows
    book = load_workbook(io.BytesIO(client.get(f"{PAGE}.xlsx?region=cn-north-bj").get_data()))
    assert ("地区", "cn-north-bj") in list(book["筛选条件"].iter_rows(values_only=True))
    assert ["地区", "全部"] in list(csv.reader(io.StringIO(client.get(f"{PAGE}.csv").get_data().decode("utf-8-sig"))))


def test_a_campaign_gives_its_period_and_its_lines(client, district, make_actor):
    body = client.get(f"{API}?campaign={district['campaigns']['Q1']}", headers=make_actor("staff").headers).json
    assert (body["filters"]["start"], body["filters"]["end"]) == ("2027-01-01", "2027-03-31")
    # 2027-Q1: s5, q2 and q6 (gpu), q5 (cpu); the 2027-Q1 pledge, the 2027 gpu offers
    assert _kinds(body) == [("gpu", [999, 560, 999, 300, 60, 500]), ("cpu", [0, 10, 0, 0, 0, 10])]
    assert [(r["kind"], r["reason"], _n(r["unmet"])) for r in body["unmet"]] == [("gpu", "none", 500), ("cpu", "none", 10)]


def test_confirmed_answers_of_firms_not_registered_are_surveyed_by_the_sector_they_gave(client, session, district,
                                                                                       make_actor):
    """A confirmed unregistered answer adds its lines (gpu cn-east-sh 25 as smart_driving, cpu cn-south-gz 40);
    one still waiting for its email's confirmation (its lines only in pending_lines) adds nothing."""
    q4 = district["campaigns"]["Q4"]
    confirmed = SurveyRespondent(campaign_id=q4, uscc=make_uscc(901), firm_name="未注册甲", contact_name="李", sector=Sector.smart_driving,
                                 contact_email="jia@firm.test", token_hash="a" * 64, confirmed_at=NOW, created_at=NOW)
    waiting = SurveyRespondent(campaign_id=q4, uscc=make_uscc(902), firm_name="未注册乙", contact_name="周", sector=Sector.fintech,
                               contact_email="yi@firm.test", token_hash="b" * 64, created_at=NOW, pending_since=NOW,
                               pending_lines=[{"kind": "cpu", "quantity": "999", "region": "cn-north-bj",
                                               "month": "2026-11-01", "max_unit_price": None, "purpose": "测试"}])
    session.add_all([confirmed, waiting])
    session.flush()
    for kind, region, month, quantity in (("gpu", "cn-east-sh", dt.date(2026, 11, 1), 25),
                                          ("cpu", "cn-south-gz", dt.date(2026, 12, 1), 40)):
        session.add(SurveyDeclaration(campaign_id=q4, respondent_id=confirmed.id, kind=kind, region=region, month=month,
                                      quantity=Decimal(quantity), purpose="训练", updated_at=NOW))
    session.commit()
    body = client.get(API, headers=make_actor("staff").headers).json
    # gpu 230 + 25, cpu 300 + 40; the rest as before
    assert _kinds(body) == [("gpu", [255, 220, 300, 200, 130, 90]), ("cpu", [340, 210, 500, 400, 50, 160]),
                            ("tokens", [0, 1000, 0, 5000, 1000, 0])]
    demand = [(r["kind"], r["region"], r["sector"], r["lighthouse"],
               [_n(r["surveyed"]), r["requests"], _n(r["requested"]), _n(r["allocated"]), _n(r["unmet"])])
              for r in body["demand"]]
    assert demand == [
        ("gpu", "cn-east-sh", "smart_driving", True, [175, 1, 120, 70, 50]),
        ("gpu", "cn-east-sh", "ai_models", False, [80, 0, 0, 0, 0]),
        ("gpu", "", "ai_models", False, [0, 2, 100, 60, 40]),
        ("cpu", "cn-north-bj", "fintech", False, [300, 2, 210, 50, 160]),
        ("cpu", "cn-south-gz", "smart_driving", True, [40, 0, 0, 0, 0]),
        ("tokens", "cn-east-sh", "smart_driving", True, [0, 1, 1000, 1000, 0]),
    ]
    # the sector filters read the sector the firm gave
    lighthouse = client.get(f"{API}?lighthouse=true", headers=make_actor("staff").headers).json
    assert _kinds(lighthouse)[:2] == [("gpu", [175, 120, 300, 200, 70, 50]), ("cpu", [40, 0, 500, 400, 0, 0])]
    fintech = client.get(f"{API}?sector=fintech", headers=make_actor("staff").headers).json
    assert [(k["kind"], _n(k["surveyed"])) for k in fintech["kinds"]][:2] == [("gpu", 0), ("cpu", 300)]


@pytest.mark.parametrize("query", ["start=2026-13-01", "start=2026-12-01&end=2026-11-01", "kind=quantum",
                                   "sector=mining", "campaign=0", "campaign=abc", "campaign=999999", "region=" + "x" * 65])
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
    assert page.status_code == 200 and "<h1>供需缺口</h1>" in html and 'aria-current="page"' in html
    kinds = _table(html, "kinds")
    assert "GPU 算力 卡时 230 220 300 200 130 90" in kinds and "CPU 算力 核时 300 210 500 400 50 160" in kinds
    assert "大模型 Tokens 百万 Tokens 0 1,000 0 5,000 1,000 0" in kinds
    demand = _table(html, "demand")
    assert "GPU 算力 cn-east-sh 智能驾驶 是 150 1 120 70 50" in demand
    assert "GPU 算力 多地区或不限 大模型与AI应用 0 2 100 60 40" in demand
    assert "CPU 算力 cn-north-bj 金融科技 300 2 210 50 160" in demand
    assert "大模型 Tokens cn-east-sh 5,000" in _table(html, "supply").replace("1 5,000", "5,000")
    unmet = _table(html, "unmet")
    assert unmet.index("GPU 算力 价格高于可接受的最高单价 1 50") < unmet.index("GPU 算力 预算不足 1 40")
    assert "CPU 算力 没有相符的资源（配置、地区或时段不符） 1 150" in unmet and "尚无撮合原因（未经撮合或方案待审） 1 10" in unmet
    assert "2026年第四季度算力需求摸排" in html and "承诺不分地区与领域" in html
    assert '"values": [230.0, 300.0, 0.0]' in html  # the chart draws the table's numbers
    filtered = client.get(f"{PAGE}?kind=gpu&lighthouse=true").get_data(as_text=True)
    assert "/staff/reports/gap.csv?kind=gpu&amp;lighthouse=true" in filtered


def test_in_english_through_the_language_switch(client, district, staff):
    switched = client.post("/language", data={"language": "en", "next": PAGE, "csrf_token": token_of(client, PAGE)})
    assert switched.status_code == 303
    html = client.get(PAGE).get_data(as_text=True)
    assert "<h1>Supply–demand gap</h1>" in html and "供需缺口" not in html and "Price above the most it can pay" in html


def test_the_csv_has_the_same_numbers_and_the_filters(client, district, staff):
    answer = client.get(f"{PAGE}.csv?kind=gpu")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    raw = answer.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert ["资源类别", "GPU 算力"] in rows and ["期间（北京时间）", "2026-10-01 — 2026-12-31"] in rows
    assert ["需求摸排", "2026年第四季度算力需求摸排（2026-Q4）"] in rows
    assert ["GPU 算力", "卡时", "230", "220", "300", "200", "130", "90"] in rows
    assert ["GPU 算力", "多地区或不限", "大模型与AI应用", "", "0", "2", "100", "60", "40"] in rows
    assert ["GPU 算力", "预算不足", "1", "40"] in rows and not any(row[:1] == ["CPU 算力"] for row in rows)


def test_the_xlsx_has_a_sheet_per_table_with_header_and_number_formats(client, district, staff):
    answer = client.get(f"{PAGE}.xlsx")
    assert answer.status_code == 200 and answer.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(answer.get_data()))
    assert book.sheetnames == ["筛选条件", "按资源类别", "按类别、地区与领域", "发布供给（按类别与地区）", "未满足部分及原因"]
    sheet = book["按资源类别"]
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert header == ("资源类别", "单位", "摸排需求", "申请需求", "承诺供给", "发布供给", "已分配", "未满足") and sheet["A1"].font.bold
    assert [(row[0], [float(v) for v in row[2:]]) for row in rows] == [
        ("GPU 算力", [230, 220, 300, 200, 130, 90]), ("CPU 算力", [300, 210, 500, 400, 50, 160]),
        ("大模型 Tokens", [0, 1000, 0, 5000, 1000, 0])]
    assert sheet["C2"].number_format == "#,##0.###"
    unmet = list(book["未满足部分及原因"].iter_rows(values_only=True))[1:]
    assert [(r[1], r[2], float(r[3])) for r in unmet] == [
        ("价格高于可接受的最高单价", 1, 50), ("预算不足", 1, 40), ("没有相符的资源（配置、地区或时段不符）", 1, 150),
        ("尚无撮合原因（未经撮合或方案待审）", 1, 10)]
    assert book["未满足部分及原因"]["C2"].number_format == "#,##0"
    assert ("仅灯塔领域", "否") in list(book["筛选条件"].iter_rows(values_only=True))


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
    build_gap_district(session, n=1)
    session.commit()
    few = len(statements_sent(app, client, PAGE))
    build_gap_district(session, n=2, copies=5)
    session.commit()
    assert len(statements_sent(app, client, PAGE)) == few
