"""Staff: report 1, the supply–demand gap (供需缺口) — the page, its CSV and its XLSX, from one set of tables.

The pattern of broker/web/staff_reports.py (docs/reports.md): the filters read with the API's schema,
one service call (broker.services.report_gap.gap), the tables built once (`_gap_tables`) for the page
and both exports. Bad filters: the page shows the defaults with the problem next to its field (422);
the exports refuse them (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from broker.clock import local_date, now
from broker.db import get_session
from broker.errors import InvalidInput
from broker.models import Account, Sector
from broker.resources import KINDS
from broker.schemas.reports import GapQuerySchema, gap_filters
from broker.services import report_gap
from broker.services.report_gap import GapReport
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only
from broker.web.report_exports import Column, ReportExport, Table, inline_download
from broker.web.reports import KIND_NAMES, SECTOR_NAMES, unit_name
from broker.web.staff_reports import load_filters, refuse_problems

bp = Blueprint("staff_report_gap", __name__, template_folder="templates")

CAMPAIGN_PROBLEM = N_("请输入有效的需求摸排编号。")
REGION_PROBLEM = N_("请选择列表中的地区（不超过64个字符）。")

# The unmet part's reasons: the engine's reason codes in six groups (broker.services.report_gap.REASON_GROUPS).
GAP_REASON_NAMES: dict[str, str] = {
    "no_compatible_offer": N_("没有相符的资源（配置、地区或时段不符）"),
    "price": N_("价格高于可接受的最高单价"),
    "capacity": N_("容量已分给他人或不足"),
    "budget": N_("预算不足"),
    "share_cap": N_("达到单家企业份额上限"),
    "minimum": N_("达不到最低数量"),
    "none": N_("尚无撮合原因（未经撮合或方案待审）"),
}


def _gap(session: Session, account: Account, args: Mapping[str, str]) -> tuple[GapReport, dict[str, str]]:
    data, problems = load_filters(GapQuerySchema(), args)
    if "campaign" in problems:
        problems["campaign"] = _(CAMPAIGN_PROBLEM)
    if "region" in problems:
        problems["region"] = _(REGION_PROBLEM)
    try:
        days = report_gap.chosen_campaign_days(session, data.get("campaign"))
    except InvalidInput:
        data, days, problems = {}, None, {**problems, "campaign": _(CAMPAIGN_PROBLEM)}
    filters = gap_filters(data, local_date(now()), days)
    return report_gap.gap(session, account, filters), problems


def export(session: Session, account: Account, args: Mapping[str, str]) -> ReportExport:
    """The report's export (broker.web.staff_exports keeps it as "gap")."""
    report, problems = _gap(session, account, args)
    refuse_problems(problems)
    return ReportExport(_export_name(report), _filter_lines(report), _gap_tables(report))


def _kind(code: str) -> str:
    return _(KIND_NAMES[code]) if code in KIND_NAMES else code


def _region(region: str) -> str:
    return region or _("多地区或不限")


def _filter_lines(report: GapReport) -> list[tuple[str, str]]:
    """The filters applied, in words: the first lines of every export."""
    filters = report.filters
    return [
        (_("报表"), _("供需缺口")),
        (_("期间（北京时间）"), f"{filters.start.isoformat()} — {filters.end.isoformat()}"),
        (_("资源类别"), _kind(filters.kind) if filters.kind else _("全部")),
        (_("领域"), _(SECTOR_NAMES[filters.sector.value]) if filters.sector else _("全部")),
        (_("仅灯塔领域"), _("是") if filters.lighthouse else _("否")),
        (_("地区"), filters.region if filters.region is not None else _("全部")),
        (_("需求摸排"), f"{report.campaign.title}（{report.campaign.period}）" if report.campaign else _("无相符的摸排")),
    ]


def _gap_tables(report: GapReport) -> list[Table]:
    """The report's tables, as the page shows them and the exports write them."""
    return [
        Table("kinds", _("按资源类别"),
              [Column(_("资源类别")), Column(_("单位")), Column(_("摸排需求"), "qty"), Column(_("申请需求"), "qty"),
               Column(_("承诺供给"), "qty"), Column(_("发布供给"), "qty"), Column(_("已分配"), "qty"),
               Column(_("未满足"), "qty")],
              [[_kind(row.kind), unit_name(row.kind), row.surveyed, row.requested, row.pledged, row.published,
                row.allocated, row.unmet] for row in report.kinds]),
        Table("demand", _("按类别、地区与领域"),
              [Column(_("资源类别")), Column(_("地区")), Column(_("领域")), Column(_("灯塔领域")),
               Column(_("摸排需求"), "qty"), Column(_("申请数"), "count"), Column(_("申请需求"), "qty"),
               Column(_("已分配"), "qty"), Column(_("未满足"), "qty")],
              [[_kind(row.kind), _region(row.region), _(SECTOR_NAMES[row.sector.value]),
                _("是") if row.lighthouse else "", row.surveyed, row.requests, row.requested, row.allocated, row.unmet]
               for row in report.demand]),
        Table("supply", _("发布供给（按类别与地区）"),
              [Column(_("资源类别")), Column(_("地区")), Column(_("资源数"), "count"), Column(_("发布供给"), "qty")],
              [[_kind(row.kind), row.region, row.offers, row.published] for row in report.supply]),
        Table("unmet", _("未满足部分及原因"),
              [Column(_("资源类别")), Column(_("原因")), Column(_("申请数"), "count"), Column(_("未满足"), "qty")],
              [[_kind(row.kind), _(GAP_REASON_NAMES[row.reason]), row.requests, row.unmet] for row in report.unmet]),
    ]


def _args() -> dict[str, str]:
    return {name: value for name, value in request.args.items() if name in GapQuerySchema().fields}


@bp.route("/staff/reports/gap", methods=["GET"], endpoint="gap")
@staff_only
def gap_page() -> Any:
    report, problems = _gap(get_session(), current_person().account, request.args)
    chart = {
        "kinds": [_kind(row.kind) for row in report.kinds],
        "series": [{"name": name, "values": [getattr(row, figure) for row in report.kinds]} for figure, name in (
            ("surveyed", _("摸排需求")), ("requested", _("申请需求")), ("pledged", _("承诺供给")),
            ("published", _("发布供给")), ("allocated", _("已分配")), ("unmet", _("未满足")))],
    }
    chart["series"] = [{**s, "values": [float(v) for v in s["values"]]} for s in chart["series"]]
    page = render_template(
        "staff/report_gap.html", report=report, tables=_gap_tables(report), chart=chart, problems=problems,
        kinds=[(kind, _kind(kind)) for kind in KINDS],
        sectors=[(sector.value, _(SECTOR_NAMES[sector.value])) for sector in Sector],
        csv_url=url_for("staff_report_gap.gap_csv", **_args()), xlsx_url=url_for("staff_report_gap.gap_xlsx", **_args()),
    )
    return page, 422 if problems else 200


@bp.route("/staff/reports/gap.csv", methods=["GET"])
@staff_only
def gap_csv() -> Any:
    return inline_download(export, "csv")


@bp.route("/staff/reports/gap.xlsx", methods=["GET"])
@staff_only
def gap_xlsx() -> Any:
    return inline_download(export, "xlsx")


def _export_name(report: GapReport) -> str:
    return f"gap-{report.filters.start.isoformat()}-{report.filters.end.isoformat()}"
