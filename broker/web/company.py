"""The company's page (企业与人员 / 人员与令牌, /company), for a startup's and a carrier's people
alike: the company's record (a startup's with its verification status and, if turned away, the
staff's reason), its people and pending invitations; its legal representative and administrators
invite a colleague (an administrator, or an agent with scopes and an end date), withdraw an
invitation and deactivate a person. One's own API tokens are on /me (`auth.me`), linked from here.

Thin views: each reads its form, calls one service of `broker.services.people`, and redirects
(303, with `?done=`) or shows the page again: bad input by its field (422), a refusal the state
decided at the top (409); someone who may not (a colleague who is not a manager) gets the 403
page, another company's person or invitation the 404 page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from broker.clock import SHANGHAI, now
from broker.db import get_session
from broker.errors import Conflict, DomainError, Forbidden, NotFound
from broker.models.people import AgentScope, CompanyRole, Side
from broker.services import people
from broker.web.auth import current_person, dev_outbox_open
from broker.web.guards import N_, any_company
from broker.web.reports import SECTOR_NAMES
from broker.web.staff_startups import COMPANY_ROLE_NAMES, STARTUP_STATUS_NAMES

bp = Blueprint("company", __name__, template_folder="templates")

PAGE_SIZE = 50

SCOPE_NAMES: dict[str, str] = {
    "requests": N_("资源申请"),
    "allocations": N_("分配的使用与报告"),
    "subsidies": N_("补贴、凭证与申报"),
    "appeals": N_("诉求"),
    "settings": N_("企业信息与联系人"),
    "offers": N_("资源目录与报价"),
}
# What an agent of each side may be given: the scopes of the screens that side has.
SIDE_SCOPES: dict[Side, tuple[AgentScope, ...]] = {
    Side.startup: (AgentScope.requests, AgentScope.allocations, AgentScope.subsidies, AgentScope.appeals,
                   AgentScope.settings),
    Side.carrier: (AgentScope.offers, AgentScope.allocations, AgentScope.settings),
}


def _words(table: dict[str, str]) -> Any:
    return lambda code: _(table[code]) if code in table else code


def _done_words() -> dict[str, str]:
    return {
        "registered": _("企业已注册。区科委工作人员核验后，企业即可提交资源申请；在此之前可以先邀请同事。"),
        "invited": _("已发送邀请：受邀人 72 小时内打开邮件中的链接，设置姓名和密码。"),
        "revoked": _("邀请已撤回，链接不再有效。"),
        "deactivated": _("此人已停用：不能再登录，其接口令牌已吊销。"),
    }


def _page(*, errors: dict[str, str] | None = None, form: dict[str, Any] | None = None, status: int = 200) -> Any:
    person = current_person()
    raw = request.args.get("page", "")
    page = int(raw) if raw.isdigit() and 0 < int(raw) < 100000 else 1
    try:
        found = people.company_people(get_session(), person, now(), offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    except Forbidden:
        abort(403)
    return render_template(
        "portal/company.html", found=found, me=person, page=page, pages=max(1, -(-found.total // PAGE_SIZE)),
        errors=errors or {}, form=form or {"company_role": "administrator", "scopes": []},
        scopes=[scope.value for scope in SIDE_SCOPES[person.side]], done=_done_words().get(request.args.get("done", "")),
        dev_outbox=dev_outbox_open(), max_agent_date=(now() + people.MAX_AGENT_TERM).astimezone(SHANGHAI).date(),
        role_name=_words(COMPANY_ROLE_NAMES), scope_name=_words(SCOPE_NAMES), sector_name=_words(SECTOR_NAMES),
        startup_status=_words(STARTUP_STATUS_NAMES),
    ), status


@bp.route("/company", methods=["GET"], endpoint="company")
@any_company
def company_page() -> Any:
    """The company's record, its people and invitations, and (for its managers) the invite form."""
    return _page()


def _agent_until(typed: str) -> dt.datetime | None:
    """The end of the day `typed` (YYYY-MM-DD) in the district: when an agent's authority ends."""
    try:
        day = dt.date.fromisoformat(typed)
    except ValueError:
        return None
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), SHANGHAI).astimezone(dt.timezone.utc)


def _invite_messages(refused: DomainError) -> dict[str, str]:
    """A refused invitation's message by its field, in words (the service's are English)."""
    field = next(iter(refused.errors), "form") if isinstance(refused.errors, dict) else "form"
    field = "company_role" if field == "role" else field  # no company role given: the service asks for a district one
    words = {
        "email": (_("这个邮箱已属于平台上的一位人员。") if isinstance(refused, Conflict)
                  else _("请填写有效的邮箱，如 name@example.cn。")),
        "company_role": (_("企业最多有 5 位在用的管理员：请先停用一位。") if isinstance(refused, Conflict)
                         else _("请选择管理员或经办人。")),
        "scopes": _("请为经办人至少选择一项授权范围。"),
        "agent_expires_at": _("请填写经办人授权的截止日期：今天以后，一年之内。"),
    }
    return {field: words.get(field, _("未能发送邀请，请检查填写的内容后重试。"))}


@bp.route("/company/invitations", methods=["POST"])
@any_company
def invite() -> Any:
    """Invite a colleague by email (the outbox sends the link): an administrator, or an agent."""
    form = {name: request.form.get(name, "").strip() for name in ("email", "name", "company_role", "agent_until")}
    form["scopes"] = request.form.getlist("scopes")
    agent = form["company_role"] == CompanyRole.agent.value
    expires_at = _agent_until(form["agent_until"]) if agent else None
    company_role = form["company_role"] if form["company_role"] in {role.value for role in CompanyRole} else None
    try:
        people.invite(get_session(), current_person(), form["email"], now(), request.host_url,
                      name=form["name"] or None, company_role=company_role,
                      scopes=form["scopes"] if agent else None, agent_expires_at=expires_at)
    except (Forbidden, NotFound) as refused:
        abort(refused.status_code)
    except DomainError as refused:
        return _page(errors=_invite_messages(refused), form=form, status=422)
    return redirect(url_for("company.company", done="invited"), code=303)


def _acted(change: Any, done: str) -> Any:
    """Run one change to the company's people: 303 with `done`, or the refusal's page."""
    try:
        change()
    except (Forbidden, NotFound) as refused:
        abort(refused.status_code)
    except DomainError as refused:
        words = {
            people.ALREADY_DEACTIVATED: _("此人已经停用。"),
            people.INVITATION_GONE: _("这份邀请已被接受、撤回或已过期。"),
            people.LAST_COMPANY_ADMINISTRATOR: _("操作未执行：这是企业最后一位在用的管理员，请先邀请另一位管理员。"),
        }
        message = words.get(refused.message, _("操作未执行：请刷新页面查看最新状态后再试。"))
        return _page(errors={"action": message}, status=refused.status_code)
    return redirect(url_for("company.company", done=done), code=303)


@bp.route("/company/invitations/<int:invitation_id>/revoke", methods=["POST"])
@any_company
def revoke_invitation(invitation_id: int) -> Any:
    """Withdraw a pending invitation: its link stops working."""
    return _acted(lambda: people.revoke_invitation(get_session(), current_person(), invitation_id, now()), "revoked")


@bp.route("/company/people/<int:person_id>/deactivate", methods=["POST"])
@any_company
def deactivate(person_id: int) -> Any:
    """Deactivate one of the company's people: they can no longer sign in, their tokens are revoked."""
    return _acted(lambda: people.deactivate_person(get_session(), current_person(), person_id, now()), "deactivated")
