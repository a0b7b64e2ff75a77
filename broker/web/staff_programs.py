"""Subsidy programs (补贴项目): the list with each program's money from the ledger, a new program,
its future terms, its status, deposits and adjustments, and its ledger rows and awards.

Thin views: a form is turned into the API's JSON body and loaded with the API's own schema
(`ProgramInSchema`, `ProgramTermsSchema`, `DepositInSchema`, `AdjustmentInSchema`), then handed to
the service the API calls (`policy.create_program`, `policy.update_program`,
`policy.change_program_status`, `ledger.deposit`, `ledger.adjust`). A refusal, by the schema or by
the service, re-shows the form with the message by its field (422) and nothing is saved.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, DomainError, InvalidInput, NotFound
from broker.models import AdjustReason, Claimant, EvidenceType, ProgramMode, Sector, SubsidyLevel
from broker.resources import KINDS
from broker.schemas.ledger import AdjustmentInSchema, DepositInSchema
from broker.schemas.policy import ProgramInSchema, ProgramTermsSchema
from broker.services import ledger, policy, programs
from broker.web import formatting
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only
from broker.web.reports import KIND_NAMES, SECTOR_NAMES

bp = Blueprint("staff_programs", __name__, template_folder="templates")

MODE_NAMES = {"after": N_("事后补贴"), "instant": N_("即时抵扣"), "allotment": N_("免费额度")}
CLAIMANT_NAMES = {"startup": N_("企业申领"), "carrier": N_("服务商申领")}
STATUS_NAMES = {"draft": N_("草稿"), "open": N_("开放中"), "paused": N_("已暂停"), "closed": N_("已关闭")}
EVIDENCE_NAMES = {"contract": N_("合同"), "invoice": N_("发票"), "payment": N_("付款凭证"), "usage_statement": N_("用量清单")}
LEVEL_NAMES = {"national": N_("国家级"), "city": N_("市级"), "district": N_("区级")}
LEDGER_KIND_NAMES = {"deposit": N_("预算拨入"), "commit": N_("承诺"), "redeem": N_("兑现"), "reverse": N_("冲回"),
                     "adjust": N_("调整"), "write_off": N_("核销")}
REASON_NAMES = {"correction": N_("更正差错"), "clawback": N_("追回"), "good_faith": N_("善意补偿")}
# What each status button does, and the state it may be pressed from (the model's rule).
STATUS_ACTIONS = {"pause": N_("暂停"), "reopen": N_("重新开放"), "close": N_("关闭")}

MAX_RULES = 20  # the schema's limit
BLANK_RULES = 2  # empty rows offered beyond the rules a program has


def _field_messages() -> dict[str, str]:
    """Each field's refusal in words: what a valid value is."""
    return {
        "code": _("代码须以小写字母或数字开头，只含小写字母、数字和连字符，至多 32 个字符；且不能与已有项目重复。"),
        "name": _("请填写项目名称（至多 200 个字）。"),
        "mode": _("请选择补贴方式。"),
        "claimant": _("请选择由谁申领。"),
        "kinds": _("请选择适用的资源类型，或全部不选表示全部类型。"),
        "excluded_kinds": _("请从列表中选择排除的资源类型。"),
        "supplier_carrier_ids": _("请从列表中选择服务商。"),
        "supplier_offer_ids": _("报价编号须是正整数，用逗号分隔。"),
        "rate": _("补贴比例须是大于 0、不超过 1 的小数，至多四位小数（如 0.3 表示 30%）。"),
        "cap_per_startup": _("每家企业年度上限须是大于 0 的金额（元，至多两位小数），且不超过开始预算。"),
        "cap_per_allocation": _("单笔上限须是大于 0 的金额（元，至多两位小数），或留空表示不设上限。"),
        "allotment_per_startup": _("免费额度项目须填写每家企业每年的免费数量（大于 0）。"),
        "stack_group": _("没有这个叠加组。"),
        "evidence_required": _("请从列表中选择材料。"),
        "eligible_sectors": _("请从列表中选择行业。"),
        "max_company_age_years": _("成立年限须是 1 到 100 之间的整数，或留空。"),
        "max_headcount": _("人数上限须是 1 到 1,000,000 之间的整数，或留空。"),
        "excludes_subsidy_levels": _("请从列表中选择级别。"),
        "excludes_subsidy_kinds": _("请从列表中选择资源类型。"),
        "starts_on": _("请填写日期，格式如 2026-01-01。"),
        "ends_on": _("请填写日期，格式如 2027-01-01，且须晚于开始日期。"),
        "budget": _("开始预算须是大于 0 的金额（元，至多两位小数）。"),
        "funding_document": _("请填写资金文件文号（如 沪经信智〔2025〕489号），至多 100 个字。"),
        "amount": _("金额须是大于 0 的数（元，至多两位小数）。"),
        "fiscal_year": _("年度须是 2000 到 2200 之间的年份，或留空表示本年度。"),
        "note": _("说明至多 2000 个字。"),
        "reason": _("请选择调整原因：更正差错、追回或善意补偿。"),
        "award_id": _("该项目没有这个补贴编号。"),
        "rule.rate": _("比例须是大于 0、不超过 1 的小数，至多四位小数。"),
        "rule.attributes": _("配置条件写作“属性=取值,取值”，每个条件一行，如 gpu_model=910B,910C。"),
        "rule.sectors": _("请从列表中选择行业。"),
        "rule.max_company_age_years": _("成立年限须是 1 到 100 之间的整数，或留空。"),
    }


