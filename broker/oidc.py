"""Sign-in through OpenID Connect: the broker as a client of the city's unified login (一网通办).

Authorization code flow with PKCE (S256), a confidential client, the provider found by its
discovery URL. Nothing here touches Flask's request or session: the web layer calls `begin`,
keeps the returned `PendingSignIn` in its session (`as_dict`/`from_dict`), sends the browser
to the URL, and on the callback hands the pending sign-in and the query arguments to `complete`,
which returns the verified `OidcClaims` or raises `SignInRefused` with a reason fit to show.

The provider's metadata and keys are fetched with requests (always a timeout, never following
a redirect) from https URLs only, or plain http to the loopback (the local simulator) outside
production, and cached for the life of the `OidcClient`: build one per app.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError, MissingKeyError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from broker.clock import utcnow
from broker.errors import NotAuthenticated
from broker.uscc import uscc_problem

COMPANY_ROLES = ("legal_representative", "administrator", "agent")
DISTRICT_ROLES = ("staff", "admin")
SCOPE = "openid profile email"
ALGORITHMS = ["RS256", "ES256", "PS256"]  # never "none", never HMAC with the client secret
METADATA_TTL = dt.timedelta(hours=1)
LEEWAY_SECONDS = 60  # clock skew allowed between the provider and the broker


class SignInRefused(NotAuthenticated):
    """The identity provider's answer can't sign anyone in; `message` says why."""


class ProviderMisconfigured(SignInRefused):
    """The discovery URL or what it serves is unusable: an operator's problem, not the person's (503)."""

    status_code = 503


@dataclass(frozen=True)
class OidcSettings:
    """What the broker needs to know about its identity provider."""

    discovery_url: str
    client_id: str
    client_secret: str
    production: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OidcSettings | None:
        """The app's settings (OIDC_DISCOVERY_URL, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET), or None if not configured."""
        url = config.get("OIDC_DISCOVERY_URL")
        if not url:
            return None
        return cls(str(url), str(config.get("OIDC_CLIENT_ID") or ""), str(config.get("OIDC_CLIENT_SECRET") or ""),
                   production=config.get("BROKER_ENV") == "production")


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the discovery document the client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class PendingSignIn:
    """What the web layer keeps in the browser's session between `begin` and `complete`."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PendingSignIn | None:
        """The pending sign-in stored by `as_dict`, or None when there is none (or it is damaged)."""
        if not isinstance(data, Mapping):
            return None
        try:
            return cls(**{key: str(data[key]) for key in ("state", "nonce", "code_verifier", "redirect_uri")})
        except KeyError:
            return None


@dataclass(frozen=True)
class OidcClaims:
    """Who the identity provider says signed in: a company's person (uscc + company_role) or the district's."""

    issuer: str
    subject: str
    name: str
    email: str | None
    uscc: str | None
    company_role: str | None
    district_role: str | None
    company_name: str | None = None  # the company's registered name, when the provider says it

    @property
    def is_district(self) -> bool:
        return self.district_role is not None


def claims_from_id_token(payload: Mapping[str, Any]) -> OidcClaims:
    """The verified ID token's claims as OidcClaims; SignInRefused if they can't name a person and a side."""
    def text(key: str) -> str | None:
        value = payload.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise SignInRefused(f"The identity provider sent a {key} that is not text.")
        return value.strip()

    subject, name = text("sub"), text("name")
    if not subject:
        raise SignInRefused("The identity provider did not say who signed in (no sub).")
    uscc, company_role, district_role = text("uscc"), text("company_role"), text("district_role")
    if uscc is not None:
        uscc = uscc.upper()
        problem = uscc_problem(uscc)
        if problem:
            raise SignInRefused(f"The identity provider sent a unified social credit code that is not valid: {problem}")
    if company_role is not None and company_role not in COMPANY_ROLES:
        raise SignInRefused(f"Unknown company role {company_role!r}; expected one of {', '.join(COMPANY_ROLES)}.")
    if district_role is not None and district_role not in DISTRICT_ROLES:
        raise SignInRefused(f"Unknown district role {district_role!r}; expected one of {', '.join(DISTRICT_ROLES)}.")
    if district_role is not None and (uscc or company_role):
        raise SignInRefused("The identity provider named both a company and a district role for one person.")
    if district_role is None and not (uscc and company_role):
        raise SignInRefused("The identity provider named no company (uscc with company_role) and no district role.")
    return OidcClaims(
        issuer=str(payload.get("iss") or ""), subject=subject, name=name or subject, email=text("email"),
        uscc=uscc, company_role=company_role, district_role=district_role,
        company_name=text("company_name") if uscc else None,
    )


def check_provider_url(url: str, *, production: bool, what: str = "The OIDC discovery URL") -> str:
    """`url` if the broker may fetch from it: https, or http to the loopback outside production.

    Not netguard's DestinationGuard: that one keeps webhooks (someone else's URL) off private and
    loopback addresses, while this URL is the operator's own setting and the simulator *is* on the
    loopback. The same spelling rules hold: no credentials in the URL, a host, a real port.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ProviderMisconfigured(f"{what} is not a URL: {url!r}.") from None
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("https", "http") or not host or "@" in parts.netloc or port == 0:
        raise ProviderMisconfigured(f"{what} must be an https URL with a host: {url!r}.")
    if parts.scheme == "http":
        if production:
            raise ProviderMisconfigured(f"{what} must use https in production: {url!r}.")
        if not _is_loopback(host):
            raise ProviderMisconfigured(f"{what} may use plain http only to 127.0.0.1 or localhost: {url!r}.")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback  # strict: 127.1 or 2130706433 is no address
    except ValueError:
        return False


