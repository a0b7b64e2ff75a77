"""Staff screens 3, 8 and 9: cycle reports in plain words, the matching policy, the audit log.

Thin views: each reads its query or form, calls one service (`broker.services.reports` to read,
`broker.services.policy.set_policy` to change), and renders. The engine's reason codes, the
policy's fields and the schema's refusals are put in words here, in the person's language.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from broker.clock import SHANGHAI, now
from broker.db import get_session
from broker.errors import Conflict, NotFound
from broker.models import AUDITED_ENTITY_TYPES, LIGHTHOUSE_SECTORS, Sector
from broker.resources import KINDS
from broker.schemas.policy import PolicyInSchema
from broker.services import cycles
from broker.services import policy as policy_service
from broker.services import reports
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only

cycles_bp = Blueprint("staff_cycles", __name__, template_folder="templates")
policy_bp = Blueprint("staff_policy", __name__, template_folder="templates")
audit_bp = Blueprint("staff_audit", __name__, template_folder="templates")

# Why a request was left short, for someone who never saw the engine: one sentence per reason
# code the engine can give (broker.matching.REASONS; a unit test fails when one has no words).
REASON_WORDS: dict[str, str] = {
    "no_compatible_offer": N_("没有任何同类资源具备该需求要求的配置。"),
    "region": N_("有配置相符的资源，但都不在该需求接受的地区。"),
    "window": N_("有配置和地区相符的资源，但供应时段都覆盖不了该需求的使用时段。"),
    "price_ceiling": N_("相符的资源单价都高于企业能接受的最高单价。"),
    "below_minimum": N_("相符资源的全部容量加起来也达不到该需求的最低数量。"),
    "share_cap": N_("该企业本轮在这类资源上已达到单家企业可占的份额上限。"),
    "budget": N_("资源还有余量，但企业本轮预算不足以支付最低数量。"),
    "capacity_taken": N_("资源已分给了本轮优先级更高的需求。"),
    "capacity_held": N_("资源已被此前轮次的待审方案或已批准的分配占用；这些方案被驳回、过期或释放后会重新可用。"),
    "capacity_short": N_("已把相符资源能提供的全部给了该需求，仍不够。"),
}

# What would help a request left short, for the startup that made it: one sentence per reason
# code (a unit test fails when one has none).
REASON_HELP: dict[str, str] = {
    "no_compatible_offer": N_("放宽对资源配置的要求，或换一类资源。"),
    "region": N_("放宽可接受的地区。"),
    "window": N_("调整使用时段，使其落在可供应的时段内。"),
    "price_ceiling": N_("提高可接受的最高单价。"),
    "below_minimum": N_("降低最低数量。"),
    "share_cap": N_("降低申请数量，或等待下一轮撮合。"),
    "budget": N_("增加预算，或降低最低数量。"),
    "capacity_taken": N_("等待下一轮撮合，等待轮次越多优先级越高。"),
    "capacity_held": N_("等待下一轮撮合，被占用的资源释放后会重新可用。"),
    "capacity_short": N_("降低最低数量，或放宽地区与配置要求以匹配更多资源。"),
}

SECTOR_NAMES: dict[str, str] = {
    "smart_driving": N_("智能驾驶"),
    "energy_management": N_("能源管理"),
    "smart_healthcare": N_("智慧医疗"),
    "ai_models": N_("大模型与AI应用"),
    "industrial_software": N_("工业软件"),
    "fintech": N_("金融科技"),
    "digital_culture": N_("数字文创"),
    "ecommerce": N_("电子商务"),
    "life_sciences": N_("生命科学"),
    "other": N_("其他"),
}

KIND_NAMES: dict[str, str] = {
    "gpu": N_("GPU 算力"),
    "cpu": N_("CPU 算力"),
    "data_line": N_("数据专线"),
    "cloud_vm": N_("云主机"),
    "storage": N_("存储"),
    "tokens": N_("大模型 Tokens"),
}

# Units in words, per resource kind (the catalogue's own units are English codes).
UNIT_NAMES: dict[str, str] = {
    "gpu": N_("卡时"), "cpu": N_("核时"), "data_line": N_("Mbps"), "cloud_vm": N_("vCPU·月"),
    "storage": N_("TB·月"), "tokens": N_("百万 Tokens"),
}


def unit_name(kind: str) -> str:
    """The unit a kind is counted in, in words (GPU-hour is 卡时)."""
    return _(UNIT_NAMES[kind]) if kind in UNIT_NAMES else kind


STATUS_NAMES: dict[str, str] = {
    "scheduled": N_("待运行"),
    "running": N_("运行中"),
    "proposed": N_("待审批"),
    "closed": N_("已结束"),
    "failed": N_("失败"),
}


def reason_words(code: str) -> str:
    return _(REASON_WORDS[code]) if code in REASON_WORDS else code


def _names() -> dict[str, Any]:
    return {
        "sector_name": lambda code: _(SECTOR_NAMES[code]) if code in SECTOR_NAMES else code,
        "kind_name": lambda code: _(KIND_NAMES[code]) if code in KIND_NAMES else code,
        "status_name": lambda code: _(STATUS_NAMES[code]) if code in STATUS_NAMES else code,
        "reason_words": reason_words,
        "lighthouse": {s.value for s in LIGHTHOUSE_SECTORS},
    }


# -- 3. cycle reports ---------------------------------------------------------------------------


@cycles_bp.route("/staff/cycles", methods=["GET"], endpoint="cycles")
@staff_only
def cycle_list() -> str:
    """Every cycle, newest first: status, when, proposals and gap."""
    found = reports.list_cycles(get_session(), current_person().account, limit=100)
    return render_template("staff/cycles.html", cycles=found, refused=session.pop("cycle_refused", None), **_names())


@cycles_bp.route("/staff/cycles", methods=["POST"])
@staff_only
def run_now() -> Any:
    """Run a matching cycle now (the scheduler runs them weekly): to its review queue, or back with why not."""
    try:
        outcome = cycles.run_cycle(get_session(), now(), current_person().account)
    except Conflict:
        session["cycle_refused"] = _("已有一轮撮合正在运行，请稍后再试。")
        return redirect(url_for("staff_cycles.cycles"), code=303)
    return redirect(url_for("staff_review.cycle_queue", cycle_id=outcome.cycle.id), code=303)


@cycles_bp.route("/staff/cycles/<int:cycle_id>", methods=["GET"])
@staff_only
def cycle_report(cycle_id: int) -> tuple[str, int] | str:
    """One cycle's report: objective, bound and gap, fulfilment, and why each request was left short."""
    try:
        report = reports.cycle_report(get_session(), current_person().account, cycle_id)
    except NotFound:
        return render_template("console/error.html", status=404, title=_("没有这一轮撮合"),
                               message=_("请从撮合报告列表中选择。")), 404
    stats = report.cycle.stats or {}
    by_sector = [(code, stats.get("fulfilment_by_sector", {})[code]) for code in
                 sorted(stats.get("fulfilment_by_sector", {}), key=lambda c: (c not in {s.value for s in LIGHTHOUSE_SECTORS}, c))]
    chart = {"labels": [(_(SECTOR_NAMES.get(c, c)) + (" ★" if c in {s.value for s in LIGHTHOUSE_SECTORS} else "")) for c, _v in by_sector],
             "values": [round(v * 100, 1) for _c, v in by_sector], "name": _("满足率（%）")}
    return render_template("staff/cycle_report.html", report=report, stats=stats, by_sector=by_sector, chart=chart,
                           kinds=KINDS, **_names())


