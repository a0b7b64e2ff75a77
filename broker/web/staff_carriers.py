"""The carriers (运营商): every carrier's sync health and live capacity, and one carrier's sync
history, what a sync quarantined (with the reason in words) and could not take back, what the
carrier delivered, and the allocations whose provisioning retries ran out, each with Retry and
Cancel. Reading through `services.carriers`; the two actions are `provisioning.retry_provisioning`
and `provisioning.cancel_allocation`.

There is no "sync now" button: a pull is two calls (`sync.adapter_for`, then `sync.sync_carrier`,
which calls the carrier over the network and checks no role), not one staff use case; it is
`broker carriers sync CODE` and the scheduler's job.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, InvalidInput, NotFound
from broker.services import carriers, provisioning
from broker.web.auth import current_person
from broker.web.formatting import quantity
from broker.web.guards import N_, staff_only
from broker.web.reports import KIND_NAMES, unit_name

bp = Blueprint("staff_carriers", __name__, template_folder="templates")

PER_PAGE = 20
NOTICE = "carriers_notice"

SYNC_STATUS = {"running": N_("进行中"), "succeeded": N_("成功"), "failed": N_("失败")}
SOURCES = {"pull": N_("定时拉取"), "webhook": N_("运营商推送"), "upload": N_("目录文件上传"), "api": N_("接口发布")}
CONFLICTS = {"shrunk": N_("运营商下调了数量，已承诺给企业的部分保留"),
             "withdrawn": N_("运营商撤下了该资源，已承诺给企业的部分保留")}

# Why a record was quarantined, in words: the adapters and the feed writer give the reason as an
# English sentence; the first pattern that matches names it (the sentence itself is shown too).
QUARANTINE_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), words) for pattern, words in (
    (r"^missing field '(?P<field>[^']*)'", N_("记录缺少必填字段“%(field)s”。")),
    (r"^duplicate external id", N_("资源编号在同一批数据中重复，只导入了第一条。")),
    (r"^(missing )?external id", N_("资源编号缺失、过长或含有不可用的字符。")),
    (r"cannot change$", N_("该编号的资源原有的类型或可拆分性被改动，这两项不能变更。")),
    (r"^unknown (kind|resource_type|资源类型|资源类别)", N_("资源类型无法识别。")),
    (r"startup price .* above list price", N_("企业价高于挂牌价。")),
    (r"is negative|is outside 0\.\.|quantity is zero", N_("数量或价格超出允许范围（为负数、为零或过大）。")),
    (r"not a finite number|is not a number|missing or not a number|must be a finite Decimal|decimal places|"
     r"is not a quantity", N_("数量或价格不是有效的数字。")),
    (r"is not a date|is not a month|YYYY|window|租期", N_("供应时段的日期无效。")),
    (r"is not '<number> ", N_("数量或价格应写成“数字 单位”，如“500 GPU时”或“2.5 元/GPU时”。")),
    (r"unit|单位", N_("计量单位与资源类型不符。")),
    (r"region", N_("缺少地区或地区无效。")),
    (r"attribute|spec|规格|显存|gpu_memory|存储类型", N_("资源规格（配置参数）无效。")),
    (r"not an object|is not a list|without a", N_("记录的格式不对，无法读取。")),
))


def quarantine_words(reason: str) -> str:
    """A quarantine reason as one sentence in the person's language."""
    for pattern, words in QUARANTINE_REASONS:
        found = pattern.search(reason)
        if found:
            return gettext(words, **found.groupdict())
    return gettext("其他问题，见运营商原始记录和原因原文。")


RAW_SHOWN = 2000  # characters of a quarantined record shown; the API gives it whole


def raw_text(raw: object) -> str:
    """A quarantined record as the carrier sent it, cut to RAW_SHOWN characters."""
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, indent=1, default=str)
    return text if len(text) <= RAW_SHOWN else text[:RAW_SHOWN] + "…"


def words() -> dict[str, Any]:
    """The names a carrier page's templates use (this screen's and the carrier page's syncs)."""
    def named(table: dict[str, str]):
        return lambda code: gettext(table[code]) if code in table else code

    return {"kind_name": named(KIND_NAMES), "sync_status": named(SYNC_STATUS), "source_name": named(SOURCES),
            "conflict_words": named(CONFLICTS), "quarantine_words": quarantine_words, "quantity": quantity, "raw_text": raw_text,
            "unit": unit_name}