def _adjust_messages() -> dict[str, str]:
    return {
        "amount": _("金额须是不为零的数（元，至多两位小数）：正数增加，负数减少。"),
        "note": _("请写明调整的理由（至多 2000 个字）。"),
    }


# -- the form, as the API's JSON body ----------------------------------------------------------

TERM_FIELDS_TEXT = ("name", "mode", "claimant", "rate", "cap_per_startup", "cap_per_allocation",
                    "allotment_per_startup", "starts_on", "ends_on")
TERM_LISTS = ("kinds", "excluded_kinds", "evidence_required", "eligible_sectors", "excludes_subsidy_levels",
              "excludes_subsidy_kinds")
TERM_FLAGS = ("requires_notice", "require_in_district", "exclude_carrier_affiliates")
# A list where none chosen means "no limit" (null), not "none".
OPEN_WHEN_EMPTY = ("kinds", "eligible_sectors", "excludes_subsidy_kinds")
OPTIONAL = ("cap_per_allocation", "allotment_per_startup")


def _integer(text: str) -> int | str:
    """A whole number as the JSON body would carry it; anything else stays text for the schema to refuse."""
    return int(text) if text.isdigit() and len(text) < 12 else text


def _numbers(text: str) -> list[int | str]:
    return [_integer(part) for part in re.split(r"[\s,，、;；]+", text.strip()) if part]


def _attributes(text: str) -> dict[str, list[str]]:
    """`gpu_model=910B,910C` per line (or ；-separated) -> {"gpu_model": ["910B", "910C"]}."""
    found: dict[str, list[str]] = {}
    for line in re.split(r"[\n;；]+", text):
        if not line.strip():
            continue
        name, _sep, values = line.partition("=")
        found[name.strip()] = [v.strip() for v in re.split(r"[,，、]", values) if v.strip()]
    return found


def rule_rows(form: Any) -> list[int]:
    """The numbers of the rate-rule rows the form filled in."""
    rows = []
    for n in range(MAX_RULES + BLANK_RULES):
        if any(form.get(f"rule-{n}-{part}", "").strip() for part in ("rate", "attributes", "age")) or form.getlist(f"rule-{n}-sectors"):
            rows.append(n)
    return rows


