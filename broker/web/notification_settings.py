"""A person's email notifications (/settings/notifications, for a company's people and district staff:
which events, the all-off switch, the emails' language) and the one-click opt-out of a notification email (/unsubscribe/<token>, no
sign-in: the signed token names the person and the event kind).

Thin views over `broker.services.notifications`, which holds the table of events and whom each
reaches; the words for each event kind are here, in the console's catalogue.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import InvalidInput
from broker.services import notifications
from broker.web.auth import current_person, signed_in
from broker.web.guards import N_
from broker.web.i18n import LANGUAGES

bp = Blueprint("notification_settings", __name__, template_folder="templates")

# What each event kind means to the person reading the settings (keys: notifications.KINDS).
KIND_WORDS: dict[str, str] = {
    "startup.verified": N_("企业注册通过审核"),
    "startup.rejected": N_("企业注册未通过审核（附原因）"),
    "allocation.proposed": N_("撮合拟定了新的分配方案（附审批期限）"),
    "allocation.approved": N_("分配获批准（运营商需开通）"),
    "allocation.rejected": N_("分配未获批准（附原因）"),
    "allocation.lapsed": N_("分配方案逾期失效"),
    "allocation.provisioned": N_("资源已开通（附运营商编号）"),
    "allocation.provisioning_failed": N_("资源开通失败"),
    "allocation.expiring": N_("资源将在 7 天内到期"),
    "appeal.answered": N_("诉求获得答复"),
    "subsidy.committed": N_("补贴已确认"),
    "evidence.rejected": N_("佐证材料未通过审核（附原因）"),
    "notice.started": N_("补贴公示开始"),
    "monthly_report": N_("月度报告（上月主要数字，附报表 XLSX）"),
}


def kind_words(kind: str) -> str:
    return gettext(KIND_WORDS[kind]) if kind in KIND_WORDS else kind


def _page(errors: dict[str, str] | None = None, status: int = 200):
    person = current_person()
    return render_template(
        "notifications/settings.html", prefs=notifications.preferences(person), kind_words=kind_words,
        languages=LANGUAGES, errors=errors or {}, done=request.args.get("done") == "saved",
    ), status


@bp.route("/settings/notifications", methods=["GET"], endpoint="settings")
@signed_in
def settings():
    return _page()


@bp.route("/settings/notifications", methods=["POST"], endpoint="save")
@signed_in
def save():
    try:
        notifications.save_preferences(
            get_session(), current_person().id, request.form.getlist("kinds"), request.form.get("email_off") == "on",
            request.form.get("language", ""),
        )
    except InvalidInput as error:
        fields = error.errors if isinstance(error.errors, dict) else {}
        errors = {}
        if "language" in fields:
            errors["language"] = gettext("请选择邮件语言：中文或 English。")
        if "kinds" in fields:
            errors["kinds"] = gettext("所选的通知类型无效，请重新选择。")
        return _page(errors, 422)
    return redirect(url_for("notification_settings.settings", done="saved"), code=303)


@bp.route("/unsubscribe/<token>", methods=["GET"], endpoint="unsubscribe")
def unsubscribe(token: str):
    """What the link will stop, and a button; a bad or expired link says so (400)."""
    try:
        opt_out = notifications.opt_out_of(get_session(), current_app.config["SECRET_KEY"], token, now())
    except notifications.BadToken:
        return render_template("notifications/unsubscribe_bad.html"), 400
    return render_template("notifications/unsubscribe.html", opt_out=opt_out, kind=kind_words(opt_out.kind), token=token,
                           done=False)


@bp.route("/unsubscribe/<token>", methods=["POST"], endpoint="unsubscribe_post")
def unsubscribe_post(token: str):
    """The button, or a mail client's RFC 8058 one-click POST (body List-Unsubscribe=One-Click)."""
    try:
        opt_out = notifications.opt_out(get_session(), current_app.config["SECRET_KEY"], token, now())
    except notifications.BadToken:
        return render_template("notifications/unsubscribe_bad.html"), 400
    return render_template("notifications/unsubscribe.html", opt_out=opt_out, kind=kind_words(opt_out.kind), token=token,
                           done=True)


# The token in the URL authorises these (a mail client's one-click POST carries no CSRF token).
unsubscribe.signed_link = True  # type: ignore[attr-defined]
unsubscribe_post.signed_link = True  # type: ignore[attr-defined]
