"""Signing in to the console and the person's own account: a password or the city's unified login
(OpenID Connect), sign-out, an invitation accepted, a forgotten password reset, one's API
tokens, and (in development) the emails the outbox wrote instead of sending.

Thin views: each reads its form, calls one service of `broker.services.people` (or the OIDC
client of `broker.oidc`), and shows the answer; the services decide everything. The messages
the services raise in English are shown in the person's language from the table below.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from broker import outbox
from broker.clock import now
from broker.db import get_session
from broker.errors import DomainError, NotFound, TooManyAttempts
from broker.models.people import Person, Side
from broker.services import people
from broker.services.passwords import PASSWORD_MESSAGES
from broker.web import i18n
from broker.web import session as console_session

bp = Blueprint("auth", __name__, template_folder="templates")

OIDC_PENDING = "oidc_pending"
OIDC_EXTENSION = "broker.oidc_client"
# What the unified login vouched for when the person's company is not on the broker yet (the
# registration page reads it): the company's code and name, the person's email and name, and when.
VOUCHED_REGISTRATION = "vouched_registration"


def _messages() -> dict[str, str]:
    # The services' messages, in the console's language (looked up when shown, so the switch applies).
    return {
        people.WRONG_CREDENTIALS: _("邮箱或密码不正确。"),
        people.DEACTIVATED: _("该账号已停用，请联系本单位管理员或区科委工作人员。"),
        people.AGENT_EXPIRED: _("您作为企业经办人的授权已过期，请联系本单位管理员续期。"),
        people.BAD_LINK: _("该链接无效：已使用、已过期或不存在。"),
        people.NOT_REGISTERED: _("该身份尚未在平台登记，请向区科委工作人员或本单位管理员申请邀请。"),
        people.NO_SUCH_COMPANY: _("该统一社会信用代码的企业尚未在平台登记，请由企业的法定代表人先注册企业。"),
    }


def shown(error: DomainError) -> str:
    """A service's refusal in the person's language: a known message translated, a password rule
    from its table, else the service's own words."""
    key = getattr(error, "key", None)
    if key in PASSWORD_MESSAGES:
        return PASSWORD_MESSAGES[key][i18n.current_language()]
    if isinstance(error, TooManyAttempts):
        return _("连续多次登录失败，账号暂时锁定，请于 %(when)s 之后再试。",
                 when=current_app.jinja_env.filters["local_datetime"](error.retry_at))
    return _messages().get(error.message, error.message)


def current_person() -> Person | None:
    """The signed-in person, read once per request (None: nobody, or no longer active)."""
    if "person" not in g:
        person_id = console_session.current_person_id()
        g.person = None if person_id is None else people.get_active_person(get_session(), person_id, now())
        if person_id is not None and g.person is None:
            console_session.end()
    return g.person


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page for signed-in people: anyone else goes to the sign-in page, and comes back after."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if current_person() is None:
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return checked


def _local_path(target: str | None, default: str) -> str:
    """Where to go after sign-in: a path on this site only, never another host."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def _base_url() -> str:
    return request.host_url.rstrip("/")


# -- signing in and out -------------------------------------------------------------------------


def _home_of(person: Person) -> str:
    """Where a person lands after signing in without a page to return to: district staff on their
    workbench, a startup's people on their portal's requests, a carrier's people on their catalogue."""
    if person.side is Side.district:
        return url_for("staff_dashboard.dashboard")
    if person.side is Side.startup:
        return url_for("portal_requests.requests")
    if person.side is Side.carrier:
        return url_for("carrier_catalogue.catalogue")
    return url_for("auth.me")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    """Sign in with an email and a password, or through the city's unified login."""
    error, email = None, ""
    if request.method == "POST":
        email = request.form.get("email", "").strip()
        try:
            person = people.sign_in(get_session(), email, request.form.get("password", ""), now())
        except DomainError as refused:  # a wrong password, a lockout, a deactivated person
            error = shown(refused)
        else:
            console_session.start(person.id)
            return redirect(_local_path(request.args.get("next"), _home_of(person)), code=303)
    status = 200 if error is None else 401
    return render_template("auth/sign_in.html", error=error, email=email, oidc=_oidc_client() is not None,
                           next=request.args.get("next", "")), status


