"""Carrier pledges (运营商承诺资源) in and out, and the pledge tracking the district reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from broker.models import PledgeTerms
from broker.resources import KINDS, MAX_MONEY, MAX_QUANTITY, MONEY_PLACES, QUANTITY_PLACES
from broker.schemas.fields import Exact
from broker.services.pledges import terms_problems


class PledgeInSchema(Schema):
    """One kind's pledge for the period: quantity in the kind's unit, free or discounted."""

    kind = fields.String(required=True, validate=validate.OneOf(list(KINDS)))
    quantity = Exact(QUANTITY_PLACES, 0, MAX_QUANTITY, exclusive_minimum=True, required=True)
    terms = fields.Enum(PledgeTerms, required=True)
    unit_price = Exact(MONEY_PLACES, 0, MAX_MONEY, load_default=None, allow_none=True,
                       metadata={"description": "yuan per unit, to the fen (discounted terms)"})
    discount_rate = Exact(4, 0, Decimal("0.9999"), exclusive_minimum=True, load_default=None, allow_none=True,
                          metadata={"description": "share off the list price, 0 < r < 1: 0.2 is 八折 (discounted terms)"})
    note = fields.String(load_default="", validate=validate.Length(max=500))

    @validates_schema
    def _terms(self, data: dict[str, Any], **kwargs: Any) -> None:
        problems = terms_problems(data.get("terms"), data.get("unit_price"), data.get("discount_rate"))
        if problems:
            raise ValidationError(problems)


class PeriodPledgesInSchema(Schema):
    """The carrier's whole pledge for a period: kinds not listed are no longer pledged."""

    period = fields.String(required=True, metadata={"description": "a quarter such as 2027-Q1 or a month such as 2027-01"})
    pledges = fields.List(fields.Nested(PledgeInSchema), required=True, validate=validate.Length(max=len(KINDS)))

    @validates_schema
    def _one_per_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        kinds = [item["kind"] for item in data.get("pledges", [])]
        if len(kinds) != len(set(kinds)):
            raise ValidationError({"pledges": ["One pledge per kind."]})


class PledgeSchema(Schema):
    carrier = fields.Function(lambda p: p.carrier.code)
    period = fields.String()
    first_day = fields.Date()
    last_day = fields.Date()
    kind = fields.String()
    unit = fields.Function(lambda p: KINDS[p.kind].unit)
    quantity = Exact(QUANTITY_PLACES, 0, MAX_QUANTITY)
    terms = fields.Enum(PledgeTerms)
    unit_price = Exact(MONEY_PLACES, 0, MAX_MONEY, allow_none=True)
    discount_rate = Exact(4, 0, 1, allow_none=True)
    note = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PeriodQuerySchema(Schema):
    period = fields.String(required=True, metadata={"description": "a quarter such as 2027-Q1 or a month such as 2027-01"})


class TrackingQuerySchema(PeriodQuerySchema):
    carrier = fields.String(load_default=None, metadata={"description": "one carrier's code"})


class TrackingLineSchema(Schema):
    carrier = fields.String(attribute="carrier_code")
    carrier_name = fields.String()
    kind = fields.String()
    unit = fields.Function(lambda line: KINDS[line.kind].unit)
    pledged = Exact(QUANTITY_PLACES, 0, MAX_QUANTITY)
    published = Exact(QUANTITY_PLACES, 0, MAX_QUANTITY)
    allocated = Exact(QUANTITY_PLACES, 0, MAX_QUANTITY)
    delivered = Exact(QUANTITY_PLACES, 0, MAX_QUANTITY)
    shortfall = Exact(QUANTITY_PLACES, 0, MAX_QUANTITY)


class TrackingSchema(Schema):
    period = fields.String(attribute="period.label")
    first_day = fields.Date(attribute="period.first_day")
    last_day = fields.Date()
    lines = fields.List(fields.Nested(TrackingLineSchema))
