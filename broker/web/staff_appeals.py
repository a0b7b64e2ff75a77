"""The appeals inbox (诉求): staff read the startups' appeal threads, assign one to a district
person, reply, and close it; a thread waiting for the district longer than
BROKER_APPEAL_ANSWER_WORKING_DAYS working days is marked overdue (a class and a word).

`/staff/appeals` is the inbox (filters: status, assignee, overdue only; 50 a page);
`/staff/appeals/<id>` one thread with its allocation and the three forms. Each form posts to its
own URL, calls one service of `broker.services.appeals` and redirects (303) back to the thread
with a confirmation; a refusal re-shows the thread with the message by the field.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models.workflow import APPEAL_CLOSED, AppealStatus
from broker.services import appeals
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only
from broker.web.reports import KIND_NAMES

bp = Blueprint("staff_appeals", __name__, template_folder="templates")

APPEAL_STATUS_NAMES = {
    AppealStatus.open: N_("待区里答复"),
    AppealStatus.answered: N_("已答复，待企业回应"),
    AppealStatus.closed: N_("已关闭"),
}
ASSIGNEE_NAMES = {"me": N_("分派给我的"), "anyone": N_("已分派"), "none": N_("未分派")}
DONE = {"assigned": N_("已分派。"), "unassigned": N_("已取消分派。"), "replied": N_("回复已发送，企业会在消息中收到通知。"),
        "closed": N_("诉求已关闭。")}


def working_days() -> int:
    return int(current_app.config.get("APPEAL_ANSWER_WORKING_DAYS", appeals.DEFAULT_ANSWER_WORKING_DAYS))


def names() -> dict[str, object]:
    """Words for codes, for the templates (shared with the company's page)."""
    return {
        "appeal_status_name": lambda status: gettext(APPEAL_STATUS_NAMES[AppealStatus(status)]),
        "kind_name": lambda code: gettext(KIND_NAMES[code]) if code in KIND_NAMES else code,
    }


def refusal(error: Exception) -> str:
    """A service's refusal in the person's language."""
    if isinstance(error, Conflict) and error.message == APPEAL_CLOSED:
        return gettext("该诉求已关闭，不能再回复或分派。")
    if isinstance(error, InvalidInput):
        fields = error.errors if isinstance(error.errors, dict) else {}
        if "person_id" in fields:
            return gettext("请选择一位在岗的区科委工作人员。")
        if error.message.startswith("A message is at most"):
            return gettext("内容不能超过 %(n)s 字。", n=appeals.MAX_MESSAGE)
        return gettext("请填写回复内容。")
    if isinstance(error, Conflict):
        return gettext("该诉求的状态已变化，请刷新后重试。")
    return error.message if hasattr(error, "message") else str(error)


@bp.route("/staff/appeals", methods=["GET"], endpoint="appeals")  # the nav's endpoint (guards.STAFF_SCREENS)
@staff_only
def inbox():
    """The inbox: threads by the filters, oldest waiting first, overdue ones marked."""
    args = {name: request.args.get(name, "").strip() for name in ("status", "assignee", "overdue", "page")}
    problems: list[str] = []
    status = None
    if args["status"]:
        try:
            status = AppealStatus(args["status"])
        except ValueError:
            problems.append(gettext("没有这个状态。"))
    assignee = args["assignee"] if args["assignee"] in appeals.ASSIGNEE_FILTERS else None
    if args["assignee"] and assignee is None:
        problems.append(gettext("没有这个分派条件。"))
    page = int(args["page"]) if args["page"].isdigit() and len(args["page"]) < 7 else 1
    filters = appeals.InboxFilters(status, assignee, args["overdue"] == "1", page)
    person = current_person()
    inbox = appeals.appeal_inbox(get_session(), person.account, person, filters, now(), working_days())
    return render_template("staff/appeals.html", inbox=inbox, args=args, problems=problems, statuses=list(AppealStatus),
                           assignee_names=ASSIGNEE_NAMES, **names())


def _thread_page(appeal_id: int, *, errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                 status: int = 200):
    try:
        thread = appeals.appeal_thread(get_session(), current_person().account, appeal_id, now(), working_days())
    except NotFound:
        abort(404)
    done = request.args.get("done", "")
    return render_template("staff/appeal.html", thread=thread, errors=errors or {}, typed=typed or {},
                           done=gettext(DONE[done]) if done in DONE else None, me=current_person(),
                           **names()), status


@bp.route("/staff/appeals/<int:appeal_id>", methods=["GET"])
@staff_only
def appeal(appeal_id: int):
    """One thread: the messages in order, the allocation and why it was refused, and the forms."""
    return _thread_page(appeal_id)


def _after(appeal_id: int, form: str, typed: dict[str, str], action, done: str):
    """Run one service call for the thread's `form`; back to the thread, or the form with the refusal."""
    try:
        action()
    except NotFound:
        abort(404)
    except (Conflict, InvalidInput) as error:
        code = 422 if isinstance(error, InvalidInput) else 409
        return _thread_page(appeal_id, errors={form: refusal(error)}, typed=typed, status=code)
    return redirect(url_for("staff_appeals.appeal", appeal_id=appeal_id, done=done), code=303)


@bp.route("/staff/appeals/<int:appeal_id>/assign", methods=["POST"])
@staff_only
def assign(appeal_id: int):
    """Give the thread to a district person (or to nobody)."""
    raw = request.form.get("person_id", "").strip()
    person_id = int(raw) if raw.isdigit() and len(raw) < 10 else None
    if raw and person_id is None:
        return _thread_page(appeal_id, errors={"assign": gettext("请选择一位在岗的区科委工作人员。")}, status=422)
    account = current_person().account
    return _after(appeal_id, "assign", {}, lambda: appeals.assign_appeal(get_session(), account, appeal_id, person_id, now()),
                  "assigned" if person_id is not None else "unassigned")


@bp.route("/staff/appeals/<int:appeal_id>/reply", methods=["POST"])
@staff_only
def reply(appeal_id: int):
    """The district's reply: the thread then waits for the startup."""
    body = request.form.get("body", "")
    account = current_person().account
    return _after(appeal_id, "reply", {"reply": body},
                  lambda: appeals.reply_to_appeal(get_session(), account, appeal_id, body, now()), "replied")


@bp.route("/staff/appeals/<int:appeal_id>/close", methods=["POST"])
@staff_only
def close(appeal_id: int):
    """Close the thread, with a last word to the startup if one is given."""
    note = request.form.get("note", "")
    account = current_person().account
    return _after(appeal_id, "close", {"close": note},
                  lambda: appeals.close_appeal(get_session(), account, appeal_id, note, now()), "closed")
