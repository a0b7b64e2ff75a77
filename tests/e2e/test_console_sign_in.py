"""Signing in to the console and one's own account, through the test client: a password (wrong,
locked out, right), sign-out, `next` kept on this site, an invitation accepted once, a forgotten
password reset through the outbox, one's own API tokens, and the city's unified login (OIDC)
against the local identity provider over real HTTP."""

from __future__ import annotations

import datetime as dt
import html
import re
import threading
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from adapters.simulators import idp
from broker import outbox
from broker.models import AuditEntry, Role
from broker.models.people import SignInAttempt
from broker.oidc import OidcClient, OidcSettings
from broker.services import people
from broker.web.auth import OIDC_EXTENSION

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "长宁区硅巷-审核员-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)


def token_of(client, path: str = "/sign-in") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, email: str, password: str, next_: str | None = None):
    path = "/sign-in" + (f"?next={next_}" if next_ else "")
    return client.post(path, data={"email": email, "password": password, "csrf_token": token_of(client)})


@pytest.fixture
def staff_person(session, frozen_clock):
    frozen_clock(MONDAY_0900)
    return people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)


def test_a_password_sign_in_then_my_account_then_sign_out(client, staff_person):
    wrong = sign_in(client, "Shen.Hui@changning.example.gov.cn", "not the password at all")
    assert wrong.status_code == 401
    assert "邮箱或密码不正确" in wrong.get_data(as_text=True)
    assert client.get("/me").headers["Location"].startswith("/sign-in?next=/me")  # not signed in
    right = sign_in(client, "shen.hui@changning.example.gov.cn", PASSWORD)
    assert right.status_code == 303 and right.headers["Location"] == "/staff"  # district staff land on their workbench
    page = client.get("/me").get_data(as_text=True)
    assert "沈慧" in page and "区科委工作人员" in page and "退出" in page
    out = client.post("/sign-out", data={"csrf_token": token_of(client, "/me")})
    assert out.status_code == 303
    assert client.get("/me").status_code == 302


def test_next_goes_back_to_a_page_of_this_site_only(client, staff_person):
    assert sign_in(client, staff_person.email, PASSWORD, next_="/notices/1").headers["Location"] == "/notices/1"
    client.post("/sign-out", data={"csrf_token": token_of(client, "/me")})
    assert sign_in(client, staff_person.email, PASSWORD, next_="//evil.example/x").headers["Location"] == "/staff"


def test_five_failures_lock_the_person_out_with_when_to_try_again(client, staff_person):
    for _ in range(5):
        assert sign_in(client, staff_person.email, "wrong wrong wrong").status_code == 401
    locked = sign_in(client, staff_person.email, PASSWORD)  # even the right password, for now
    assert locked.status_code == 401
    assert "账号暂时锁定" in locked.get_data(as_text=True) and "2026年11月30日 09:01" in locked.get_data(as_text=True)


def test_a_sign_in_form_without_its_csrf_token_is_refused(client, staff_person):
    refused = client.post("/sign-in", data={"email": staff_person.email, "password": PASSWORD})
    assert refused.status_code == 400
    assert client.get("/me").status_code == 302  # and nobody was signed in


