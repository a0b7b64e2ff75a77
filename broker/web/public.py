"""The public side of the console: a notice (公示) as a read-only page anyone may open, no sign-in.

Server-rendered, no scripts and nothing from a CDN; Jinja escapes every name on the list.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from broker.clock import local_date, now
from broker.db import get_session
from broker.errors import NotFound
from broker.models.notices import MAX_OBJECTION_CONTACT, MAX_OBJECTION_NAME, MAX_OBJECTION_TEXT
from broker.services import notices

bp = Blueprint("public", __name__, template_folder="templates")


@bp.route("/notices/<int:notice_id>", methods=["GET"])
def notice(notice_id: int) -> tuple[str, int]:
    """One notice: the list, when it ends (Asia/Shanghai) and how to object."""
    try:
        found = notices.get_notice(get_session(), notice_id)
    except NotFound:
        return render_template("public/missing.html"), 404
    return render_template(
        "public/notice.html",
        notice=found,
        taking_objections=notices.is_taking_objections(found, local_date(now())),
        contact=current_app.config.get("DISTRICT_CONTACT"),
        limits={"name": MAX_OBJECTION_NAME, "contact": MAX_OBJECTION_CONTACT, "text": MAX_OBJECTION_TEXT},
    ), 200
