"""Report 7, the performance-evaluation pack (绩效自评): the page, the API, the CSV, the XLSX and the PDF give
the figures computed by hand in tests/pack_data.py; the year changes them; only staff see them; bad filters
are refused; the statements sent do not depend on the rows. And the rating it counts: a startup rates its own
completed allocation once, through the API and the portal's allocation page."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from pypdf import PdfReader

from broker.models import AllocationRating, Role, SubsidyProgram
from broker.models.people import CompanyRole, Side
from broker.services import accounts, people
from broker.services.passwords import hash_password
from tests.conftest import Actor, statements_sent
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.e2e.test_staff_appeals import company_person_signed_in
from tests.pack_data import NOW, build_pack_district

PAGE = "/staff/reports/pack"
API = "/api/v1/reports/pack"

# The hand-computed figures of tests/pack_data.py, as the page and the PDF write them.
SHOWN = {
    "terms": "50.00 ¥100,000.00 2025-01-01 — 2027-12-31 ¥1,000,000.00",
    "deposits": "沪长科〔2026〕12号 2026-01-10 ¥600,000.00 沪长科〔2026〕30号 2026-07-01 ¥400,000.00",
    "review": "6 4 1 1 66.67",
    "notices": "1 3 1 3 1 1 1",
    "output": "3 3 ¥300.00 ¥205.00 68.33 0.03",
    "benefit": "¥205.00 ¥410.00 0.50 1 33.33 ¥100.00 33.33",
    "satisfaction": "2 4.50",
}


@pytest.fixture
def staff_account(session):
    account, _, secret = accounts.create_user(session, Role.staff, "绩效 staff")
    return Actor(account.id, secret)


@pytest.fixture
def district(session, frozen_clock, staff_account):
    frozen_clock(NOW)
    ids = build_pack_district(session, staff_account.account_id)
    session.commit()
    return ids


@pytest.fixture
def staff(session, client, frozen_clock):
    person = people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)
    session.commit()
    sign_in(client, person.email, PASSWORD)
    return person


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _table(html: str, key: str) -> str:
    return _text(html.split(f'id="{key}-table"')[1].split("</table>")[0])


def test_the_api_gives_the_hand_computed_figures(client, district, staff_account):
    answer = client.get(f"{API}?program={district['program']}&year=2026", headers=staff_account.headers)
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["filters"] == {"year": 2026, "program": district["program"]}
    assert body["program"] == {"id": district["program"], "code": "SV26", "name": "长宁区算力券"}
    decision = body["decision"]
    assert (decision["rate_percent"], decision["cap_per_startup"], decision["year_budget"]) == ("50.00", "100000.00", "1000000.00")
    assert [(d["reference"], d["amount"], d["day"]) for d in decision["deposits"]] == [
        ("沪长科〔2026〕12号", "600000.00", "2026-01-10"), ("沪长科〔2026〕30号", "400000.00", "2026-07-01")]
    process = body["process"]
    assert [process[k] for k in ("reviewed", "on_time", "late", "lapsed", "on_time_percent")] == [6, 4, 1, 1, "66.67"]
    assert [process[k] for k in ("notices", "noticed", "removed", "objections", "upheld", "dismissed", "open_objections")] == [
        1, 3, 1, 3, 1, 1, 1]
    assert body["output"] == {"firms": 3, "awards": 3, "committed": "300.00", "redeemed": "205.00",
                              "redemption_percent": "68.33", "budget_percent": "0.03"}
    assert body["benefit"] == {"redeemed": "205.00", "delivered_gross": "410.00", "leverage": "0.50", "lighthouse_firms": 1,
                               "lighthouse_firms_percent": "33.33", "lighthouse_committed": "100.00",
                               "lighthouse_amount_percent": "33.33"}
    assert body["satisfaction"] == {"ratings": 2, "mean": "4.50", "distribution": [[5, 1], [4, 1], [3, 0], [2, 0], [1, 0]]}


def test_another_year_has_its_own_figures_and_the_defaults(client, district, staff_account):
    body = client.get(f"{API}?program={district['program']}&year=2025", headers=staff_account.headers).json
    assert [d["reference"] for d in body["decision"]["deposits"]] == ["沪长科〔2025〕88号"]
    assert [body["process"][k] for k in ("reviewed", "on_time", "on_time_percent", "notices", "objections", "open_objections")] == [
        1, 1, "100.00", 1, 1, 1]
    assert body["output"]["firms"] == 1 and body["output"]["committed"] == "50.00"
    assert body["benefit"]["leverage"] == "1.25" and body["benefit"]["lighthouse_firms_percent"] == "100.00"  # 50 ÷ 40
    assert body["satisfaction"] == {"ratings": 1, "mean": "1.00", "distribution": [[5, 0], [4, 0], [3, 0], [2, 0], [1, 1]]}
    # No program given: the first; no year: the current one (2026 in Shanghai).
    default = client.get(API, headers=staff_account.headers).json
    assert default["filters"] == {"year": 2026, "program": None} and default["program"]["code"] == "SV26"
    assert default["output"]["committed"] == "300.00"


@pytest.mark.parametrize("query", ["year=1999", "year=abc", "program=0", "program=x"])
def test_bad_filters_are_refused(client, district, staff_account, staff, query):
    assert client.get(f"{API}?{query}", headers=staff_account.headers).status_code == 422
    page = client.get(f"{PAGE}?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 422 and "筛选条件有误" in html and 'aria-invalid="true"' in html
    assert "¥300.00" in html  # the defaults' figures, shown instead
    for extension in ("csv", "xlsx", "pdf"):
        assert client.get(f"{PAGE}.{extension}?{query}").status_code == 422


def test_an_unknown_program_is_404(client, district, staff_account, staff):
    assert client.get(f"{API}?program=99999", headers=staff_account.headers).status_code == 404
    assert client.get(f"{PAGE}?program=99999").status_code == 404


def test_the_page_lays_the_figures_out_under_the_four_headings(client, district, staff):
    page = client.get(f"{PAGE}?program={district['program']}&year=2026")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "绩效自评：长宁区算力券（SV26）2026年度" in html
    assert 'aria-current="page"' in html.split("</nav>")[0]  # the nav's 报表 entry
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", html)
    assert headings == ["一、决策", "二、过程", "三、产出", "四、效益"]
    for key, shown in SHOWN.items():
        assert shown in _table(html, key), key
    scores = _table(html, "scores")
    assert "5分 1 50.00" in scores and "4分 1 50.00" in scores and "1分 0 0.00" in scores
    assert '"values": [1, 1, 0, 0, 0]' in html and 'id="scores-chart"' in html  # the chart draws the table's numbers
    assert f"/staff/reports/pack.pdf?program={district['program']}&amp;year=2026" in html


def test_in_english_through_the_language_switch(client, district, staff):
    switched = client.post("/language", data={"language": "en", "next": PAGE, "csrf_token": token_of(client, PAGE)})
    assert switched.status_code == 303
    html = client.get(PAGE).get_data(as_text=True)
    assert "绩效自评" not in html and "Performance self-evaluation" in html and "On-time rate (%)" in html


def test_the_csv_has_the_same_numbers_and_the_filters(client, district, staff):
    answer = client.get(f"{PAGE}.csv?program={district['program']}&year=2026")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    raw = answer.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["报表", "绩效自评"] and ["补贴项目", "SV26 长宁区算力券"] in rows and ["年度", "2026"] in rows
    # Decimals as people write them, without trailing zeros (broker.web.report_exports).
    assert ["沪长科〔2026〕12号", "2026-01-10", "600000"] in rows
    assert ["6", "4", "1", "1", "66.67"] in rows and ["1", "3", "1", "3", "1", "1", "1"] in rows
    assert ["3", "3", "300", "205", "68.33", "0.03"] in rows
    assert ["205", "410", "0.5", "1", "33.33", "100", "33.33"] in rows
    assert ["2", "4.5"] in rows and ["5分", "1", "50"] in rows


def test_the_xlsx_has_a_sheet_per_table_with_header_and_number_formats(client, district, staff):
    answer = client.get(f"{PAGE}.xlsx?program={district['program']}")
    assert answer.status_code == 200 and answer.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(answer.get_data()))
    assert book.sheetnames == ["筛选条件", "项目依据与预算", "资金文件（年度到账）", "评审及时性", "公示与异议", "产出指标",
                               "效益指标", "满意度", "评分分布"]
    output = book["产出指标"]
    header, values = list(output.iter_rows(values_only=True))
    assert header[:3] == ("服务企业", "补贴笔数", "承诺金额") and output["A1"].font.bold
    assert [float(v) for v in values] == [3, 3, 300, 205, 68.33, 0.03]
    assert output["C2"].number_format == "#,##0.00" and output["E2"].number_format == "0.00" and output["A2"].number_format == "#,##0"
    benefit = list(book["效益指标"].iter_rows(values_only=True))[1]
    assert [float(v) for v in benefit] == [205, 410, 0.5, 1, 33.33, 100, 33.33]
    review = list(book["评审及时性"].iter_rows(values_only=True))[1]
    assert [float(v) for v in review] == [6, 4, 1, 1, 66.67]
    assert [float(v) for v in list(book["满意度"].iter_rows(values_only=True))[1]] == [2, 4.5]
    assert ("年度", "2026") in list(book["筛选条件"].iter_rows(values_only=True))


def test_the_pdf_is_the_page_for_print_with_the_same_numbers(client, district, staff):
    answer = client.get(f"{PAGE}.pdf?program={district['program']}&year=2026")
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert "performance-pack-SV26-2026.pdf" in answer.headers["Content-Disposition"]
    reader = PdfReader(io.BytesIO(answer.get_data()))
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    assert "绩效自评" in text and "长宁区算力券" in text  # the CJK font is embedded: the Chinese reads back
    for heading in ("一、决策", "二、过程", "三、产出", "四、效益", "满意度"):
        assert heading in text
    for shown in SHOWN.values():
        assert shown in text, shown
    assert "5分 1 50.00" in text
    assert "筛选" not in text and "跳到正文" not in text  # no filters, no navigation in print
    fonts = {str(font) for page in reader.pages for font in page["/Resources"]["/Font"].values()
             for font in [font.get_object()["/BaseFont"]]}
    assert any("CJK" in font or "Noto" in font for font in fonts), fonts


def test_only_staff(client, session, district, frozen_clock):
    assert client.get(PAGE).status_code == 302  # nobody signed in: the sign-in page
    startup = Actor(0, district["secrets"]["A"])
    assert client.get(API, headers=startup.headers).status_code == 403
    people._new_person(session, email="ceo@startup.example.cn", name="王芳", password_hash=hash_password(PASSWORD),
                       side=Side.startup, startup_id=district["startups"]["A"], company_role=CompanyRole.administrator)
    session.commit()
    sign_in(client, "ceo@startup.example.cn", PASSWORD)
    for path in (PAGE, f"{PAGE}.csv", f"{PAGE}.xlsx", f"{PAGE}.pdf"):
        assert client.get(path).status_code == 403


def test_the_statements_sent_do_not_grow_with_the_rows(app, client, session, district, staff, staff_account):
    session.add(SubsidyProgram(code="EMPTY", name="空项目", rate=1, cap_per_startup=1, starts_on=NOW.date(),
                               ends_on=NOW.date().replace(year=2027)))
    session.commit()
    empty = session.scalar(sa.select(SubsidyProgram.id).where(SubsidyProgram.code == "EMPTY"))
    few = len(statements_sent(app, client, f"{PAGE}?program={empty}&year=2026"))
    assert len(statements_sent(app, client, f"{PAGE}?program={district['program']}&year=2026")) == few


# --- the rating ------------------------------------------------------------------------------------


@pytest.fixture
def unrated(session, frozen_clock, staff_account):
    frozen_clock(NOW)
    ids = build_pack_district(session, staff_account.account_id, rated=False)
    session.commit()
    return ids


def _rating(unrated: dict, who: str) -> Actor:
    return Actor(0, unrated["secrets"][who])


def test_a_startup_rates_its_completed_allocation_once(client, session, unrated):
    a3 = unrated["allocations"]["a3"]
    rated = client.post(f"/api/v1/allocations/{a3}/rating", json={"score": 4, "comment": "开通及时"},
                        headers=_rating(unrated, "C").headers)
    assert rated.status_code == 201, rated.json
    assert rated.json["allocation_id"] == a3 and rated.json["score"] == 4 and rated.json["comment"] == "开通及时"
    again = client.post(f"/api/v1/allocations/{a3}/rating", json={"score": 5}, headers=_rating(unrated, "C").headers)
    assert again.status_code == 409
    assert session.scalars(sa.select(AllocationRating.score).where(AllocationRating.allocation_id == a3)).all() == [4]


@pytest.mark.parametrize(("who", "key", "body", "status"), [
    ("C", "a3", {"score": 6}, 422),
    ("C", "a3", {"score": "5"}, 422),
    ("C", "a3", {}, 422),
    ("C", "a3", {"score": 3, "comment": "长" * 301}, 422),
    ("C", "a1", {"score": 5}, 404),  # A's allocation
    ("B", "a2", {"score": 5}, 409),  # active: not completed yet
    ("A", "a4", {"score": 1}, 409),  # rejected: never completed
])
def test_ratings_refused(client, session, unrated, who, key, body, status):
    answer = client.post(f"/api/v1/allocations/{unrated['allocations'][key]}/rating", json=body,
                         headers=_rating(unrated, who).headers)
    assert answer.status_code == status, answer.json
    if status == 422:
        assert set(answer.json["errors"]["json"]) & {"score", "comment"}
    assert session.scalar(sa.select(sa.func.count()).select_from(AllocationRating)) == 0


def test_staff_cannot_rate(client, unrated, staff_account):
    answer = client.post(f"/api/v1/allocations/{unrated['allocations']['a1']}/rating", json={"score": 5},
                         headers=staff_account.headers)
    assert answer.status_code == 403


def test_the_portal_allocation_page_asks_once(app, client, session, unrated):
    a1 = unrated["allocations"]["a1"]
    company_person_signed_in(app, client, session, unrated["startups"]["A"], "wang.fang@startup.example.cn", NOW)
    session.commit()
    path = f"/portal/allocations/{a1}"
    html = client.get(path).get_data(as_text=True)
    assert 'id="rating-form"' in html and "满意度评价" in html
    token = token_of(client, path)
    refused = client.post(f"{path}/rating", data={"csrf_token": token, "score": "9", "comment": "好"})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "请选择 1 至 5 分。" in page and 'aria-describedby="score-problem"' in page and ">好</textarea>" in page
    too_long = client.post(f"{path}/rating", data={"csrf_token": token, "score": "5", "comment": "长" * 301})
    assert too_long.status_code == 422 and "意见最多 300 字。" in too_long.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(AllocationRating)) == 0
    done = client.post(f"{path}/rating", data={"csrf_token": token, "score": "5", "comment": "很好用"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"{path}?done=rated")
    shown = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "感谢评价。" in shown and "您的评分：5 分" in shown and "很好用" in shown and 'id="rating-form"' not in shown
    twice = client.post(f"{path}/rating", data={"csrf_token": token, "score": "1"})
    assert twice.status_code == 409 and "评价只能提交一次" in twice.get_data(as_text=True)
    # Another company's allocation: 404; one not completed: no form.
    other = unrated["allocations"]["a2"]
    assert client.post(f"/portal/allocations/{other}/rating", data={"csrf_token": token, "score": "5"}).status_code == 404
    assert 'id="rating-form"' not in client.get(f"/portal/allocations/{unrated['allocations']['a4']}").get_data(as_text=True)


def test_staff_get_403_on_the_portal_rating(client, unrated, staff):
    path = f"/portal/allocations/{unrated['allocations']['a1']}/rating"
    assert client.post(path, data={"csrf_token": token_of(client, PAGE), "score": "5"}).status_code == 403


def test_a_server_without_pango_says_so_instead_of_failing(client, district, staff, monkeypatch):
    """WeasyPrint loads pango as it is imported; where it cannot (a machine without the library), the
    PDF answers 503 with what to install, and the other exports still work."""
    import sys

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # importing it now fails, as without pango
    answer = client.get(f"{PAGE}.pdf?program={district['program']}&year=2026")
    assert answer.status_code == 503 and "pango" in answer.get_data(as_text=True)
    assert client.get(f"{PAGE}.csv?program={district['program']}&year=2026").status_code == 200
