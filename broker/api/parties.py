"""Startups, carriers, accounts and tokens."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from broker.api.common import BEARER, SelectPage, no_store
from broker.auth import current_account
from broker.clock import now
from broker.db import get_session
from broker.schemas.parties import (
    AccountSchema,
    CarrierSchema,
    IssuedTokenSchema,
    StartupDecisionSchema,
    StartupQuerySchema,
    StartupRegisteredSchema,
    StartupRegistrationSchema,
    StartupSchema,
    StartupUpdateSchema,
    TokenIssueSchema,
    TokenQuerySchema,
    TokenSchema,
)
from broker.schemas.declarations import (
    CarrierUsccSchema,
    OtherSubsidiesInSchema,
    OtherSubsidiesSchema,
    RelatedPartiesInSchema,
    RelatedPartiesSchema,
)
from broker.services import accounts, declarations

blp = Blueprint("parties", __name__, url_prefix="/api/v1", description="Startups, carriers, accounts and tokens")


@blp.route("/startups", methods=["POST"])
@no_store
@blp.arguments(StartupRegistrationSchema)
@blp.response(201, StartupRegisteredSchema)
def register_startup(data: dict[str, Any]) -> Any:
    """Register a startup (no sign-in); its token is in the response, once."""
    startup, token, secret = accounts.register_startup(get_session(), data, current_app.config["DISTRICT_CONTACT"])
    return {"startup": startup, "credentials": {"token": secret, "token_id": token.id, "account_id": token.account_id}}


@blp.route("/startups", methods=["GET"])
@blp.arguments(StartupQuerySchema, location="query")
@blp.response(200, StartupSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_startups(filters: dict[str, Any]) -> Any:
    """Staff: every startup. A startup: itself."""
    return accounts.list_startups(get_session(), current_account(), filters)


@blp.route("/startups/<int:startup_id>", methods=["GET"])
@blp.response(200, StartupSchema)
@blp.doc(security=BEARER)
def get_startup(startup_id: int) -> Any:
    """One startup: staff, or the startup itself."""
    return accounts.get_startup(get_session(), current_account(), startup_id)


@blp.route("/startups/<int:startup_id>", methods=["PATCH"])
@blp.arguments(StartupUpdateSchema)
@blp.response(200, StartupSchema)
@blp.doc(security=BEARER)
def update_startup(changes: dict[str, Any], startup_id: int) -> Any:
    """The startup: update its contacts and its budget per cycle."""
    return accounts.update_startup(get_session(), current_account(), startup_id, changes)


@blp.route("/startups/<int:startup_id>/verify", methods=["POST"])
@blp.response(200, StartupSchema)
@blp.doc(security=BEARER)
def verify_startup(startup_id: int) -> Any:
    """Staff: confirm a startup so it can request resources."""
    return accounts.verify_startup(get_session(), current_account(), startup_id, now())


@blp.route("/startups/<int:startup_id>/reject", methods=["POST"])
@blp.arguments(StartupDecisionSchema)
@blp.response(200, StartupSchema)
@blp.doc(security=BEARER)
def reject_startup(data: dict[str, Any], startup_id: int) -> Any:
    """Staff: turn down a pending registration with a reason; its tokens end and its code is free again."""
    return accounts.reject_startup(get_session(), current_account(), startup_id, data["reason"], now())


@blp.route("/startups/<int:startup_id>/remove", methods=["POST"])
@blp.arguments(StartupDecisionSchema)
@blp.response(200, StartupSchema)
@blp.doc(security=BEARER)
def remove_startup(data: dict[str, Any], startup_id: int) -> Any:
    """Staff: remove a registration made in another company's name; its tokens and requests end,
    nothing is deleted, and the real company can register the code."""
    return accounts.remove_startup(get_session(), current_account(), startup_id, data["reason"], now())


@blp.route("/carriers", methods=["GET"])
@blp.response(200, CarrierSchema(many=True))
@blp.doc(security=BEARER)
def list_carriers() -> Any:
    """The carriers on the platform."""
    current_account()
    return accounts.list_carriers(get_session())


@blp.route("/me", methods=["GET"])
@blp.response(200, AccountSchema)
@blp.doc(security=BEARER)
def me() -> Any:
    """The signed-in account."""
    return current_account()


@blp.route("/tokens", methods=["GET"])
@blp.arguments(TokenQuerySchema, location="query")
@blp.response(200, TokenSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_tokens(filters: dict[str, Any]) -> Any:
    """Staff and admins: all tokens (never their secrets). Others: their own."""
    return accounts.list_tokens(get_session(), current_account(), filters, now())


@blp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@blp.response(200, TokenSchema)
@blp.doc(security=BEARER)
def revoke_token(token_id: int) -> Any:
    """Revoke a token: staff for carriers and startups, admins for anyone, anyone their own."""
    return accounts.revoke_token(get_session(), current_account(), token_id, now())


@blp.route("/accounts/<int:account_id>/tokens", methods=["POST"])
@no_store
@blp.arguments(TokenIssueSchema, required=False)
@blp.response(201, IssuedTokenSchema)
@blp.doc(security=BEARER)
def issue_token(data: dict[str, Any], account_id: int) -> Any:
    """Staff and admins: a new token for an account, shown once; optionally expiring. What is done with it is
    audited as the account, acted for by you."""
    token, secret = accounts.issue_token(get_session(), current_account(), account_id, now(), **data)
    return {"token": secret, "token_id": token.id, "account_id": token.account_id, "expires_at": token.expires_at}


@blp.route("/me/related-parties", methods=["GET"])
@blp.response(200, RelatedPartiesSchema)
@blp.doc(security=BEARER)
def own_related_parties() -> Any:
    """A startup or a carrier: the related parties it declared."""
    return declarations.own_related_parties(get_session(), current_account())


@blp.route("/me/related-parties", methods=["PUT"])
@blp.arguments(RelatedPartiesInSchema)
@blp.response(200, RelatedPartiesSchema)
@blp.doc(security=BEARER)
def replace_related_parties(data: dict[str, Any]) -> Any:
    """A startup (its shareholders and affiliates) or a carrier (its affiliates): replace the whole
    list, by unified social credit code. A match with the supplying carrier blocks subsidies."""
    return declarations.replace_related_parties(get_session(), current_account(), data["parties"])


@blp.route("/startups/<int:startup_id>/related-parties", methods=["GET"])
@blp.response(200, RelatedPartiesSchema)
@blp.doc(security=BEARER)
def startup_related_parties(startup_id: int) -> Any:
    """Staff, or the startup itself: the related parties a startup declared."""
    return declarations.related_parties_of(get_session(), current_account(), startup_id=startup_id)


@blp.route("/carriers/<int:carrier_id>/related-parties", methods=["GET"])
@blp.response(200, RelatedPartiesSchema)
@blp.doc(security=BEARER)
def carrier_related_parties(carrier_id: int) -> Any:
    """Staff, or the carrier itself: the affiliates a carrier declared."""
    return declarations.related_parties_of(get_session(), current_account(), carrier_id=carrier_id)


@blp.route("/carriers/<int:carrier_id>/uscc", methods=["PUT"])
@blp.arguments(CarrierUsccSchema)
@blp.response(200, CarrierSchema)
@blp.doc(security=BEARER)
def set_carrier_uscc(data: dict[str, Any], carrier_id: int) -> Any:
    """Staff, or the carrier itself: the carrier's unified social credit code (null: unknown)."""
    return declarations.set_carrier_uscc(get_session(), current_account(), carrier_id, data["uscc"])


@blp.route("/me/other-subsidies", methods=["GET"])
@blp.response(200, OtherSubsidiesSchema)
@blp.doc(security=BEARER)
def own_other_subsidies() -> Any:
    """A startup: the other public subsidies it declared."""
    return declarations.other_subsidies_of(get_session(), current_account())


@blp.route("/me/other-subsidies", methods=["PUT"])
@blp.arguments(OtherSubsidiesInSchema)
@blp.response(200, OtherSubsidiesSchema)
@blp.doc(security=BEARER)
def replace_other_subsidies(data: dict[str, Any]) -> Any:
    """A startup: replace the whole list of other public subsidies it holds, each for one contract
    (an allocation, or a carrier and a kind). A program that excludes such a subsidy won't pay."""
    return declarations.replace_other_subsidies(get_session(), current_account(), data["subsidies"])


@blp.route("/startups/<int:startup_id>/other-subsidies", methods=["GET"])
@blp.response(200, OtherSubsidiesSchema)
@blp.doc(security=BEARER)
def startup_other_subsidies(startup_id: int) -> Any:
    """Staff, or the startup itself: the other public subsidies a startup declared."""
    return declarations.other_subsidies_of(get_session(), current_account(), startup_id)
