"""Shapes of what startups and carriers declare for subsidy eligibility."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from broker.models import Relation, SubsidyLevel
from broker.schemas.common import BaseSchema, KindField
from broker.schemas.fields import LocalDateTime, StrictInt
from broker.schemas.policy import Amount, Money
from broker.uscc import uscc_problem

MAX_DECLARED = 200  # entries in one list: a company's shareholders and affiliates fit many times over


def _valid_uscc(value: str) -> None:
    problem = uscc_problem(value)
    if problem:
        raise ValidationError(problem)


def Uscc(**kwargs: Any) -> fields.String:
    """A unified social credit code (统一社会信用代码), checked as registration checks it (GB 32100-2015)."""
    return fields.String(validate=_valid_uscc, metadata={"description": "unified social credit code, 18 characters"}, **kwargs)


class RelatedPartyInSchema(BaseSchema):
    """A company related to the declaring startup or carrier."""

    uscc = Uscc(required=True)
    name = fields.String(required=True, validate=[validate.Length(1, 200), validate.Regexp(r"\S", error="Must not be blank.")])
    relation = fields.Enum(Relation, by_value=True, required=True, metadata={
        "description": "shareholder (股东) or affiliate (关联企业)"})


class RelatedPartiesInSchema(BaseSchema):
    """The whole list: it replaces the one declared before (an empty list clears it)."""

    parties = fields.List(fields.Nested(RelatedPartyInSchema), required=True, validate=validate.Length(0, MAX_DECLARED))

    @validates_schema
    def _once_each(self, data: dict[str, Any], **kwargs: Any) -> None:
        seen: set[str] = set()
        for i, party in enumerate(data.get("parties", [])):
            if party["uscc"] in seen:
                raise ValidationError({i: {"uscc": ["Listed twice."]}}, field_name="parties")
            seen.add(party["uscc"])


class RelatedPartySchema(BaseSchema):
    id = fields.Integer()
    uscc = fields.String()
    name = fields.String()
    relation = fields.Enum(Relation, by_value=True)
    created_at = LocalDateTime()


class RelatedPartiesSchema(BaseSchema):
    startup_id = fields.Integer(allow_none=True)
    carrier_id = fields.Integer(allow_none=True)
    parties = fields.List(fields.Nested(RelatedPartySchema))


class OtherSubsidyInSchema(BaseSchema):
    """A public subsidy the startup holds from elsewhere for one contract: one of its allocations
    here, or what one carrier supplies it of one kind."""

    level = fields.Enum(SubsidyLevel, by_value=True, required=True, metadata={"description": "national, city (市级) or district (区级)"})
    name = fields.String(required=True, validate=[validate.Length(1, 200), validate.Regexp(r"\S", error="Must not be blank.")])
    granting_body = fields.String(required=True, validate=[validate.Length(1, 200), validate.Regexp(r"\S", error="Must not be blank.")])
    amount = Amount(required=True, metadata={"description": "yuan"})
    allocation_id = StrictInt(1, 2**31 - 1, load_default=None, allow_none=True)
    carrier_id = StrictInt(1, 2**31 - 1, load_default=None, allow_none=True)
    kind = KindField(load_default=None, allow_none=True)

    @validates_schema
    def _one_contract(self, data: dict[str, Any], **kwargs: Any) -> None:
        by_allocation = data.get("allocation_id") is not None
        by_supply = data.get("carrier_id") is not None or data.get("kind") is not None
        if by_allocation and by_supply:
            raise ValidationError("Name an allocation, or a carrier and a kind, not both.", field_name="allocation_id")
        if not by_allocation:
            for name in ("carrier_id", "kind"):
                if data.get(name) is None:
                    raise ValidationError("Name the allocation, or the carrier and the kind, it is for.", field_name=name)


class OtherSubsidiesInSchema(BaseSchema):
    """The whole list: it replaces the one declared before (an empty list clears it)."""

    subsidies = fields.List(fields.Nested(OtherSubsidyInSchema), required=True, validate=validate.Length(0, MAX_DECLARED))


class OtherSubsidySchema(BaseSchema):
    id = fields.Integer()
    level = fields.Enum(SubsidyLevel, by_value=True)
    name = fields.String()
    granting_body = fields.String()
    amount = Money()
    allocation_id = fields.Integer(allow_none=True)
    carrier_id = fields.Integer(allow_none=True)
    kind = fields.String(allow_none=True)
    created_at = LocalDateTime()


class OtherSubsidiesSchema(BaseSchema):
    startup_id = fields.Integer()
    subsidies = fields.List(fields.Nested(OtherSubsidySchema))


class CarrierUsccSchema(BaseSchema):
    """A carrier's own unified social credit code (null: not known)."""

    uscc = Uscc(required=True, allow_none=True)
