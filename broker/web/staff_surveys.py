"""Staff: demand surveys (需求摸排). The list of surveys with the form that opens one, and a survey's
page: the declared demand by kind × region × month × sector (Lighthouse sectors marked) with a chart
of the firms per cell above its table.

The words every survey page shares (statuses, the form's field messages) are here, for the portal's
and the carrier's pages to import.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext

from broker.clock import local_date, now
from broker.db import get_session
from broker.errors import Conflict, InvalidInput, NotFound
from broker.resources import KINDS
from broker.services import surveys
from broker.web.auth import current_person
from broker.web.formatting import quantity
from broker.web.guards import N_, staff_only
from broker.web.reports import KIND_NAMES, SECTOR_NAMES, unit_name

bp = Blueprint("staff_surveys", __name__, template_folder="templates")

STATUS_NAMES = {"scheduled": N_("未开始"), "open": N_("填报中"), "closed": N_("已截止")}
ANSWER_STATUS = {"pending": N_("待邮件确认，未计入"), "confirmed": N_("已确认，计入"), "attached": N_("已注册，并入企业")}
FLAG_DONE = {"1": N_("已开始接受未注册企业填报。"), "0": N_("已不再接受未注册企业填报；已确认的填报仍计入。")}
# What a refused field means, in the person's language (the service's messages are English).
FIELD_WORDS = {
    "title": N_("请填写标题（不超过 200 字）。"),
    "period": N_("期间写作年份、半年、季度或月份，如 2027、2027-H1、2027-Q1、2027-03。"),
    "opens_on": N_("请填写开始日期。"),
    "closes_on": N_("截止日期不能早于开始日期，也不能已经过去。"),
    "kinds": N_("请至少选择一种资源类型。"),
    "kind": N_("请选择本次摸排包含的资源类型。"),
    "quantity": N_("数量须大于 0，最多 3 位小数。"),
    "region": N_("请填写地区（不超过 64 字）。"),
    "month": N_("请选择本次摸排期间内的月份。"),
    "max_unit_price": N_("单价以元计，不小于 0，最多 2 位小数；可不填。"),
    "purpose": N_("请填写用途（不超过 500 字）。"),
    # a firm not registered answering by its credit code (broker.web.public_surveys)
    "uscc": N_("统一社会信用代码须是 18 位，由数字和大写字母组成（不含 I、O、Z、S、V），校验位须正确（GB 32100-2015）。"),
    "firm_name": N_("请填写企业名称（不超过 200 字）。"),
    "contact_name": N_("请填写联系人姓名（不超过 64 字）。"),
    "contact_email": N_("请填写有效的联系邮箱：确认和修改的链接将发到这里。"),
    "sector": N_("请选择行业。"),
    "lines": N_("请至少填写一项需求；同一资源类型、地区和月份只能填一行。"),
}


def field_errors(error: InvalidInput) -> dict[str, str]:
    """The refused fields of a service error, each with its message in the person's language."""
    return {field: gettext(FIELD_WORDS[field]) if field in FIELD_WORDS else gettext("此项无效。") for field in error.errors}


def names() -> dict[str, Any]:
    """The lookups every survey template uses."""
    return {"kind_name": lambda code: gettext(KIND_NAMES[code]) if code in KIND_NAMES else code,
            "sector_name": lambda code: gettext(SECTOR_NAMES[code]) if code in SECTOR_NAMES else code,
            "status_name": lambda code: gettext(STATUS_NAMES[code]) if code in STATUS_NAMES else code,
            "unit": unit_name, "quantity": quantity, "today": local_date(now()), "kinds": list(KINDS),
            "min_firms": surveys.MIN_FIRMS_SHOWN}


def chart_of(cells: list[surveys.Cell]) -> dict[str, Any]:
    """The chart's data: firms per kind, region and month (summed over sectors), as the table beneath says."""
    firms: dict[tuple[str, str, dt.date], int] = {}
    for c in cells:
        firms[(c.kind, c.region, c.month)] = firms.get((c.kind, c.region, c.month), 0) + c.firms
    labels = [f"{gettext(KIND_NAMES.get(k, k))} · {r} · {m:%Y-%m}" for k, r, m in firms]
    return {"labels": labels, "firms": list(firms.values()), "series": gettext("填报企业数")}


def _list_page(form: dict[str, Any], errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    found = surveys.campaigns(get_session(), current_person().account, now())
    done = gettext("需求摸排已发布。") if request.args.get("done") == "opened" else None
    return render_template("staff/surveys.html", campaigns=found, form=form, errors=errors, done=done,
                           **names()), status


@bp.route("/staff/surveys", methods=["GET"], endpoint="surveys")
@staff_only
def surveys_page() -> tuple[str, int]:
    """Every survey, newest first, and the form that opens a new one."""
    return _list_page({}, {})


@bp.route("/staff/surveys", methods=["POST"])
@staff_only
def open_survey() -> Any:
    """Open a survey through the same service as POST /api/v1/surveys."""
    form = request.form
    data = {"title": form.get("title", ""), "period": form.get("period", ""), "kinds": form.getlist("kinds"),
            "opens_on": _date(form.get("opens_on")), "closes_on": _date(form.get("closes_on")),
            "allow_unregistered": form.get("allow_unregistered") == "1"}
    try:
        surveys.open_campaign(get_session(), current_person().account, data, now())
    except InvalidInput as refused:
        return _list_page(form.to_dict() | {"kinds": form.getlist("kinds")}, field_errors(refused), 422)
    return redirect(url_for("staff_surveys.surveys", done="opened"), code=303)


def _survey_page(campaign_id: int, error: str | None = None, status: int = 200) -> tuple[str, int]:
    try:
        found = surveys.staff_aggregate(get_session(), current_person().account, campaign_id, now())
    except NotFound:
        abort(404)
    flag = request.args.get("unregistered")
    return render_template("staff/survey.html", found=found, chart=chart_of(found.cells), error=error,
                           done=gettext(FLAG_DONE[flag]) if flag in FLAG_DONE else None,
                           answer_status=lambda r: gettext(ANSWER_STATUS[r.status()]), **names()), status


@bp.route("/staff/surveys/<int:campaign_id>", methods=["GET"])
@staff_only
def survey(campaign_id: int) -> tuple[str, int]:
    """A survey's declared demand by kind × region × month × sector, its chart above its table, and the
    answers of firms not registered (marked 未注册) with the switch that lets them answer."""
    return _survey_page(campaign_id)


@bp.route("/staff/surveys/<int:campaign_id>/unregistered", methods=["POST"])
@staff_only
def set_unregistered(campaign_id: int) -> Any:
    """Let firms not registered answer, or no longer, while the survey has not closed."""
    allow = request.form.get("allow_unregistered") == "1"
    try:
        surveys.set_allow_unregistered(get_session(), current_person().account, campaign_id, allow, now())
    except NotFound:
        abort(404)
    except Conflict:
        return _survey_page(campaign_id, gettext("该摸排已截止，不能再更改。"), 409)
    return redirect(url_for("staff_surveys.survey", campaign_id=campaign_id, unregistered="1" if allow else "0"), code=303)


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text or "")
    except ValueError:
        return None
