"""Carrier syncs: the sync report, signed webhooks and catalog uploads."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint

from broker.api.common import BEARER, SelectPage, signature_headers
from broker.auth import current_account
from broker.clock import now
from broker.db import get_session
from broker.errors import InvalidInput
from broker.schemas.sync import CatalogFileSchema, QuarantinedRecordSchema, SyncConflictSchema, SyncSchema
from broker.services import sync

# Named "carriers" (its OpenAPI tag): "carrier_syncs" is the console's carrier page screen (broker.web.carrier_syncs).
blp = Blueprint("carriers", __name__, url_prefix="/api/v1", description="Carrier syncs, webhooks and uploads")

# A catalog sent as the raw body is named by its content type, as a multipart upload is by its file name.
_CATALOG_TYPES = {
    "text/csv": "catalog.csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "catalog.xlsx",
}


def _adapters() -> sync.CarrierAdapters:
    return current_app.extensions["broker.carrier_adapters"]


@blp.route("/carriers/<string:carrier_code>/syncs", methods=["GET"])
@blp.response(200, SyncSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_syncs(carrier_code: str) -> Any:
    """A carrier's syncs, newest first, with their counts and errors: the carrier itself and staff."""
    return sync.list_syncs(get_session(), current_account(), carrier_code)


@blp.route("/carriers/<string:carrier_code>/syncs/<int:sync_id>", methods=["GET"])
@blp.response(200, SyncSchema)
@blp.doc(security=BEARER)
def get_sync(carrier_code: str, sync_id: int) -> Any:
    """One sync."""
    return sync.get_sync(get_session(), current_account(), carrier_code, sync_id)


@blp.route("/carriers/<string:carrier_code>/syncs/<int:sync_id>/quarantined", methods=["GET"])
@blp.response(200, QuarantinedRecordSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_quarantined(carrier_code: str, sync_id: int) -> Any:
    """The records a sync quarantined, as sent, with the reason for each."""
    return sync.list_quarantined(get_session(), current_account(), carrier_code, sync_id)


@blp.route("/carriers/<string:carrier_code>/syncs/<int:sync_id>/conflicts", methods=["GET"])
@blp.response(200, SyncConflictSchema(many=True))
@blp.paginate(SelectPage)
@blp.doc(security=BEARER)
def list_conflicts(carrier_code: str, sync_id: int) -> Any:
    """Shrinks and withdrawals a sync stopped at the capacity already promised: staff and the carrier itself."""
    return sync.list_conflicts(get_session(), current_account(), carrier_code, sync_id)


@blp.route("/carriers/<string:carrier_code>/catalog", methods=["POST"])
@blp.arguments(CatalogFileSchema, location="files")
@blp.response(200, SyncSchema)
@blp.doc(security=BEARER)
def upload_catalog(files: dict[str, Any], carrier_code: str) -> Any:
    """The carrier uploads its catalog (CSV or XLSX; multipart `file`, or the raw body with its
    content type); bad rows are quarantined, good ones upserted, nothing withdrawn."""
    upload = files.get("file")
    if upload is not None and hasattr(upload, "read"):
        content, filename = upload.read(), upload.filename or ""
    else:
        content, filename = request.get_data(), _CATALOG_TYPES.get(request.mimetype, "")
    if not content or not filename:
        raise InvalidInput(
            "Send the catalog as multipart/form-data field `file`, or as the body with Content-Type "
            f"{' or '.join(_CATALOG_TYPES)}.",
            {"file": ["A CSV or XLSX catalog file is required."]},
        )
    return sync.upload_catalog(
        get_session(), current_account(), carrier_code, _adapters(), content, filename, now(), current_app.config
    )


@blp.route("/webhooks/<string:carrier_code>", methods=["POST"])
@blp.response(200, SyncSchema)
@blp.alt_response(401, description="Missing, wrong or stale signature: nothing was stored")
@blp.alt_response(409, description="The same signed push was already received (a replay): nothing was changed")
def receive_webhook(carrier_code: str) -> Any:
    """A carrier pushes changed offers, signed with HMAC-SHA256 over timestamp and body; each push is applied once."""
    return sync.receive_webhook(
        get_session(), carrier_code, _adapters(), signature_headers(), request.get_data(), now()
    )
