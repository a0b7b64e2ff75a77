"""Shapes of the policy, subsidy programs and audit entries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from broker.clock import SHANGHAI
from broker.db import Base, UTCDateTime
from broker.models import AUDITED_ENTITY_TYPES
from broker.models import Claimant, EvidenceType, ProgramMode, SubsidyLevel
from broker.models.enums import ProgramStatus, Sector
from broker.resources import KINDS, MAX_MONEY, MONEY_PLACES
from broker.schemas.common import BaseSchema, KindField, QuantityField
from broker.schemas.fields import Exact, LocalDateTime, QueryId, StrictInt


def Weight(**kwargs: Any) -> Exact:
    return Exact(4, Decimal(0), Decimal(100), exclusive_minimum=True, **kwargs)


def Bonus(**kwargs: Any) -> Exact:
    return Exact(4, Decimal(0), Decimal(100), **kwargs)


def Fraction(**kwargs: Any) -> Exact:
    return Exact(4, Decimal(0), Decimal(1), exclusive_minimum=True, **kwargs)


def Amount(**kwargs: Any) -> Exact:
    return Exact(MONEY_PLACES, Decimal(0), MAX_MONEY, exclusive_minimum=True, **kwargs)


def Money(**kwargs: Any) -> Exact:
    """A yuan amount out (any sign: a clawback can leave money to recover)."""
    return Exact(MONEY_PLACES, -MAX_MONEY, MAX_MONEY, **kwargs)


def FundingDocument(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(1, 100), metadata={
        "description": "the funding document's number, e.g. 沪经信智〔2025〕489号"}, **kwargs)


class PolicyInSchema(BaseSchema):
    """A new version of the matching policy."""

    sector_weights = fields.Dict(
        keys=fields.Enum(Sector, by_value=True), values=Weight(), required=True,
        metadata={"description": "weight per sector; sectors not named get default_weight"},
    )
    default_weight = Weight(required=True)
    key_enterprise_bonus = Bonus(required=True, metadata={"description": "added to the weight of key enterprises (重点企业)"})
    wait_bonus_per_cycle = Bonus(required=True, metadata={"description": "added per cycle a request has waited"})
    share_cap = Fraction(required=True, metadata={"description": "most of one kind's supply one startup may take in a cycle"})
    approval_window_hours = StrictInt(1, 720, required=True)
    max_request_quantity = fields.Dict(
        keys=KindField(), values=QuantityField(), load_default=dict,
        metadata={"description": "the most one request may ask for, per kind, in the kind's unit; kinds not "
                                 "named keep their default ("
                                 + ", ".join(f"{name} {kind.max_request}" for name, kind in KINDS.items()) + ")"},
    )


class PolicySchema(PolicyInSchema):
    id = fields.Integer(allow_none=True, metadata={"description": "null: the built-in default is in force"})
    sector_weights = fields.Dict()
    max_request_quantity = fields.Dict(keys=fields.String(), values=QuantityField(), attribute="request_limits",
                                       metadata={"description": "every kind's maximum per request"})
    created_at = LocalDateTime(allow_none=True)


class RateRuleSchema(BaseSchema):
    """A higher rate for what is supplied or who gets it (e.g. domestic accelerators such as 910B)."""

    rate = Fraction(required=True)
    attributes = fields.Dict(keys=fields.String(validate=validate.Length(1, 64)),
                             values=fields.List(fields.String(validate=validate.Length(1, 200)), validate=validate.Length(1, 50)),
                             load_default=dict, metadata={"description": "offer attribute -> values that earn this rate"})
    sectors = fields.List(fields.Enum(Sector, by_value=True), load_default=None, allow_none=True)
    max_company_age_years = StrictInt(1, 100, allow_none=True, load_default=None)


class ProgramTermsSchema(BaseSchema):
    """The terms staff may set on a program; each change applies to awards made after it."""

    name = fields.String(validate=validate.Length(1, 200))
    mode = fields.Enum(ProgramMode, by_value=True, metadata={
        "description": "after: a share of the cost paid after usage (事后补贴); instant: deducted at approval, the "
                       "startup pays the net price (即时抵扣); allotment: free units, no cash value"})
    claimant = fields.Enum(Claimant, by_value=True, metadata={"description": "who claims settlement: the startup or the carrier"})
    kinds = fields.List(KindField(), allow_none=True, validate=validate.Length(1), metadata={"description": "null: every kind"})
    excluded_kinds = fields.List(KindField())
    supplier_carrier_ids = fields.List(StrictInt(1, 2**31 - 1), allow_none=True, metadata={"description": "null: any carrier"})
    supplier_offer_ids = fields.List(StrictInt(1, 2**31 - 1), allow_none=True, metadata={"description": "null: any offer"})
    rate = Fraction(metadata={"description": "share of the startup's cost the program pays"})
    rate_rules = fields.List(fields.Nested(RateRuleSchema), validate=validate.Length(0, 20))
    cap_per_startup = Amount(metadata={"description": "yuan per startup per fiscal year"})
    cap_per_allocation = Amount(allow_none=True)
    allotment_per_startup = QuantityField(allow_none=True, metadata={"description": "allotment: free units per startup per fiscal year"})
    stack_group = fields.String(allow_none=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,31}$"), metadata={
        "description": "the code of the stack group (市区协同) whose programs may pay together"})
    evidence_required = fields.List(fields.Enum(EvidenceType, by_value=True), metadata={
        "description": "evidence that must be verified before redemptions are paid out"})
    requires_notice = fields.Boolean(metadata={"description": "awards go through a public notice (公示) before payment"})
    eligible_sectors = fields.List(fields.Enum(Sector, by_value=True), allow_none=True)
    require_in_district = fields.Boolean()
    max_company_age_years = StrictInt(1, 100, allow_none=True)
    max_headcount = StrictInt(1, 1_000_000, allow_none=True)
    exclude_carrier_affiliates = fields.Boolean()
    excludes_subsidy_levels = fields.List(fields.Enum(SubsidyLevel, by_value=True), metadata={
        "description": "the exclusion rule for other public subsidies (e.g. 未获得其他市级算力补贴): a subsidy the startup "
                       "declared for the same contract at one of these levels (national, city, district) blocks the program"})
    excludes_subsidy_kinds = fields.List(KindField(), allow_none=True, validate=validate.Length(1), metadata={
        "description": "...when the contract is for one of these kinds (null: whatever the kind)"})
    starts_on = fields.Date(metadata={"description": "an allocation starting from this date is eligible"})
    ends_on = fields.Date(metadata={"description": "...and before this one"})

    @validates_schema(skip_on_field_errors=False)  # report cross-field problems with the rest
    def _rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "starts_on" in data and "ends_on" in data and data["starts_on"] >= data["ends_on"]:
            raise ValidationError("Must be after starts_on.", field_name="ends_on")
        if data.get("mode") is ProgramMode.allotment and not data.get("allotment_per_startup"):
            raise ValidationError("An allotment program names its free units per startup.", field_name="allotment_per_startup")


class ProgramInSchema(ProgramTermsSchema):
    """A new subsidy program (e.g. Tokens/API 专项补贴, 算力券) and its opening budget."""

    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,31}$"))
    name = fields.String(required=True, validate=validate.Length(1, 200))
    mode = fields.Enum(ProgramMode, by_value=True, load_default=ProgramMode.after)
    claimant = fields.Enum(Claimant, by_value=True, load_default=Claimant.startup)
    kinds = fields.List(KindField(), required=True, allow_none=True, validate=validate.Length(1))
    excluded_kinds = fields.List(KindField(), load_default=list)
    supplier_carrier_ids = fields.List(StrictInt(1, 2**31 - 1), allow_none=True, load_default=None)
    supplier_offer_ids = fields.List(StrictInt(1, 2**31 - 1), allow_none=True, load_default=None)
    rate = Fraction(required=True)
    rate_rules = fields.List(fields.Nested(RateRuleSchema), validate=validate.Length(0, 20), load_default=list)
    cap_per_startup = Amount(required=True)
    cap_per_allocation = Amount(allow_none=True, load_default=None)
    allotment_per_startup = QuantityField(allow_none=True, load_default=None)
    stack_group = fields.String(allow_none=True, load_default=None, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,31}$"))
    budget = Amount(required=True, metadata={"description": "the opening deposit, in yuan"})
    funding_document = FundingDocument(required=True)
    evidence_required = fields.List(fields.Enum(EvidenceType, by_value=True), load_default=list)
    requires_notice = fields.Boolean(load_default=True)
    eligible_sectors = fields.List(fields.Enum(Sector, by_value=True), allow_none=True, load_default=None)
    require_in_district = fields.Boolean(load_default=True)
    max_company_age_years = StrictInt(1, 100, allow_none=True, load_default=None)
    max_headcount = StrictInt(1, 1_000_000, allow_none=True, load_default=None)
    exclude_carrier_affiliates = fields.Boolean(load_default=True)
    excludes_subsidy_levels = fields.List(fields.Enum(SubsidyLevel, by_value=True), load_default=list)
    excludes_subsidy_kinds = fields.List(KindField(), allow_none=True, load_default=None, validate=validate.Length(1))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)

    @validates_schema(skip_on_field_errors=False)
    def _caps(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "cap_per_startup" in data and "budget" in data and data["cap_per_startup"] > data["budget"]:
            raise ValidationError("Must not exceed budget.", field_name="cap_per_startup")


class ProgramSchema(ProgramInSchema):
    id = fields.Integer()
    kinds = fields.List(fields.String(), allow_none=True)
    eligible_sectors = fields.List(fields.String(), allow_none=True)
    evidence_required = fields.List(fields.String())
    excludes_subsidy_levels = fields.List(fields.String())
    stack_group = fields.Function(lambda p: p.stack_group.code if p.stack_group else None)
    rate_rules = fields.List(fields.Dict())
    funding_document = fields.Constant(None, dump_only=True, metadata={"description": "see the program's deposits in the ledger"})
    budget = Money(metadata={"description": "yuan deposited, less budget cuts (from the ledger)"})
    committed = Money(metadata={"description": "yuan promised to awards"})
    redeemed = Money(metadata={"description": "yuan of awards that usage has turned into spend"})
    written_off = Money(metadata={"description": "yuan settled and paid (核销)"})
    remaining = Money()
    status = fields.Enum(ProgramStatus, by_value=True)
    created_at = LocalDateTime()


class StackGroupInSchema(BaseSchema):
    """Programs that may pay together for one allocation (市区协同: a city and a district program)."""

    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,31}$"))
    name = fields.String(required=True, validate=validate.Length(1, 200))
    combined_cap = Fraction(required=True, metadata={"description": "most of the cost the group's programs pay together (≤ 1)"})


class StackGroupSchema(StackGroupInSchema):
    id = fields.Integer()
    created_at = LocalDateTime()


class AuditSnapshot(fields.Dict):
    """An audit entry's before or after: its entity's datetime columns shown in Asia/Shanghai, as
    every time is served (stored in UTC, as the log was written)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        table = Base.metadata.tables.get(obj.entity_type)
        times = set() if table is None else {c.name for c in table.columns if isinstance(c.type, UTCDateTime)}
        return {key: _local_time(item) if key in times else item for key, item in value.items()}


