"""The startup portal's new request wizard (申请资源): step 1 asks what the company needs (kind,
quantity, window, regions, price ceiling, minimum, the kind's attributes); step 2 shows, changing
nothing, every compatible offer across carriers with its gross price, the subsidy the company would
get and the net price, each program's eligibility in words and the most the platform lists of the
kind in the window; step 3 submits, as the API does, and lands on the new request.

Thin views: the form becomes the API's JSON body, checked by the API's own schema
(`RequestInSchema`); the quote is `broker.services.quotes.quote_request` (POST /api/v1/quotes) and
the submission `broker.services.market.submit_request` (POST /api/v1/requests). The entered values
travel in the query string and hidden fields: no server-side state between steps.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext
from marshmallow import ValidationError

from broker.clock import now
from broker.db import get_session
from broker.errors import Forbidden, InvalidInput
from broker.resources import KINDS
from broker.schemas.market import RequestInSchema
from broker.services import market, quotes
from broker.web.auth import current_person
from broker.web.guards import company_only
from broker.web.reports import KIND_NAMES
from broker.web.staff_startups import STARTUP_STATUS_NAMES

bp = Blueprint("portal_wizard", __name__, template_folder="templates")

FIELDS = ("kind", "quantity", "min_quantity", "window_start", "window_end", "regions", "max_unit_price", "purpose")
ATTRIBUTE_FIELDS = tuple(f"attr-{kind}-{name}" for kind, spec in KINDS.items() for name in spec.attributes)
SEPARATORS = re.compile(r"[,，、;；\s]+")


def _typed(source: Any) -> dict[str, str]:
    """The values the person entered, as text (what the form shows again and carries on)."""
    return {name: source.get(name, "").strip() for name in FIELDS + ATTRIBUTE_FIELDS if source.get(name, "").strip()}


def _body(typed: dict[str, str]) -> dict[str, Any]:
    """The form as the API's JSON body: empty fields left out, lists split on commas, the chosen
    kind's attributes only (whole numbers as numbers, so the schema checks their type)."""
    body: dict[str, Any] = {name: typed[name] for name in FIELDS if name in typed and name != "regions"}
    if "regions" in typed:
        body["regions"] = [r for r in SEPARATORS.split(typed["regions"]) if r]
    kind = KINDS.get(typed.get("kind", ""))
    attributes: dict[str, Any] = {}
    for name, spec in (kind.attributes.items() if kind else ()):
        values = [v for v in SEPARATORS.split(typed.get(f"attr-{kind.name}-{name}", "")) if v]
        if values:
            attributes[name] = [int(v) if spec.type is int and v.isdigit() else v for v in values]
    if attributes:
        body["attributes"] = attributes
    return body


# The schema's and the service's messages in words; dynamic parts carried over.
MESSAGES: tuple[tuple[str, Any], ...] = (
    (r"Missing data for required field\.", lambda m: gettext("必填。")),
    (r"Must be (?:a|a finite) number\.", lambda m: gettext("请填写数字。")),
    (r"Must be greater than 0\.", lambda m: gettext("须大于 0。")),
    (r"Must be at least (.+)\.", lambda m: gettext("不能小于 %(n)s。", n=m[1])),
    (r"Must be at most (.+)\.", lambda m: gettext("不能大于 %(n)s。", n=m[1])),
    (r"At most (\d+) decimal places\.", lambda m: gettext("至多 %(n)s 位小数。", n=m[1])),
    (r"Not a valid date\.", lambda m: gettext("请填写日期，格式如 2026-12-07。")),
    (r"Must be after window_start\.", lambda m: gettext("结束日期须晚于开始日期。")),
    (r"Must not exceed quantity\.", lambda m: gettext("最低数量不能超过申请数量。")),
    (r"A .+ is granted whole: leave min_quantity out\.", lambda m: gettext("该资源整条分配，不能设最低数量，请留空。")),
    (r"Unknown kind.*", lambda m: gettext("请选择资源类型。")),
    (r"Must be an integer\.", lambda m: gettext("请填写整数。")),
    (r"Must be between 0 and 1000000\.", lambda m: gettext("须在 0 到 1000000 之间。")),
    (r"Longer than 100 characters\.", lambda m: gettext("每个取值至多 100 个字符。")),
    (r"Length must be between 1 and 64\.", lambda m: gettext("每个地区至多 64 个字符。")),
    (r"Length must be between 1 and 50\.", lambda m: gettext("至多填写 50 个地区。")),
    (r"Longer than maximum length 2000\.", lambda m: gettext("用途说明至多 2000 个字。")),
    (r"The window ended on (\S+);.*", lambda m: gettext("使用时段已于 %(day)s 结束，请选择今天以后的时段。", day=m[1])),
    (r"At most (\S+) (.+) per \S+ request .*", lambda m: gettext("每项申请至多 %(n)s %(unit)s（区政策的单项上限）。",
                                                                 n=m[1], unit=m[2])),
)


def _said(message: str) -> str:
    for pattern, words in MESSAGES:
        found = re.fullmatch(pattern, message)
        if found:
            return str(words(found))
    return gettext("这一项的值无效。")


def _errors(messages: dict[str, Any], kind: str) -> dict[str, str]:
    """The schema's or the service's refusals per form field, in the person's language."""
    out: dict[str, str] = {}
    for name, detail in messages.items():
        if name == "attributes" and isinstance(detail, dict):
            for attribute, problems in detail.items():
                out[f"attr-{kind}-{attribute}"] = _said(_first(problems))
        elif name in FIELDS:
            out[name] = _said(_first(detail))
        else:
            out["_form"] = _said(_first(detail))
    return out


