"""What every blueprint shares: the Api with our error handling, paging (the signed-in account: broker.auth)."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g, make_response, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api as SmorestApi
from flask_smorest import Page
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, UnicodeConverter

from broker import inputs
from broker.auth import request_header
from broker.db import MAX_ID, TransientFailure, commits_made, get_session, is_transient, retry_transient
from broker.errors import BadRequest, DomainError, Unavailable
from broker.uniques import conflict_for

log = logging.getLogger(__name__)

BEARER = [{"bearerAuth": []}]


class IdConverter(IntegerConverter):
    """`<int:…>` ids: positive and within MAX_ID, so an absurd id is a 404, not a database overflow."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class TextConverter(UnicodeConverter):
    """`<string:…>` segments (carrier codes): never a NUL, which the database can't compare, so a
    path holding one matches no route and is a 404."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\x00]", 1)


class JSONProvider(DefaultJSONProvider):
    """Responses in UTF-8 (Chinese text as itself, not \\uXXXX escapes), fields in schema order."""

    ensure_ascii = False
    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        if not text.isascii() and _LONE_SURROGATE.search(text):
            # A lone surrogate can't be sent as UTF-8; escaped, it is still valid JSON.
            text = super().dumps(obj, **{**kwargs, "ensure_ascii": True})
        return text

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return inputs.loads(s, **kwargs)


# What can't be sent as UTF-8: found by a scan, not by encoding every non-ASCII response twice.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class Api(SmorestApi):
    def handle_http_exception(self, error: HTTPException) -> Any:
        # flask-smorest drops the exception's own headers (a 405 would lose Allow).
        payload, status, headers = super().handle_http_exception(error)
        merged = dict(error.get_headers())
        merged.pop("Content-Type", None)
        merged.update(headers or {})
        if status == 500:
            payload["message"] = "Internal error; it has been logged."
        if status == 413 and g.get("body_too_large"):
            # A route that takes a bigger body (an evidence file) names its own limit and the field.
            field, problem = g.body_too_large
            payload["message"] = f"The request is too large. {problem}"
            payload["errors"] = {"files": {field: [problem]}}
        # The README promises a message with every refusal; webargs and werkzeug give none.
        payload.setdefault("message", _http_message(error, payload.get("errors")))
        return payload, status, merged


def limit_body(limit: int, problem: str, field: str = "file") -> None:
    """Let this request's body be up to `limit` bytes instead of BROKER_MAX_BODY_BYTES (call it before
    the body is read, from a before_request hook); a bigger one is a 413 saying `problem` about `field`."""
    request.max_content_length = limit
    g.body_too_large = (field, problem)


def _http_message(error: HTTPException, errors: Any) -> str:
    if isinstance(errors, dict) and errors:
        return _summary(errors)
    if error.code == 404:
        return f"Nothing is at {request.path}; see /api/docs for the API."
    if error.code == 405:
        allowed = ", ".join(sorted(getattr(error, "valid_methods", None) or ()))
        return f"{request.method} is not allowed on {request.path}; allowed: {allowed}."
    if error.code == 413:
        return (
            f"The request is too large: a body may have at most {current_app.config['MAX_CONTENT_LENGTH']} bytes "
            f"(BROKER_MAX_BODY_BYTES), a form field {current_app.config['MAX_FORM_MEMORY_SIZE']}."
        )
    return error.description or error.name


def _summary(errors: dict[str, Any], most: int = 8) -> str:
    """"Invalid json: kind, quantity." from {"json": {"kind": [...], "quantity": [...]}}."""
    parts = []
    for location, problems in errors.items():
        if isinstance(problems, dict):
            names = [str(name) for name in problems]
            shown = ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
            parts.append(f"Invalid {location}: {shown}.")
        elif isinstance(problems, list):
            parts.append(" ".join(str(p) for p in problems[:most]))
    return " ".join(parts) or "The request is invalid."


def refuse_oversized_json() -> None:
    """Before any view: a JSON body nested too deeply or holding an absurdly long number is a 400.

    webargs hands bodies to json.loads, which recurses once per level (RecursionError, a 500)
    and raises a plain ValueError past 4300 digits; this reads the body lexically first.
    """
    if not request.is_json:
        return
    try:
        text = request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError:
        return  # not JSON at all: webargs answers 400 "Invalid JSON body."
    error = inputs.json_limit_error(text)
    if error is not None:
        raise BadRequest(error.message, error.errors())


def handle_domain_error(error: DomainError) -> Any:
    """Every refusal a service raises becomes one JSON shape with its status."""
    status = error.status_code
    payload: dict[str, Any] = {"code": status, "status": _STATUS_NAMES.get(status, "Error"), "message": error.message}
    if error.errors:
        payload["errors"] = {error.location: error.errors}
    headers = {"WWW-Authenticate": 'Bearer realm="broker"'} if status == 401 else {}
    if isinstance(error, Unavailable):
        headers["Retry-After"] = str(error.retry_after)
    return payload, status, headers


def handle_integrity_error(error: IntegrityError) -> Any:
    """A unique constraint refused a row that a pre-check let through (two requests raced):
    roll back and answer 409 with what already exists. Any other integrity failure is a bug."""
    session = g.get("db_session")
    if session is not None:
        session.rollback()
    conflict = conflict_for(error, district_contact=current_app.config["DISTRICT_CONTACT"])
    if conflict is None:
        return handle_unexpected(error)
    return handle_domain_error(conflict)


def handle_unexpected(error: Exception) -> Any:
    if is_transient(error):  # outside a retried view (the health checks): still not a 500
        return handle_domain_error(Unavailable("The database is busy with conflicting changes. Please try again in a moment."))
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return {"code": 500, "status": "Internal Server Error", "message": "Internal error; it has been logged."}, 500


_STATUS_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    422: "Unprocessable Entity",
    503: "Service Unavailable",
}


def retry_transient_views(app: Flask, endpoints: list[str]) -> None:
    """Run each of these views again, in a fresh transaction, when the database fails transiently.

    The whole view is the unit of work: authentication, the one service it calls and the
    response. A view that has already committed is never run again (that could do its work
    twice); it answers 503 instead, as does one whose every try failed.
    """
    for endpoint in endpoints:
        app.view_functions[endpoint] = _retrying(app.view_functions[endpoint])


def _retrying(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def retrying(*args: Any, **kwargs: Any) -> Any:
        session = get_session()
        committed_before = commits_made(session)
        try:
            return retry_transient(
                lambda: view(*args, **kwargs),
                attempts=int(current_app.config["TRANSIENT_RETRIES"]),
                before_retry=session.rollback,
                may_retry=lambda: commits_made(session) == committed_before,
            )
        except TransientFailure:
            if commits_made(session) != committed_before:
                raise Unavailable(
                    "The database failed after part of this request was saved; check the state of what you "
                    "changed before you try again.", retry_after=1,
                ) from None
            raise Unavailable(
                "The database is busy with conflicting changes; nothing was changed. Please try again in a moment.",
                retry_after=1,
            ) from None

    return retrying


def no_store(view: Callable[..., Any]) -> Callable[..., Any]:
    """For a view whose response carries a secret (a token, a webhook's signing secret): never cached.

    Put it right under `@blp.route`, so it sees the response the schema decorators made.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        response = make_response(view(*args, **kwargs))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"  # HTTP/1.0 caches and proxies
        return response

    return wrapper


def signature_headers() -> dict[str, str]:
    """The headers a carrier's webhook is checked with: every X-… one read by request_header."""
    for name in request.headers.keys():
        if name.lower().startswith("x-"):
            request_header(name)
    return dict(request.headers)


class SelectPage(Page):
    """Pages through a SQLAlchemy select: one COUNT and one LIMIT/OFFSET query."""

    @property
    def items(self) -> list[Any]:
        if self.page_params.first_item >= self.page_params.item_count:
            return []  # past the end (also keeps an absurd page number out of OFFSET)
        query = self.collection.offset(self.page_params.first_item).limit(self.page_params.page_size)
        return list(get_session().scalars(query))

    @property
    def item_count(self) -> int:
        count = sa.select(sa.func.count()).select_from(self.collection.order_by(None).subquery())
        return get_session().scalar(count) or 0
