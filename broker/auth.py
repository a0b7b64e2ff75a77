"""Who is asking: the account signed in to this request, for every blueprint (the API now, the
console next) without importing `broker.api`."""

from __future__ import annotations

from flask import g, request

from broker import inputs
from broker.clock import now
from broker.db import get_session
from broker.errors import BadRequest, NotAuthenticated
from broker.models import Account
from broker.models.audit import set_actor
from broker.services import accounts


def request_header(name: str) -> str | None:
    """A header the broker reads; one that isn't storable text (a NUL, a lone surrogate) is a 400 naming it."""
    value = request.headers.get(name)
    if value is not None:
        problem = inputs.text_problem(value)
        if problem:
            raise BadRequest(f"The {name} header can't be read: {problem}", {name: [problem]}, location="headers")
    return value


def current_account() -> Account:
    """The account whose bearer token came with this request; 401 without a valid one."""
    if "account" not in g:
        scheme, _, secret = (request_header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated("Sign in: send Authorization: Bearer <token>.")
        session = get_session()
        token = accounts.authenticate(session, secret.strip(), now())
        g.account = token.account
        set_actor(session, token.account_id, token.acting_staff_id)  # the audit log's "who"
    return g.account