def _terms_body(form: Any, *, new: bool) -> dict[str, Any]:
    """The terms form as the body of POST (new) or PATCH /api/v1/subsidy-programs."""
    body: dict[str, Any] = {name: form.get(name, "").strip() for name in TERM_FIELDS_TEXT}
    for name in OPTIONAL:
        body[name] = body[name] or None
    for name in TERM_LISTS:
        body[name] = form.getlist(name)
        if name in OPEN_WHEN_EMPTY and not body[name]:
            body[name] = None
    for name in TERM_FLAGS:
        body[name] = form.get(name) == "yes"
    carriers = [_integer(v) for v in form.getlist("supplier_carrier_ids")]
    body["supplier_carrier_ids"] = carriers or None
    body["supplier_offer_ids"] = _numbers(form.get("supplier_offer_ids", "")) or None
    body["stack_group"] = form.get("stack_group", "").strip() or None
    for name in ("max_company_age_years", "max_headcount"):
        value = form.get(name, "").strip()
        body[name] = _integer(value) if value else None
    body["rate_rules"] = []
    for n in rule_rows(form):
        age = form.get(f"rule-{n}-age", "").strip()
        body["rate_rules"].append({
            "rate": form.get(f"rule-{n}-rate", "").strip(),
            "attributes": _attributes(form.get(f"rule-{n}-attributes", "")),
            "sectors": form.getlist(f"rule-{n}-sectors") or None,
            "max_company_age_years": _integer(age) if age else None,
        })
    if new:
        body.update(code=form.get("code", "").strip(), budget=form.get("budget", "").strip().replace(",", ""),
                    funding_document=form.get("funding_document", "").strip())
    return body


def _errors(messages: dict[str, Any], form: Any, words: dict[str, str]) -> dict[str, str]:
    """The schema's (or a service's) refusals per form field, in the person's language, each with
    the schema's own words after it."""
    rows = rule_rows(form)
    out: dict[str, str] = {}
    for name, detail in messages.items():
        if name == "rate_rules" and isinstance(detail, dict):
            for index, parts in detail.items():
                row = rows[index] if isinstance(index, int) and index < len(rows) else 0
                for part in parts if isinstance(parts, dict) else {"rate": parts}:
                    field = {"max_company_age_years": "age"}.get(part, part)
                    out[f"rule-{row}-{field}"] = words.get(f"rule.{part}", _("这一项的值无效。"))
            continue
        out[name if name in words else "_form"] = words.get(name, _("这一项的值无效。")) + _schema_words(detail)
    return out


def _schema_words(detail: Any) -> str:
    """The schema's own message(s), for the record (the API says the same)."""
    flat: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            flat.append(str(value))

    walk(detail)
    return f"（{'；'.join(dict.fromkeys(flat))}）" if flat else ""


def _refusal(error: DomainError, words: dict[str, str], form: Any, field: str) -> dict[str, str]:
    """A service's refusal as form errors: by its fields if it names them, else by `field`."""
    if isinstance(error.errors, dict) and error.errors:
        return _errors(error.errors, form, words)
    return {field: _domain_words(error)}


def _domain_words(error: DomainError) -> str:
    text = error.message
    left = re.search(r"has (-?[\d.]+) left", text)
    if left:
        return _("预算调减后将低于已承诺的金额：目前可调减的余额为 ¥%(left)s。", left=left.group(1))
    if "below zero" in text:
        return _("调整后预算、承诺或兑现金额将小于零，未保存。")
    if "is closed" in text:
        return _("项目已关闭，条款不能再修改。")
    if "cannot" in text and "Subsidy program" in text:
        return _("项目当前状态不允许这一操作。")
    if "already exists" in text:
        return _("已有相同代码的补贴项目。")
    return _("未保存：%(why)s", why=text)


def fiscal_years(program: Any) -> str:
    """The fiscal year(s) a program's period falls in (its end is exclusive): 2026, or 2026–2027."""
    last = (program.ends_on - dt.timedelta(days=1)).year
    return str(program.starts_on.year) if last == program.starts_on.year else f"{program.starts_on.year}–{last}"


