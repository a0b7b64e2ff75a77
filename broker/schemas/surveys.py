"""Shapes of demand surveys (需求摸排): campaigns, a startup's declared lines and the aggregates.

The carriers' aggregate has no sector and no firm: only kind, region, month, how many firms and how much.
"""

from __future__ import annotations

from marshmallow import fields, validate

from broker.models.surveys import MAX_PURPOSE, MAX_REGION, MAX_TITLE
from broker.resources import KINDS, MAX_QUANTITY, MAX_UNIT_PRICE, MONEY_PLACES, QUANTITY_PLACES
from broker.schemas.common import BaseSchema
from broker.schemas.fields import Exact, LocalDateTime
from decimal import Decimal


class CampaignInSchema(BaseSchema):
    """A survey to open."""

    title = fields.String(required=True, validate=validate.Length(1, MAX_TITLE))
    period = fields.String(required=True, metadata={"description": "2027, 2027-H1, 2027-Q1 or 2027-03"})
    opens_on = fields.Date(required=True, metadata={"description": "Asia/Shanghai date"})
    closes_on = fields.Date(required=True, metadata={"description": "the last day answers are taken (Asia/Shanghai)"})
    kinds = fields.List(fields.String(validate=validate.OneOf(list(KINDS))), required=True, validate=validate.Length(1, len(KINDS)))
    allow_unregistered = fields.Boolean(load_default=False)


class CampaignFlagsSchema(BaseSchema):
    """What staff may change of a survey until it closes."""

    allow_unregistered = fields.Boolean(required=True, metadata={
        "description": "whether firms not registered may answer by unified social credit code"})


class CampaignSchema(BaseSchema):
    id = fields.Integer()
    title = fields.String()
    period = fields.String()
    opens_on = fields.Date()
    closes_on = fields.Date()
    kinds = fields.List(fields.String())
    allow_unregistered = fields.Boolean()
    status = fields.String(metadata={"description": "scheduled, open or closed (from the dates)"})
    created_at = LocalDateTime()


class LineInSchema(BaseSchema):
    """One declared line: unique per kind, region and month."""

    kind = fields.String(required=True)
    quantity = Exact(QUANTITY_PLACES, Decimal(0), MAX_QUANTITY, exclusive_minimum=True, required=True)
    region = fields.String(required=True, validate=validate.Length(1, MAX_REGION))
    month = fields.Date(required=True, metadata={"description": "the first day of a month of the period"})
    max_unit_price = Exact(MONEY_PLACES, Decimal(0), MAX_UNIT_PRICE, load_default=None, allow_none=True,
                           metadata={"description": "the most it could pay per unit, yuan"})
    purpose = fields.String(required=True, validate=validate.Length(1, MAX_PURPOSE))


class LinesInSchema(BaseSchema):
    """The startup's whole declaration: lines absent here are removed."""

    lines = fields.List(fields.Nested(LineInSchema), required=True, validate=validate.Length(0, 500))


class LineSchema(LineInSchema):
    id = fields.Integer()
    updated_at = LocalDateTime()


class LinesSchema(BaseSchema):
    campaign = fields.Nested(CampaignSchema)
    lines = fields.List(fields.Nested(LineSchema))


class CellSchema(BaseSchema):
    kind = fields.String()
    region = fields.String()
    month = fields.Date()
    sector = fields.String()
    lighthouse = fields.Boolean()
    firms = fields.Integer()
    unregistered = fields.Integer(metadata={"description": "of the firms, those that answered without registering"})
    quantity = Exact(QUANTITY_PLACES, Decimal(0), MAX_QUANTITY * 100000)
    avg_max_price = Exact(MONEY_PLACES, Decimal(0), MAX_UNIT_PRICE, allow_none=True)


class AnonymousCellSchema(BaseSchema):
    kind = fields.String()
    region = fields.String()
    month = fields.Date()
    firms = fields.Integer()
    quantity = Exact(QUANTITY_PLACES, Decimal(0), MAX_QUANTITY * 100000)
    avg_max_price = Exact(MONEY_PLACES, Decimal(0), MAX_UNIT_PRICE, allow_none=True)


class AggregateSchema(BaseSchema):
    campaign = fields.Nested(CampaignSchema)
    firms = fields.Integer()
    cells = fields.List(fields.Nested(CellSchema))


class AnonymousAggregateSchema(BaseSchema):
    campaign = fields.Nested(CampaignSchema)
    suppressed = fields.Integer(metadata={"description": "cells left out: fewer than 3 firms declared them"})
    cells = fields.List(fields.Nested(AnonymousCellSchema))
