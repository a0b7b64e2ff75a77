"""Shapes of carrier syncs, their quarantined records and conflicts, and catalog uploads."""

from __future__ import annotations

from marshmallow import fields

from broker.schemas.common import BaseSchema, QuantityField
from broker.schemas.fields import LocalDateTime


class SyncCountsSchema(BaseSchema):
    """What one sync did to the carrier's offers."""

    new = fields.Integer()
    changed = fields.Integer()
    unchanged = fields.Integer()
    withdrawn = fields.Integer()
    quarantined = fields.Integer()
    conflicts = fields.Integer(metadata={"description": "capacity kept because it is already promised"})


class SyncSchema(BaseSchema):
    """One pull, push or upload of a carrier's offers."""

    id = fields.Integer()
    carrier = fields.Function(lambda s: s.carrier.code)
    source = fields.String(metadata={"description": "pull, webhook or upload"})
    status = fields.String(metadata={"description": "running, succeeded or failed"})
    complete = fields.Boolean(metadata={"description": "the whole catalogue: only then are missing offers withdrawn"})
    started_at = LocalDateTime()
    finished_at = LocalDateTime(allow_none=True)
    counts = fields.Nested(SyncCountsSchema)
    error = fields.String(allow_none=True)
    encoding = fields.String(
        allow_none=True,
        metadata={"description": "the encoding a CSV catalog (uploaded or pulled) was read in: utf-8, utf-8-sig (with the byte-order "
                                 "mark Excel writes) or gb18030 (Excel on Chinese Windows); null otherwise"},
    )


class QuarantinedRecordSchema(BaseSchema):
    """A record a sync could not import, as the carrier sent it."""

    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    location = fields.String()
    reason = fields.String()
    raw = fields.Raw(allow_none=True)


class SyncConflictSchema(BaseSchema):
    """A shrink or withdrawal that stopped at the capacity already promised."""

    id = fields.Integer()
    offer_id = fields.Integer()
    external_id = fields.String()
    kind = fields.String(metadata={"description": "shrunk or withdrawn"})
    requested_quantity = QuantityField()
    kept_quantity = QuantityField()


class CatalogFileSchema(BaseSchema):
    """A catalog file as multipart/form-data (or send the file as the raw body)."""

    class Meta(BaseSchema.Meta):
        unknown = "exclude"

    file = fields.Raw(metadata={"type": "string", "format": "binary"})