# -- pages ---------------------------------------------------------------------------------------


def _names() -> dict[str, Any]:
    def word(table: dict[str, str]) -> Any:
        return lambda code: _(table[code]) if code in table else code

    return {
        "mode_name": word(MODE_NAMES), "claimant_name": word(CLAIMANT_NAMES), "status_name": word(STATUS_NAMES),
        "evidence_name": word(EVIDENCE_NAMES), "level_name": word(LEVEL_NAMES), "entry_kind_name": word(LEDGER_KIND_NAMES),
        "reason_name": word(REASON_NAMES), "kind_name": word(KIND_NAMES), "sector_name": word(SECTOR_NAMES),
        "action_name": word(STATUS_ACTIONS), "fiscal_years": fiscal_years,
        "modes": [m.value for m in ProgramMode], "claimants": [c.value for c in Claimant],
        "evidence_types": [e.value for e in EvidenceType], "levels": [lv.value for lv in SubsidyLevel],
        "reasons": [r.value for r in AdjustReason], "sectors": [s.value for s in Sector], "kinds": list(KINDS),
    }


@bp.route("/staff/programs", methods=["GET"], endpoint="programs")
@staff_only
def program_list() -> str:
    """Every program with its money from the ledger, in 万元, as a table and a chart."""
    lines = programs.program_list(get_session(), current_person().account)
    chart = {
        "programs": [line.program.name for line in lines],
        "series": {name: _(label) for name, label in (("budget", N_("预算")), ("committed", N_("已承诺")),
                                                      ("redeemed", N_("已兑现")), ("remaining", N_("可用余额")))},
        "unit": _("万元"),
        **{name: [float(getattr(line.balance, name)) / 10000 for line in lines]
           for name in ("budget", "committed", "redeemed", "remaining")},
    }
    return render_template("staff/programs.html", lines=lines, chart=chart, notice=session.pop("program_notice", None),
                           **_names())


def _form_page(form: dict[str, Any] | None, errors: dict[str, str], program_id: int | None = None,
               status: int = 200) -> tuple[str, int]:
    try:
        choices = programs.terms_form(get_session(), current_person().account, program_id)
    except NotFound:
        abort(404)
    if form is None:
        form = _form_of(choices.program)
    rows = sorted({int(k.split("-")[1]) for k in form if k.startswith("rule-")})
    carriers = {str(i): name for i, name in choices.carriers}
    return render_template("staff/program_form.html", program=choices.program, choices=choices, form=form,
                           carrier_ids=list(carriers), carrier_name=lambda i: carriers.get(str(i), i),
                           errors=errors, rule_count=min(MAX_RULES, (max(rows) + 1 if rows else 0) + BLANK_RULES),
                           **_names()), status


def _form_of(program: Any) -> dict[str, Any]:
    """The form's fields as they stand (a new program: the API's defaults)."""
    if program is None:
        return {"mode": "after", "claimant": "startup", "requires_notice": ["yes"], "require_in_district": ["yes"],
                "exclude_carrier_affiliates": ["yes"]}
    form: dict[str, Any] = {name: "" if getattr(program, name) is None else str(getattr(program, name))
                            for name in TERM_FIELDS_TEXT}
    for name in TERM_LISTS:
        form[name] = list(getattr(program, name) or [])
    for name in TERM_FLAGS:
        form[name] = ["yes"] if getattr(program, name) else []
    form["supplier_carrier_ids"] = [str(i) for i in program.supplier_carrier_ids or []]
    form["supplier_offer_ids"] = ", ".join(str(i) for i in program.supplier_offer_ids or [])
    form["stack_group"] = program.stack_group.code if program.stack_group else ""
    for name in ("max_company_age_years", "max_headcount"):
        form[name] = "" if getattr(program, name) is None else str(getattr(program, name))
    for n, rule in enumerate(program.rate_rules or []):
        form[f"rule-{n}-rate"] = str(rule.get("rate", ""))
        form[f"rule-{n}-attributes"] = "\n".join(f"{k}={','.join(str(v) for v in vs)}"
                                                 for k, vs in (rule.get("attributes") or {}).items())
        form[f"rule-{n}-sectors"] = list(rule.get("sectors") or [])
        form[f"rule-{n}-age"] = "" if rule.get("max_company_age_years") is None else str(rule["max_company_age_years"])
    return form


