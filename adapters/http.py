"""HTTP plumbing shared by the carrier adapters: session, timeouts, retries, breaker, errors.

Failure policy, in one place:
- every call passes `timeout=(connect, read)` (requests has no default) and never follows a
  redirect: an adapter talks to its configured base URL and nowhere else;
- GETs are retried by urllib3 with exponential back-off on connection errors, 429 and 5xx;
- a POST is retried (by `_request`, below) only when it carries the carrier's idempotency key,
  since urllib3 rightly won't retry a POST on its own;
- repeated carrier faults open the adapter's circuit breaker, after which calls fail at once;
- every failure reaches the caller as AdapterError with the carrier's message, never a
  requests exception, and with credentials scrubbed out.
"""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import Any, Callable, ClassVar, Mapping, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from broker import inputs

from adapters.base import AdapterError, CarrierAdapter, CarrierConfig, CircuitOpenError
from adapters.breaker import CircuitBreaker

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 30


def build_session(config: CarrierConfig) -> requests.Session:
    """A session whose GETs retry with back-off on connection errors, 429 and 5xx."""
    retry = Retry(
        total=config.retries,
        connect=config.retries,
        read=config.retries,
        status=config.retries,
        redirect=0,
        backoff_factor=config.backoff_factor,
        backoff_max=MAX_BACKOFF_SECONDS,
        retry_after_max=MAX_BACKOFF_SECONDS,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        # Hand the last 5xx back rather than raising, so its body (the carrier's message)
        # ends up in the AdapterError.
        raise_on_status=False,
    )
    session = requests.Session()
    # Ambient proxy variables (HTTP_PROXY, NO_PROXY…) must not redirect carrier traffic.
    session.trust_env = False
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class HttpCarrierAdapter(CarrierAdapter):
    """Base for adapters that speak HTTP: owns the session, the breaker and the error mapping."""

    # The header that carries this carrier's idempotency key on POSTs, if it uses a header.
    idempotency_header: ClassVar[str | None] = None

    def __init__(
        self,
        config: CarrierConfig,
        session: requests.Session | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__(config, session, environ=environ)
        self.session = session if session is not None else build_session(config)
        self.breaker = breaker or CircuitBreaker(
            config.breaker_fail_max, config.breaker_reset_timeout
        )
        self._base = config.base_url.rstrip("/")

    # -- hooks for subclasses

    def _auth(self) -> requests.auth.AuthBase | None:
        """The requests auth object that signs each call; None for no auth."""
        return None

    def _error_message(self, response: requests.Response) -> str:
        """The carrier's own explanation from an error response body."""
        return response.text[:300].strip() or response.reason or "no message"

    # -- calls

    def _url(self, *segments: str) -> str:
        # Segments are quoted one by one, so an id from a payload ("../x", "https://evil")
        # stays a path segment under our base URL.
        return self._base + "/" + "/".join(quote(str(s), safe="") for s in segments)

    def _get_json(self, *segments: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._call(lambda: self._json(self._request("GET", segments, params=params)))

    def _get_bytes(self, *segments: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        return self._call(lambda: self._request("GET", segments, params=params))

    def _post_json(
        self,
        *segments: str,
        payload: Any,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """POST JSON; with an idempotency key, retried with back-off on carrier faults."""
        all_headers = dict(headers or {})
        if idempotency_key is not None and self.idempotency_header:
            all_headers[self.idempotency_header] = idempotency_key
        body = json.dumps(payload, ensure_ascii=False, default=str).encode()
        all_headers["Content-Type"] = "application/json; charset=utf-8"
        attempts = 1 + (self.config.retries if idempotency_key is not None else 0)

        def send() -> Any:
            for attempt in range(attempts):
                try:
                    return self._json(
                        self._request("POST", segments, data=body, headers=all_headers)
                    )
                except AdapterError as error:
                    if not error.carrier_fault or attempt == attempts - 1:
                        raise
                    delay = min(MAX_BACKOFF_SECONDS, self.config.backoff_factor * 2**attempt)
                    log.info("%s: retrying POST in %.2fs after: %s", self.name, delay, error)
                    time.sleep(delay)
            raise AssertionError("unreachable")

        return self._call(send)

    def _call(self, fn: Callable[[], T]) -> T:
        if not self.breaker.allow():
            raise CircuitOpenError(
                f"circuit open after repeated failures; retrying after "
                f"{self.config.breaker_reset_timeout:g}s",
                carrier=self.name,
                carrier_fault=True,
            )
        try:
            result = fn()
        except AdapterError as error:
            if error.carrier_fault:
                self.breaker.record_failure()
                if self.breaker.state == "open":
                    log.warning("%s: circuit opened: %s", self.name, error)
            else:
                self.breaker.record_success()  # it answered: the carrier is up
            raise
        except BaseException:
            self.breaker.release_trial()
            raise
        self.breaker.record_success()
        return result

    def _request(
        self,
        method: str,
        segments: tuple[str, ...],
        *,
        params: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = self._url(*segments)
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                auth=self._auth(),
                timeout=self.config.timeout,
                allow_redirects=False,
            )
            response.content  # read the body now, so a cut-off body fails here  # noqa: B018
        except requests.RequestException as error:
            raise self._error(f"{method} {url} failed: {type(error).__name__}: {error}", fault=True) from error
        status = response.status_code
        if 300 <= status < 400:
            raise self._error(
                f"{method} {url} answered a redirect, which adapters never follow",
                status=status,
                fault=True,
            )
        if status >= 400:
            raise self._error(
                f"{method} {url}: {self._error_message(response)}",
                status=status,
                fault=status in RETRY_STATUSES or status >= 500,
            )
        return response

    def _json(self, response: requests.Response) -> Any:
        content_type = response.headers.get("Content-Type", "")
        if "json" not in content_type.lower():
            raise self._error(
                f"{response.url}: expected JSON, got content type {content_type or 'none'!r}",
                status=response.status_code,
                fault=True,
            )
        try:
            # Decimals, not floats: prices must convert exactly. Depth and number length are
            # checked first: json.loads recurses per level and a RecursionError is no ValueError.
            return inputs.loads(response.content, parse_float=Decimal)
        except ValueError as error:
            raise self._error(
                f"{response.url}: unreadable JSON body (truncated?): {error}",
                status=response.status_code,
                fault=True,
            ) from error

    def _error(self, message: str, *, status: int | None = None, fault: bool) -> AdapterError:
        return AdapterError(self._redact(message), carrier=self.name, status=status, carrier_fault=fault)

    def _redact(self, text: str) -> str:
        for secret in self._secrets.values():
            value = secret.reveal()
            if value:
                text = text.replace(value, "********")
        return text
