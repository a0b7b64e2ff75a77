"""A startup's appeals (诉求): its list (newest first, the status in words, the last message, how
long it has waited), opening one on a rejected or lapsed allocation, and one thread, its side of
the conversation: the messages in order and a reply form. Another company's person gets 404
(never 403: an appeal's existence is not revealed), district staff go to the staff page of a thread.
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
from broker.web.portal_requests import allocation_page, page_number
from broker.web.staff_appeals import names, refusal, working_days

bp = Blueprint("portal_appeals", __name__, template_folder="templates")


def _page(appeal_id: int, *, error: str | None = None, typed: str = "", status: int = 200):
    try:
        thread = appeals.appeal_thread(get_session(), current_person().account, appeal_id, now(), working_days())
    except NotFound:
        abort(404)
    done = {"replied": gettext("您的回复已发送，区科委工作人员会尽快答复。"),
            "filed": gettext("诉求已提交，区科委工作人员会尽快答复。")}.get(request.args.get("done", ""))
    return render_template("portal/appeal.html", thread=thread, error=error, typed=typed, done=done, **names()), status


@bp.route("/portal/appeals", methods=["GET"], endpoint="appeals")  # the nav's endpoint (guards.PORTAL_SCREENS)
@company_only
def appeals_list():
    """The company's appeals, newest first, 50 a page, each linking to its thread."""
    found = appeals.company_appeals(get_session(), current_person().account, page_number())
    return render_template("portal/appeals.html", found=found, **names()), 200


def _filing_refusal(error: Exception) -> str:
    if isinstance(error, InvalidInput):
        return refusal(error) if error.message.startswith("A message is at most") else gettext("请填写诉求内容。")
    if str(getattr(error, "message", "")).startswith("Only an allocation rejected by district staff or lapsed"):
        return gettext("只有未获批准或已失效的分配可以提出诉求。")
    return gettext("该分配已有一个诉求在等待答复，请在原诉求中补充说明。")


@bp.route("/portal/allocations/<int:allocation_id>/appeals", methods=["POST"])
@company_only
def file(allocation_id: int):
    """The startup opens an appeal on its rejected or lapsed allocation; it lands on the new thread."""
    message = request.form.get("message", "")
    try:
        filed = appeals.file_appeal(get_session(), current_person().account, allocation_id, message, now())
    except NotFound:
        abort(404)
    except (Conflict, InvalidInput) as error:
        return allocation_page(allocation_id, error=_filing_refusal(error), typed=message,
                               status=422 if isinstance(error, InvalidInput) else 409)
    return redirect(url_for("portal_appeals.appeal", appeal_id=filed.id, done="filed"), code=303)


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
