"""People (人员): the district's staff and admins, their pending invitations, inviting one more,
withdrawing an invitation, and deactivating a person after a confirmation page.

Thin views over `broker.services.people`: the service decides who may invite or deactivate
whom (an admin only by an admin, never oneself, never the last active admin) and the view shows
its refusal in the person's language. 50 people a page, paged and counted in SQL.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from broker.models import Role
from broker.services import people
from broker.web.auth import current_person, dev_outbox_open, shown
from broker.web.guards import staff_only

bp = Blueprint("staff_people", __name__, template_folder="templates")

PAGE_SIZE = 50
NOTICE = "staff_people_notice"  # the confirmation shown once after a redirect
INVITED = "invited"  # the notice after an invitation, which links to /dev/outbox in development


def _refusals() -> dict[str, str]:
    # The service's refusals, in the console's language (looked up when shown, so the switch applies).
    return {
        people.ONLY_ADMIN_INVITES_ADMIN: gettext("只有平台管理员可以邀请平台管理员，或撤回对平台管理员的邀请。"),
        people.ONLY_ADMIN_DEACTIVATES_ADMIN: gettext("只有平台管理员可以停用平台管理员。"),
        people.NOT_YOURSELF: gettext("不能停用自己的账号，请由其他工作人员或管理员操作。"),
        people.LAST_ADMIN: gettext("这是平台唯一在用的管理员，请先邀请另一位管理员，再停用此人。"),
        people.ALREADY_DEACTIVATED: gettext("该人员已经停用。"),
        people.INVITATION_GONE: gettext("该邀请已被接受、撤回或已过期。"),
    }


def _refusal(error: DomainError) -> str:
    return _refusals().get(error.message) or shown(error)


def _field_errors(error: DomainError) -> dict[str, str]:
    """An invitation's refusal next to its field: a bad email, a taken email, a role."""
    fields = error.errors if isinstance(error.errors, dict) else {}
    if "email" in fields:
        if isinstance(error, Conflict):
            return {"email": gettext("该邮箱已属于平台上的一位人员。")}
        return {"email": gettext("请填写有效的邮箱地址，例如 name@changning.gov.cn。")}
    if "role" in fields:
        return {"role": gettext("请选择角色：区科委工作人员或平台管理员。")}
    return {"form": _refusal(error)}


def _page(*, form: dict[str, str] | None = None, errors: dict[str, str] | None = None, status: int = 200):
    actor = current_person()
    search = request.args.get("q", "").strip()[:100]
    raw_page = request.args.get("page", "")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100000 else 1
    found = people.district_people(get_session(), actor, now(), search=search, offset=(page - 1) * PAGE_SIZE,
                                   limit=PAGE_SIZE)
    notice = session.pop(NOTICE, None)
    return render_template(
        "staff/people.html", found=found, page=page, pages=max(1, -(-found.total // PAGE_SIZE)), search=search,
        invitations=found.invitations, me=actor, now=now(), form=form or {"role": Role.staff.value},
        errors=errors or {}, notice=notice, dev_outbox=notice == INVITED and dev_outbox_open(),
    ), status


def _back() -> Response:
    return redirect(url_for("staff_people.people", **{k: v for k, v in request.args.items() if k in ("q", "page")}),
                    code=303)


@bp.route("/staff/people", methods=["GET"], endpoint="people")
@staff_only
def people_list():
    """The district's people, their pending invitations and the invite form."""
    return _page()


@bp.route("/staff/people/invite", methods=["POST"])
@staff_only
def invite():
    """Invite a district person by email (the link goes through the outbox)."""
    form = {name: request.form.get(name, "").strip() for name in ("email", "name", "role")}
    role = form["role"] if form["role"] in (Role.staff.value, Role.admin.value) else None
    try:
        people.invite(get_session(), current_person(), form["email"], now(), request.host_url,
                      name=form["name"] or None, role=Role(role) if role else None)
    except Forbidden as refused:
        return _page(form=form, errors={"form": _refusal(refused)}, status=403)
    except (InvalidInput, Conflict) as refused:
        return _page(form=form, errors=_field_errors(refused), status=422)
    session[NOTICE] = INVITED
    return _back()


@bp.route("/staff/people/invitations/<int:invitation_id>/revoke", methods=["POST"])
@staff_only
def revoke_invitation(invitation_id: int):
    """Withdraw a pending invitation: its link stops working."""
    try:
        invitation = people.revoke_invitation(get_session(), current_person(), invitation_id, now())
    except NotFound:
        abort(404)
    except (Conflict, Forbidden) as refused:
        return _page(errors={"action": _refusal(refused)}, status=409)
    session[NOTICE] = gettext("已撤回对 %(email)s 的邀请。", email=invitation.email)
    return _back()


@bp.route("/staff/people/<int:person_id>/deactivate", methods=["GET"])
@staff_only
def confirm_deactivation(person_id: int) -> str:
    """Ask before deactivating: who, and what it does."""
    try:
        person = people.district_person(get_session(), current_person(), person_id)
    except NotFound:
        abort(404)
    return render_template("staff/person.html", person=person)


@bp.route("/staff/people/<int:person_id>/deactivate", methods=["POST"])
@staff_only
def deactivate(person_id: int):
    """Deactivate a person: they can no longer sign in, their sessions and API tokens end."""
    try:
        person = people.deactivate_person(get_session(), current_person(), person_id, now())
    except NotFound:
        abort(404)
    except (Conflict, Forbidden) as refused:
        return _page(errors={"action": _refusal(refused)}, status=409)
    session[NOTICE] = gettext("已停用 %(name)s（%(email)s）。", name=person.name, email=person.email)
    return _back()