# -- 8. the policy ------------------------------------------------------------------------------

POLICY_FIELDS = ("default_weight", "key_enterprise_bonus", "wait_bonus_per_cycle", "share_cap", "approval_window_hours")


def _field_messages() -> dict[str, str]:
    return {
        "sector_weights": _("权重须是大于 0、不超过 100 的数，至多四位小数。"),
        "default_weight": _("权重须是大于 0、不超过 100 的数，至多四位小数。"),
        "key_enterprise_bonus": _("加分须是 0 到 100 之间的数，至多四位小数。"),
        "wait_bonus_per_cycle": _("加分须是 0 到 100 之间的数，至多四位小数。"),
        "share_cap": _("份额上限须是大于 0、不超过 1 的小数，至多四位小数（如 0.5 表示一半）。"),
        "approval_window_hours": _("审批时限须是 1 到 720 之间的整数（小时）。"),
        "max_request_quantity": _("单个需求上限须是大于 0 的数量。"),
    }


def _form_data(form: Any) -> dict[str, Any]:
    """The form as the API's JSON body: blank per-sector or per-kind fields are left out."""
    data: dict[str, Any] = {name: form.get(name, "").strip() for name in POLICY_FIELDS}
    hours = data["approval_window_hours"]
    data["approval_window_hours"] = int(hours) if hours.isdigit() else hours
    data["sector_weights"] = {s.value: form.get(f"sector_weights.{s.value}", "").strip()
                              for s in Sector if form.get(f"sector_weights.{s.value}", "").strip()}
    data["max_request_quantity"] = {k: form.get(f"max_request_quantity.{k}", "").strip()
                                    for k in KINDS if form.get(f"max_request_quantity.{k}", "").strip()}
    return data


