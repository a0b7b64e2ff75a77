"""A startup's appeal thread (诉求), its side of the conversation: the messages in order and a
reply form. The company portal is for later; this page is what the thread needs from the
startup's side. Another company's person gets 404 (never 403: an appeal's existence is not
revealed), district staff go to the staff page of the same thread.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, InvalidInput, NotFound
from broker.services import appeals
from broker.web.auth import current_person
from broker.web.guards import company_only
from broker.web.staff_appeals import names, refusal, working_days

bp = Blueprint("portal_appeals", __name__, template_folder="templates")


def _page(appeal_id: int, *, error: str | None = None, typed: str = "", status: int = 200):
    try:
        thread = appeals.appeal_thread(get_session(), current_person().account, appeal_id, now(), working_days())
    except NotFound:
        abort(404)
    done = gettext("您的回复已发送，区科委工作人员会尽快答复。") if request.args.get("done") == "replied" else None
    return render_template("portal/appeal.html", thread=thread, error=error, typed=typed, done=done, **names()), status


@bp.route("/portal/appeals/<int:appeal_id>", methods=["GET"])
@company_only(staff_endpoint="staff_appeals.appeal")
def appeal(appeal_id: int):
    """The startup's own thread."""
    return _page(appeal_id)


@bp.route("/portal/appeals/<int:appeal_id>/reply", methods=["POST"])
@company_only
def reply(appeal_id: int):
    """The startup writes again; the thread waits for the district."""
    body = request.form.get("body", "")
    try:
        appeals.startup_reply(get_session(), current_person().account, appeal_id, body, now())
    except NotFound:
        abort(404)
    except (Conflict, InvalidInput) as error:
        return _page(appeal_id, error=refusal(error), typed=body, status=422 if isinstance(error, InvalidInput) else 409)
    return redirect(url_for("portal_appeals.appeal", appeal_id=appeal_id, done="replied"), code=303)
