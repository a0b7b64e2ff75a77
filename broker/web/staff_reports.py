"""Staff: the district's reports (报表), each a page, a CSV and an XLSX export of the same tables.

Thin views, one pattern per report (docs/reports.md): read the filters from the query string with the
report's schema (the API's own), call the one service function, build the report's tables once
(`fulfilment_tables`) and hand them to the page or to broker.web.report_exports. Bad filters show
the page with the defaults and the problem next to its field, status 422; an export refuses them (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError
from sqlalchemy.orm import Session

from broker.clock import local_date, now
from broker.db import get_session
from broker.errors import InvalidInput
from broker.models import Account, Sector
from broker.resources import KINDS
from broker.schemas.reports import FulfilmentQuerySchema, fulfilment_filters
from broker.services import district_reports
from broker.services.district_reports import FulfilmentFilters, FulfilmentReport
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only
from broker.web.report_exports import Column, ReportExport, Table, inline_download
from broker.web.reports import KIND_NAMES, SECTOR_NAMES

bp = Blueprint("staff_reports", __name__, template_folder="templates")

# What is wrong with a filter, in the person's language (the schema's messages are English).
FILTER_PROBLEMS: dict[str, str] = {
    "start": N_("请输入有效日期（年-月-日）。"),
    "end": N_("请输入有效日期（年-月-日），且不早于起始日期、期间不超过三年。"),
    "kind": N_("请选择列表中的资源类别。"),
    "sector": N_("请选择列表中的领域。"),
    "lighthouse": N_("请勾选或不勾选。"),
    "cycle": N_("请输入有效的轮次编号。"),
}

STAGE_NAMES = {"approved": N_("提交至获批"), "active": N_("提交至开通")}


def load_filters(schema: Schema, args: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The query's filters loaded by `schema` (empty fields left out), or none and each bad field's problem."""
    given = {name: value for name, value in args.items() if name in schema.fields and value.strip()}
    try:
        return schema.load(given), {}
    except ValidationError as error:
        fields = error.messages if isinstance(error.messages, dict) else {}
        return {}, {name: _(FILTER_PROBLEMS.get(name, FILTER_PROBLEMS["start"])) for name in fields}


def refuse_problems(problems: dict[str, str]) -> None:
    """An export is of good filters only: bad ones are refused (422), each field with its problem."""
    if problems:
        raise InvalidInput(_("筛选条件有误。"), {name: [text] for name, text in problems.items()}, location="query")


def _fulfilment(session: Session, account: Account, args: Mapping[str, str]) -> tuple[FulfilmentReport, dict[str, str]]:
    data, problems = load_filters(FulfilmentQuerySchema(), args)
    filters = fulfilment_filters(data, local_date(now()))
    return district_reports.fulfilment(session, account, filters), problems


def export(session: Session, account: Account, args: Mapping[str, str]) -> ReportExport:
    """The report's export (broker.web.staff_exports keeps it as "fulfilment")."""
    report, problems = _fulfilment(session, account, args)
    refuse_problems(problems)
    return ReportExport(_export_name(report.filters), _filter_lines(report.filters), fulfilment_tables(report))


def _filter_lines(filters: FulfilmentFilters) -> list[tuple[str, str]]:
    """The filters applied, in words: the first lines of every export."""
    return [
        (_("报表"), _("需求满足情况")),
        (_("期间（北京时间）"), f"{filters.start.isoformat()} — {filters.end.isoformat()}"),
        (_("资源类别"), _(KIND_NAMES[filters.kind]) if filters.kind else _("全部")),
        (_("领域"), _(SECTOR_NAMES[filters.sector.value]) if filters.sector else _("全部")),
        (_("仅灯塔领域"), _("是") if filters.lighthouse else _("否")),
        (_("撮合轮次"), str(filters.cycle_id) if filters.cycle_id else _("全部")),
    ]


def _funnel_columns(first: str) -> list[Column]:
    return [Column(first), Column(_("申请数"), "count"), Column(_("获方案"), "count"), Column(_("获批"), "count"),
            Column(_("已开通"), "count"), Column(_("申请数量"), "qty"), Column(_("方案数量"), "qty"),
            Column(_("获批数量"), "qty"), Column(_("开通数量"), "qty")]


def _funnel_values(label: str, row: district_reports.FunnelRow) -> list[Any]:
    return [label, row.requests, row.proposed, row.approved, row.active,
            row.requested_qty, row.proposed_qty, row.approved_qty, row.active_qty]


def fulfilment_tables(report: FulfilmentReport) -> list[Table]:
    """The report's tables, as the page shows them and the exports write them."""
    return [
        Table("funnel", _("需求满足漏斗（期间合计）"), _funnel_columns(_("范围")),
              [_funnel_values(_("合计"), report.total)]),
        Table("months", _("按提交月份"), _funnel_columns(_("月份")),
              [_funnel_values(row.key, row) for row in report.months]),
        Table("cycles", _("按撮合轮次"), _funnel_columns(_("轮次")),
              [_funnel_values(_("第%(id)s轮", id=row.key), row) for row in report.cycles]),
        Table("times", _("办理时长（小时）"),
              [Column(_("阶段")), Column(_("申请数"), "count"), Column(_("中位数"), "hours"), Column(_("90分位"), "hours")],
              [[_(STAGE_NAMES[row.stage]), row.requests, row.median_hours, row.p90_hours] for row in report.times]),
        Table("reasons", _("驳回原因（前20项）"),
              [Column(_("原因")), Column(_("方案数"), "count"), Column(_("数量"), "qty")],
              [[row.reason, row.allocations, row.quantity] for row in report.reasons]),
        Table("lapses", _("逾期未审"), [Column(_("方案数"), "count"), Column(_("数量"), "qty")],
              [[report.lapsed, report.lapsed_qty]]),
    ]


@bp.route("/staff/reports/fulfilment", methods=["GET"], endpoint="fulfilment")
@staff_only
def fulfilment_page() -> Any:
    report, problems = _fulfilment(get_session(), current_person().account, request.args)
    tables = fulfilment_tables(report)
    stages = [_("申请"), _("获方案"), _("获批"), _("已开通")]
    chart = {"stages": stages, "values": [report.total.requests, report.total.proposed, report.total.approved,
                                          report.total.active]}
    args = {name: value for name, value in request.args.items() if name in FulfilmentQuerySchema().fields}
    page = render_template(
        "staff/report_fulfilment.html", report=report, tables=tables, chart=chart, problems=problems,
        kinds=[(kind, _(KIND_NAMES.get(kind, kind))) for kind in KINDS],
        sectors=[(sector.value, _(SECTOR_NAMES[sector.value])) for sector in Sector],
        csv_url=url_for("staff_reports.fulfilment_csv", **args), xlsx_url=url_for("staff_reports.fulfilment_xlsx", **args),
    )
    return page, 422 if problems else 200


@bp.route("/staff/reports/fulfilment.csv", methods=["GET"])
@staff_only
def fulfilment_csv() -> Any:
    return inline_download(export, "csv")


@bp.route("/staff/reports/fulfilment.xlsx", methods=["GET"])
@staff_only
def fulfilment_xlsx() -> Any:
    return inline_download(export, "xlsx")


def _export_name(filters: FulfilmentFilters) -> str:
    return f"fulfilment-{filters.start.isoformat()}-{filters.end.isoformat()}"