@bp.route("/sign-out", methods=["POST"])
def sign_out() -> Response:
    console_session.end()
    return redirect(url_for("console.landing"), code=303)


def init_oidc(app: Any) -> None:
    """One OIDC client per app, when the identity provider is configured (nothing is fetched yet)."""
    from broker.oidc import OidcClient, OidcSettings

    settings = OidcSettings.from_config(app.config)
    if settings is not None:
        app.extensions[OIDC_EXTENSION] = OidcClient(settings, clock=lambda: now(app))


def _oidc_client() -> Any:
    return current_app.extensions.get(OIDC_EXTENSION)


@bp.route("/oidc/start", methods=["POST"])
def oidc_start() -> Response:
    """Go to the city's unified login (一网通办); it sends the person back to /oidc/callback."""
    client = _oidc_client()
    if client is None:
        abort(404)
    url, pending = client.begin(url_for("auth.oidc_callback", _external=True))
    session[OIDC_PENDING] = {**pending.as_dict(), "next": _local_path(request.form.get("next"), "")}
    return redirect(url, code=303)


@bp.route("/oidc/callback", methods=["GET"])
def oidc_callback() -> Any:
    """Back from the identity provider: verify what it says, link the person, sign them in."""
    from broker.oidc import PendingSignIn, SignInRefused

    client = _oidc_client()
    if client is None:
        abort(404)
    stored = session.pop(OIDC_PENDING, None) or {}
    target = stored.pop("next", "")
    claims = person = None
    try:
        claims = client.complete(PendingSignIn.from_dict(stored) if stored else None, request.args)
        person = _person_for(claims)
        people.sign_in_verified(get_session(), person, now())  # records and audits its own refusals
    except DomainError as refused:  # SignInRefused is one: the provider's answer did not hold
        if claims is not None and _may_register(claims, refused):
            get_session().rollback()
            session[VOUCHED_REGISTRATION] = {"uscc": claims.uscc, "company_name": claims.company_name or "",
                                             "email": claims.email, "name": claims.name, "at": now().isoformat()}
            return redirect(url_for("registration.register"), code=303)
        if person is None:  # refused before anyone was found: recorded and audited here
            get_session().rollback()
            people.record_refused_sign_in(get_session(), claims.email if claims else None, "oidc", now())
        error = (_("统一身份认证登录未成功：%(why)s", why=refused.message) if isinstance(refused, SignInRefused)
                 else shown(refused))
        return render_template("auth/sign_in.html", error=error, email="", oidc=True, next=target), 401
    console_session.start(person.id)
    return redirect(_local_path(target, _home_of(person)), code=303)


def _may_register(claims: Any, refused: DomainError) -> bool:
    """Whether the unified login vouched for the legal representative of a company no one on the
    broker holds: they go on to register it (/register), its code and name filled from the claims."""
    return (isinstance(refused, NotFound) and refused.message == people.NO_SUCH_COMPANY and not claims.is_district
            and claims.company_role == "legal_representative" and bool(claims.email))


def _person_for(claims: Any) -> Person:
    """The person the identity provider vouches for: a district person by email, a company's by its
    unified social credit code and their email (linked, or created as its legal representative)."""
    if claims.is_district:
        return people.district_person_by_email(get_session(), claims.email)
    return people.find_or_link(get_session(), claims.uscc, claims.email, claims.name, claims.company_role, now())