def test_my_own_api_tokens_are_made_and_revoked_from_the_console(client, staff_person):
    sign_in(client, staff_person.email, PASSWORD)
    made = client.post("/me/tokens", data={"csrf_token": token_of(client, "/me"), "expires_in_days": "30"})
    assert made.status_code == 303
    page = client.get("/me").get_data(as_text=True)
    secret = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    assert "id=\"new-token\"" not in client.get("/me").get_data(as_text=True)  # shown once
    assert client.get("/api/v1/policy", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    token_id = int(re.search(r'/me/tokens/(\d+)/revoke', client.get("/me").get_data(as_text=True)).group(1))
    revoked = client.post(f"/me/tokens/{token_id}/revoke", data={"csrf_token": token_of(client, "/me")})
    assert revoked.status_code == 303 and "令牌已吊销" in client.get("/me").get_data(as_text=True)
    assert client.get("/api/v1/policy", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_an_invitation_is_accepted_once_and_signs_the_person_in(app, client, session, frozen_clock):
    frozen_clock(MONDAY_0900)
    _invitation, link = people.invite_at_console(session, "gu.min@changning.example.gov.cn", "顾敏", Role.staff,
                                                 MONDAY_0900, "http://localhost")
    path = urlsplit(link).path
    page = client.get(path)
    assert page.status_code == 200 and "gu.min@changning.example.gov.cn" in page.get_data(as_text=True)
    short = client.post(path, data={"name": "顾敏", "password": "short", "csrf_token": token_of(client, path)})
    assert short.status_code == 422 and "密码至少需要 12 个字符" in short.get_data(as_text=True)
    accepted = client.post(path, data={"name": "顾敏", "password": PASSWORD, "csrf_token": token_of(client, path)})
    assert accepted.status_code == 303 and accepted.headers["Location"] == "/me"
    assert "顾敏" in client.get("/me").get_data(as_text=True)
    assert client.get(path).status_code == 404  # single use


def test_a_forgotten_password_is_reset_through_the_emailed_link(app, client, session, staff_person, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))  # the outbox's folder, this test's own
    asked = client.post("/forgot-password", data={"email": staff_person.email, "csrf_token": token_of(client, "/forgot-password")})
    unknown = client.post("/forgot-password", data={"email": "nobody@example.cn", "csrf_token": token_of(client, "/forgot-password")})
    assert asked.get_data(as_text=True) == unknown.get_data(as_text=True)  # no hint which emails exist
    outbox.deliver_pending(session, outbox.MailSettings.from_config(app.config, app.instance_path), MONDAY_0900)
    page = client.get("/dev/outbox").get_data(as_text=True)
    link = re.search(r"https?://[^\s<]+/password-reset/[A-Za-z0-9_\-]+", html.unescape(page)).group(0)
    path = urlsplit(link).path
    new_password = "新的密码-不常见-2026-12"
    reset = client.post(path, data={"password": new_password, "csrf_token": token_of(client, path)})
    assert reset.status_code == 200 and "密码已重置" in reset.get_data(as_text=True)
    assert sign_in(client, staff_person.email, PASSWORD).status_code == 401
    assert sign_in(client, staff_person.email, new_password).status_code == 303


# -- the city's unified login, against the local identity provider on 127.0.0.1 -----------------


@pytest.fixture
def idp_url(app) -> Iterator[str]:
    users = [{"sub": "shen", "name": "沈慧", "email": "shen.hui@changning.example.gov.cn", "district_role": "staff"},
             {"sub": "stranger", "name": "路人", "email": "lu.ren@example.cn", "district_role": "staff"}]
    yield from serve_idp(app, users)


def serve_idp(app, users: list[dict]) -> Iterator[str]:
    """The local identity provider with `users`, on 127.0.0.1, as `app`'s unified login; its URL."""
    clients = [{"client_id": "broker-test", "client_secret": "s3cret-for-tests",
                "redirect_uris": ["http://localhost/oidc/callback"]}]
    server = make_server("127.0.0.1", 0, idp.create_app(users=users, clients=clients), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    app.extensions[OIDC_EXTENSION] = OidcClient(OidcSettings(f"{url}/.well-known/openid-configuration", "broker-test",
                                                             "s3cret-for-tests"), timeout=5)
    try:
        yield url
    finally:
        app.extensions.pop(OIDC_EXTENSION, None)
        server.shutdown()
        thread.join(5)


def unified_login(client, idp_url: str, user: str):
    """The person presses the unified-login button, picks `user` at the provider, and comes back."""
    started = client.post("/oidc/start", data={"csrf_token": token_of(client), "next": ""})
    assert started.status_code == 303
    page = requests.get(started.headers["Location"], timeout=5)
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    answer = requests.post(urljoin(idp_url, action), data={"user": user}, timeout=5, allow_redirects=False)
    back = urlsplit(answer.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def test_a_district_person_signs_in_through_the_unified_login(client, staff_person, idp_url):
    assert "通过“一网通办”登录" in client.get("/sign-in").get_data(as_text=True)
    back = unified_login(client, idp_url, "shen")
    assert back.status_code == 303 and back.headers["Location"] == "/staff"
    assert "沈慧" in client.get("/me").get_data(as_text=True)


def test_the_unified_login_of_someone_the_district_never_invited_is_refused_and_recorded(client, session, staff_person, idp_url):
    back = unified_login(client, idp_url, "stranger")
    assert back.status_code == 401 and "该身份尚未在平台登记" in back.get_data(as_text=True)
    assert client.get("/me").status_code == 302
    attempt = session.scalars(sa.select(SignInAttempt).order_by(SignInAttempt.id.desc())).first()
    assert (attempt.email, attempt.source, attempt.outcome.value, attempt.person_id) == (
        "lu.ren@example.cn", "oidc", "unknown_email", None)
    audited = session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_type == "sign_in_attempts",
                                                          AuditEntry.entity_id == attempt.id)).one()
    assert audited.action == "sign_in_failed"


def test_a_forged_callback_is_refused_and_recorded(client, session, staff_person, idp_url):
    forged = client.get("/oidc/callback?code=made-up&state=made-up")
    assert forged.status_code == 401 and "统一身份认证登录未成功" in forged.get_data(as_text=True)
    attempt = session.scalars(sa.select(SignInAttempt).order_by(SignInAttempt.id.desc())).first()
    assert (attempt.email, attempt.source, attempt.outcome.value) == (people.UNVERIFIED, "oidc", "unknown_email")


def test_the_unified_login_is_not_offered_when_no_provider_is_configured(client):
    assert "一网通办" not in client.get("/sign-in").get_data(as_text=True)
    assert client.post("/oidc/start", data={"csrf_token": token_of(client)}).status_code == 404
