"""Startups (企业), for district staff: the register with filters, and one startup's page, where
staff verify, reject or remove a registration (a reason the startup is told), correct the record,
mark a key enterprise (重点企业) and reissue a person's access by email.

Thin views: each reads its query or form, calls one service (`broker.services.startups` to read,
`accounts` and `people` to change), and renders. After a change the page is shown again (303)
with what happened; bad input comes back next to its field, 422, with nothing changed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from broker.models import Sector, StartupStatus
from broker.schemas.parties import StartupDecisionSchema, StartupStaffEditSchema
from broker.services import accounts, people, startups
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only
from broker.web.reports import KIND_NAMES, SECTOR_NAMES

bp = Blueprint("staff_startups", __name__, template_folder="templates")

NOTICE = "staff_startups_notice"  # the flask session key of the confirmation shown after a change

STARTUP_STATUS_NAMES: dict[str, str] = {
    "pending": N_("待核验"),
    "verified": N_("已核验"),
    "suspended": N_("已暂停"),
    "rejected": N_("已驳回"),
    "removed": N_("已撤销（冒名登记）"),
}

REQUEST_STATUS_NAMES: dict[str, str] = {
    "submitted": N_("已提交"),
    "proposed": N_("已有撮合方案"),
    "approved": N_("已批准"),
    "active": N_("使用中"),
    "completed": N_("已完成"),
    "rejected": N_("未获分配"),
    "withdrawn": N_("已撤回"),
    "expired": N_("已过期"),
}

ALLOCATION_STATUS_NAMES: dict[str, str] = {
    "proposed": N_("待审批"),
    "approved": N_("已批准"),
    "provisioning": N_("开通中"),
    "active": N_("使用中"),
    "released": N_("已结束"),
    "rejected": N_("已驳回"),
    "lapsed": N_("审批逾期失效"),
    "cancelled": N_("已取消"),
}

APPEAL_STATUS_NAMES: dict[str, str] = {"open": N_("待答复"), "answered": N_("已答复")}

COMPANY_ROLE_NAMES: dict[str, str] = {
    "legal_representative": N_("法定代表人"),
    "administrator": N_("管理员"),
    "agent": N_("经办人"),
}

EDIT_FIELDS = ("name", "sector", "founded_on", "headcount", "contact_name", "contact_email", "contact_phone",
               "registered_in_district", "cycle_budget")


def field_messages() -> dict[str, str]:
    """What is wrong with each field of a startup's record, in words (staff's edit form and the registration)."""
    return {
        "name": _("请填写企业名称（不超过 200 字）。"),
        "sector": _("请选择行业。"),
        "founded_on": _("成立日期须是 1900 年以后、不晚于今天的日期，如 2022-03-01。"),
        "headcount": _("员工人数须是 0 到 1,000,000 之间的整数。"),
        "contact_name": _("请填写联系人姓名（不超过 100 字）。"),
        "contact_email": _("请填写有效的联系邮箱。"),
        "contact_phone": _("联系电话只能包含数字、空格、短横线和开头的 +，6 到 20 位。"),
        "registered_in_district": _("请说明是否注册在本区。"),
        "cycle_budget": _("每轮预算须是大于 0 的金额（元），至多两位小数；不限请留空。"),
        "reason": _("请填写理由（不超过 2000 字），企业会看到它。"),
    }


def _names() -> dict[str, Any]:
    def words(table: dict[str, str]) -> Any:
        return lambda code: _(table[code]) if code in table else code

    return {
        "sector_name": words(SECTOR_NAMES),
        "kind_name": words(KIND_NAMES),
        "startup_status": words(STARTUP_STATUS_NAMES),
        "request_status": words(REQUEST_STATUS_NAMES),
        "allocation_status": words(ALLOCATION_STATUS_NAMES),
        "appeal_status": words(APPEAL_STATUS_NAMES),
        "company_role": words(COMPANY_ROLE_NAMES),
        "sectors": [s.value for s in Sector],
        "statuses": [s.value for s in StartupStatus],
    }


# -- the register -------------------------------------------------------------------------------


@bp.route("/staff/startups", methods=["GET"], endpoint="startups")
@staff_only
def register() -> tuple[str, int]:
    """The startups, pending registrations first (oldest first), 50 a page, with filters."""
    args = {name: request.args.get(name, "").strip() for name in ("status", "sector", "key", "q")}
    problems: list[str] = []
    status = sector = None
    if args["status"]:
        try:
            status = StartupStatus(args["status"])
        except ValueError:
            problems.append(_("没有这个状态。"))
    if args["sector"]:
        try:
            sector = Sector(args["sector"])
        except ValueError:
            problems.append(_("没有这个行业。"))
    raw_page = request.args.get("page", "")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100000 else 1
    filters = startups.Filters(status, sector, {"yes": True, "no": False}.get(args["key"]), args["q"][:200])
    found = startups.register(get_session(), current_person().account, filters, page)
    query = {k: v for k, v in args.items() if v}
    base_query = {k: v for k, v in query.items() if k != "status"}
    counts = {status.value: n for status, n in found.counts.items()}
    return render_template("staff/startups.html", found=found, args=args, query=query, base_query=base_query,
                           counts=counts, problems=problems, **_names()), 400 if problems else 200


# -- one startup --------------------------------------------------------------------------------


def _page(startup_id: int, *, errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
          open_form: str | None = None, status: int = 200) -> tuple[str, int]:
    """The startup's page; after a refused change, its message by the field and what was typed."""
    try:
        file = startups.startup_file(get_session(), current_person().account, startup_id, now())
    except NotFound:
        return render_template("console/error.html", status=404, title=_("没有这家企业"),
                               message=_("请从企业列表中选择。")), 404
    startup = file.startup
    form = typed if typed is not None else {
        "name": startup.name, "sector": startup.sector.value, "founded_on": startup.founded_on.isoformat(),
        "headcount": str(startup.headcount), "contact_name": startup.contact_name,
        "contact_email": startup.contact_email, "contact_phone": startup.contact_phone or "",
        "registered_in_district": "yes" if startup.registered_in_district else "",
        "cycle_budget": "" if startup.cycle_budget is None else str(startup.cycle_budget),
    }
    return render_template("staff/startup.html", file=file, startup=startup, form=form, errors=errors or {},
                           open_form=open_form, notice=session.pop(NOTICE, None), **_names()), status


