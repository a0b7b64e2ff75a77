"""The console: server-rendered pages over the services and broker.auth, never broker.api (an
import contract in pyproject.toml checks that).

`init_console(app)` sets up what every console page shares: the languages (Flask-Babel,
Chinese first), the session cookie and its idle expiry, CSRF on every form, the base layout's
helpers, the error pages, and the blueprints. Anything under /api (and the health checks) keeps
answering JSON, with bearer tokens and no CSRF.
"""

from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFProtect

from broker.web import (
    auth, carrier_allocations, carrier_catalogue, carrier_delivery, carrier_demand, carrier_pledges, carrier_statement,
    carrier_syncs, company, errors, formatting, guards, home, i18n, inbox, monthly_report, notification_settings, portal_appeals, portal_requests,
    portal_subsidies, portal_surveys, portal_wizard, public, public_surveys, registration, reports, session, staff_appeals,
    staff_carriers, staff_dashboard, staff_emails, staff_exports, staff_people, staff_pledges, staff_programs, staff_report_carriers,
    staff_report_compliance, staff_report_gap, staff_report_pack, staff_report_spend, staff_report_utilisation,
    staff_reports, staff_review, staff_settlement, staff_startups, staff_surveys, webhook_settings,
)

# Paths that are not the console: the JSON API (bearer tokens, no cookies, no CSRF) and the
# health checks. Everything else is a console page.
NOT_CONSOLE = ("/api/", "/healthz", "/readyz")


def is_console_request() -> bool:
    path = request.path
    return not (path == "/api" or path.startswith(NOT_CONSOLE))


