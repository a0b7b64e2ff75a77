"""Shapes of evidence: the upload (a multipart form), a stored piece, and a staff rejection."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from broker.models import EvidenceSide, EvidenceStatus, EvidenceType
from broker.schemas.common import BaseSchema
from broker.schemas.fields import LocalDateTime
from broker.storage import ALLOWED_TYPES


class EvidenceUploadSchema(BaseSchema):
    """The multipart form of an upload: which kind of evidence, and the file."""

    type = fields.Enum(EvidenceType, by_value=True, required=True, metadata={
        "description": "contract, invoice, payment (proof of payment) or usage_statement"})
    file = fields.Raw(required=True, metadata={
        "type": "string", "format": "binary",
        "description": f"the evidence file: {', '.join(ALLOWED_TYPES)}, judged by its content, not its name"})


class EvidenceSchema(BaseSchema):
    id = fields.Integer()
    award_id = fields.Integer()
    type = fields.Enum(EvidenceType, by_value=True)
    sha256 = fields.String(metadata={"description": "SHA-256 of the file's bytes, lower-case hex"})
    size = fields.Integer(metadata={"description": "bytes"})
    content_type = fields.String(metadata={"description": "what the bytes are (sniffed), as served on download"})
    file_name = fields.String(metadata={"description": "the name it was uploaded under"})
    uploaded_by_id = fields.Integer()
    side = fields.Enum(EvidenceSide, by_value=True, metadata={"description": "startup or carrier: whose side uploaded it"})
    uploaded_at = LocalDateTime()
    status = fields.Enum(EvidenceStatus, by_value=True)
    reason = fields.String(allow_none=True, metadata={"description": "why it was rejected"})
    reviewed_by_id = fields.Integer(allow_none=True)
    reviewed_at = LocalDateTime(allow_none=True)
    evidence_complete = fields.Function(lambda e: e.award.evidence_complete, metadata={
        "description": "whether the award now has a verified piece of every type its program requires"})


class EvidenceRejectionSchema(BaseSchema):
    reason = fields.String(required=True, validate=validate.Length(1, 2000), metadata={"description": "why, in words"})

    @validates("reason")
    def _not_blank(self, value: Any, **kwargs: Any) -> None:
        if not value.strip():
            raise ValidationError("Say why the evidence is rejected.")