def _done(startup_id: int, notice: str) -> Any:
    session[NOTICE] = notice
    return redirect(url_for("staff_startups.startup", startup_id=startup_id), code=303)


def _refusals() -> dict[tuple[str, type], str]:
    """What each action's refusal means, in words: the startup's state (or its people) decided it."""
    return {
        ("verify", Conflict): _("未核验：该企业已经核验过，或它的登记已被驳回或撤销。"),
        ("reject", Conflict): _("未驳回：只能驳回待核验的登记。已核验的企业若是冒名登记，请用“撤销登记”。"),
        ("remove", Conflict): _("未撤销：该登记已被驳回或撤销。"),
        ("edit", Conflict): _("未保存：已驳回或撤销的登记不再修改。"),
        ("edit", InvalidInput): _("未保存：有不能在这里修改的项目。"),
        ("key", Conflict): _("未修改：重点企业标记已是这样（可能刚被他人修改），或该登记已被驳回或撤销。"),
        ("reissue", Conflict): _("未发送：该登记已被驳回或撤销、此人已停用，或联系邮箱已属于平台上的其他人。"),
        ("reissue", InvalidInput): _("未发送：该企业已有人员在平台上，请在人员列表中选择失去登录的那一位。"),
    }


def _refused(startup_id: int, error: DomainError, form: str) -> tuple[str, int]:
    """A domain error as a message at the top of the page (nothing was changed)."""
    if isinstance(error, NotFound):
        return _page(startup_id, errors={"form": _("没有这个人员，或此人不属于该企业。")}, status=404)
    if isinstance(error, Forbidden):
        message = _("操作未执行：您没有权限这样做。")
    else:
        message = _refusals().get((form, type(error)), _("操作未执行：请查看企业的最新状态后再试。"))
    return _page(startup_id, errors={"form": message}, open_form=form, status=error.status_code)


@bp.route("/staff/startups/<int:startup_id>", methods=["GET"], endpoint="startup")
@staff_only
def startup_page(startup_id: int) -> tuple[str, int]:
    """One startup: the record, its people, requests, allocations, subsidy and appeals, and the actions."""
    return _page(startup_id)


@bp.route("/staff/startups/<int:startup_id>/verify", methods=["POST"])
@staff_only
def verify(startup_id: int) -> Any:
    """Verify the registration: the startup may then request resources."""
    try:
        accounts.verify_startup(get_session(), current_person().account, startup_id, now())
    except DomainError as error:
        return _refused(startup_id, error, "verify")
    return _done(startup_id, _("已核验：该企业现在可以申请资源。"))


