"""Who may open a console page: anyone signed in, or district staff only.

A person not signed in goes to the sign-in page (and comes back after); a signed-in person of
the wrong side gets 403. The checks read the person once per request (`auth.current_person`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, current_app, redirect, request, url_for

from broker.models import Role
from broker.models.people import Side
from broker.web.auth import current_person

STAFF_ROLES = frozenset({Role.staff, Role.admin})

# The staff workbench's screens, in the nav's order: (endpoint, label). A screen appears in the
# nav once its blueprint is registered, so the nav never links to a page that does not exist.
def N_(text: str) -> str:
    """Mark `text` for the catalogue; it is translated when shown."""
    return text


STAFF_SCREENS: tuple[tuple[str, str], ...] = (
    ("staff_dashboard.dashboard", N_("工作台")),
    ("staff_review.queue", N_("审批队列")),
    ("staff_cycles.cycles", N_("撮合报告")),
    ("staff_startups.startups", N_("企业")),
    ("staff_carriers.carriers", N_("运营商")),
    ("staff_pledges.pledges", N_("运营商承诺")),
    ("staff_appeals.appeals", N_("诉求")),
    ("staff_programs.programs", N_("补贴项目")),
    ("staff_surveys.surveys", N_("需求摸排")),
    ("staff_reports.fulfilment", N_("报表")),
    ("staff_policy.policy", N_("撮合政策")),
    ("staff_audit.audit", N_("审计日志")),
    ("staff_people.people", N_("人员")),
    ("notification_settings.settings", N_("通知设置")),
)

# Blueprints without a nav entry of their own, shown as part of a screen: notices and settlement
# statements are reached from, and belong to, the subsidy programs screen.
SCREEN_PARTS: dict[str, str] = {
    "staff_settlement": "staff_programs", "staff_emails": "staff_people",
    "staff_report_gap": "staff_reports", "staff_report_pack": "staff_reports",
    "staff_report_utilisation": "staff_reports", "staff_report_carriers": "staff_reports",
    "staff_report_spend": "staff_reports", "staff_report_compliance": "staff_reports",
    "staff_exports": "staff_reports",
}


# The district's reports (报表), in the order their tabs show; the nav's 报表 entry is the first.
REPORT_SCREENS: tuple[tuple[str, str], ...] = (
    ("staff_reports.fulfilment", N_("需求满足情况")),
    ("staff_report_gap.gap", N_("供需缺口")),
    ("staff_report_spend.spend", N_("补贴资金使用")),
    ("staff_report_utilisation.utilisation", N_("资源使用率")),
    ("staff_report_carriers.carriers", N_("运营商对账")),
    ("staff_report_compliance.compliance", N_("合规情况")),
    ("staff_report_pack.pack", N_("绩效自评")),
    ("staff_exports.exports", N_("我的导出")),
)


def report_tabs() -> list[tuple[str, str, bool]]:
    """(url, label, is this page) for each report the app has: the tabs above every report."""
    from flask_babel import gettext

    return [(url_for(endpoint), gettext(label), request.endpoint == endpoint)
            for endpoint, label in REPORT_SCREENS if endpoint in current_app.view_functions]


def staff_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """A staff workbench page: district staff and admins; a company's person gets 403."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        person = current_person()
        if person is None:
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
        if person.role not in STAFF_ROLES:
            abort(403)
        return view(*args, **kwargs)

    return checked