def page_number(name: str) -> int:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and 0 < int(value) < 100_000 else 1


def sync_asked() -> int | None:
    """The sync a carrier's page asks to see (`?sync=`); NotFound when that is not a sync id."""
    value = request.args.get("sync", "")
    if value and not (value.isdigit() and 0 < int(value) < 2**63):
        raise NotFound("No such sync.")
    return int(value) if value else None


@bp.route("/staff/carriers", methods=["GET"], endpoint="carriers")
@staff_only
def carrier_list() -> str:
    """Every carrier: sync health, live offers and capacity by kind, failed provisioning."""
    lines = carriers.carriers_overview(get_session(), current_person().account)
    return render_template("staff/carriers.html", lines=lines, **words())


def _carrier_page(code: str, *, errors: dict[int, str] | None = None, typed: dict[int, str] | None = None,
                  status: int = 200) -> tuple[str, int]:
    try:
        found = carriers.carrier_page(get_session(), current_person().account, code,
                                      sync_id=sync_asked(), page=page_number("page"),
                                      per_page=PER_PAGE, failures_page=page_number("failures_page"))
    except NotFound:
        return _missing()
    query = {k: v for k, v in request.args.items() if v}
    return render_template(
        "staff/carrier.html", found=found, page=page_number("page"), failures_page=page_number("failures_page"),
        pages=max(1, -(-found.history.syncs_total // PER_PAGE)), failure_pages=max(1, -(-found.failures_total // PER_PAGE)),
        query=query, errors=errors or {}, typed=typed or {}, notice=session.pop(NOTICE, None),
        details=carriers.DETAILS, **words(),
    ), status


def _missing() -> tuple[str, int]:
    return render_template("console/error.html", status=404, title=gettext("没有这个运营商或这次同步"),
                           message=gettext("请从运营商列表中选择。")), 404


@bp.route("/staff/carriers/<code>", methods=["GET"])
@staff_only
def carrier(code: str) -> tuple[str, int]:
    """One carrier: sync history, a sync's quarantined records and conflicts, delivered capacity,
    provisioning failures."""
    return _carrier_page(code)


def _back(code: str, message: str) -> Any:
    session[NOTICE] = message
    return redirect(url_for("staff_carriers.carrier", code=code, **request.args), code=303)


@bp.route("/staff/carriers/<code>/allocations/<int:allocation_id>/retry", methods=["POST"])
@staff_only
def retry(code: str, allocation_id: int) -> Any:
    """One more provisioning attempt, due now: the scheduler's next provisioning run makes it."""
    try:
        provisioning.retry_provisioning(get_session(), current_person().account, allocation_id, now())
    except NotFound:
        return _missing()
    except Conflict:
        return _carrier_page(code, errors={0: gettext("分配 %(id)s 已不在开通失败状态，无需重试。", id=allocation_id)}, status=409)
    return _back(code, gettext("分配 %(id)s 已重新排队开通，下一次开通任务运行时会再次向运营商下单。", id=allocation_id))


@bp.route("/staff/carriers/<code>/allocations/<int:allocation_id>/cancel", methods=["POST"])
@staff_only
def cancel(code: str, allocation_id: int) -> Any:
    """End an allocation whose provisioning retries ran out; its capacity and subsidy go back."""
    reason = request.form.get("reason", "").strip()
    try:
        provisioning.cancel_allocation(get_session(), current_person().account, allocation_id, reason, now())
    except NotFound:
        return _missing()
    except InvalidInput:
        # Nothing was changed: the service refused before touching the allocation.
        message = gettext("取消必须填写理由。")
        return _carrier_page(code, errors={0: message, allocation_id: message}, typed={allocation_id: reason}, status=422)
    except Conflict:
        return _carrier_page(code, errors={0: gettext("分配 %(id)s 已不在开通失败状态，不能在这里取消。", id=allocation_id)}, status=409)
    return _back(code, gettext("分配 %(id)s 已取消，资源和补贴已退回。", id=allocation_id))
