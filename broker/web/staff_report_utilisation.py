"""Staff: report 4, utilisation (资源使用率) — a page, a CSV and an XLSX of the same tables (docs/reports.md).

The pattern of broker/web/staff_reports.py: the filters read with the API's schema, one service call
(broker.services.report_utilisation), the tables built once for the page and both exports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from broker.clock import local_date, now
from broker.db import get_session
from broker.models import Account
from broker.resources import KINDS
from broker.schemas.reports import UtilisationQuerySchema, utilisation_filters
from broker.services import report_utilisation
from broker.services.report_utilisation import LINE_KIND, AllocationUse, UtilisationFilters, UtilisationReport
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only
from broker.web.report_exports import Column, ReportExport, Table, inline_download
from broker.web.reports import KIND_NAMES, unit_name
from broker.web.staff_carriers import page_number
from broker.web.staff_reports import load_filters, refuse_problems
from broker.web.staff_startups import ALLOCATION_STATUS_NAMES

bp = Blueprint("staff_report_utilisation", __name__, template_folder="templates")

# The problems of this report's own filters (the period's and the kind's are staff_reports' words).
OWN_PROBLEMS = {
    "carrier": N_("请选择列表中的运营商。"),
    "threshold": N_("请输入大于0、不超过100的百分比。"),
}


def worded_filters(schema: Any, args: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """`staff_reports.load_filters`, with the words for the carrier and the threshold."""
    data, problems = load_filters(schema, args)
    return data, {name: _(OWN_PROBLEMS[name]) if name in OWN_PROBLEMS else text for name, text in problems.items()}


def _report(session: Session, account: Account, args: Mapping[str, str], page: int = 1,
            idle_page: int = 1) -> tuple[UtilisationReport, dict[str, str]]:
    data, problems = worded_filters(UtilisationQuerySchema(), args)
    filters = utilisation_filters(data, local_date(now()))
    return report_utilisation.utilisation(session, account, filters, page, idle_page), problems


def export(session: Session, account: Account, args: Mapping[str, str]) -> ReportExport:
    """The report's export (broker.web.staff_exports keeps it as "utilisation"): every idle grant and every
    allocation, read a batch at a time as the file is written, not the page's fifty."""
    report, problems = _report(session, account, args)
    refuse_problems(problems)
    lines = report_utilisation.utilisation_lines
    return ReportExport(_export_name(report.filters), _filter_lines(report.filters), utilisation_tables(
        report, lines(session, account, report.filters, idle_only=True), lines(session, account, report.filters)))


def unit_of(kind: str) -> str:
    """The unit the report counts a kind in: line-days (线路·天) for a data line, else the kind's own."""
    return _("线路·天") if kind == LINE_KIND else unit_name(kind)


def _filter_lines(filters: UtilisationFilters) -> list[tuple[str, str]]:
    return [
        (_("报表"), _("资源使用率")),
        (_("期间（北京时间）"), f"{filters.start.isoformat()} — {filters.end.isoformat()}"),
        (_("资源类别"), _(KIND_NAMES[filters.kind]) if filters.kind else _("全部")),
        (_("运营商"), filters.carrier or _("全部")),
        (_("闲置阈值（%）"), format(filters.threshold.normalize(), "f")),
    ]


def _kind(kind: str) -> str:
    return _(KIND_NAMES.get(kind, kind))


def _allocation_values(line: AllocationUse) -> list[Any]:
    return [str(line.allocation_id), _(ALLOCATION_STATUS_NAMES.get(line.status.value, line.status.value)),
            line.startup_name, line.carrier_name, _kind(line.kind), line.model or "", unit_of(line.kind),
            line.window_start.isoformat(), line.window_end.isoformat(), line.allocated, line.used, line.used_share]


def _idle_values(line: AllocationUse) -> list[Any]:
    return [str(line.allocation_id), line.startup_name, line.carrier_name, _kind(line.kind), line.model or "",
            unit_of(line.kind), line.window_start.isoformat(), line.window_end.isoformat(),
            line.middle_day.isoformat(), line.allocated, line.used_by_middle, line.used_by_middle_share]


def utilisation_tables(report: UtilisationReport, idle: Iterable[AllocationUse] | None = None,
                       allocations: Iterable[AllocationUse] | None = None) -> list[Table]:
    """The report's tables, as the page shows them (the lists' pages in the report) and the exports
    write them (every idle grant and allocation, given here as iterables read once, as written); the
    lists' tables know their whole length either way."""
    idle = report.idle if idle is None else idle
    allocations = report.allocations if allocations is None else allocations
    return [
        Table("kinds", _("按资源类别"),
              [Column(_("资源类别")), Column(_("型号")), Column(_("单位")), Column(_("分配数"), "count"),
               Column(_("已分配"), "qty"), Column(_("已使用"), "qty"), Column(_("使用率（%）"), "qty"),
               Column(_("闲置数"), "count")],
              [[_kind(row.kind), row.model or "", unit_of(row.kind), row.allocations, row.allocated, row.used,
                row.used_share, row.idle] for row in report.kinds]),
        Table("idle", _("闲置分配（待跟进）"),
              [Column(_("分配编号")), Column(_("企业")), Column(_("运营商")), Column(_("资源类别")), Column(_("型号")),
               Column(_("单位")), Column(_("窗口起")), Column(_("窗口止")), Column(_("窗口中点")),
               Column(_("已分配"), "qty"), Column(_("中点前已用"), "qty"), Column(_("中点前使用率（%）"), "qty")],
              (_idle_values(line) for line in idle), total=report.idle_total),
        Table("allocations", _("按分配"),
              [Column(_("分配编号")), Column(_("状态")), Column(_("企业")), Column(_("运营商")), Column(_("资源类别")),
               Column(_("型号")), Column(_("单位")), Column(_("窗口起")), Column(_("窗口止")),
               Column(_("已分配"), "qty"), Column(_("已使用"), "qty"), Column(_("使用率（%）"), "qty")],
              (_allocation_values(line) for line in allocations), total=report.allocations_total),
    ]


@bp.route("/staff/reports/utilisation", methods=["GET"], endpoint="utilisation")
@staff_only
def utilisation_page() -> Any:
    report, problems = _report(get_session(), current_person().account, request.args, page_number("page"),
                               page_number("idle_page"))
    chart = {"labels": [_kind(row.kind) + (f" {row.model}" if row.model else "") for row in report.kinds],
             "values": [float(row.used_share or 0) for row in report.kinds]}
    args = {name: value for name, value in request.args.items() if name in UtilisationQuerySchema().fields}
    page = render_template(
        "staff/report_utilisation.html", report=report, tables=utilisation_tables(report), chart=chart, problems=problems,
        kinds=[(kind, _kind(kind)) for kind in KINDS],
        csv_url=url_for("staff_report_utilisation.utilisation_csv", **args),
        xlsx_url=url_for("staff_report_utilisation.utilisation_xlsx", **args),
    )
    return page, 422 if problems else 200


@bp.route("/staff/reports/utilisation.csv", methods=["GET"])
@staff_only
def utilisation_csv() -> Any:
    return inline_download(export, "csv")


@bp.route("/staff/reports/utilisation.xlsx", methods=["GET"])
@staff_only
def utilisation_xlsx() -> Any:
    return inline_download(export, "xlsx")


def _export_name(filters: UtilisationFilters) -> str:
    return f"utilisation-{filters.start.isoformat()}-{filters.end.isoformat()}"