# -- invitations and passwords ------------------------------------------------------------------


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Any:
    """An invited person chooses their name and password; the link works once."""
    try:
        invitation = people.find_invitation(get_session(), token, now())
    except DomainError as refused:
        return render_template("auth/message.html", title=_("邀请链接无效"), text=shown(refused)), 404
    error = None
    if request.method == "POST":
        try:
            person = people.accept_invitation(get_session(), token, request.form.get("name", "").strip(),
                                              request.form.get("password", ""), now())
        except DomainError as refused:
            error = shown(refused)
        else:
            people.sign_in_verified(get_session(), person, now(), source="invitation")
            console_session.start(person.id)
            return redirect(url_for("auth.me"), code=303)
    return render_template("auth/invitation.html", invitation=invitation, error=error,
                           name=request.form.get("name", invitation.name or "")), 200 if error is None else 422


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password() -> Any:
    """Ask for a reset link by email; the answer is the same whether or not the email is known."""
    if request.method == "POST":
        people.request_password_reset(get_session(), request.form.get("email", "").strip(), now(), _base_url())
        return render_template("auth/message.html", title=_("请查收邮件"),
                               text=_("如果该邮箱已在平台登记，一封含有重置密码链接的邮件已经发出，链接一小时内有效。"))
    return render_template("auth/forgot_password.html")


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    """Choose a new password through the emailed link (once, within the hour)."""
    error = None
    if request.method == "POST":
        try:
            people.reset_password(get_session(), token, request.form.get("password", ""), now())
        except DomainError as refused:
            error = shown(refused)
        else:
            return render_template("auth/message.html", title=_("密码已重置"), text=_("请使用新密码登录。"),
                                   link=url_for("auth.sign_in"), link_text=_("登录"))
    return render_template("auth/reset_password.html", error=error), 200 if error is None else 422


# -- the person's own account -------------------------------------------------------------------


@bp.route("/me", methods=["GET"])
@signed_in
def me() -> str:
    """Who I am, my API tokens, and changing my password."""
    person = current_person()
    tokens = people.list_own_tokens(get_session(), person, now())
    account = person.account
    company = account.startup or account.carrier
    return render_template(
        "auth/me.html", person=person, tokens=tokens, company_name=company.name if company else None,
        role_names={"staff": _("区科委工作人员"), "admin": _("平台管理员"), "startup": _("初创企业"), "carrier": _("运营商")},
        company_role_names={"legal_representative": _("法定代表人"), "administrator": _("管理员"), "agent": _("经办人")},
        new_secret=session.pop("new_token", None), error=session.pop("me_error", None), notice=session.pop("me_notice", None),
    )


@bp.route("/me/tokens", methods=["POST"])
@signed_in
def create_token() -> Response:
    days = request.form.get("expires_in_days", "").strip()
    try:
        _token, secret = people.create_own_token(get_session(), current_person(), now(),
                                                 expires_in_days=int(days) if days.isdigit() else None)
    except DomainError as refused:
        session["me_error"] = shown(refused)
    else:
        session["new_token"] = secret  # shown once, on the page this redirects to
    return redirect(url_for("auth.me"), code=303)


@bp.route("/me/tokens/<int:token_id>/revoke", methods=["POST"])
@signed_in
def revoke_token(token_id: int) -> Response:
    try:
        people.revoke_own_token(get_session(), current_person(), token_id, now())
    except DomainError as refused:
        session["me_error"] = shown(refused)
    else:
        session["me_notice"] = _("令牌已吊销。")
    return redirect(url_for("auth.me"), code=303)


@bp.route("/me/password", methods=["POST"])
@signed_in
def change_password() -> Response:
    try:
        people.change_password(get_session(), current_person(), request.form.get("current", ""),
                               request.form.get("password", ""), now())
    except DomainError as refused:
        session["me_error"] = shown(refused)
    else:
        session["me_notice"] = _("密码已修改。")
    return redirect(url_for("auth.me"), code=303)


# -- development: the emails the outbox wrote instead of sending ---------------------------------


def dev_outbox_open() -> bool:
    """Whether /dev/outbox shows the emails: in development (and test) with no SMTP server set."""
    return current_app.config.get("BROKER_ENV") in ("development", "test") and not current_app.config.get("SMTP_HOST")


@bp.route("/dev/outbox", methods=["GET"])
def dev_outbox() -> str:
    """Development only: every email the outbox wrote to the instance folder (no SMTP server set)."""
    if not dev_outbox_open():
        abort(404)
    emails = outbox.list_dev_emails(os.path.join(current_app.instance_path, "outbox"))
    return render_template("auth/dev_outbox.html", emails=emails)
