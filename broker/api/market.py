"""Offers, resource requests and allocations."""

from __future__ import annotations

import functools
from typing import Any, Callable

from flask import current_app
from flask_smorest import Blueprint
from marshmallow.experimental.context import Context

from broker.api.common import BEARER, SelectPage
from broker.auth import current_account, request_header
from broker.clock import now
from broker.db import get_session
from broker.errors import InvalidInput
from broker.schemas.market import (
    AllocationQuerySchema,
    AllocationSchema,
    OfferBatchSchema,
    OfferQuerySchema,
    OfferSchema,
    OfferUpsertResultSchema,
    QuoteQuerySchema,
    QuoteRequestSchema,
    QuoteSchema,
    RequestQuoteSchema,
    RequestInSchema,
    RequestQuerySchema,
    RequestSchema,
    WithdrawnRequestSchema,
)
from broker.services import market, quotes
from scheduler.runner import next_firing
from scheduler.schedule import RELEASE_JOB

blp = Blueprint("market", __name__, url_prefix="/api/v1", description="Offers, requests and allocations")


@blp.route("/offers", methods=["POST"])
@blp.arguments(OfferBatchSchema)
@blp.response(200, OfferUpsertResultSchema)
@blp.doc(security=BEARER)
def upsert_offers(data: dict[str, Any]) -> Any:
    """A carrier publishes or updates offers, keyed by its own external ids; all or nothing."""
    return market.upsert_offers(get_session(), current_account(), data["offers"])


@blp.route("/offers", methods=["GET"])
@blp.arguments(OfferQuerySchema, location="query")
@blp.response(200, OfferSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_offers(filters: dict[str, Any]) -> Any:
    """Browse offers by kind, region, carrier, attribute values and window."""
    current_account()
    return market.list_offers(get_session(), filters)


@blp.route("/offers/<int:offer_id>", methods=["GET"])
@blp.response(200, OfferSchema)
@blp.doc(security=BEARER)
def get_offer(offer_id: int) -> Any:
    """One offer."""
    current_account()
    return market.get_offer(get_session(), offer_id)


@blp.route("/offers/<int:offer_id>/quote", methods=["GET"])
@blp.arguments(QuoteQuerySchema, location="query")
@blp.response(200, QuoteSchema)
@blp.doc(security=BEARER)
def quote_offer(query: dict[str, Any], offer_id: int) -> Any:
    """A startup: what it would pay for a quantity of this offer, after the subsidy it would get today."""
    return market.quote_offer(get_session(), current_account(), offer_id, query["quantity"], now())


@blp.route("/quotes", methods=["POST"])
@blp.arguments(QuoteRequestSchema)
@blp.response(200, RequestQuoteSchema)
@blp.doc(security=BEARER)
def quote_request(data: dict[str, Any]) -> Any:
    """A startup: a request it is thinking of, quoted on every compatible active offer (gross, subsidy,
    net and each program's line), cheapest net first; and how much the platform lists of the kind in
    that window. Nothing is reserved."""
    return quotes.quote_request(get_session(), current_account(), data, now())


@blp.route("/offers/<int:offer_id>/withdraw", methods=["POST"])
@blp.response(200, OfferSchema)
@blp.doc(security=BEARER)
def withdraw_offer(offer_id: int) -> Any:
    """The carrier takes its offer off the market, down to what is already promised."""
    return market.withdraw_offer(get_session(), current_account(), offer_id)


def _idempotency_key() -> str | None:
    key = request_header("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise InvalidInput("Idempotency-Key must be 1-255 characters.", {"Idempotency-Key": ["Wrong length."]})
    return key


@blp.route("/requests", methods=["POST"])
@blp.arguments(RequestInSchema)
@blp.response(201, RequestSchema)
@blp.alt_response(200, schema=RequestSchema, description="A retry with the same Idempotency-Key")
@blp.doc(
    security=BEARER,
    parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"}, "required": False}],
)
def submit_request(data: dict[str, Any]) -> Any:
    """A verified startup asks for resources."""
    created_request, created = market.submit_request(get_session(), current_account(), data, _idempotency_key(), now=now())
    return created_request, 201 if created else 200


@blp.route("/requests", methods=["GET"])
@blp.arguments(RequestQuerySchema, location="query")
@blp.response(200, RequestSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_requests(filters: dict[str, Any]) -> Any:
    """A startup's own requests; staff see all."""
    return market.list_requests(get_session(), current_account(), filters)


@blp.route("/requests/<int:request_id>", methods=["GET"])
@blp.response(200, RequestSchema)
@blp.doc(security=BEARER)
def get_request(request_id: int) -> Any:
    """One request, to its startup or staff."""
    return market.get_request(get_session(), current_account(), request_id)


@blp.route("/requests/<int:request_id>/withdraw", methods=["POST"])
@blp.response(200, WithdrawnRequestSchema)
@blp.doc(security=BEARER)
def withdraw_request(request_id: int) -> Any:
    """The startup withdraws its request; what a carrier set up for it is released there by the next release run."""
    at = now()
    return market.withdraw_request(get_session(), current_account(), request_id, at, next_firing(current_app, RELEASE_JOB, at))


def viewer_known(view: Callable[..., Any]) -> Callable[..., Any]:
    """Dump the answer knowing who asks (above @blp.response, so its dump runs inside): an allocation's
    access details go to the startup that owns it only."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with Context({"viewer": current_account()}):
            return view(*args, **kwargs)

    return wrapper


@blp.route("/allocations", methods=["GET"])
@viewer_known
@blp.arguments(AllocationQuerySchema, location="query")
@blp.response(200, AllocationSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_allocations(filters: dict[str, Any]) -> Any:
    """Allocations: a startup its own, a carrier those on its offers, staff all."""
    return market.list_allocations(get_session(), current_account(), filters)


@blp.route("/allocations/<int:allocation_id>", methods=["GET"])
@viewer_known
@blp.response(200, AllocationSchema)
@blp.doc(security=BEARER)
def get_allocation(allocation_id: int) -> Any:
    """One allocation, to those who may see it."""
    return market.get_allocation(get_session(), current_account(), allocation_id)
