"""Evidence per award: the award's startup or supplying carrier uploads, staff review, both download."""

from __future__ import annotations

import io
import unicodedata
from typing import Any

from flask import current_app, request, send_file
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from broker.api.common import BEARER, SelectPage, limit_body
from broker.auth import current_account
from broker.clock import now
from broker.db import get_session
from broker.errors import InvalidInput
from broker.schemas.evidence import EvidenceRejectionSchema, EvidenceSchema, EvidenceUploadSchema
from broker.services import evidence
from broker.storage import EvidenceStore

class _MultipartParser(FlaskParser):
    """Reads `files` as the whole multipart form, its files and its text fields, so that one schema
    checks and documents an upload (flask-smorest documents one request body per view)."""

    def load_files(self, req: Any, schema: Any) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


class _Blueprint(Blueprint):
    ARGUMENTS_PARSER = _MultipartParser()


blp = _Blueprint("evidence", __name__, url_prefix="/api/v1", description="Evidence per award: upload, review, download")

STORE = "broker.evidence_store"
# A multipart body is the file plus its boundaries, headers and the `type` field: room for those,
# so a file just over the limit is refused by the limit's own message, not by a bare body size.
MULTIPART_ROOM = 64 * 1024


def _store() -> EvidenceStore:
    return current_app.extensions[STORE]


def _max_bytes() -> int:
    return int(current_app.config["EVIDENCE_MAX_BYTES"])


@blp.before_request
def _room_for_an_evidence_file() -> None:
    if request.endpoint == "evidence.upload_evidence":
        limit = _max_bytes()
        limit_body(limit + MULTIPART_ROOM, f"Evidence files may be at most {limit} bytes ({limit / (1024 * 1024):g} MiB).")


@blp.route("/awards/<int:award_id>/evidence", methods=["POST"])
@blp.arguments(EvidenceUploadSchema, location="files")
@blp.response(201, EvidenceSchema)
@blp.alt_response(200, schema=EvidenceSchema, description="The same file was already uploaded as this type: that piece")
@blp.alt_response(413, description="The file is over BROKER_EVIDENCE_MAX_BYTES: nothing was stored")
@blp.doc(security=BEARER)
def upload_evidence(data: dict[str, Any], award_id: int) -> Any:
    """The award's startup, or the carrier that supplied it, uploads a piece of evidence
    (multipart: `type` and `file`; PDF, PNG, JPEG, OFD, XLSX or CSV, judged by content)."""
    upload = data["file"]
    if not hasattr(upload, "read"):
        raise InvalidInput("Send the evidence as multipart/form-data field `file`.", {"file": ["Not a file."]},
                           location="files")
    piece, new = evidence.upload(
        get_session(), current_account(), _store(), award_id, data["type"],
        evidence.Upload(upload.read(), upload.filename or "", upload.mimetype or ""), now(), max_bytes=_max_bytes(),
    )
    return piece, (201 if new else 200)


@blp.route("/awards/<int:award_id>/evidence", methods=["GET"])
@blp.response(200, EvidenceSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_evidence(award_id: int) -> Any:
    """An award's evidence, oldest first, rejected pieces included: its startup, its carrier, staff."""
    return evidence.list_evidence(get_session(), current_account(), award_id)


@blp.route("/evidence/<int:evidence_id>", methods=["GET"])
@blp.response(200, EvidenceSchema)
@blp.doc(security=BEARER)
def get_evidence(evidence_id: int) -> Any:
    """One piece of evidence and its review."""
    return evidence.get_evidence(get_session(), current_account(), evidence_id)


@blp.route("/evidence/<int:evidence_id>/file", methods=["GET"])
@blp.doc(security=BEARER, responses={"200": {"description": "The file's bytes, as an attachment",
                                             "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
def download_evidence(evidence_id: int) -> Any:
    """The file itself, checked against its SHA-256, as an attachment of the type it was sniffed as."""
    piece, data = evidence.read_file(get_session(), current_account(), _store(), evidence_id)
    response = send_file(io.BytesIO(data), mimetype=piece.content_type, as_attachment=True,
                         download_name=safe_download_name(piece.file_name), conditional=False, etag=piece.sha256)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/evidence/<int:evidence_id>/verify", methods=["POST"])
@blp.response(200, EvidenceSchema)
@blp.doc(security=BEARER)
def verify_evidence(evidence_id: int) -> Any:
    """Staff: the piece is what it says; the award's evidence_complete is worked out again."""
    return evidence.verify(get_session(), current_account(), evidence_id, now())


@blp.route("/evidence/<int:evidence_id>/reject", methods=["POST"])
@blp.arguments(EvidenceRejectionSchema)
@blp.response(200, EvidenceSchema)
@blp.doc(security=BEARER)
def reject_evidence(data: dict[str, Any], evidence_id: int) -> Any:
    """Staff: the piece is refused, with a reason; the same type may be uploaded again."""
    return evidence.reject(get_session(), current_account(), evidence_id, data["reason"], now())


def safe_download_name(name: str) -> str:
    """The uploaded name with control and separator characters replaced, for Content-Disposition
    (werkzeug quotes it, and adds an RFC 5987 filename* for non-ASCII names)."""
    cleaned = "".join("_" if unicodedata.category(c).startswith(("C", "Z")) and c != " " or c in '/\\"' else c
                      for c in name).strip(" .")
    return cleaned or "evidence"
