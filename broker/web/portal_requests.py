"""The startup portal (企业门户): a startup's people see their company's requests, each with its
timeline, its allocations and, when left short, why in words and what would help; withdraw a
request; and their company's allocations with gross price, subsidy and net price.

Thin views: each reads its query or form, calls one service (`broker.services.portal` to read,
`broker.services.market.withdraw_request` to withdraw, as the API does), and renders. Another
company's request or allocation is 404; district staff and carriers get 403.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models.enums import RequestStatus
from broker.services import market, portal, ratings
from broker.web.auth import current_person
from broker.web.guards import N_, company_only
from broker.web.reports import KIND_NAMES, REASON_HELP, REASON_WORDS
from broker.web.staff_appeals import APPEAL_STATUS_NAMES
from broker.web.staff_startups import ALLOCATION_STATUS_NAMES, REQUEST_STATUS_NAMES
from scheduler.runner import next_firing
from scheduler.schedule import RELEASE_JOB

bp = Blueprint("portal_requests", __name__, template_folder="templates")

# The timeline's steps in words (a request's and its allocations' moves).
STEP_NAMES: dict[str, str] = {
    "submitted": N_("提交申请"),
    "proposed": N_("撮合提出分配方案"),
    "approved": N_("区科委批准"),
    "rejected": N_("方案未获批准"),
    "cancelled": N_("分配已取消"),
    "provisioning": N_("运营商开通中"),
    "provisioning_failed": N_("运营商开通失败，正在重试"),
    "active": N_("开通完成，可以使用"),
    "completed": N_("使用结束"),
    "withdrawn": N_("企业撤回申请"),
    "expired": N_("使用时段已开始仍未分配，申请过期"),
}


# The stepper's steps, named as the request's status is.
MAIN_STEP_NAMES: dict[str, str] = {
    "submitted": N_("已提交"),
    "proposed": N_("已有撮合方案"),
    "approved": N_("已批准"),
    "provisioning": N_("开通中"),
    "active": N_("使用中"),
    "completed": N_("已完成"),
}


# An active allocation's access details (adapters.base.AccessDetails), in the order the page shows them.
ACCESS_FIELDS: tuple[tuple[str, str], ...] = (
    ("endpoint", N_("接口地址")),
    ("model", N_("模型名称")),
    ("host", N_("登录地址")),
    ("username", N_("登录用户名")),
    ("region", N_("地域或资源池")),
    ("circuit_id", N_("电路编号")),
    ("handover_point", N_("交接点")),
    ("console_url", N_("运营商控制台")),
    ("instructions", N_("运营商的使用说明")),
)


def _words(table: dict[str, str]) -> Any:
    return lambda code: gettext(table[code]) if code in table else code


def _names() -> dict[str, Any]:
    return {
        "kind_name": _words(KIND_NAMES),
        "request_status": _words(REQUEST_STATUS_NAMES),
        "allocation_status": _words(ALLOCATION_STATUS_NAMES),
        "appeal_status": _words(APPEAL_STATUS_NAMES),
        "step_name": _words(STEP_NAMES),
        "main_step": _words(MAIN_STEP_NAMES),
        "reason_words": _words(REASON_WORDS),
        "reason_help": _words(REASON_HELP),
    }


def page_number() -> int:
    raw = request.args.get("page", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100000 else 1


@bp.route("/portal/requests", methods=["GET"])
@company_only
def requests() -> tuple[str, int]:
    """The company's requests, newest first, 50 a page, filtered by status."""
    raw = request.args.get("status", "")
    status = RequestStatus(raw) if raw in RequestStatus.__members__ else None
    found = portal.my_requests(get_session(), current_person().account, status, page_number())
    return render_template("portal/requests.html", found=found, status=status,
                           statuses=list(RequestStatus), **_names()), 200