def _typed(form: Any) -> dict[str, Any]:
    """The form as it was posted, to re-show: lists for the fields that hold several values."""
    several = (*TERM_LISTS, *TERM_FLAGS, "supplier_carrier_ids")
    return {name: form.getlist(name) if name in several or name.endswith("-sectors") else form.get(name) for name in form}


@bp.route("/staff/programs/new", methods=["GET"])
@staff_only
def new_program() -> tuple[str, int]:
    """The form for a new program: its terms, its opening budget and the funding document."""
    return _form_page(None, {})


@bp.route("/staff/programs/new", methods=["POST"])
@staff_only
def create_program() -> Any:
    """A new program through the same schema and service as POST /api/v1/subsidy-programs."""
    words = _field_messages()
    try:
        data = ProgramInSchema().load(_terms_body(request.form, new=True))
    except ValidationError as refused:
        return _form_page(_typed(request.form), _errors(refused.normalized_messages(), request.form, words), status=422)
    try:
        program = policy.create_program(get_session(), current_person().account, data, now())
    except (Conflict, InvalidInput) as error:
        return _form_page(_typed(request.form), _refusal(error, words, request.form, "_form"), status=422)
    session["program_notice"] = _("补贴项目“%(name)s”已创建，开始预算已记入台账。", name=program.name)
    return redirect(url_for("staff_programs.program", program_id=program.id), code=303)


@bp.route("/staff/programs/<int:program_id>/terms", methods=["GET"])
@staff_only
def edit_terms(program_id: int) -> tuple[str, int]:
    """The program's terms as they stand, to change for awards made from now on."""
    return _form_page(None, {}, program_id)


@bp.route("/staff/programs/<int:program_id>/terms", methods=["POST"])
@staff_only
def save_terms(program_id: int) -> Any:
    """New terms through the same schema and service as PATCH /api/v1/subsidy-programs/<id>."""
    words = _field_messages()
    try:
        data = ProgramTermsSchema().load(_terms_body(request.form, new=False))
    except ValidationError as refused:
        return _form_page(_typed(request.form), _errors(refused.normalized_messages(), request.form, words), program_id, 422)
    try:
        policy.update_program(get_session(), current_person().account, program_id, data)
    except NotFound:
        abort(404)
    except (Conflict, InvalidInput) as error:
        return _form_page(_typed(request.form), _refusal(error, words, request.form, "_form"), program_id, 422)
    session["program_notice"] = _("新条款已保存，只适用于此后作出的补贴；已作出的补贴按原条款执行。")
    return redirect(url_for("staff_programs.program", program_id=program_id), code=303)


# -- one program ----------------------------------------------------------------------------------


def _program_page(program_id: int, *, errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                  status: int = 200) -> tuple[str, int]:
    page = request.args.get("page", "")
    number = int(page) if page.isdigit() and 0 < int(page) < 100000 else 1
    try:
        view = programs.program_page(get_session(), current_person().account, program_id, number)
    except NotFound:
        abort(404)
    return render_template("staff/program.html", view=view, errors=errors or {}, typed=typed or {},
                           award_count_limit=programs.AWARD_COUNT_LIMIT,
                           notice=session.pop("program_notice", None), **_names()), status


@bp.route("/staff/programs/<int:program_id>", methods=["GET"])
@staff_only
def program(program_id: int) -> tuple[str, int]:
    """One program: terms in words, balances, status actions, deposit and adjustment forms, ledger rows, awards."""
    return _program_page(program_id)