def company_only(view: Callable[..., Any] | None = None, *, staff_endpoint: str | None = None) -> Any:
    """A company's page: a startup's people only. District staff go to `staff_endpoint` (the
    staff page of the same thing, given the same arguments) if there is one, else 403, as
    anyone else who is not a startup's person; nobody signed in goes to the sign-in page."""

    def guard(page: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(page)
        def checked(*args: Any, **kwargs: Any) -> Any:
            person = current_person()
            if person is None:
                return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
            if person.side is not Side.startup:
                if staff_endpoint is not None and person.role in STAFF_ROLES:
                    return redirect(url_for(staff_endpoint, **kwargs))
                abort(403)
            return page(*args, **kwargs)

        return checked

    return guard(view) if view is not None else guard


def staff_nav() -> list[tuple[str, str, bool]]:
    """(url, label endpoint, is this page) for each staff screen the app has."""
    from flask_babel import gettext

    # A screen is "this page" on any of its blueprint's pages (a carrier's page is under 运营商),
    # and on the pages of the blueprints that are part of it.
    here = SCREEN_PARTS.get(request.blueprint or "", request.blueprint)
    return [(url_for(endpoint), gettext(label), endpoint.partition(".")[0] == here)
            for endpoint, label in STAFF_SCREENS if endpoint in current_app.view_functions]


# The startup portal's screens (企业门户) and the carrier page's (运营商门户), in the nav's order. As
# the staff nav, a screen shows once its blueprint is registered. Pages both sides share (/company,
# /inbox, /settings/...) are in both navs.
PORTAL_SCREENS: tuple[tuple[str, str], ...] = (
    ("portal_requests.requests", N_("我的申请")),
    ("portal_wizard.new_request", N_("申请资源")),
    ("portal_requests.allocations", N_("我的分配")),
    ("portal_subsidies.subsidies", N_("补贴")),
    ("portal_appeals.appeals", N_("诉求")),
    ("portal_surveys.surveys", N_("需求摸排")),
    ("inbox.inbox", N_("消息")),
    ("company.company", N_("企业与人员")),
    ("notification_settings.settings", N_("通知设置")),
    ("webhook_settings.webhook", N_("Webhook")),
)
CARRIER_SCREENS: tuple[tuple[str, str], ...] = (
    ("carrier_catalogue.catalogue", N_("资源目录")),
    ("carrier_allocations.allocations", N_("分配")),
    ("carrier_syncs.syncs", N_("同步记录")),
    ("carrier_delivery.delivery", N_("交付与结算")),
    ("carrier_statement.statement", N_("对账单")),
    ("carrier_pledges.pledges", N_("承诺资源")),
    ("carrier_demand.demand", N_("需求汇总")),
    ("inbox.inbox", N_("消息")),
    ("company.company", N_("人员与令牌")),
    ("notification_settings.settings", N_("通知设置")),
    ("webhook_settings.webhook", N_("Webhook")),
)


def _side_nav(screens: tuple[tuple[str, str], ...]) -> list[tuple[str, str, bool]]:
    """(url, label, is this page) for each screen the app has; a page belongs to the screen whose
    URL is the longest prefix of its own (/portal/requests/new is 申请资源, /portal/requests/7 我的申请)."""
    from flask_babel import gettext

    shown = [(url_for(endpoint), gettext(label)) for endpoint, label in screens if endpoint in current_app.view_functions]
    owners = [url for url, _ in shown if request.path == url or request.path.startswith(url.rstrip("/") + "/")]
    here = max(owners, key=len, default=None)
    return [(url, label, url == here) for url, label in shown]


def portal_nav() -> list[tuple[str, str, bool]]:
    """The startup portal's nav."""
    return _side_nav(PORTAL_SCREENS)


def carrier_nav() -> list[tuple[str, str, bool]]:
    """The carrier page's nav."""
    return _side_nav(CARRIER_SCREENS)


def company_layout() -> str:
    """The layout of a page sides share: the portal's for a startup's person, the workbench's for district
    staff (their notification settings), else the carrier page's."""
    person = current_person()
    if person is not None and person.side is Side.district:
        return "staff/layout.html"
    return "portal/layout.html" if person is not None and person.side is Side.startup else "carrier/layout.html"


def any_company(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page both sides share (/company, /inbox, /settings/...): a startup's or a carrier's people;
    district staff get 403, nobody signed in goes to the sign-in page."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        person = current_person()
        if person is None:
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
        if person.side not in (Side.startup, Side.carrier):
            abort(403)
        return view(*args, **kwargs)

    return checked


def carrier_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """The carrier page (运营商门户): a carrier's people only; district staff and a startup's people
    get 403, nobody signed in goes to the sign-in page."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        person = current_person()
        if person is None:
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
        if person.side is not Side.carrier:
            abort(403)
        return view(*args, **kwargs)

    return checked
