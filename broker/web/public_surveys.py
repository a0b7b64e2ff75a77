"""A demand survey open to firms not registered (需求摸排, 未注册企业填报), no sign-in: the form a firm
answers with its unified social credit code, and the page its emailed link opens, where it confirms
the answer (nothing counts before) and revises it until the survey closes.

The link's page changes nothing when opened (mail scanners open links): confirming is a button.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import Sector
from broker.services import surveys
from broker.web.guards import N_
from broker.web.i18n import current_language
from broker.web.staff_surveys import FIELD_WORDS, names

bp = Blueprint("public_surveys", __name__, template_folder="templates")

LINE_ROWS = 5  # rows of the form; blank rows are left out
LINE_FIELDS = ("kind", "quantity", "region", "month", "max_unit_price", "purpose")
FIRM_FIELDS = ("uscc", "firm_name", "contact_name", "contact_email", "sector")
DONE = {"sent": N_("已提交。确认链接已发至联系邮箱（已确认过的填报，发至当初确认的邮箱）：打开链接确认后，填报才计入统计。"),
        "confirmed": N_("填报已确认并计入统计。截止前可通过本页修改。"),
        "revised": N_("修改已保存。截止前可随时再修改。")}


def _typed() -> tuple[dict[str, Any], list[int]]:
    """The form as the service takes it, and the form row of each line sent (blank rows left out)."""
    data: dict[str, Any] = {name: request.form.get(name, "").strip() for name in FIRM_FIELDS}
    lines, rows = [], []
    for row in range(LINE_ROWS):
        line = {name: request.form.get(f"lines-{row}-{name}", "").strip() for name in LINE_FIELDS}
        if any(line[name] for name in ("quantity", "region", "max_unit_price", "purpose")):
            lines.append(line)
            rows.append(row)
    return data | {"lines": lines}, rows


def _messages(refused: InvalidInput, rows: list[int]) -> dict[str, str]:
    """Each refused field by its input's name, in words; a line's names its row."""
    errors = {}
    for field in refused.errors:
        head, _, rest = field.partition(".")
        if head == "lines" and rest:
            index, _, name = rest.partition(".")
            row = rows[int(index)]
            errors[f"lines-{row}-{name}"] = gettext("第 %(row)s 行：", row=row + 1) + gettext(FIELD_WORDS.get(name, N_("此项无效。")))
        else:
            errors[field] = gettext(FIELD_WORDS.get(field, N_("此项无效。")))
    return errors


def _conflict_words(refused: Conflict) -> str:
    if isinstance(refused.errors, dict) and "contact_email" in refused.errors:
        return gettext("这个邮箱已有多份填报在等待确认：请先打开邮件中的链接确认，或 24 小时后再提交。")
    if isinstance(refused.errors, dict) and "uscc" in refused.errors:
        if surveys.WAITING in refused.errors["uscc"]:
            return gettext("该统一社会信用代码在本次摸排中已有一份填报正在等待邮件确认：请打开邮件中的链接确认；"
                           "如未收到，可在 24 小时后重新提交。")
        return gettext("该统一社会信用代码已在平台注册：请登录控制台，在“需求摸排”中为贵企业填报。")
    return gettext("该摸排已截止，填报不能再修改。")


def _form_page(campaign_id: int, form: dict[str, Any], errors: dict[str, str], error: str | None,
               status: int, *, registered: bool = False) -> tuple[str, int]:
    try:
        found = surveys.public_campaign(get_session(), campaign_id, now())
    except NotFound:
        return _missing()
    done = request.args.get("done")
    return render_template("public/survey_answer.html", c=found, form=form, errors=errors, error=error, registered=registered,
                           done=gettext(DONE[done]) if done in DONE else None, rows=range(LINE_ROWS),
                           sectors=list(Sector), months=surveys.period_months(found.period), **names()), status


def _missing() -> tuple[str, int]:
    return render_template("public/survey_missing.html"), 404


@bp.route("/surveys/<int:campaign_id>/declare", methods=["GET"])
def answer_form(campaign_id: int) -> tuple[str, int]:
    """The form of a survey open to firms not registered; any other survey: 404."""
    return _form_page(campaign_id, {}, {}, None, 200)


@bp.route("/surveys/<int:campaign_id>/declare", methods=["POST"])
def answer(campaign_id: int) -> Any:
    """A firm's answer: kept unconfirmed, its link emailed (a registered code is told to sign in)."""
    data, rows = _typed()
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        surveys.submit_answer(get_session(), campaign_id, data, now(), current_language())
    except NotFound:
        return _missing()
    except InvalidInput as refused:
        return _form_page(campaign_id, form, _messages(refused, rows), None, 422)
    except Conflict as refused:
        field = "contact_email" if "contact_email" in (refused.errors or {}) else "uscc"
        registered = field == "uscc" and surveys.WAITING not in (refused.errors or {}).get("uscc", [])
        return _form_page(campaign_id, form, {field: _conflict_words(refused)}, None, 409, registered=registered)
    return redirect(url_for("public_surveys.answer_form", campaign_id=campaign_id, done="sent"), code=303)


def _link_page(secret: str, form: dict[str, Any] | None, errors: dict[str, str], error: str | None,
               status: int) -> tuple[str, int]:
    try:
        found = surveys.answer_by_link(get_session(), secret, now())
    except NotFound:
        return _missing()
    done = request.args.get("done")
    if form is None:  # the confirmed lines fill the form's first rows
        form = {f"lines-{row}-{name}": _shown(getattr(line, name)) for row, line in enumerate(found.lines[:LINE_ROWS])
                for name in LINE_FIELDS}
    return render_template("public/survey_link.html", found=found, c=found.campaign, secret=secret, form=form,
                           errors=errors, error=error, done=gettext(DONE[done]) if done in DONE else None,
                           rows=range(LINE_ROWS), months=surveys.period_months(found.campaign.period), **names()), status


def _shown(value: Any) -> str:
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


@bp.route("/surveys/answers/<secret>", methods=["GET"])
def answer_link(secret: str) -> tuple[str, int]:
    """What the emailed link opens: the answer, the lines waiting for confirmation, the revision form."""
    return _link_page(secret, None, {}, None, 200)


@bp.route("/surveys/answers/<secret>/confirm", methods=["POST"])
def confirm(secret: str) -> Any:
    """Confirm the lines waiting: from now they count."""
    try:
        surveys.confirm_answer(get_session(), secret, now())
    except NotFound:
        return _missing()
    except Conflict as refused:
        return _link_page(secret, None, {}, _conflict_words(refused), 409)
    return redirect(url_for("public_surveys.answer_link", secret=secret, done="confirmed"), code=303)


@bp.route("/surveys/answers/<secret>", methods=["POST"])
def revise(secret: str) -> Any:
    """Revise a confirmed answer's lines (all of them: a blank row removes its line) until the close."""
    data, rows = _typed()
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        surveys.revise_answer(get_session(), secret, data["lines"], now())
    except NotFound:
        return _missing()
    except InvalidInput as refused:
        return _link_page(secret, form, _messages(refused, rows), None, 422)
    except Conflict as refused:
        return _link_page(secret, None, {}, _conflict_words(refused), 409)
    return redirect(url_for("public_surveys.answer_link", secret=secret, done="revised"), code=303)
