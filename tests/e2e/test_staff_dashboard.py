"""The staff dashboard (工作台, /staff) over HTTP: every figure from the district's data in the
district's words (万元, Shanghai time), links only to lists that exist, 403 for a company's
person, the sign-in page for nobody, and a bounded number of SQL statements per request."""

from __future__ import annotations

import re

import pytest

from broker.models import Role
from broker.models.people import CompanyRole, Side
from broker.services import accounts, people
from broker.services.passwords import hash_password
from tests.conftest import startup_payload, statements_sent
from tests.dashboard_data import build_district
from tests.e2e.test_console_sign_in import PASSWORD, sign_in


@pytest.fixture
def staff(session, frozen_clock):
    return people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_nobody_signed_in_is_sent_to_the_sign_in_page(client):
    answer = client.get("/staff")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/sign-in?next=/staff")


def test_a_company_person_gets_403(client, session, frozen_clock):
    startup, _, _ = accounts.register_startup(session, startup_payload(901, parse=True))
    people._new_person(session, email="ceo@startup.example.cn", name="王芳", password_hash=hash_password(PASSWORD),
                       side=Side.startup, startup_id=startup.id, company_role=CompanyRole.administrator)
    sign_in(client, "ceo@startup.example.cn", PASSWORD)
    refused = client.get("/staff")
    assert refused.status_code == 403 and "无权访问" in refused.get_data(as_text=True)


def test_an_empty_district_shows_zeros_and_no_links_to_screens_not_built(client, staff):
    sign_in(client, staff.email, PASSWORD)
    page = client.get("/staff")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>工作台</h1>" in html
    assert "没有待审批的方案" in html and "没有未答复的诉求" in html and "还没有完成的撮合轮次" in html
    assert 'aria-current="page"' in html  # the nav marks this screen


def test_every_figure_in_the_districts_words(client, session, staff):
    ids = build_district(session)
    sign_in(client, staff.email, PASSWORD)
    html = client.get("/staff").get_data(as_text=True)
    # Pending decisions: two proposed allocations; the earliest deadline of their cycle, Shanghai time.
    pending = _text(html.split('id="pending-decisions"')[1].split("</div>")[0])
    assert " 2 " in pending and "最早审批截止：2026年12月3日 10:00" in pending
    appeals = _text(html.split('id="open-appeals"')[1].split("</div>")[0])
    assert " 2 " in appeals and "2026年11月29日" in appeals
    # Supply: quantity minus promised of active offers; demand: open requests.
    supply = html.split('id="supply-table"')[1].split("</table>")[0]
    assert 'href="/api/v1/offers?kind=gpu">3,750<' in supply and 'href="/api/v1/offers?kind=cpu">150,000<' in supply
    assert "GPU算力" in supply and "卡时" in supply
    # The trend: both cycles, oldest first, as percentages; a kind nobody asked for is a dash.
    trend = _text(html.split('id="trend-table"')[1].split("</table>")[0])
    assert trend.index(f"第{ids['latest_cycle'] - 1}轮") < trend.index(f"第{ids['latest_cycle']}轮")
    assert f"第{ids['latest_cycle'] + 1}轮" not in trend  # the failed cycle after them matched nothing
    assert f"最近一轮撮合：第{ids['latest_cycle']}轮" in html
    assert "52.0%" in trend and "97.0%" in trend and "—" in trend
    # Lighthouse vs others.
    sectors = _text(html.split('id="sector-table"')[1].split("</table>")[0])
    assert "灯塔领域" in sectors and "其他领域" in sectors
    # Programs in 万元, from the caches.
    programs = _text(html.split('id="program-table"')[1].split("</table>")[0])
    assert "算力券 2,000.00万元 860.00万元 512.00万元" in programs
    # Carrier sync health: the latest sync, its status and quarantined counts; one never synced.
    carriers = _text(html.split('id="carrier-table"')[1].split("</table>")[0])
    assert "中国联通上海分公司 2026年12月1日 07:00 失败 3 1" in carriers
    assert "长宁云计算中心 从未同步" in carriers
    assert 'href="/api/v1/carriers/telecom_sh/syncs"' in html
    # Every screen the dashboard's figures stand for exists: each figure links to its list.
    for screen in ("/staff/review", "/staff/cycles", "/staff/programs", "/staff/appeals"):
        assert f'href="{screen}' in html, screen
    assert "echarts.min.js" in html and '<div class="chart" id="supply-chart" aria-hidden="true">' in html


def test_a_figure_links_to_another_screen_only_once_that_screen_exists():
    from flask import Blueprint, Flask

    from broker.web.staff_dashboard import screen_url

    app = Flask(__name__)
    review = Blueprint("staff_review", __name__)
    review.add_url_rule("/staff/review", "queue", lambda: "queue")
    app.register_blueprint(review)
    with app.test_request_context("/staff"):
        assert screen_url("staff_review.queue") == "/staff/review"
        assert screen_url("staff_cycles.cycles") is None


def test_the_page_is_english_by_switch(client, session, staff):
    build_district(session)
    sign_in(client, staff.email, PASSWORD)
    client.set_cookie("broker_lang", "en")
    html = client.get("/staff").get_data(as_text=True)
    assert "<h1>Dashboard</h1>" in html and "¥20,000,000.00" in html and "GPU compute" in html


def test_the_page_costs_a_bounded_number_of_statements_whatever_the_districts_size(app, client, session, staff):
    build_district(session, 1, startups=3)
    sign_in(client, staff.email, PASSWORD)
    small = statements_sent(app, client, "/staff")
    build_district(session, 2, startups=30)  # ten times the startups, more carriers, programs, proposals
    large = statements_sent(app, client, "/staff")
    assert len(large) == len(small), "the dashboard's statements grew with the data: an N+1 is back"
    selects = [statement for statement in small if statement.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 10, selects  # the signed-in person, their account, and the eight aggregates
    assert len(small) <= 12  # and the test session's savepoint and its rollback