class OidcClient:
    """The broker's OpenID Connect client for one provider; thread-safe, caches discovery and keys."""

    def __init__(
        self,
        settings: OidcSettings,
        *,
        http: requests.Session | None = None,
        timeout: float = 10.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if not settings.client_id or not settings.client_secret:
            raise ProviderMisconfigured("BROKER_OIDC_CLIENT_ID and BROKER_OIDC_CLIENT_SECRET must both be set.")
        check_provider_url(settings.discovery_url, production=settings.production)
        self.settings = settings
        self.http = http or requests.Session()
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._metadata_at: dt.datetime | None = None
        self._keys: KeySet | None = None

    # -- the flow -------------------------------------------------------------------------

    def begin(self, redirect_uri: str) -> tuple[str, PendingSignIn]:
        """The provider's authorize URL to send the browser to, and what to keep until the callback."""
        metadata = self.metadata()
        pending = PendingSignIn(
            state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64), redirect_uri=redirect_uri,
        )
        url, _ = self._oauth(redirect_uri).create_authorization_url(
            metadata.authorization_endpoint, state=pending.state, code_verifier=pending.code_verifier,
            nonce=pending.nonce,
        )
        return url, pending

    def complete(self, pending: PendingSignIn | None, callback: Mapping[str, str]) -> OidcClaims:
        """The verified claims for the provider's callback (its query arguments); SignInRefused says why not."""
        if pending is None:
            raise SignInRefused("No sign-in is under way in this browser (it expired, or was finished already).")
        if callback.get("error"):
            raise SignInRefused(f"The identity provider refused the sign-in: {callback.get('error')}"
                                + (f" ({callback['error_description']})" if callback.get("error_description") else ""))
        state = callback.get("state") or ""
        if not secrets.compare_digest(state.encode(), pending.state.encode()):
            raise SignInRefused("The sign-in answer does not belong to this browser's sign-in (state mismatch).")
        code = callback.get("code")
        if not code:
            raise SignInRefused("The identity provider's answer carries no authorization code.")
        token = self.exchange_code(pending, code)
        return claims_from_id_token(self.verify_id_token(token.get("id_token"), pending.nonce,
                                                         access_token=token.get("access_token")))

    def exchange_code(self, pending: PendingSignIn, code: str) -> dict[str, Any]:
        """The token endpoint's answer for `code`, sent with the PKCE verifier."""
        if not pending.code_verifier:
            raise SignInRefused("The sign-in has no PKCE code verifier: start again.")
        metadata = self.metadata()
        session = self._oauth(pending.redirect_uri)
        try:
            return dict(session.fetch_token(
                metadata.token_endpoint, grant_type="authorization_code", code=code,
                code_verifier=pending.code_verifier, redirect_uri=pending.redirect_uri,
                timeout=self.timeout, allow_redirects=False,
            ))
        except OAuthError as error:
            raise SignInRefused(f"The identity provider would not exchange the code: {error.error}"
                                + (f" ({error.description})" if error.description else "")) from None
        except (requests.RequestException, ValueError) as error:
            raise SignInRefused(f"The identity provider's token endpoint could not be reached: {error}") from None
        finally:
            session.close()

    def verify_id_token(self, id_token: Any, nonce: str, *, access_token: str | None = None) -> dict[str, Any]:
        """The ID token's claims once its signature (the provider's JWKS), issuer, audience, expiry and nonce hold."""
        if not isinstance(id_token, str) or not id_token:
            raise SignInRefused("The identity provider sent no ID token.")
        metadata = self.metadata()
        registry = JWSRegistry(algorithms=ALGORITHMS)
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(), registry=registry)
            except JoseError as error:
                if not isinstance(error, (InvalidKeyIdError, MissingKeyError)):
                    raise
                # The provider may have rotated its key (the simulator makes one at each start).
                decoded = jwt.decode(id_token, self._key_set(refresh=True), registry=registry)
        except (JoseError, ValueError) as error:
            raise SignInRefused(f"The ID token's signature does not verify: {_jose_reason(error)}") from None
        params: dict[str, Any] = {"nonce": nonce, "client_id": self.settings.client_id}
        if access_token:
            params["access_token"] = access_token
        claims = CodeIDToken(
            decoded.claims, decoded.header,
            {"iss": {"essential": True, "value": metadata.issuer},
             "aud": {"essential": True, "value": self.settings.client_id},
             "nonce": {"essential": True}},
            params,
        )
        try:
            claims.validate(now=int(self.clock().timestamp()), leeway=LEEWAY_SECONDS)
        except JoseError as error:
            raise SignInRefused(f"The ID token is not valid: {_jose_reason(error)}") from None
        return dict(claims)

    # -- the provider's documents ---------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        """The provider's discovery document, fetched once and kept for METADATA_TTL."""
        with self._lock:
            fresh = self._metadata_at is not None and self.clock() - self._metadata_at < METADATA_TTL
            if self._metadata is None or not fresh:
                self._metadata = self._discover()
                self._metadata_at = self.clock()
                self._keys = None
            return self._metadata

    def _discover(self) -> ProviderMetadata:
        url = self.settings.discovery_url
        document = self._get_json(url, "discovery document")
        production = self.settings.production
        try:
            metadata = ProviderMetadata(**{key: str(document[key]) for key in (
                "issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")})
        except KeyError as missing:
            raise ProviderMisconfigured(f"The OIDC discovery document at {url} has no {missing}.") from None
        # OpenID Connect Discovery 1.0 §4.3: the issuer is the URL the document was found under.
        if metadata.issuer.rstrip("/") + "/.well-known/openid-configuration" != url.split("?", 1)[0]:
            raise ProviderMisconfigured(f"The OIDC discovery document at {url} names another issuer: {metadata.issuer}.")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            check_provider_url(getattr(metadata, name), production=production, what=f"The provider's {name}")
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise ProviderMisconfigured("The identity provider does not support PKCE with S256.")
        return metadata

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        metadata = self.metadata()
        with self._lock:
            if self._keys is None or refresh:
                document = self._get_json(metadata.jwks_uri, "key set (JWKS)")
                try:
                    self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError, KeyError) as error:
                    raise ProviderMisconfigured(f"The provider's key set cannot be read: {error}") from None
            return self._keys

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self.http.get(url, timeout=self.timeout, allow_redirects=False,
                                     headers={"Accept": "application/json"})
        except requests.RequestException as error:
            raise ProviderMisconfigured(f"The identity provider's {what} could not be fetched from {url}: {error}") from None
        if response.status_code != 200:
            raise ProviderMisconfigured(f"The identity provider's {what} at {url} answered {response.status_code}.")
        try:
            document = response.json()
        except ValueError:
            raise ProviderMisconfigured(f"The identity provider's {what} at {url} is not JSON.") from None
        if not isinstance(document, dict):
            raise ProviderMisconfigured(f"The identity provider's {what} at {url} is not a JSON object.")
        return document

    def _oauth(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(
            client_id=self.settings.client_id, client_secret=self.settings.client_secret,
            token_endpoint_auth_method="client_secret_basic", scope=SCOPE, redirect_uri=redirect_uri,
            code_challenge_method="S256", default_timeout=self.timeout,
        )


def _jose_reason(error: Exception) -> str:
    code = getattr(error, "error", None) or type(error).__name__
    description = getattr(error, "description", None) or str(error)
    return code if not description or description == code else f"{code} ({description})"
