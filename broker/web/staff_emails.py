"""The email delivery log (/staff/emails): every outbox email with its recipient, subject, status,
attempts, last error and times; filtered by status and recipient, 50 a page (counted in SQL)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from broker.db import get_session
from broker.errors import InvalidInput
from broker.models.outbox import EmailStatus
from broker.services import notifications
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only

bp = Blueprint("staff_emails", __name__, template_folder="templates")

STATUS_WORDS: dict[str, str] = {"pending": N_("待发送"), "sent": N_("已发送"), "failed": N_("发送失败")}


@bp.route("/staff/emails", methods=["GET"], endpoint="emails")
@staff_only
def emails():
    status = request.args.get("status", "").strip()
    recipient = request.args.get("to", "").strip()[:254]
    raw_page = request.args.get("page", "")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100000 else 1
    try:
        log = notifications.email_log(get_session(), current_person().account, status or None, recipient or None, page)
    except InvalidInput:
        log, status, code = notifications.email_log(get_session(), current_person().account, None, recipient or None, page), "", 400
    else:
        code = 200
    return render_template("staff/emails.html", log=log, status=status, to=recipient, statuses=list(EmailStatus),
                           status_words=STATUS_WORDS), code
