"""Shapes of cycles, decisions, appeals, events and webhook subscriptions."""

from __future__ import annotations

from marshmallow import fields, validate

from broker.db import MAX_ID
from broker.models.enums import CycleStatus
from broker.models.workflow import AppealStatus
from broker.schemas.common import BaseSchema
from broker.schemas.fields import Id, LocalDateTime, QueryInt


class CycleRunSchema(BaseSchema):
    time_limit = fields.Float(validate=validate.Range(0.1, 600), metadata={"description": "seconds for the solver"})


class CycleSchema(BaseSchema):
    id = fields.Integer()
    status = fields.Enum(CycleStatus, by_value=True)
    scheduled_for = LocalDateTime()
    started_at = LocalDateTime(allow_none=True)
    finished_at = LocalDateTime(allow_none=True)
    approval_deadline = LocalDateTime(allow_none=True)
    started_by_id = fields.Integer(allow_none=True)
    stats = fields.Dict(metadata={"description": "counts, objective, bound, gap, fulfilment by kind and sector, unfilled with reasons"})
    error = fields.String(allow_none=True)


class ProposalPreviewSchema(BaseSchema):
    request_id = fields.Integer()
    offer_id = fields.Integer()
    quantity = fields.String()
    unit_price = fields.String()


class DryRunSchema(BaseSchema):
    dry_run = fields.Boolean()
    stats = fields.Dict()
    proposals = fields.List(fields.Nested(ProposalPreviewSchema))


class DecisionReasonSchema(BaseSchema):
    reason = fields.String(validate=validate.Length(1, 2000))


class RejectionSchema(BaseSchema):
    # Blank is refused here as the services refuse it (reject, cancel): the rule stands in both.
    reason = fields.String(
        required=True, validate=[validate.Length(1, 2000), validate.Regexp(r"\S", error="Must not be blank.")]
    )


class DecisionSchema(BaseSchema):
    allocation_id = Id(required=True)
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    reason = fields.String(validate=validate.Length(1, 2000))


class DecisionBatchSchema(BaseSchema):
    decisions = fields.List(fields.Nested(DecisionSchema), required=True, validate=validate.Length(1, 1000))


class AppealInSchema(BaseSchema):
    message = fields.String(required=True, validate=validate.Length(1, 4000))


class AppealAnswerSchema(BaseSchema):
    answer = fields.String(required=True, validate=validate.Length(1, 4000))


class AppealSchema(BaseSchema):
    id = fields.Integer()
    allocation_id = fields.Integer()
    startup_id = fields.Integer()
    message = fields.String()
    status = fields.Enum(AppealStatus, by_value=True)
    answer = fields.String(allow_none=True)
    answered_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()
    assigned_to_id = fields.Integer(allow_none=True, metadata={"description": "the district person the thread is assigned to"})
    waiting_since = LocalDateTime(metadata={"description": "open: since when it waits for the district; "
                                            "answered: for the startup"})
    closed_at = LocalDateTime(allow_none=True)


class EventSchema(BaseSchema):
    id = fields.Integer()
    type = fields.String()
    allocation_id = fields.Integer(allow_none=True)
    payload = fields.Dict()
    created_at = LocalDateTime()


class EventQuerySchema(BaseSchema):
    since_id = QueryInt(0, MAX_ID, metadata={"description": "only events after this id"})


class WebhookInSchema(BaseSchema):
    # Checked by broker.netguard in the service (public destinations only), which says why it refuses.
    url = fields.String(required=True, validate=validate.Length(1, 500), metadata={
        "format": "uri", "description": "http(s) URL of a public address (https only in production)"})


class WebhookSchema(BaseSchema):
    url = fields.String()
    secret = fields.String(metadata={"description": "signing secret, shown once: X-Broker-Signature is t=<unix>,v1=HMAC-SHA256(secret, t + '.' + body)"})