def init_console(app: Flask) -> None:
    """Register the console on `app` (after the API, whose error handlers it wraps)."""
    _configure_cookies(app)
    i18n.init_babel(app)
    csrf = CSRFProtect()
    # Checked by our own hook below, only on console requests: the API authenticates by bearer
    # token, which a cross-site form cannot send, so it needs no CSRF token.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    csrf.init_app(app)
    app.extensions["broker.csrf"] = csrf
    # The monthly report email's XLSX, for the scheduler's `monthly_report` job (which imports no web layer).
    app.extensions["broker.monthly_workbook"] = monthly_report.workbook

    @app.before_request
    def _console_request() -> None:
        if not is_console_request() or request.endpoint == "console.static":
            return
        session.expire_idle()
        if not getattr(app.view_functions.get(request.endpoint or ""), "signed_link", False):
            csrf.protect()  # a view marked signed_link is authorised by the signed token in its URL instead

    _register_template_helpers(app)
    app.register_blueprint(home.bp)
    app.register_blueprint(public.bp)  # the public notice page (公示), no sign-in
    app.register_blueprint(auth.bp)  # signing in and out, invitations, passwords, one's own tokens
    app.register_blueprint(registration.bp)  # a company registers itself (注册企业, /register), no sign-in
    app.register_blueprint(company.bp)  # both company sides: the company's record, its people and invitations
    app.register_blueprint(staff_dashboard.bp)  # the staff dashboard (工作台, /staff)
    app.register_blueprint(staff_review.bp)  # the review queue (审批队列) and its bulk decisions
    app.register_blueprint(reports.cycles_bp)  # staff: cycle reports in plain words
    app.register_blueprint(reports.policy_bp)  # staff: the matching policy and its versions
    app.register_blueprint(reports.audit_bp)  # staff: the audit log searched
    app.register_blueprint(staff_settlement.bp)  # staff: notices (公示) and settlement statements (结算单)
    app.register_blueprint(staff_people.bp)  # staff: the district's people, invitations, deactivation
    app.register_blueprint(staff_carriers.bp)  # staff: carriers' syncs, quarantine, delivered capacity, failed provisioning
    app.register_blueprint(staff_startups.bp)  # staff: startups (企业), their registrations and records
    app.register_blueprint(staff_programs.bp)  # staff: subsidy programs, their terms, budget and ledger
    app.register_blueprint(staff_appeals.bp)  # staff: the appeals inbox (诉求), threads, assign, reply, close
    app.register_blueprint(portal_appeals.bp)  # a startup's own appeal thread and its reply
    app.register_blueprint(portal_requests.bp)  # the startup portal: its requests and allocations
    app.register_blueprint(portal_subsidies.bp)  # the startup portal: subsidy balances, awards, evidence upload
    app.register_blueprint(portal_wizard.bp)  # the startup portal: the new request wizard (申请资源)
    app.register_blueprint(carrier_catalogue.bp)  # the carrier page: its offers, withdraw, catalog upload
    app.register_blueprint(carrier_allocations.bp)  # the carrier page: allocations on its offers, CSV export
    app.register_blueprint(carrier_syncs.bp)  # the carrier page: its own syncs, quarantined records and conflicts
    app.register_blueprint(webhook_settings.bp)  # both company sides: the company's webhook, its secret, deliveries
    app.register_blueprint(carrier_delivery.bp)  # the carrier page: usage per allocation, settlement statements and claims
    app.register_blueprint(inbox.bp)  # both company sides: the in-app inbox (消息) of the company's events
    app.register_blueprint(notification_settings.bp)  # a person's email notifications, and the one-click opt-out
    app.register_blueprint(staff_emails.bp)  # staff: the email delivery log (the outbox)
    app.register_blueprint(carrier_pledges.bp)  # the carrier page: its pledges per period and kind, its own tracking
    app.register_blueprint(staff_pledges.bp)  # staff: every carrier's pledge tracking, its chart and CSV
    app.register_blueprint(staff_surveys.bp)  # staff: demand surveys (需求摸排), opening one, the aggregate by sector
    app.register_blueprint(portal_surveys.bp)  # the startup portal: declaring demand in open surveys
    app.register_blueprint(public_surveys.bp)  # a survey open to firms not registered: answer, confirm, revise; no sign-in
    app.register_blueprint(carrier_demand.bp)  # the carrier page: the surveys' anonymised demand (需求汇总)
    app.register_blueprint(staff_reports.bp)  # staff: the district's reports (报表), their CSV and XLSX exports
    app.register_blueprint(staff_report_gap.bp)  # staff: report 1, the supply–demand gap (供需缺口), CSV and XLSX
    app.register_blueprint(staff_report_pack.bp)  # staff: the performance-evaluation pack (绩效自评), CSV/XLSX/PDF
    app.register_blueprint(staff_report_utilisation.bp)  # staff: report 4, utilisation and idle grants, CSV and XLSX
    app.register_blueprint(staff_report_carriers.bp)  # staff: report 5, the carrier statement per month, CSV/XLSX/PDF
    app.register_blueprint(carrier_statement.bp)  # the carrier page: its own statement (对账单), CSV/XLSX/PDF
    app.register_blueprint(staff_report_spend.bp)  # staff: report 3, subsidy spend (补贴资金使用), CSV and XLSX
    app.register_blueprint(staff_report_compliance.bp)  # staff: report 6, compliance (合规情况), CSV and XLSX
    app.register_blueprint(staff_exports.bp)  # staff: background report exports (后台导出), 我的导出
    staff_exports.init_exports(app)
    auth.init_oidc(app)
    errors.init_errors(app, is_console_request)


def _configure_cookies(app: Flask) -> None:
    # Secure everywhere but development and test, which serve plain http on 127.0.0.1 (the demo,
    # the browser tests); a production deployment is behind HTTPS and the cookie never leaves it.
    secure = app.config.get("BROKER_ENV") == "production"
    app.config.update(
        SESSION_COOKIE_NAME="broker_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
    )


def _register_template_helpers(app: Flask) -> None:
    app.jinja_env.globals["staff_nav"] = guards.staff_nav
    app.jinja_env.globals["portal_nav"] = guards.portal_nav
    app.jinja_env.globals["carrier_nav"] = guards.carrier_nav
    app.jinja_env.globals["company_layout"] = guards.company_layout
    app.jinja_env.globals["report_tabs"] = guards.report_tabs
    app.jinja_env.globals["unit_name"] = reports.unit_name  # GPU-hour is 卡时: a kind's unit in words
    app.jinja_env.filters.update(
        money=formatting.money,
        qty=formatting.quantity,
        wan=lambda amount: formatting.wan(amount, i18n.current_language()),
        local_datetime=lambda moment: formatting.datetime(moment, i18n.current_language()),
        local_date=lambda day: formatting.date(day, i18n.current_language()),
    )

    @app.context_processor
    def _console_context() -> dict[str, object]:
        if not is_console_request():
            return {}
        return {
            "languages": i18n.LANGUAGES,
            "current_language": i18n.current_language(),
            "html_lang": i18n.html_lang(),
            "signed_in_person_id": session.current_person_id(),
            "session_expired": session.expired(),
        }
