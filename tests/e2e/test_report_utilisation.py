"""Report 4, utilisation (资源使用率): the page, the API, the CSV and the XLSX give the figures computed by
hand in tests/report_use_data.py (GPU-hours, tokens by model, line-days for the data line, the idle
grants at mid-window), the filters and the threshold change them, only staff see them, bad filters
are refused (422), the statements sent do not grow with the rows, and the page reads in English."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from broker.models import Role
from broker.models.people import CompanyRole, Side
from broker.services import people as people_service
from broker.services.passwords import hash_password
from tests.conftest import statements_sent
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.e2e.test_settlement import at, period  # noqa: F401 - the fixture
from broker.services import report_utilisation
from tests.report_use_data import build_use_district, grant, roll_up, set_up

PAGE = "/staff/reports/utilisation"
API = "/api/v1/reports/utilisation"
# kind, model, allocations, allocated, used, used %, idle (default threshold 20 %)
KINDS = [("gpu", None, 2, "1200", "460", "38.3", 1), ("data_line", None, 1, "14", "3", "21.4", 1),
         ("tokens", "qwen-max", 1, "500", "50", "10.0", 1)]


@pytest.fixture
def district(client, session, period):  # noqa: F811
    return build_use_district(client, session, period)


@pytest.fixture
def staff(session, client, district):
    person = people_service.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff,
                                                   PASSWORD)
    session.commit()
    sign_in(client, person.email, PASSWORD)
    return person


def _qty(text: str) -> str:
    number = float(text)
    return str(int(number)) if number == int(number) else text


def _text(html: str, table: str) -> str:
    part = html.split(f'id="{table}-table"')[1].split("</table>")[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part)).strip()


def _row_ids(html: str, table: str) -> list[int]:
    part = html.split(f'id="{table}-table"')[1].split("</table>")[0]
    return sorted(int(n) for n in re.findall(r'<th scope="row">(\d+)</th>', part))


def test_the_api_gives_the_hand_computed_figures(client, district, period):  # noqa: F811
    answer = client.get(API, headers=period["first"].headers)
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["filters"] == {"start": "2026-10-01", "end": "2026-12-31", "kind": None, "carrier": None,
                               "threshold": "20"}
    assert [(k["kind"], k["model"], k["allocations"], _qty(k["allocated"]), _qty(k["used"]), k["used_share"], k["idle"])
            for k in body["kinds"]] == KINDS
    lines = {line["allocation_id"]: line for line in body["allocations"]}
    assert sorted(lines) == sorted(district.values())
    line = lines[district["beta_line"]]
    assert (_qty(line["allocated"]), _qty(line["used"]), _qty(line["used_by_middle"]), line["middle_day"]) == (
        "14", "3", "2", "2026-12-14")  # the 12-14 07:00 report is 12-13 in UTC but after the middle in Shanghai
    gpu = lines[district["alpha_gpu"]]
    assert (_qty(gpu["used"]), _qty(gpu["used_by_middle"]), gpu["used_share"], gpu["status"]) == ("400", "100", "40.0", "active")
    assert lines[district["alpha_tokens"]]["model"] == "qwen-max" and lines[district["beta_gpu"]]["model"] is None
    assert sorted(i["allocation_id"] for i in body["idle"]) == sorted(
        [district["alpha_gpu"], district["alpha_tokens"], district["beta_line"]])


@pytest.mark.parametrize(("query", "idle", "kinds"), [
    ("threshold=12", ["alpha_gpu", "alpha_tokens"], 3),  # the line used 14.3 % by its middle
    ("threshold=35", ["alpha_gpu", "beta_gpu", "alpha_tokens", "beta_line"], 3),
    ("kind=gpu", ["alpha_gpu"], 1),
    ("start=2027-01-01&end=2027-03-31", [], 0),  # no window overlaps the first quarter
])
def test_filters_and_the_threshold_change_the_figures(client, district, period, query, idle, kinds):  # noqa: F811
    body = client.get(f"{API}?{query}", headers=period["first"].headers).json
    assert sorted(i["allocation_id"] for i in body["idle"]) == sorted(district[key] for key in idle)
    assert len(body["kinds"]) == kinds


def test_a_carrier_filter_and_the_middle_not_yet_reached(client, district, period, make_actor):  # noqa: F811
    other = make_actor("carrier")
    assert client.get(f"{API}?carrier={other.carrier_code}", headers=period["first"].headers).json["allocations"] == []
    period["clock"].set(at(dt.date(2026, 12, 13), 12))  # 12-13: no middle day has begun, nothing is idle yet
    body = client.get(API, headers=period["first"].headers).json
    assert body["idle"] == [] and [k["idle"] for k in body["kinds"]] == [0, 0, 0]


@pytest.mark.parametrize("query", ["threshold=0", "threshold=101", "threshold=abc", "kind=quantum", "start=2026-13-01"])
def test_bad_filters_are_refused(client, staff, period, query):  # noqa: F811
    assert client.get(f"{API}?{query}", headers=period["first"].headers).status_code == 422
    page = client.get(f"{PAGE}?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 422 and "筛选条件有误" in html and 'aria-invalid="true"' in html
    if query.startswith("threshold"):
        assert "请输入大于0、不超过100的百分比。" in html
    assert client.get(f"{PAGE}.csv?{query}").status_code == 422
    assert client.get(f"{PAGE}.xlsx?{query}").status_code == 422


def test_the_page_shows_the_figures_and_its_chart_data(client, district, staff):
    page = client.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>资源使用率</h1>" in html and 'aria-current="page"' in html
    kinds = _text(html, "kinds")
    assert "GPU 算力 卡时 2 1,200 460 38.3 1" in kinds and "数据专线 线路·天 1 14 3 21.4 1" in kinds
    assert "大模型 Tokens qwen-max 百万 Tokens 1 500 50 10 1" in kinds
    assert "2026-12-14 14 2 14.3" in _text(html, "idle")
    assert _row_ids(html, "idle") == sorted([district["alpha_gpu"], district["alpha_tokens"], district["beta_line"]])
    assert _row_ids(html, "allocations") == sorted(district.values())
    assert f"{district['alpha_gpu']} 使用中" in _text(html, "allocations")
    assert '"values": [38.3, 21.4, 10.0]' in html and "vendor/echarts/echarts.min.js" in html
    filtered = client.get(f"{PAGE}?kind=gpu&threshold=12").get_data(as_text=True)
    assert "/staff/reports/utilisation.csv?kind=gpu&amp;threshold=12" in filtered


def test_in_english_through_the_language_switch(client, district, staff):
    switched = client.post("/language", data={"language": "en", "next": PAGE, "csrf_token": token_of(client, PAGE)})
    assert switched.status_code == 303
    html = client.get(PAGE).get_data(as_text=True)
    assert "<h1>Utilisation</h1>" in html and "资源使用率" not in html and "Idle grants" in html


def test_the_csv_and_the_xlsx_have_the_same_numbers_and_the_filters(client, district, staff):
    answer = client.get(f"{PAGE}.csv?threshold=12")
    assert answer.status_code == 200 and answer.get_data().startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(answer.get_data().decode("utf-8-sig"))))
    assert ["闲置阈值（%）", "12"] in rows and ["期间（北京时间）", "2026-10-01 — 2026-12-31"] in rows
    assert ["GPU 算力", "", "卡时", "2", "1200", "460", "38.3", "1"] in rows
    assert ["数据专线", "", "线路·天", "1", "14", "3", "21.4", "0"] in rows
    idle_ids = {row[0] for row in rows[rows.index(["闲置分配（待跟进）"]) + 2:rows.index(["按分配"]) - 1]}
    assert idle_ids == {str(district["alpha_gpu"]), str(district["alpha_tokens"])}

    book = load_workbook(io.BytesIO(client.get(f"{PAGE}.xlsx").get_data()))
    assert book.sheetnames == ["筛选条件", "按资源类别", "闲置分配（待跟进）", "按分配"]
    kinds = list(book["按资源类别"].iter_rows(values_only=True))
    assert kinds[0][:4] == ("资源类别", "型号", "单位", "分配数") and book["按资源类别"]["A1"].font.bold
    assert [(r[0], r[1], r[3], float(r[4]), float(r[5]), float(r[6]), r[7]) for r in kinds[1:]] == [
        ("GPU 算力", None, 2, 1200, 460, 38.3, 1), ("数据专线", None, 1, 14, 3, 21.4, 1),
        ("大模型 Tokens", "qwen-max", 1, 500, 50, 10.0, 1)]
    assert book["按资源类别"]["E2"].number_format == "#,##0.###" and book["按资源类别"]["D2"].number_format == "#,##0"
    assert len(list(book["闲置分配（待跟进）"].iter_rows(values_only=True))) == 4  # the header and three
    assert ("闲置阈值（%）", "20") in list(book["筛选条件"].iter_rows(values_only=True))


def test_only_staff(client, session, district, period):  # noqa: F811
    assert client.get(PAGE).status_code == 302  # nobody signed in: the sign-in page
    assert client.get(API, headers=period["alpha"].headers).status_code == 403
    assert client.get(API, headers=period["carrier"].headers).status_code == 403
    people_service._new_person(session, email="ceo@startup.example.cn", name="王芳", password_hash=hash_password(PASSWORD),
                               side=Side.startup, startup_id=period["alpha"].startup_id,
                               company_role=CompanyRole.administrator)
    session.commit()
    sign_in(client, "ceo@startup.example.cn", PASSWORD)
    for path in (PAGE, f"{PAGE}.csv", f"{PAGE}.xlsx"):
        assert client.get(path).status_code == 403


def test_the_statements_sent_do_not_grow_with_the_rows(app, client, session, district, staff, period):  # noqa: F811
    few = len(statements_sent(app, client, PAGE))
    period["clock"].set(at(dt.date(2026, 11, 30)))  # before the windows begin, as the first requests were
    more = grant(client, period, {f"more{n}": ("beta", "gpu", "10") for n in range(4)})
    for allocation_id in more.values():
        set_up(session, allocation_id, period["clock"]())
    period["clock"].set(at(dt.date(2026, 12, 16), 12))
    stale = client.get(PAGE).get_data(as_text=True)
    assert len(_row_ids(stale, "allocations")) == 4  # the rollup is as the job last left it, and says when
    assert "数据截至 2026年12月16日 11:00" in stale
    roll_up(session, at(dt.date(2026, 12, 16), 12))
    session.commit()
    assert len(_row_ids(client.get(PAGE).get_data(as_text=True), "allocations")) == 8
    assert len(statements_sent(app, client, PAGE)) == few


def test_the_lists_come_a_page_at_a_time_and_the_exports_hold_every_row(client, district, staff, period,  # noqa: F811
                                                                         monkeypatch):
    monkeypatch.setattr(report_utilisation, "PAGE_SIZE", 3)
    first = client.get(PAGE).get_data(as_text=True)
    assert _row_ids(first, "allocations") == sorted(district.values())[:3]
    assert "共 4 项分配，涉及 2 家企业。" in first and "第 1 / 2 页" in first
    second = client.get(f"{PAGE}?page=2").get_data(as_text=True)
    assert _row_ids(second, "allocations") == sorted(district.values())[3:]
    api = client.get(f"{API}?page=2&idle_page=1", headers=period["first"].headers).json
    assert (api["page"], api["pages"], api["allocations_total"], api["firms"]) == (2, 2, 4, 2)
    assert [line["allocation_id"] for line in api["allocations"]] == sorted(district.values())[3:]
    assert api["idle_total"] == 3 and len(api["idle"]) == 3
    exported = list(csv.reader(io.StringIO(client.get(f"{PAGE}.csv?page=2").get_data(as_text=True).lstrip("\ufeff"))))
    listed = [row[0] for row in exported if row and row[0].isdigit()]
    assert sorted(int(n) for n in set(listed)) == sorted(district.values())  # every allocation, whatever the page


def test_before_the_first_rollup_the_page_says_so(client, session, staff):
    from broker.models import Rollup, UseRollup

    session.execute(sa.delete(UseRollup))
    session.execute(sa.delete(Rollup))
    session.commit()
    page = client.get(PAGE).get_data(as_text=True)
    assert "用量汇总尚未生成" in page and "期间内没有已批分配。" in page

