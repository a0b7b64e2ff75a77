"""`broker simulate idp --port N`: a local OpenID Connect identity provider for the demo and tests.

It stands in for Shanghai's unified government login (一网通办): authorization code flow only,
PKCE with S256 required of every client, ID tokens signed RS256 with a key generated when the
app is built (published at /jwks), discovery at /.well-known/openid-configuration. The tester
picks a user on the login page; there is no password, and the page says so.

Each user carries the claims the broker signs people in by: `uscc` (the company's unified social
credit code; `company_name` its registered name, optional) with `company_role` (legal_representative,
administrator, agent), or `district_role` (staff, admin) for a person of the district. Users and
clients come from JSON files or the built-in demo ones. Everything lives in memory: a restart
forgets issued codes and makes a new key.

It lives beside the carrier simulators because it is one: a stand-in for an outside party, run
as its own process, never imported by the broker.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, Response, jsonify, request
from joserfc.jwk import RSAKey

COMPANY_ROLES = ("legal_representative", "administrator", "agent")
DISTRICT_ROLES = ("staff", "admin")
CODE_TTL = 300  # seconds an authorization code may wait for its exchange

# The demo's people. 913101053AGYGLUY3E is the code `broker demo` registers its first startup
# (硅巷智驾科技) under; 91310105MA1FL00017 is well formed but held by no demo company, to try
# signing in as someone whose company is not registered.
DEMO_USERS: tuple[dict[str, Any], ...] = (
    {"sub": "demo-legal-rep", "name": "王建国", "email": "wang.jianguo@example.com",
     "uscc": "913101053AGYGLUY3E", "company_role": "legal_representative"},
    {"sub": "demo-admin", "name": "李晓梅", "email": "li.xiaomei@example.com",
     "uscc": "913101053AGYGLUY3E", "company_role": "administrator"},
    {"sub": "demo-agent", "name": "张伟", "email": "zhang.wei@example.com",
     "uscc": "913101053AGYGLUY3E", "company_role": "agent"},
    {"sub": "demo-unregistered", "name": "刘洋", "email": "liu.yang@example.com",
     "uscc": "91310105MA1FL00017", "company_role": "legal_representative", "company_name": "上海硅巷未来科技有限公司"},
    {"sub": "demo-staff", "name": "陈静", "email": "chen.jing@changning.example.gov.cn",
     "district_role": "staff"},
)

DEMO_CLIENT: dict[str, Any] = {
    "client_id": "broker-console",
    "client_secret": "broker-console-demo-secret",
    "redirect_uris": ["http://127.0.0.1:5000/oidc/callback", "http://localhost:5000/oidc/callback"],
}


@dataclass(frozen=True)
class IdpUser:
    """A person the simulator can sign in, with the claims it issues for them."""

    sub: str
    name: str
    email: str
    uscc: str | None = None
    company_role: str | None = None
    district_role: str | None = None
    company_name: str | None = None  # the company's registered name (with uscc)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> IdpUser:
        user = cls(**{key: data.get(key) for key in ("sub", "name", "email", "uscc", "company_role", "district_role",
                                                          "company_name")})
        if not user.sub or not user.name:
            raise ValueError(f"an IdP user needs sub and name: {data!r}")
        if user.company_role is not None and (user.company_role not in COMPANY_ROLES or not user.uscc):
            raise ValueError(f"user {user.sub!r}: company_role must be one of {', '.join(COMPANY_ROLES)}, with a uscc")
        if user.district_role is not None and user.district_role not in DISTRICT_ROLES:
            raise ValueError(f"user {user.sub!r}: district_role must be one of {', '.join(DISTRICT_ROLES)}")
        return user

    def claims(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass
class IdpClient(ClientMixin):
    """A registered relying party: confidential, code flow only, exact redirect URIs."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in ("openid", "profile", "email"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class IssuedCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: IdpUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None

    def is_expired(self) -> bool:
        return time.time() > self.auth_time + CODE_TTL


class Store:
    """Codes and nonces in memory: a code works once, a nonce is accepted once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, IssuedCode] = {}
        self.nonces: set[tuple[str, str]] = set()
        self.tokens_issued = 0


class RequiredS256(CodeChallenge):
    """PKCE for every client, S256 only: Authlib's CodeChallenge lets a request without a challenge through."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE is required with code_challenge_method=S256")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: IssuedCode) -> str | None:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: IssuedCode) -> str | None:
        return authorization_code.code_challenge_method


