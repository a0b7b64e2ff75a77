"""Sign-in through OpenID Connect over real HTTP: the local identity provider on 127.0.0.1 and
the broker's client, without a browser (the tester's choice of user is a posted form)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

from adapters.simulators import idp
from broker.clock import utcnow
from broker.oidc import (
    LEEWAY_SECONDS,
    OidcClient,
    OidcSettings,
    PendingSignIn,
    ProviderMisconfigured,
    SignInRefused,
)

REDIRECT = "http://127.0.0.1:5999/oidc/callback"
CLIENT = {"client_id": "broker-test", "client_secret": "s3cret-for-tests", "redirect_uris": [REDIRECT]}
OTHER = {"client_id": "other-app", "client_secret": "other-secret", "redirect_uris": [REDIRECT]}
TOKEN_TTL = 30  # short-lived ID tokens, so a clock a minute and a half ahead sees them expired


def serve(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture(scope="module")
def idp_url() -> Iterator[str]:
    yield from serve(idp.create_app(clients=[CLIENT, OTHER], token_ttl=TOKEN_TTL))


def client_for(idp_url: str, registered: dict = CLIENT, **options) -> OidcClient:
    settings = OidcSettings(f"{idp_url}/.well-known/openid-configuration",
                            registered["client_id"], registered["client_secret"])
    return OidcClient(settings, timeout=5, **options)


@pytest.fixture
def client(idp_url: str) -> OidcClient:
    return client_for(idp_url)


def pick_user(idp_url: str, authorize_url: str, user: str) -> dict[str, str]:
    """What a tester does on the login page: choose `user` and submit; the callback's query arguments."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    assert "模拟器" in page.text and "simulator" in page.text and "no password" in page.text
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    answer = requests.post(urljoin(idp_url, action), data={"user": user}, timeout=5, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query))


def sign_in(client: OidcClient, idp_url: str, user: str = "demo-staff") -> tuple[PendingSignIn, dict[str, str]]:
    url, pending = client.begin(REDIRECT)
    # The web layer keeps the pending sign-in in the browser's session: it survives the round trip.
    pending = PendingSignIn.from_dict(json.loads(json.dumps(pending.as_dict())))
    return pending, pick_user(idp_url, url, user)


def test_discovery_names_the_endpoints_and_requires_s256(idp_url):
    document = requests.get(f"{idp_url}/.well-known/openid-configuration", timeout=5).json()
    assert document["issuer"] == idp_url
    assert document["code_challenge_methods_supported"] == ["S256"]
    keys = requests.get(document["jwks_uri"], timeout=5).json()["keys"]
    assert [key["kty"] for key in keys] == ["RSA"] and "d" not in keys[0]  # the public half only


def test_a_company_person_signs_in_and_the_claims_name_company_and_role(client, idp_url):
    url, pending = client.begin(REDIRECT)
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["code_challenge_method"] == "S256" and query["nonce"] == pending.nonce
    assert query["state"] == pending.state and "code_verifier" not in query
    claims = client.complete(pending, pick_user(idp_url, url, "demo-legal-rep"))
    assert (claims.subject, claims.name, claims.uscc, claims.company_role, claims.district_role) == (
        "demo-legal-rep", "王建国", "913101053AGYGLUY3E", "legal_representative", None)
    assert claims.issuer == idp_url and claims.email == "wang.jianguo@example.com" and not claims.is_district


def test_a_district_person_signs_in_with_a_district_role(client, idp_url):
    claims = client.complete(*sign_in(client, idp_url, "demo-staff"))
    assert (claims.subject, claims.district_role, claims.uscc, claims.company_role) == ("demo-staff", "staff", None, None)
    assert claims.is_district


def test_a_provider_that_restarted_with_a_new_key_is_still_trusted_after_its_keys_are_fetched_again():
    # The simulator makes a key each time it starts; a client that cached the old key set
    # meets an unknown key id and fetches the set again, once.
    apps = [idp.create_app(clients=[CLIENT]), idp.create_app(clients=[CLIENT])]

    def current(environ, start_response):
        return apps[0](environ, start_response)

    for url in serve(current):
        client = client_for(url)
        assert client.complete(*sign_in(client, url)).subject == "demo-staff"
        apps.pop(0)  # "restarted": same address, new key
        assert client.complete(*sign_in(client, url)).subject == "demo-staff"


def test_an_answer_for_another_sign_in_is_refused(client, idp_url):
    pending, callback = sign_in(client, idp_url)
    with pytest.raises(SignInRefused, match="state mismatch"):
        client.complete(pending, {**callback, "state": "someone-elses-state"})
    with pytest.raises(SignInRefused, match="No sign-in is under way"):
        client.complete(PendingSignIn.from_dict(None), callback)


def test_a_code_works_once(client, idp_url):
    pending, callback = sign_in(client, idp_url)
    assert client.complete(pending, callback).subject == "demo-staff"
    with pytest.raises(SignInRefused, match="invalid_grant"):
        client.complete(pending, callback)