def _request_page(request_id: int, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    try:
        story = portal.request_story(get_session(), current_person().account, request_id)
        place = portal.request_place(get_session(), current_person().account, request_id, now())
    except NotFound:
        abort(404)
    done = {"withdrawn": gettext("申请已撤回。"), "submitted": gettext("申请已提交，将进入下一轮撮合。")}.get(
        request.args.get("done", ""))
    return render_template("portal/request.html", story=story, place=place, error=error, done=done,
                           **_names()), status


@bp.route("/portal/requests/<int:request_id>", methods=["GET"])
@company_only
def request_detail(request_id: int) -> tuple[str, int]:
    """One request: its timeline, allocations, and why it was left short with what would help."""
    return _request_page(request_id)


@bp.route("/portal/requests/<int:request_id>/withdraw", methods=["POST"])
@company_only
def withdraw(request_id: int) -> Any:
    """The startup withdraws its request (as through the API)."""
    at = now()
    try:
        market.withdraw_request(get_session(), current_person().account, request_id, at,
                                next_firing(current_app, RELEASE_JOB, at))
    except NotFound:
        abort(404)
    except Conflict:
        return _request_page(request_id, error=gettext("该申请当前的状态不能撤回。"), status=409)
    return redirect(url_for("portal_requests.request_detail", request_id=request_id, done="withdrawn"), code=303)


@bp.route("/portal/allocations", methods=["GET"])
@company_only
def allocations() -> tuple[str, int]:
    """The company's allocations, newest first, 50 a page, with gross, subsidy and net."""
    found = portal.my_allocations(get_session(), current_person().account, page_number())
    return render_template("portal/allocations.html", found=found, **_names()), 200


@bp.route("/portal/allocations/<int:allocation_id>", methods=["GET"])
@company_only
def allocation(allocation_id: int) -> tuple[str, int]:
    """One allocation: carrier, resource, window, carrier reference and how to use it, gross, subsidy,
    net, its appeals."""
    return allocation_page(allocation_id)


def allocation_page(allocation_id: int, *, error: str | None = None, typed: str = "", status: int = 200,
                    rating_problems: dict[str, str] | None = None, rating_typed: dict[str, str] | None = None,
                    ) -> tuple[str, int]:
    """The allocation's page, with the appeal form's refusal and what was typed when filing failed, and
    the rating form's problems and what was typed when rating failed."""
    try:
        row = portal.my_allocation(get_session(), current_person().account, allocation_id)
    except NotFound:
        abort(404)
    done = {"rated": gettext("感谢评价。")}.get(request.args.get("done", ""))
    return render_template("portal/allocation.html", row=row, error=error, typed=typed, access_fields=ACCESS_FIELDS,
                           rating_problems=rating_problems or {}, rating_typed=rating_typed or {}, done=done,
                           **_names()), status


# The rating form's problems in the person's language (the service's messages are English).
RATING_PROBLEMS: dict[str, str] = {"score": N_("请选择 1 至 5 分。"), "comment": N_("意见最多 300 字。")}


@bp.route("/portal/allocations/<int:allocation_id>/rating", methods=["POST"])
@company_only
def rate(allocation_id: int) -> Any:
    """The startup rates its completed allocation once (满意度): a score 1–5 and an optional comment."""
    typed = {"score": request.form.get("score", ""), "comment": request.form.get("comment", "")}
    try:
        ratings.rate_allocation(get_session(), current_person().account, allocation_id, typed["score"],
                                typed["comment"], now())
    except NotFound:
        abort(404)
    except InvalidInput as refused:
        problems = {name: gettext(RATING_PROBLEMS[name]) for name in (refused.errors or {}) if name in RATING_PROBLEMS}
        return allocation_page(allocation_id, rating_problems=problems, rating_typed=typed, status=422)
    except Conflict as refused:
        said = (gettext("这项分配已经评价过，评价只能提交一次。") if "rated already" in refused.message
                else gettext("分配使用完毕后才能评价。"))
        return allocation_page(allocation_id, rating_problems={"form": said}, rating_typed=typed, status=409)
    return redirect(url_for("portal_requests.allocation", allocation_id=allocation_id, done="rated"), code=303)