def create_app(
    users: list[dict[str, Any]] | None = None,
    clients: list[dict[str, Any]] | None = None,
    *,
    token_ttl: int = 600,
    issuer: str | None = None,
) -> Flask:
    """The identity provider app. `token_ttl`: seconds an ID token is valid (short for tests)."""
    people = {user.sub: user for user in map(IdpUser.from_mapping, users or DEMO_USERS)}
    registered = {c["client_id"]: IdpClient(c["client_id"], c["client_secret"], list(c["redirect_uris"]))
                  for c in (clients or [DEMO_CLIENT])}
    key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_urlsafe(8), "use": "sig", "alg": "RS256"})
    store = Store()

    app = Flask(__name__)
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": token_ttl}
    app.extensions["idp.store"] = store

    def issuer_url() -> str:
        return issuer or request.host_url.rstrip("/")

    class Code(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, req: Any) -> None:
            data = req.payload.data
            with store.lock:
                store.codes[code] = IssuedCode(
                    code, req.client.client_id, req.payload.redirect_uri, req.payload.scope, req.user,
                    data.get("nonce"), data.get("code_challenge"), data.get("code_challenge_method"),
                )
                if data.get("nonce"):
                    store.nonces.add((req.client.client_id, data["nonce"]))

        def query_authorization_code(self, code: str, client: IdpClient) -> IssuedCode | None:
            with store.lock:
                found = store.codes.get(code)
            if found is None or found.client_id != client.client_id or found.is_expired():
                return None
            return found

        def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
            with store.lock:
                store.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: IssuedCode) -> IdpUser:
            return authorization_code.user

    class Identity(OpenIDCode):
        DEFAULT_EXPIRES_IN = token_ttl

        def exists_nonce(self, nonce: str, req: Any) -> bool:
            with store.lock:
                return (req.payload.client_id, nonce) in store.nonces

        def resolve_client_private_key(self, client: IdpClient) -> RSAKey:
            return key

        def get_client_algorithm(self, client: IdpClient) -> str:
            return "RS256"

        def get_encode_header(self, client: IdpClient) -> dict[str, str]:
            return {"alg": "RS256", "kid": key.kid}

        def get_client_claims(self, client: IdpClient) -> dict[str, Any]:
            now = int(time.time())
            return {"iss": issuer_url(), "aud": [client.client_id], "iat": now, "exp": now + token_ttl}

        def generate_user_info(self, user: IdpUser, scope: str) -> UserInfo:
            return UserInfo(user.claims())

    def save_token(token: dict[str, Any], req: Any) -> None:
        with store.lock:
            store.tokens_issued += 1  # access tokens are not kept: the simulator has no userinfo API

    server = AuthorizationServer(app, query_client=registered.get, save_token=save_token)
    server.register_grant(Code, [RequiredS256(required=True), Identity(require_nonce=True)])

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Response:
        base = issuer_url()
        return jsonify(
            issuer=base,
            authorization_endpoint=f"{base}/authorize",
            token_endpoint=f"{base}/token",
            jwks_uri=f"{base}/jwks",
            response_types_supported=["code"],
            grant_types_supported=["authorization_code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            scopes_supported=["openid", "profile", "email"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            code_challenge_methods_supported=["S256"],
            claims_supported=["sub", "name", "email", "uscc", "company_role", "district_role", "company_name", "nonce"],
        )

    @app.get("/jwks")
    def jwks() -> Response:
        return jsonify(keys=[key.as_dict(private=False)])

    @app.get("/authorize")
    def authorize_page() -> Response:
        try:
            server.get_consent_grant(end_user=None)
        except OAuth2Error as error:
            return _error_page(error)
        return Response(_login_page(people, request.args.to_dict()), content_type="text/html; charset=utf-8")

    @app.post("/authorize")
    def authorize() -> Response:
        user = people.get(request.form.get("user", ""))
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            return _error_page(error)
        # No user chosen is a refusal: the client is sent back with error=access_denied.
        return server.create_authorization_response(grant_user=user, grant=grant)

    @app.post("/token")
    def token() -> Response:
        return server.create_token_response()

    @app.get("/_sim/stats")
    def stats() -> Response:
        with store.lock:
            return jsonify(codes_waiting=len(store.codes), tokens_issued=store.tokens_issued)

    return app


def _error_page(error: OAuth2Error) -> Response:
    text = html.escape(f"{error.error}: {error.description or ''}")
    return Response(f"<!doctype html><meta charset=utf-8><title>登录请求无效 Invalid sign-in request</title>"
                    f"<h1>登录请求无效 · Invalid sign-in request</h1><p>{text}</p>",
                    status=400, content_type="text/html; charset=utf-8")


def _login_page(people: dict[str, IdpUser], query: dict[str, str]) -> str:
    rows = []
    for index, user in enumerate(people.values()):
        if user.district_role:
            role = f"区政府 {user.district_role} · district {user.district_role}"
        else:
            role = f"{user.uscc} · {user.company_role}"
        checked = " checked" if index == 0 else ""
        rows.append(
            f'<li><label><input type="radio" name="user" value="{html.escape(user.sub)}"{checked}> '
            f"{html.escape(user.name)} &lt;{html.escape(user.email or '')}&gt; — {html.escape(role)}</label></li>"
        )
    return (
        "<!doctype html><html lang=zh-CN><meta charset=utf-8>"
        "<title>一网通办（模拟） Unified login (simulator)</title>"
        "<h1>一网通办 统一身份认证（模拟器）</h1>"
        '<p role="note"><strong>这是模拟器：无需密码，选择一位用户即可登录。</strong><br>'
        "This is a simulator: there is no password; pick a user to sign in as.</p>"
        f'<form method="post" action="/authorize?{html.escape(urlencode(query))}">'
        f'<fieldset><legend>选择用户 Choose a user</legend><ul>{"".join(rows)}</ul></fieldset>'
        '<button type="submit">登录 Sign in</button></form></html>'
    )


def load_json_list(path: str, what: str) -> list[dict[str, Any]]:
    """A JSON file holding a list of objects (users or clients), or ValueError saying what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"{what} file {path!r} cannot be read: {error}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"{what} file {path!r} must hold a JSON list of objects")
    return data
