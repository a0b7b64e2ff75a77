"""Staff: report 6, compliance (合规情况) — a page, a CSV and an XLSX of the same tables (docs/reports.md).

Thin views on the pattern of broker/web/staff_reports.py: the filters from the query string through the
API's schema, one call to broker.services.report_compliance.compliance, the tables built once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from broker.clock import SHANGHAI, local_date, now
from broker.db import get_session
from broker.models import Account
from broker.schemas.reports import ComplianceQuerySchema, compliance_filters
from broker.services import report_compliance
from broker.services.report_compliance import ComplianceReport
from broker.web.auth import current_person
from broker.web.event_words import CLAWBACK_REASONS
from broker.web.guards import N_, staff_only
from broker.web.report_exports import Column, ReportExport, Table, inline_download
from broker.web.staff_programs import EVIDENCE_NAMES
from broker.web.staff_report_spend import SPEND_PROBLEMS
from broker.web.staff_reports import load_filters, refuse_problems

bp = Blueprint("staff_report_compliance", __name__, template_folder="templates")

COUNT_NAMES = {"evidence_rejected": N_("证明材料被驳回"), "objections_raised": N_("公示期异议提出"),
               "objections_upheld": N_("异议成立"), "objections_dismissed": N_("异议不成立")}
OBJECTION_STATUS_NAMES = {"open": N_("待答复"), "upheld": N_("成立"), "dismissed": N_("不成立")}


def _compliance(session: Session, account: Account, args: Mapping[str, str]) -> tuple[ComplianceReport, dict[str, str]]:
    data, problems = load_filters(ComplianceQuerySchema(), args)
    problems = {name: _(SPEND_PROBLEMS[name]) if name in SPEND_PROBLEMS else text for name, text in problems.items()}
    report = report_compliance.compliance(session, account, compliance_filters(data, local_date(now())))
    return report, problems


def export(session: Session, account: Account, args: Mapping[str, str]) -> ReportExport:
    """The report's export (broker.web.staff_exports keeps it as "compliance")."""
    report, problems = _compliance(session, account, args)
    refuse_problems(problems)
    return ReportExport(_export_name(report), _filter_lines(report), _compliance_tables(report))


def _when(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _count_name(what: str) -> str:
    if what.startswith("clawback:"):
        return _("追回：%(reason)s", reason=_(CLAWBACK_REASONS[what.partition(":")[2]]))
    if what.startswith("refused:"):
        return _("批准时不予补贴：%(reason)s", reason=_(CLAWBACK_REASONS[what.partition(":")[2]]))
    return _(COUNT_NAMES[what])


def _filter_lines(report: ComplianceReport) -> list[tuple[str, str]]:
    f = report.filters
    program = next((f"{name}（{code}）" for id_, code, name in report.program_choices if id_ == f.program_id), _("全部"))
    return [(_("报表"), _("合规情况")), (_("期间（北京时间）"), f"{f.start.isoformat()} — {f.end.isoformat()}"),
            (_("补贴项目"), program)]


def _compliance_tables(report: ComplianceReport) -> list[Table]:
    """The report's tables, as the page shows them and the exports write them."""
    return [
        Table("counts", _("合规事项（期间合计）"), [Column(_("事项")), Column(_("件数"), "count"), Column(_("追回金额"), "money")],
              [[_count_name(row.what), row.count, row.amount] for row in report.counts]),
        Table("clawbacks", _("追回（最近200条）"),
              [Column(_("时间（北京时间）")), Column(_("奖励编号")), Column(_("企业")), Column(_("补贴项目")),
               Column(_("原因")), Column(_("追回金额"), "money"), Column(_("禁止申报至"))],
              [[_when(row.at), str(row.award_id), row.startup, row.program, _(CLAWBACK_REASONS.get(row.reason, row.reason)),
                row.amount, row.banned_until.isoformat()] for row in report.clawbacks]),
        Table("refusals", _("批准时不予补贴（最近200条）"),
              [Column(_("时间（北京时间）")), Column(_("分配编号")), Column(_("企业")), Column(_("补贴项目")),
               Column(_("运营商")), Column(_("原因"))],
              [[_when(row.at), str(row.allocation_id), row.startup, row.program, row.carrier,
                _(CLAWBACK_REASONS.get(row.reason, row.reason))] for row in report.refusals]),
        Table("evidence", _("被驳回的证明材料（最近200条）"),
              [Column(_("时间（北京时间）")), Column(_("奖励编号")), Column(_("企业")), Column(_("补贴项目")),
               Column(_("材料")), Column(_("驳回理由"))],
              [[_when(row.at), str(row.award_id), row.startup, row.program, _(EVIDENCE_NAMES.get(row.type, row.type)), row.reason]
               for row in report.evidence]),
        Table("objections", _("公示期异议（最近200条）"),
              [Column(_("提出时间（北京时间）")), Column(_("公示")), Column(_("企业")), Column(_("结果")),
               Column(_("答复时间（北京时间）"))],
              [[_when(row.at), row.notice, row.startup or _("整批"), _(OBJECTION_STATUS_NAMES.get(row.status, row.status)),
                _when(row.answered_at)] for row in report.objections]),
    ]


@bp.route("/staff/reports/compliance", methods=["GET"], endpoint="compliance")
@staff_only
def compliance_page() -> Any:
    report, problems = _compliance(get_session(), current_person().account, request.args)
    tables = _compliance_tables(report)
    chart = {"labels": [row[0] for row in tables[0].rows], "values": [row[1] for row in tables[0].rows]}
    args = {name: value for name, value in request.args.items() if name in ComplianceQuerySchema().fields}
    page = render_template(
        "staff/report_compliance.html", report=report, tables=tables, chart=chart, problems=problems,
        csv_url=url_for("staff_report_compliance.compliance_csv", **args),
        xlsx_url=url_for("staff_report_compliance.compliance_xlsx", **args),
    )
    return page, 422 if problems else 200


@bp.route("/staff/reports/compliance.csv", methods=["GET"])
@staff_only
def compliance_csv() -> Any:
    return inline_download(export, "csv")


@bp.route("/staff/reports/compliance.xlsx", methods=["GET"])
@staff_only
def compliance_xlsx() -> Any:
    return inline_download(export, "xlsx")


def _export_name(report: ComplianceReport) -> str:
    return f"compliance-{report.filters.start.isoformat()}-{report.filters.end.isoformat()}"
