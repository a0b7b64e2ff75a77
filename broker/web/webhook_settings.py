"""The company's webhook (设置 · Webhook), for a startup's and a carrier's people alike: where the
company's events are POSTed, changing that URL (checked by the same netguard as the API; a refused
address is said why, in words), removing it, a new signing secret (shown once), and its recent
deliveries. Whose webhook it is — the company's own account's — is `events.company_account`.
Everyone of the company sees it; only its legal representative and administrators change it
(the service refuses anyone else: 403).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext

from broker.db import get_session
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.netguard import DestinationGuard
from broker.services import events
from broker.web.auth import current_person
from broker.web.guards import N_, any_company
from broker.web.staff_carriers import page_number

bp = Blueprint("webhook_settings", __name__, template_folder="templates")

NEW_SECRET = "webhook_secret"  # the session key holding a new secret until the page shows it, once
DONE = {"saved": N_("Webhook 地址已保存。"), "rotated": N_("签名密钥已更换，之后的每次推送都用新密钥签名。"),
        "removed": N_("Webhook 已删除，不再向该地址推送事件。")}
DELIVERY_STATUS = {"pending": N_("待发送"), "delivered": N_("已送达"), "failed": N_("已放弃")}

# Why netguard refused an address, in words; the first pattern that matches names it.
REFUSALS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), words) for pattern, words in (
    (r"loopback", N_("这是本机回环地址。")),
    (r"link-local", N_("这是链路本地地址（云服务器元数据服务所在）。")),
    (r"shared address space", N_("这是运营商级 NAT 的共享地址。")),
    (r"private", N_("这是内网或特殊用途地址。")),
    (r"unspecified|multicast|site-local|reserved", N_("这是保留或特殊用途地址。")),
    (r"does not resolve", N_("该域名无法解析。")),
    (r"must use https", N_("必须使用 https 地址。")),
    (r"user name or password", N_("地址中不能包含用户名或密码。")),
    (r"dotted-quad", N_("IP 地址只能写成点分十进制（如 203.0.113.5）。")),
    (r"port", N_("端口号应为 1 至 65535。")),
    (r"", N_("这不是有效的 http(s) 网址。")),
))


def refusal_words(reason: str) -> str:
    """A refused webhook URL's reason as one sentence in the person's language."""
    for pattern, words in REFUSALS:
        if pattern.search(reason):
            return gettext(words)
    return reason  # unreachable: the last pattern matches everything


def _page(*, error: str | None = None, reason: str | None = None, typed: str | None = None, status: int = 200):
    page = page_number("page")
    try:
        found = events.company_webhook(get_session(), current_person(), page)
    except NotFound:
        abort(404)
    done = request.args.get("done", "")
    return render_template(
        "console/webhook.html", found=found, page=page, pages=max(1, -(-found.deliveries_total // events.DELIVERIES_PER_PAGE)),
        error=error, reason=reason, typed=typed, new_secret=session.pop(NEW_SECRET, None),
        done=gettext(DONE[done]) if done in DONE else None,
        delivery_status=lambda code: gettext(DELIVERY_STATUS[code]) if code in DELIVERY_STATUS else code,
    ), status


@bp.route("/settings/webhook", methods=["GET"])
@any_company
def webhook():
    """The company's webhook and its recent deliveries, 50 a page."""
    return _page()


def _done(flag: str, secret: str | None = None) -> Any:
    if secret is not None:
        session[NEW_SECRET] = secret  # shown once, on the page this redirects to
    return redirect(url_for("webhook_settings.webhook", done=flag), code=303)


@bp.route("/settings/webhook", methods=["POST"])
@any_company
def save():
    """Set the company's webhook URL; a new signing secret comes with it."""
    url = request.form.get("url", "")
    try:
        _subscription, secret = events.set_company_webhook(
            get_session(), current_person(), url, DestinationGuard.from_config(current_app.config))
    except Forbidden:
        abort(403)
    except NotFound:
        abort(404)
    except InvalidInput as refused:
        # Nothing was changed: the service refused before touching the subscription.
        detail = refused.errors.get("url", [""])[0]
        if refused.message.startswith("The webhook URL is refused"):
            return _page(error=gettext("该地址不能接收 Webhook：%(why)s Webhook 只能推送到公网地址。", why=refusal_words(detail)),
                         reason=detail, typed=url, status=422)
        return _page(error=gettext("请填写 Webhook 地址（不超过 500 个字符）。"), typed=url, status=422)
    return _done("saved", secret)


@bp.route("/settings/webhook/rotate", methods=["POST"])
@any_company
def rotate():
    """A new signing secret for the company's webhook, shown once."""
    try:
        _subscription, secret = events.rotate_company_webhook_secret(get_session(), current_person())
    except Forbidden:
        abort(403)
    except NotFound:
        return _page(error=gettext("还没有设置 Webhook，无需更换密钥。"), status=409)
    return _done("rotated", secret)


@bp.route("/settings/webhook/remove", methods=["POST"])
@any_company
def remove():
    """Stop POSTing the company's events."""
    try:
        events.remove_company_webhook(get_session(), current_person())
    except Forbidden:
        abort(403)
    except NotFound:
        return _page(error=gettext("还没有设置 Webhook。"), status=409)
    return _done("removed")
