"""Signing in to the console in a real browser: with a password, and through the city's unified
login (the local identity provider on 127.0.0.1); my account and its API tokens; sign-out; a
person who is not signed in is sent to the sign-in page. axe-core finds nothing serious."""

from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from adapters.simulators import idp
from broker.models import Role
from broker.models.people import Person
from broker.oidc import OidcClient, OidcSettings
from broker.services import people
from broker.web.auth import OIDC_EXTENSION

PASSWORD = "长宁区硅巷-浏览器-2026"


@pytest.fixture
def staff_email(session) -> str:
    """The browser tests share one committed database: the person is made once. The session's
    transaction is ended before the browser acts (on SQLite an open one would hold the write lock
    the server thread needs)."""
    email = "shen.hui@changning.example.gov.cn"
    if session.scalar(sa.select(Person.id).where(Person.email_key == email)) is None:
        people.create_district_person(session, email, "沈慧", Role.staff, PASSWORD)
    session.commit()
    return email


def test_a_password_sign_in_my_account_and_sign_out(page, staff_email, axe, screenshot):
    page.goto("/me")
    page.wait_for_url(re.compile(r"/sign-in\?next=/me$"))  # not signed in: the sign-in page, then back
    assert page.locator("h1").inner_text() == "登录"
    assert axe(page) == []
    screenshot(page, "sign_in")
    page.get_by_label("邮箱").fill(staff_email)
    page.get_by_label("密码").fill("not the password")
    page.get_by_role("button", name="登录", exact=True).click()
    assert "邮箱或密码不正确" in page.locator("#error-message").inner_text()
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(re.compile(r"/me$"))
    assert page.locator("#person-name").inner_text() == "沈慧"
    assert "区科委工作人员" in page.locator("#person-role").inner_text()
    page.get_by_role("button", name="创建令牌").click()
    page.wait_for_url(re.compile(r"/me$"))
    assert page.locator("#new-token").inner_text().startswith("sab_")
    assert axe(page) == []
    page.reload()  # the secret is shown once: the screenshot keeps only its prefix
    assert page.locator("#new-token").count() == 0
    screenshot(page, "my_account")
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_role("link", name="登录", exact=True).count() == 1


def test_signing_in_through_the_unified_login(app, page, live_server, staff_email, axe):
    users = [{"sub": "shen", "name": "沈慧", "email": staff_email, "district_role": "staff"}]
    clients = [{"client_id": "broker-browser", "client_secret": "browser-secret",
                "redirect_uris": [f"{live_server}/oidc/callback"]}]
    server = make_server("127.0.0.1", 0, idp.create_app(users=users, clients=clients), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.extensions[OIDC_EXTENSION] = OidcClient(OidcSettings(
        f"http://127.0.0.1:{server.server_port}/.well-known/openid-configuration", "broker-browser", "browser-secret"),
        timeout=5)
    try:
        page.goto("/sign-in")
        assert axe(page) == []
        page.get_by_role("button", name="通过“一网通办”登录").click()
        page.wait_for_url(re.compile(rf"^http://127\.0\.0\.1:{server.server_port}/"))  # at the identity provider
        page.locator("input[value=shen]").check()
        page.get_by_role("button", name="登录 Sign in").click()
        page.wait_for_url(re.compile(r"/staff$"))  # district staff land on their workbench
        assert page.locator("h1").inner_text() == "工作台"
        page.goto("/me")
        assert page.locator("#person-name").inner_text() == "沈慧"
    finally:
        app.extensions.pop(OIDC_EXTENSION, None)
        server.shutdown()
        thread.join(5)