@bp.route("/staff/programs/<int:program_id>/status", methods=["POST"])
@staff_only
def change_status(program_id: int) -> Any:
    """Pause, reopen or close, through the service the API's status routes call."""
    change = request.form.get("change", "")
    if change not in STATUS_ACTIONS:
        return _program_page(program_id, errors={"status": _("未知的操作。")}, status=422)
    try:
        policy.change_program_status(get_session(), current_person().account, program_id, change)
    except NotFound:
        abort(404)
    except Conflict as error:
        return _program_page(program_id, errors={"status": _domain_words(error)}, status=422)
    session["program_notice"] = {"pause": _("项目已暂停：暂停期间不作出新的补贴，已作出的照常执行。"),
                                 "reopen": _("项目已重新开放。"),
                                 "close": _("项目已关闭：不再作出新的补贴，已作出的补贴照常结算。")}[change]
    return redirect(url_for("staff_programs.program", program_id=program_id), code=303)


def _money_text(text: str) -> str:
    return text.strip().replace(",", "").replace("，", "")


@bp.route("/staff/programs/<int:program_id>/deposits", methods=["POST"])
@staff_only
def deposit(program_id: int) -> Any:
    """Budget coming in, through the same schema and service as POST .../deposits."""
    form = request.form
    year = form.get("fiscal_year", "").strip()
    body = {"amount": _money_text(form.get("amount", "")), "funding_document": form.get("funding_document", "").strip(),
            "fiscal_year": _integer(year) if year else None, "note": form.get("note", "").strip() or None}
    typed = {f"deposit-{k}": form.get(k, "") for k in ("amount", "funding_document", "fiscal_year", "note")}
    words = _field_messages()
    try:
        data = DepositInSchema().load(body)
    except ValidationError as refused:
        found = _errors(refused.normalized_messages(), form, words)
        return _program_page(program_id, errors={f"deposit-{k}": v for k, v in found.items()}, typed=typed, status=422)
    try:
        entry = ledger.deposit(get_session(), current_person().account, program_id, data, now())
    except NotFound:
        abort(404)
    except (Conflict, InvalidInput) as error:
        return _program_page(program_id, errors={"deposit-amount": _domain_words(error)}, typed=typed, status=422)
    session["program_notice"] = _("已记入预算拨入 %(amount)s（%(document)s）。", amount=formatting.money(entry.amount),
                                  document=entry.reference)
    return redirect(url_for("staff_programs.program", program_id=program_id), code=303)


@bp.route("/staff/programs/<int:program_id>/adjustments", methods=["POST"])
@staff_only
def adjust(program_id: int) -> Any:
    """A signed correction, through the same schema and service as POST .../adjustments."""
    form = request.form
    award = form.get("award_id", "").strip()
    body = {"amount": _money_text(form.get("amount", "")), "reason": form.get("reason", "").strip(),
            "note": form.get("note", "").strip(), "award_id": _integer(award) if award else None}
    typed = {f"adjust-{k}": form.get(k, "") for k in ("amount", "reason", "note", "award_id")}
    words = _field_messages() | _adjust_messages()
    try:
        data = AdjustmentInSchema().load(body)
    except ValidationError as refused:
        found = _errors(refused.normalized_messages(), form, words)
        return _program_page(program_id, errors={f"adjust-{k}": v for k, v in found.items()}, typed=typed, status=422)
    try:
        ledger.adjust(get_session(), current_person().account, program_id, data, now())
    except NotFound:
        abort(404)
    except (Conflict, InvalidInput) as error:
        found = _refusal(error, words, form, "amount")
        return _program_page(program_id, errors={f"adjust-{k}": v for k, v in found.items()}, typed=typed, status=422)
    session["program_notice"] = _("调整已记入台账。")
    return redirect(url_for("staff_programs.program", program_id=program_id), code=303)