def _errors(error: ValidationError) -> dict[str, str]:
    """The schema's refusals per form field, in the person's language."""
    words = _field_messages()
    out: dict[str, str] = {}
    for name, detail in error.normalized_messages().items():
        if name in ("sector_weights", "max_request_quantity") and isinstance(detail, dict):
            for key in detail:
                out[f"{name}.{key}"] = words[name]
        else:
            out[name] = words.get(name, _("这一项的值无效。"))
    return out


def _policy_page(form: dict[str, str] | None, errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    view = reports.policy_page(get_session(), current_person().account)
    current = view.current
    if form is None:
        form = {name: str(getattr(current, name)) for name in POLICY_FIELDS}
        form.update({f"sector_weights.{s}": str(w) for s, w in (current.sector_weights or {}).items()})
        form.update({f"max_request_quantity.{k}": str(current.request_limit(k)) for k in KINDS})
    return render_template("staff/policy.html", current=current, versions=view.versions, form=form, errors=errors,
                           sectors=[s.value for s in Sector], kinds=KINDS, notice=session.pop("policy_notice", None),
                           **_names()), status


@policy_bp.route("/staff/policy", methods=["GET"], endpoint="policy")
@staff_only
def policy_view() -> tuple[str, int]:
    """The policy in force, what each figure does, the form for a new version, earlier versions."""
    return _policy_page(None, {})


@policy_bp.route("/staff/policy", methods=["POST"])
@staff_only
def policy_save() -> Any:
    """A new version through the same service and schema as PUT /api/v1/policy."""
    try:
        data = PolicyInSchema().load(_form_data(request.form))
    except ValidationError as refused:
        return _policy_page(request.form.to_dict(), _errors(refused), 422)
    policy_service.set_policy(get_session(), current_person().account, data)
    session["policy_notice"] = _("新版本的撮合政策已生效，下一轮撮合起按新政策计算。")
    return redirect(url_for("staff_policy.policy"), code=303)


# -- 9. the audit log ---------------------------------------------------------------------------

PAGE_SIZE = 50


def _local_day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


@audit_bp.route("/staff/audit", methods=["GET"], endpoint="audit")
@staff_only
def audit() -> tuple[str, int]:
    """Search the audit log by who, what, which object and when (Asia/Shanghai days), newest first."""
    args = request.args
    problems: list[str] = []
    filters: dict[str, Any] = {}
    for name, field in (("actor", "actor_id"), ("entity_id", "entity_id")):
        value = args.get(name, "").strip()
        if value:
            if value.isdigit() and 0 < int(value) < 2**63:
                filters[field] = int(value)
            else:
                problems.append(_("编号须是正整数。"))
    for name in ("action", "entity_type"):
        if args.get(name, "").strip():
            filters[name] = args[name].strip()[:64]
    since_day, until_day = _local_day(args.get("from", "")), _local_day(args.get("to", ""))
    if (args.get("from", "").strip() and since_day is None) or (args.get("to", "").strip() and until_day is None):
        problems.append(_("日期格式应为 2026-12-01。"))
    page = int(args["page"]) if args.get("page", "").isdigit() and 0 < int(args["page"]) < 100000 else 1
    since = dt.datetime.combine(since_day, dt.time(), SHANGHAI).astimezone(dt.timezone.utc) if since_day else None
    until = (dt.datetime.combine(until_day + dt.timedelta(days=1), dt.time(), SHANGHAI).astimezone(dt.timezone.utc)
             if until_day else None)
    found = reports.search_audit(get_session(), current_person().account, filters, since, until,
                                 (page - 1) * PAGE_SIZE, PAGE_SIZE)
    pages = max(1, -(-found.total // PAGE_SIZE))
    query = {k: v for k, v in args.items() if k != "page" and v}
    return render_template("staff/audit.html", found=found, page=page, pages=pages, query=query, args=args,
                           problems=problems, entity_types=AUDITED_ENTITY_TYPES), 400 if problems else 200
