"""Shapes of startups, carriers, accounts and tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from broker.clock import SHANGHAI, local_date, now
from broker.models.enums import Role, Sector, StartupStatus
from broker.models.parties import MAX_TOKEN_LIFETIME
from broker.schemas.common import BaseSchema
from broker.schemas.fields import LocalDateTime, QueryId, StrictInt
from broker.schemas.policy import Amount
from broker.uscc import uscc_problem

MAX_TOKEN_DAYS = MAX_TOKEN_LIFETIME.days


class StartupRegistrationSchema(BaseSchema):
    """A company in the district asking to join; staff verify it before it may request."""

    name = fields.String(required=True, validate=validate.Length(1, 200))
    uscc = fields.String(required=True, metadata={"description": "unified social credit code (统一社会信用代码), 18 characters"})
    sector = fields.Enum(Sector, required=True, by_value=True)
    founded_on = fields.Date(required=True)
    headcount = StrictInt(0, 1_000_000, required=True)
    contact_name = fields.String(required=True, validate=validate.Length(1, 100))
    contact_email = fields.Email(required=True, validate=validate.Length(max=254))
    contact_phone = fields.String(validate=validate.Regexp(r"^\+?[0-9 -]{6,20}$", error="Not a phone number."))
    registered_in_district = fields.Boolean(load_default=True)
    cycle_budget = Amount(allow_none=True, metadata={"description": "the most to spend in one cycle, yuan; absent: no limit"})

    @validates("uscc")
    def _uscc(self, value: str, **kwargs: Any) -> None:
        problem = uscc_problem(value)
        if problem:
            raise ValidationError(problem)

    @validates("founded_on")
    def _founded(self, value: dt.date, **kwargs: Any) -> None:
        # Today in the district, by the app's clock (not the server's time zone or date).
        if value > local_date(now()) or value.year < 1900:
            raise ValidationError("Must be a past date after 1900.")


class StartupStaffEditSchema(StartupRegistrationSchema):
    """What district staff correct on a startup's record: the registration's fields under the same
    rules, each optional (load with partial=True), never the credit code (the company itself)."""

    class Meta(BaseSchema.Meta):
        exclude = ("uscc",)

    contact_phone = fields.String(allow_none=True, validate=validate.Regexp(r"^\+?[0-9 -]{6,20}$", error="Not a phone number."))


class StartupSchema(BaseSchema):
    id = fields.Integer()
    name = fields.String()
    uscc = fields.String()
    sector = fields.Enum(Sector, by_value=True)
    founded_on = fields.Date()
    headcount = fields.Integer()
    contact_name = fields.String()
    contact_email = fields.String()
    contact_phone = fields.String(allow_none=True)
    registered_in_district = fields.Boolean()
    key_enterprise = fields.Boolean()
    cycle_budget = Amount(allow_none=True)
    status = fields.Enum(StartupStatus, by_value=True)
    created_at = LocalDateTime()
    verified_at = LocalDateTime(allow_none=True)
    reviewed_by_id = fields.Integer(allow_none=True, metadata={"description": "staff account of the latest decision"})
    reviewed_at = LocalDateTime(allow_none=True)
    rejection_reason = fields.String(allow_none=True, metadata={"description": "why it was rejected or removed"})


class StartupDecisionSchema(BaseSchema):
    """Staff turning a registration away say why; the startup is told."""

    reason = fields.String(
        required=True,
        validate=[validate.Length(1, 2000), validate.Regexp(r"\S", error="Must not be blank.")],
        metadata={"description": "why, in words the company understands; shown to it"},
    )


class StartupUpdateSchema(BaseSchema):
    """What a startup may change about itself."""

    contact_name = fields.String(validate=validate.Length(1, 100))
    contact_email = fields.Email(validate=validate.Length(max=254))
    contact_phone = fields.String(allow_none=True, validate=validate.Regexp(r"^\+?[0-9 -]{6,20}$", error="Not a phone number."))
    cycle_budget = Amount(allow_none=True, metadata={"description": "null: no limit"})


class TokenIssueSchema(BaseSchema):
    """How long a minted token lasts: for some days, until a moment, or (neither) until revoked."""

    expires_in_days = StrictInt(1, MAX_TOKEN_DAYS, metadata={"description": f"1 to {MAX_TOKEN_DAYS}"})
    expires_at = fields.AwareDateTime(default_timezone=SHANGHAI, metadata={
        "description": f"when the token stops working (Asia/Shanghai if no offset), at most {MAX_TOKEN_DAYS} days away"})

    @validates_schema
    def _one_expiry(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "expires_in_days" in data and "expires_at" in data:
            raise ValidationError("Give expires_at or expires_in_days, not both.", field_name="expires_at")


class IssuedTokenSchema(BaseSchema):
    token = fields.String(metadata={"description": "shown once; send as Authorization: Bearer <token>"})
    token_id = fields.Integer()
    account_id = fields.Integer()
    expires_at = LocalDateTime(allow_none=True)


class StartupRegisteredSchema(BaseSchema):
    startup = fields.Nested(StartupSchema)
    credentials = fields.Nested(IssuedTokenSchema)


class CarrierSchema(BaseSchema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    adapter = fields.String()
    active = fields.Boolean()
    uscc = fields.String(allow_none=True, metadata={"description": "unified social credit code, if known"})


class AccountSchema(BaseSchema):
    id = fields.Integer()
    role = fields.Enum(Role, by_value=True)
    name = fields.String()
    carrier_id = fields.Integer(allow_none=True)
    startup_id = fields.Integer(allow_none=True)
    created_at = LocalDateTime()


class TokenSchema(BaseSchema):
    id = fields.Integer()
    account_id = fields.Integer()
    prefix = fields.String(metadata={"description": "the first characters, to tell tokens apart"})
    created_at = LocalDateTime()
    revoked_at = LocalDateTime(allow_none=True)
    expires_at = LocalDateTime(allow_none=True)
    issued_by_id = fields.Integer(allow_none=True, metadata={"description": "who minted it, if staff or an admin did"})


class TokenQuerySchema(BaseSchema):
    account_id = QueryId()
    active = fields.Boolean(metadata={"description": "true: neither revoked nor expired"})


class StartupQuerySchema(BaseSchema):
    status = fields.Enum(StartupStatus, by_value=True)
    sector = fields.Enum(Sector, by_value=True)