def _first(detail: Any) -> str:
    while isinstance(detail, (list, dict)):
        detail = next(iter(detail.values() if isinstance(detail, dict) else detail), "")
    return str(detail)


# Why a program would not pay, as the subsidy service words it, in the person's language.
INELIGIBLE: tuple[tuple[str, Any], ...] = (
    (r"program (\w+)", lambda m: gettext("项目目前不受理")),
    (r"starts on (\S+), outside the program's period (\S+) to (\S+)",
     lambda m: gettext("使用开始日 %(day)s 不在项目期限（%(start)s 至 %(end)s）内", day=m[1], start=m[2], end=m[3])),
    (r"program does not cover .+", lambda m: gettext("项目不覆盖这类资源")),
    (r"supplier not on the program's list", lambda m: gettext("该运营商不在项目的供应商名单上")),
    (r"offer not on the program's list", lambda m: gettext("该资源不在项目的资源清单上")),
    (r"sector not eligible", lambda m: gettext("贵公司所属行业不在项目范围内")),
    (r"not registered in the district", lambda m: gettext("贵公司不是在本区注册的企业")),
    (r"founded more than (\d+) years ago", lambda m: gettext("贵公司成立已超过 %(n)s 年", n=m[1])),
    (r"headcount above the program's limit", lambda m: gettext("贵公司人数超过项目上限")),
    (r"affiliated with the supplying carrier", lambda m: gettext("贵公司与该运营商存在关联关系")),
    (r"barred from this program until (\S+) after a clawback.*",
     lambda m: gettext("因补贴被追回，%(day)s 之前不能享受该项目", day=m[1])),
    (r"related party of the supplier: .+", lambda m: gettext("贵公司与该运营商为关联方")),
    (r"the startup holds another .+", lambda m: gettext("贵公司已就该合同享受其他公共补贴，该项目不能同时享受")),
    (r"another program pays more .+", lambda m: gettext("另一项目补贴更多（从优不重复）")),
    (r"the cap per allocation is used up", lambda m: gettext("单笔补贴上限已用完")),
    (r"the startup's cap for (\d+) is used up", lambda m: gettext("贵公司 %(year)s 年度的补贴上限已用完", year=m[1])),
    (r"the program's budget is used up", lambda m: gettext("项目预算已用完")),
    (r"its allotment is used up", lambda m: gettext("免费额度已用完")),
)


def eligibility_words(reason: str) -> str:
    for pattern, words in INELIGIBLE:
        found = re.fullmatch(pattern, reason)
        if found:
            return str(words(found))
    return gettext("不符合项目条件")


def _page(step: str, typed: dict[str, str], *, errors: dict[str, str] | None = None, quote: Any = None,
          refused: str | None = None, status: int = 200) -> tuple[str, int]:
    startup = current_person().account.startup
    return render_template(
        "portal/request_new.html", step=step, form=typed, errors=errors or {}, quote=quote, refused=refused,
        kinds=KINDS, kind_name=lambda code: gettext(KIND_NAMES[code]) if code in KIND_NAMES else code,
        not_verified=None if startup.is_verified else not_verified_words(),
        eligibility_words=eligibility_words, percent=percent), status


def percent(rate: Any) -> str:
    """0.3 as 30, 0.125 as 12.5."""
    return f"{(rate * 100).normalize():f}"


def _checked(typed: dict[str, str]) -> dict[str, Any]:
    return RequestInSchema().load(_body(typed))


@bp.route("/portal/requests/new", methods=["GET"])
@company_only
def new_request() -> tuple[str, int]:
    """Step 1: what the company needs (values carried back from step 2 in the query string)."""
    return _page("ask", _typed(request.args))


@bp.route("/portal/requests/new/quote", methods=["GET"])
@company_only
def quote() -> tuple[str, int]:
    """Step 2: the compatible offers across carriers with gross, subsidy and net; nothing changes."""
    typed = _typed(request.args)
    try:
        data = _checked(typed)
    except ValidationError as refused:
        return _page("ask", typed, errors=_errors(refused.normalized_messages(), typed.get("kind", "")), status=422)
    found = quotes.quote_request(get_session(), current_person().account, data, now())
    return _page("quote", typed, quote=found)


@bp.route("/portal/requests/new", methods=["POST"])
@company_only
def submit() -> Any:
    """Step 3: the request is submitted as through the API, then its page."""
    typed = _typed(request.form)
    try:
        data = _checked(typed)
        created, _ = market.submit_request(get_session(), current_person().account, data, now=now())
    except ValidationError as refused:
        return _page("ask", typed, errors=_errors(refused.normalized_messages(), typed.get("kind", "")), status=422)
    except InvalidInput as refused:
        return _page("ask", typed, errors=_errors(refused.errors or {}, typed.get("kind", "")), status=422)
    except Forbidden:
        return _page("ask", typed, refused=not_verified_words(), status=403)
    return redirect(url_for("portal_requests.request_detail", request_id=created.id, done="submitted"), code=303)


def not_verified_words() -> str:
    startup = current_person().account.startup
    return gettext("贵公司尚未通过区科委核验（当前状态：%(status)s），核验通过后才能提交申请；现在可以先查看报价。",
                   status=gettext(STARTUP_STATUS_NAMES.get(startup.status.value, startup.status.value)))
