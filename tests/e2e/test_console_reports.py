"""Staff screens 3, 8 and 9 through the test client: a cycle's report in plain words, the
policy in force with a new version saved (and a bad one re-shown, nothing saved), the audit log
searched by who, what, which object and when; a startup's person gets 403, nobody signed in
goes to the sign-in page."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
import sqlalchemy as sa

from broker.models import AuditEntry, MatchingCycle, Policy, Role
from broker.services import people
from broker.web import formatting
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.e2e.test_cycle_workflow import clock, market, run  # noqa: F401  (fixtures)


@pytest.fixture
def staff_person(session, clock):  # noqa: F811
    return people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)


@pytest.fixture
def signed_in(client, staff_person):
    assert sign_in(client, staff_person.email, PASSWORD).status_code == 303
    return client


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_a_cycle_report_says_why_each_request_was_left_short_in_words(signed_in, market):  # noqa: F811
    cycle = run(signed_in, market["staff"])
    listing = signed_in.get("/staff/cycles")
    assert listing.status_code == 200
    page = text(listing)
    assert "撮合报告" in page and f"第 {cycle['id']} 轮" in page and "待审批" in page
    report = signed_in.get(f"/staff/cycles/{cycle['id']}")
    assert report.status_code == 200
    page = text(report)
    assert "该企业本轮在这类资源上已达到单家企业可占的份额上限。" in page  # share_cap, in words
    assert "相符的资源单价都高于企业能接受的最高单价。" in page  # price_ceiling
    assert "share_cap" not in page and "price_ceiling" not in page  # never the code
    assert "上海测试科技" in page  # the startup left short, by name
    assert "智能驾驶 ★" in page and "数字文创" in page  # sectors, Lighthouse marked
    assert 'id="sector-chart"' in page and 'id="by-sector"' in page  # the chart and its table
    assert "/static/vendor/echarts/echarts.min.js" in page
    # The nav marks the screen this page belongs to, on its detail pages too.
    assert re.search(r'<a href="/staff/cycles" aria-current="page">撮合报告</a>', page)
    assert signed_in.get("/staff/cycles/999999").status_code == 404


def test_the_report_speaks_english_after_the_switch(signed_in, market):  # noqa: F811
    cycle = run(signed_in, market["staff"])
    signed_in.set_cookie("broker_lang", "en")
    page = text(signed_in.get(f"/staff/cycles/{cycle['id']}"))
    assert "share of this kind" in page.lower() or "share cap" in page.lower()


def test_the_policy_page_explains_each_figure_and_saves_a_new_version(signed_in, session):
    page = text(signed_in.get("/staff/policy"))
    assert "现行政策" in page and "系统默认" in page and "单家企业份额上限" in page
    assert "重点企业的需求在行业权重之上再加这么多" in page
    form = {"csrf_token": token_of(signed_in, "/staff/policy"), "default_weight": "1", "key_enterprise_bonus": "0.6",
            "wait_bonus_per_cycle": "0.2", "share_cap": "0.4", "approval_window_hours": "48",
            "sector_weights.smart_driving": "2.5", "sector_weights.smart_healthcare": "2",
            "max_request_quantity.gpu": "50000"}
    saved = signed_in.post("/staff/policy", data=form)
    assert saved.status_code == 303
    policy = session.scalar(sa.select(Policy).order_by(Policy.id.desc()))
    assert str(policy.share_cap) .startswith("0.4") and policy.approval_window_hours == 48
    assert policy.sector_weights == {"smart_driving": "2.5000", "smart_healthcare": "2.0000"} or \
        set(policy.sector_weights) == {"smart_driving", "smart_healthcare"}
    assert policy.max_request_quantity["gpu"].startswith("50000")
    page = text(signed_in.get("/staff/policy"))
    assert "新版本的撮合政策已生效" in page and f"第 {policy.id} 版" in page and "40%" in page
    assert session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "policies")) is not None


def test_a_bad_policy_value_is_reshown_with_its_message_and_nothing_is_saved(signed_in, session):
    before = session.scalar(sa.select(sa.func.count()).select_from(Policy))
    form = {"csrf_token": token_of(signed_in, "/staff/policy"), "default_weight": "1", "key_enterprise_bonus": "0.5",
            "wait_bonus_per_cycle": "0.1", "share_cap": "1.5", "approval_window_hours": "9999",
            "sector_weights.fintech": "-3"}
    refused = signed_in.post("/staff/policy", data=form)
    assert refused.status_code == 422
    page = text(refused)
    assert "政策未保存" in page
    assert "份额上限须是大于 0、不超过 1 的小数" in page
    assert "审批时限须是 1 到 720 之间的整数" in page
    assert "权重须是大于 0、不超过 100 的数" in page
    assert 'value="1.5"' in page and 'value="9999"' in page  # the form as it was sent
    assert re.search(r'id="share_cap"[^>]*aria-invalid="true"', page)
    assert session.scalar(sa.select(sa.func.count()).select_from(Policy)) == before
    signed_in.set_cookie("broker_lang", "en")
    form["csrf_token"] = token_of(signed_in, "/staff/policy")
    page = text(signed_in.post("/staff/policy", data=form))
    assert "Policy not saved" in page and "between 1 and 720" in page


def test_the_audit_log_is_searched_by_who_what_object_and_day(signed_in, session, staff_person, make_actor):
    startup = make_actor("startup", sector="smart_driving")
    page = text(signed_in.get("/staff/audit"))
    assert "审计日志" in page and "startups" in page
    by_object = text(signed_in.get(f"/staff/audit?entity_type=startups&entity_id={startup.startup_id}"))
    assert "上海测试科技" in by_object and "verify" in by_object  # created, then verified: before and after shown
    assert "变更前" in by_object and "变更后" in by_object
    assert text(signed_in.get("/staff/audit?action=no-such-action")).count("没有符合条件的审计记录") == 1
    at = session.scalar(sa.select(AuditEntry.at).where(AuditEntry.entity_type == "startups").order_by(AuditEntry.id.desc()))
    day = formatting.local(at).date()  # the entry's day in Asia/Shanghai
    that_day = text(signed_in.get(f"/staff/audit?from={day}&to={day}&entity_type=startups"))
    assert "上海测试科技" in that_day
    next_day = text(signed_in.get(f"/staff/audit?from={day + dt.timedelta(days=1)}&entity_type=startups"))
    assert "没有符合条件的审计记录" in next_day
    day_before = text(signed_in.get(f"/staff/audit?to={day - dt.timedelta(days=1)}&entity_type=startups"))
    assert "没有符合条件的审计记录" in day_before
    actor = session.scalar(sa.select(AuditEntry.actor_id).where(AuditEntry.entity_type == "startups",
                                                                 AuditEntry.action == "verify"))
    by_actor = text(signed_in.get(f"/staff/audit?actor={actor}"))
    assert "verify" in by_actor
    bad = signed_in.get("/staff/audit?from=yesterday&actor=abc")
    assert bad.status_code == 400 and "日期格式应为" in text(bad) and "编号须是正整数" in text(bad)


def test_the_audit_log_is_paginated_newest_first(signed_in, session, make_actor):
    for _ in range(4):
        make_actor("startup")
    first = text(signed_in.get("/staff/audit"))
    ids = [int(n) for n in re.findall(r'<th scope="row">(\d+)</th>', first)]
    assert ids == sorted(ids, reverse=True)
    count = sa.select(sa.func.count()).select_from(AuditEntry)
    for _ in range(100):  # three pages of the log at least
        if session.scalar(count) > 100:
            break
        make_actor("startup")
    assert session.scalar(count) > 100
    # The pager keeps the filters (an empty one dropped) and moves only the page.
    second = text(signed_in.get("/staff/audit?from=2020-01-01&action=&page=2"))
    assert "第 2 /" in second
    assert '<a href="/staff/audit?from=2020-01-01&page=1" rel="prev">' in second
    assert '<a href="/staff/audit?from=2020-01-01&page=3" rel="next">' in second


@pytest.mark.parametrize("path", ["/staff/cycles", "/staff/cycles/1", "/staff/policy", "/staff/audit"])
def test_a_startups_person_gets_403_and_nobody_signed_in_goes_to_sign_in(client, session, make_actor, clock, path):  # noqa: F811
    assert client.get(path).headers["Location"].startswith("/sign-in?next=")
    actor = make_actor("startup")
    from broker.models import Startup

    uscc = session.get(Startup, actor.startup_id).uscc
    person = people.find_or_link(session, uscc, "ceo@startup.example.cn", "张总", "legal_representative", clock())
    with client.session_transaction() as cookie:
        cookie["person_id"] = person.id
        cookie["signed_in_at"] = cookie["last_seen"] = clock().isoformat()
    assert client.get(path).status_code == 403
    if path == "/staff/policy":
        before = session.scalar(sa.select(sa.func.count()).select_from(Policy))
        refused = client.post(path, data={"csrf_token": token_of(client, "/me"), "share_cap": "1"})
        assert refused.status_code == 403
        assert session.scalar(sa.select(sa.func.count()).select_from(Policy)) == before
    if path == "/staff/cycles":
        before = session.scalar(sa.select(sa.func.count()).select_from(MatchingCycle))
        refused = client.post(path, data={"csrf_token": token_of(client, "/me")})
        assert refused.status_code == 403
        assert session.scalar(sa.select(sa.func.count()).select_from(MatchingCycle)) == before


def test_staff_run_a_cycle_now_and_land_on_its_review_queue(signed_in, session, market):  # noqa: F811
    before = set(session.scalars(sa.select(MatchingCycle.id)))
    ran = signed_in.post("/staff/cycles", data={"csrf_token": token_of(signed_in, "/staff/cycles")})
    assert ran.status_code == 303
    (cycle_id,) = set(session.scalars(sa.select(MatchingCycle.id))) - before
    assert ran.headers["Location"] == f"/staff/cycles/{cycle_id}/review"
    assert session.get(MatchingCycle, cycle_id).status.value == "proposed"
    assert "审批队列" in text(signed_in.get(ran.headers["Location"]))


def test_a_cycle_already_running_is_said_in_words_and_no_second_one_starts(signed_in, session, market, clock):  # noqa: F811
    running = MatchingCycle(scheduled_for=clock())
    session.add(running)
    session.flush()
    running.start(clock())
    session.flush()
    before = session.scalar(sa.select(sa.func.count()).select_from(MatchingCycle))
    refused = signed_in.post("/staff/cycles", data={"csrf_token": token_of(signed_in, "/staff/cycles")})
    assert refused.status_code == 303 and refused.headers["Location"] == "/staff/cycles"
    assert "已有一轮撮合正在运行" in text(signed_in.get("/staff/cycles"))
    assert session.scalar(sa.select(sa.func.count()).select_from(MatchingCycle)) == before