def _local_time(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).astimezone(SHANGHAI).isoformat()


_ENTITY_TYPES = "the audited tables: " + ", ".join(AUDITED_ENTITY_TYPES)


class AuditEntrySchema(BaseSchema):
    id = fields.Integer()
    at = LocalDateTime()
    actor_id = fields.Integer(allow_none=True, metadata={"description": "the account whose token made the change"})
    acting_staff_id = fields.Integer(allow_none=True, metadata={
        "description": "the staff member who minted that token for the account, if it was minted for another account"})
    action = fields.String()
    entity_type = fields.String(metadata={"description": _ENTITY_TYPES})
    entity_id = fields.Integer()
    before = AuditSnapshot(allow_none=True, metadata={"description": "the changed fields before (null: created)"})
    after = AuditSnapshot(allow_none=True, metadata={"description": "the changed fields after, or every field of a new row"})


class AuditQuerySchema(BaseSchema):
    entity_type = fields.String(
        validate=validate.OneOf(AUDITED_ENTITY_TYPES, error="Unknown entity type; valid: {choices}."),
        metadata={"description": _ENTITY_TYPES},
    )
    entity_id = QueryId()
    actor_id = QueryId()
    acting_staff_id = QueryId()
    action = fields.String(validate=validate.Length(1, 64))