def test_a_tampered_id_token_is_refused(client, idp_url):
    pending, callback = sign_in(client, idp_url, "demo-agent")
    token = client.exchange_code(pending, callback["code"])
    header, payload, signature = token["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["company_role"] == "agent"
    claims["company_role"] = "legal_representative"  # an agent promoting themselves
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(SignInRefused, match="signature does not verify"):
        client.verify_id_token(f"{header}.{forged}.{signature}", pending.nonce)
    with pytest.raises(SignInRefused, match="signature does not verify"):
        client.verify_id_token(f"{header}.{payload}.", pending.nonce)  # signature stripped
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(SignInRefused, match="signature does not verify"):
        client.verify_id_token(f"{unsigned}.{forged}.", pending.nonce)
    # The untouched token verifies: it was the edit that failed it.
    assert client.verify_id_token(token["id_token"], pending.nonce)["company_role"] == "agent"


def test_an_id_token_for_another_nonce_is_refused(client, idp_url):
    pending, callback = sign_in(client, idp_url)
    token = client.exchange_code(pending, callback["code"])
    with pytest.raises(SignInRefused, match="nonce"):
        client.verify_id_token(token["id_token"], "a-nonce-from-another-sign-in")


def test_an_id_token_issued_to_another_client_is_refused(client, idp_url):
    other = client_for(idp_url, OTHER)
    pending, callback = sign_in(other, idp_url)
    token = other.exchange_code(pending, callback["code"])
    with pytest.raises(SignInRefused, match="aud"):
        client.verify_id_token(token["id_token"], pending.nonce)


def test_an_expired_id_token_is_refused(idp_url):
    ahead = dt.timedelta(seconds=TOKEN_TTL + LEEWAY_SECONDS + 5)
    late = client_for(idp_url, clock=lambda: utcnow() + ahead)  # the answer arrives after the token expired
    with pytest.raises(SignInRefused, match="expired"):
        late.complete(*sign_in(late, idp_url))


def test_a_refusal_at_the_provider_is_reported(client, idp_url):
    url, pending = client.begin(REDIRECT)
    callback = pick_user(idp_url, url, "")  # the tester submits without choosing anyone
    assert callback["error"] == "access_denied"
    with pytest.raises(SignInRefused, match="access_denied"):
        client.complete(pending, callback)


def test_pkce_is_required_at_both_ends(client, idp_url):
    pending, callback = sign_in(client, idp_url)
    with pytest.raises(SignInRefused, match="no PKCE code verifier"):
        client.complete(replace(pending, code_verifier=""), callback)
    # Sent anyway, without the verifier, the provider refuses the exchange...
    answer = requests.post(f"{idp_url}/token", timeout=5, auth=(CLIENT["client_id"], CLIENT["client_secret"]),
                           data={"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": REDIRECT})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert "code_verifier" in answer.json()["error_description"]
    # ...and with another sign-in's verifier too.
    other_pending, other_callback = sign_in(client, idp_url)
    with pytest.raises(SignInRefused, match="invalid_grant"):
        client.complete(replace(other_pending, code_verifier=pending.code_verifier), other_callback)
    # An authorization request without a challenge, or with the plain method, is refused before login.
    url, _ = client.begin(REDIRECT)
    without = re.sub(r"&code_challenge(_method)?=[^&]*", "", url)
    page = requests.get(without, timeout=5)
    assert page.status_code == 400 and "code_challenge" in page.text
    plain = requests.get(url.replace("code_challenge_method=S256", "code_challenge_method=plain"), timeout=5)
    assert plain.status_code == 400


def test_a_redirect_uri_the_client_did_not_register_is_refused(client, idp_url):
    url, _ = client.begin("http://127.0.0.1:5999/elsewhere")
    page = requests.get(url, timeout=5)
    assert page.status_code == 400 and "redirect" in page.text.lower()


@pytest.mark.parametrize("url, production, reason", [
    ("http://203.0.113.7/.well-known/openid-configuration", True, "https in production"),
    ("http://127.0.0.1:9/.well-known/openid-configuration", True, "https in production"),
    ("http://203.0.113.7/.well-known/openid-configuration", False, "only to 127.0.0.1 or localhost"),
    ("http://2130706433/.well-known/openid-configuration", False, "only to 127.0.0.1 or localhost"),
    ("ftp://127.0.0.1/.well-known/openid-configuration", False, "https URL"),
    ("https://user:pw@login.example.gov.cn/.well-known/openid-configuration", True, "https URL"),
])
def test_a_discovery_url_the_broker_may_not_fetch_is_refused(url, production, reason):
    with pytest.raises(ProviderMisconfigured, match=reason):
        OidcClient(OidcSettings(url, "id", "secret", production=production))


def test_https_discovery_is_accepted_in_production_and_fetched_only_when_needed():
    OidcClient(OidcSettings("https://login.example.gov.cn/.well-known/openid-configuration", "id", "secret",
                            production=True))


def test_discovery_that_names_another_issuer_or_plain_http_endpoints_is_refused():
    from flask import Flask, jsonify

    app = Flask("lying-provider")

    @app.get("/.well-known/openid-configuration")
    def discovery():
        return jsonify(issuer="https://elsewhere.example", authorization_endpoint="http://203.0.113.7/authorize",
                       token_endpoint="http://203.0.113.7/token", jwks_uri="http://203.0.113.7/jwks")

    for url in serve(app):
        lying = client_for(url)
        with pytest.raises(ProviderMisconfigured, match="names another issuer"):
            lying.begin(REDIRECT)


def test_an_unreachable_provider_is_reported_not_raised_raw():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderMisconfigured, match="could not be fetched"):
        client_for(f"http://127.0.0.1:{port}").begin(REDIRECT)


def test_broker_simulate_idp_serves_the_provider_in_its_own_process(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    users = tmp_path / "users.json"
    users.write_text(json.dumps([{"sub": "u1", "name": "测试员", "email": "t@example.cn", "district_role": "admin"}]))
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps([CLIENT]))
    process = subprocess.Popen(
        [sys.executable, "-m", "broker", "simulate", "idp", "--port", str(port),
         "--users", str(users), "--clients", str(clients), "--token-ttl", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/.well-known/openid-configuration", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the identity provider did not start"
                time.sleep(0.2)
        client = client_for(base)
        claims = client.complete(*sign_in(client, base, "u1"))
        assert (claims.subject, claims.name, claims.district_role) == ("u1", "测试员", "admin")
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()