def _reason(form: str, startup_id: int) -> tuple[str | None, tuple[str, int] | None]:
    """The reason typed, or the page again with the message by the field (422, nothing changed)."""
    typed = request.form.get("reason", "")
    try:
        return StartupDecisionSchema().load({"reason": typed.strip()})["reason"], None
    except ValidationError:
        return None, _page(startup_id, errors={f"{form}_reason": field_messages()["reason"]},
                           typed=None, open_form=form, status=422)


@bp.route("/staff/startups/<int:startup_id>/reject", methods=["POST"])
@staff_only
def reject(startup_id: int) -> Any:
    """Reject a pending registration with a reason, which the startup is told."""
    reason, refused = _reason("reject", startup_id)
    if refused is not None:
        return refused
    try:
        accounts.reject_startup(get_session(), current_person().account, startup_id, reason, now())
    except DomainError as error:
        return _refused(startup_id, error, "reject")
    return _done(startup_id, _("已驳回该登记。企业会看到理由；它的 API 令牌已停用，信用代码可以重新登记。"))


@bp.route("/staff/startups/<int:startup_id>/remove", methods=["POST"])
@staff_only
def remove(startup_id: int) -> Any:
    """Remove a registration made in another company's name, with a reason."""
    reason, refused = _reason("remove", startup_id)
    if refused is not None:
        return refused
    try:
        accounts.remove_startup(get_session(), current_person().account, startup_id, reason, now())
    except DomainError as error:
        return _refused(startup_id, error, "remove")
    return _done(startup_id, _("已撤销该登记：它的令牌和未完成的申请已终止，真正的企业可以用这个信用代码重新登记。"))


def _edit_data(form: Any) -> dict[str, Any]:
    """The form as the schema's input: blank phone and budget mean none, a checkbox is a boolean."""
    data: dict[str, Any] = {name: form.get(name, "").strip() for name in EDIT_FIELDS}
    data["headcount"] = int(data["headcount"]) if data["headcount"].isdigit() else data["headcount"]
    data["contact_phone"] = data["contact_phone"] or None
    data["cycle_budget"] = data["cycle_budget"].replace(",", "") or None
    data["registered_in_district"] = form.get("registered_in_district") == "yes"
    return data


@bp.route("/staff/startups/<int:startup_id>/edit", methods=["POST"])
@staff_only
def edit(startup_id: int) -> Any:
    """Correct the record through the registration's rules (`StartupStaffEditSchema`)."""
    typed = {name: request.form.get(name, "") for name in EDIT_FIELDS}
    try:
        changes = StartupStaffEditSchema().load(_edit_data(request.form), partial=True)
    except ValidationError as refused:
        words = field_messages()
        errors = {name: words.get(name, _("这一项的值无效。")) for name in refused.normalized_messages()}
        return _page(startup_id, errors=errors, typed=typed, open_form="edit", status=422)
    try:
        accounts.edit_startup_as_staff(get_session(), current_person().account, startup_id, changes, now())
    except DomainError as error:
        return _refused(startup_id, error, "edit")
    return _done(startup_id, _("企业信息已保存；修改前后的内容记在审计日志里。"))


@bp.route("/staff/startups/<int:startup_id>/key-enterprise", methods=["POST"])
@staff_only
def key_enterprise(startup_id: int) -> Any:
    """Mark or unmark a key enterprise (重点企业): it changes the weight of its requests."""
    key = request.form.get("key") == "yes"
    try:
        accounts.set_key_enterprise(get_session(), current_person().account, startup_id, key, now())
    except DomainError as error:
        return _refused(startup_id, error, "key")
    if key:
        return _done(startup_id, _("已标记为重点企业：从下一轮撮合起，它的申请按政策加权。"))
    return _done(startup_id, _("已取消重点企业标记：从下一轮撮合起，它的申请不再加权。"))


@bp.route("/staff/startups/<int:startup_id>/reissue-access", methods=["POST"])
@staff_only
def reissue_access(startup_id: int) -> Any:
    """Email a person who lost access a reset link, or invite the contact when the company has nobody."""
    raw = request.form.get("person_id", "")
    person_id = int(raw) if raw.isdigit() and int(raw) < 2**63 else None
    if raw and person_id is None:
        return _page(startup_id, status=404)
    try:
        sent = people.reissue_access(get_session(), current_person(), person_id, now(), request.host_url,
                                     startup_id=startup_id)
    except DomainError as error:
        return _refused(startup_id, error, "reissue")
    if sent.invited:
        return _done(startup_id, _("已向 %(email)s 发出邀请邮件：对方打开链接、设置密码后成为企业的管理员。", email=sent.email))
    return _done(startup_id, _("已向 %(email)s 发送重设密码的邮件，链接一小时内有效、只能用一次。", email=sent.email))
