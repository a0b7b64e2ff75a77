"""The in-app inbox (消息, /inbox), shared by a startup's and a carrier's people: the company's
events newest first, 50 a page, each one sentence in the reader's language (`event_words`) with
its time and a link to what it concerns; filtered to the unread or to one group of events. The
unread ones are marked, and opening the first page of the whole inbox marks them seen.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from broker.db import get_session
from broker.services import inbox as inbox_service
from broker.web import event_words
from broker.web.auth import current_person
from broker.web.guards import N_, any_company

bp = Blueprint("inbox", __name__, template_folder="templates")

GROUP_NAMES: dict[str, str] = {
    "allocations": N_("分配与申请"), "subsidies": N_("补贴"), "appeals": N_("诉求"), "account": N_("企业账户"),
}


@bp.route("/inbox", methods=["GET"])
@any_company
def inbox() -> tuple[str, int]:
    """The company's events in words, newest first."""
    person = current_person()
    group = request.args.get("group", "")
    group = group if group in GROUP_NAMES else None
    unread_only = request.args.get("unread") == "1"
    raw_page = request.args.get("page", "")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100000 else 1
    found = inbox_service.open_inbox(get_session(), person, group, unread_only, page)
    lines = [(row, event_words.sentence(row.event.type, row.event.payload, row.kind),
              _link(event_words.target(row.event.payload, person.side.value))) for row in found.rows]
    return render_template("company/inbox.html", found=found, lines=lines, group=group or "",
                           unread_only=unread_only, groups=GROUP_NAMES), 200


def _link(target: tuple[str, dict] | None) -> str | None:
    return url_for(target[0], **target[1]) if target is not None else None
