"""Liveness, readiness and the offline assets of the API docs page."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, send_from_directory

from broker.db import get_session
from broker.migrations import current_revision, head_revision

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """The process is up."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> Any:
    """The database answers and its schema is at the newest migration."""
    try:
        connection = get_session().connection()
        connection.execute(sa.text("SELECT 1"))
        current = current_revision(connection)
    except sa.exc.SQLAlchemyError as error:
        return {"status": "unavailable", "database": "unreachable", "error": type(error).__name__}, 503
    head = head_revision()
    if current != head:
        return {"status": "unavailable", "database": "reachable", "migration": current, "head": head}, 503
    return {"status": "ok", "database": "reachable", "migration": current}


@bp.get("/api/docs/assets/<path:filename>")
def docs_assets(filename: str) -> Any:
    import swagger_ui_bundle

    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)
