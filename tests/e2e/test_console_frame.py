"""The console's frame over HTTP: the landing page, the language switch and its CSRF check, the
session cookie's flags and its idle expiry, and error pages that are pages in the console and
JSON under /api."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from broker import create_app
from broker.web import session as console_session
from broker.web.errors import error_page

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(client) -> str:
    return CSRF.search(client.get("/").get_data(as_text=True)).group(1)


def test_the_landing_page_answers_in_chinese_with_a_sign_in_link(client):
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert '<html lang="zh-CN">' in html and "<h1" in html and "上海硅巷资源撮合平台" in html
    assert 'href="/sign-in"' in html and 'href="#main"' in html


def test_the_language_switch_is_a_post_with_csrf_that_sets_a_cookie(client):
    token = _token(client)
    switched = client.post("/language", data={"language": "en", "next": "/notices/1", "csrf_token": token})
    assert switched.status_code == 303 and switched.headers["Location"] == "/notices/1"
    cookie = switched.headers["Set-Cookie"]
    assert cookie.startswith("broker_lang=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)
    # Only a local path to go back to; anything else goes home. An unknown language changes nothing.
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        away = client.post("/language", data={"language": "zh_CN", "next": elsewhere, "csrf_token": token})
        assert away.headers["Location"] == "/"
    unknown = client.post("/language", data={"language": "fr", "csrf_token": token})
    assert unknown.status_code == 303 and "Set-Cookie" not in unknown.headers


def test_a_console_form_without_its_csrf_token_is_refused_with_a_chinese_page(client):
    refused = client.post("/language", data={"language": "en"})
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert "缺少安全校验" in refused.get_data(as_text=True)
    assert client.post("/language", data={"language": "en", "csrf_token": "forged"}).status_code == 400


def test_the_api_needs_no_csrf_token_and_keeps_answering_json(client, make_actor):
    staff = make_actor("staff")
    # A bearer-token POST, with no CSRF token anywhere: not refused for CSRF.
    answered = client.post("/api/v1/cycles", json={}, headers=staff.headers)
    assert answered.status_code == 201, answered.json
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.is_json and "message" in missing.json
    assert client.get("/healthz").is_json


def test_console_errors_are_pages_in_the_visitors_language(client, app):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "页面不存在" in missing.get_data(as_text=True)
    with app.test_request_context("/somewhere"):
        for status, title in ((403, "无权访问"), (500, "系统出错了"), (405, "请求方式不被允许")):
            html, code = error_page(status)
            assert code == status and title in html and '<main id="main"' in html
    with app.test_request_context("/somewhere", headers={"Cookie": "broker_lang=en"}):
        html, _ = error_page(403)
        assert "Access denied" in html


def test_the_session_cookie_is_httponly_lax_and_secure_only_in_production(app, tmp_path):
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is False  # test: plain http on 127.0.0.1
    production = create_app({
        "BROKER_ENV": "production", "SECRET_KEY": "s" * 32, "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "postgresql+psycopg://broker@127.0.0.1:1/never-connected",
    })
    assert production.config["SESSION_COOKIE_SECURE"] is True


def test_the_session_holds_only_the_person_and_two_moments(app):
    with app.test_request_context("/"):
        assert console_session.current_person_id() is None
        console_session.start(42)
        from flask import session

        assert set(session) == {"person_id", "signed_in_at", "last_seen"}  # and no database was asked
        assert console_session.current_person_id() == 42
        console_session.end()
        assert console_session.current_person_id() is None and dict(session) == {}


@pytest.mark.parametrize(("idle", "still_signed_in"), [(dt.timedelta(minutes=29), True),
                                                        (dt.timedelta(minutes=31), False)])
def test_a_session_idle_past_the_limit_ends(app, client, frozen_clock, idle, still_signed_in):
    clock = frozen_clock(dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.timezone.utc))
    assert app.config["SESSION_IDLE_MINUTES"] == 30
    with client.session_transaction() as stored:
        stored.update(person_id=7, signed_in_at=clock().isoformat(), last_seen=clock().isoformat())
    clock.advance(idle)
    html = client.get("/").get_data(as_text=True)
    with client.session_transaction() as stored:
        if still_signed_in:
            assert stored["person_id"] == 7 and stored["last_seen"] == clock().isoformat()
            assert '<a href="/sign-in">登录</a>' not in html  # the header's sign-in link is for the signed-out
        else:
            # Nothing of the person is left (Flask-WTF keeps its CSRF secret there, for the next form).
            assert set(stored) - {"csrf_token"} == set()
            assert "已自动退出" in html and '<a href="/sign-in">登录</a>' in html


def test_activity_keeps_a_session_alive(client, frozen_clock):
    clock = frozen_clock(dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.timezone.utc))
    with client.session_transaction() as stored:
        stored.update(person_id=7, signed_in_at=clock().isoformat(), last_seen=clock().isoformat())
    for _ in range(4):  # 80 minutes in all, never 30 without a request
        clock.advance(dt.timedelta(minutes=20))
        client.get("/")
    with client.session_transaction() as stored:
        assert stored["person_id"] == 7


def test_the_pager_keeps_the_path_the_other_lists_page_and_the_filters(app):
    """One pager macro for every paged list: path arguments, the query string and an anchor kept."""
    with app.test_request_context("/staff/carriers/unicom?page=3&failures_page=2&sync=&kind=gpu"):
        macro = app.jinja_env.get_template("_pager.html").module.pager
        html = str(macro("staff_carriers.carrier", 2, 4, param="failures_page", anchor="#failures", code="unicom"))
        assert '<a href="/staff/carriers/unicom?page=3&amp;failures_page=1&amp;kind=gpu#failures" rel="prev">' in html
        assert '<a href="/staff/carriers/unicom?page=3&amp;failures_page=3&amp;kind=gpu#failures" rel="next">' in html
        assert "第 2 / 4 页" in html and "sync=" not in html
        assert str(macro("staff_carriers.carrier", 1, 1, code="unicom")).strip() == ""  # one page: no pager
        last = str(macro("staff_audit.audit", 4, 4))
        assert 'rel="next"' not in last and 'rel="prev"' in last
