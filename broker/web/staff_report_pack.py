"""Staff: the performance-evaluation pack (绩效自评, issue 14 report 7) for a subsidy program and a year:
a page, its CSV, XLSX and PDF.

The same pattern as broker/web/staff_reports.py (docs/reports.md): the filters from the query string
with the API's schema, one service call (broker.services.report_pack.pack), the report's tables built
once (`_pack_tables`) and handed to the page, to broker.web.report_exports, or — for the PDF — to the
very template the page uses, rendered for print (templates/staff/report_pack.html, `printing=True`:
the chart left out because its table is beneath it) and turned into a PDF by
broker.web.report_exports.pdf_download.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from broker.clock import local_date, now
from broker.db import get_session
from broker.errors import NotFound
from broker.models import Account
from broker.schemas.reports import PackQuerySchema, pack_filters
from broker.services import report_pack
from broker.services.report_pack import PackReport
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only
from broker.web.report_exports import Column, ReportExport, Table, inline_download, pdf_download
from broker.web.staff_programs import MODE_NAMES, STATUS_NAMES
from broker.web.staff_reports import load_filters, refuse_problems

bp = Blueprint("staff_report_pack", __name__, template_folder="templates")

PACK_PROBLEMS: dict[str, str] = {
    "program": N_("请选择列表中的补贴项目。"),
    "year": N_("请输入 2000 至 2200 之间的年度。"),
}


def _pack(session: Session, account: Account, args: Mapping[str, str]) -> tuple[PackReport, dict[str, str]]:
    data, problems = load_filters(PackQuerySchema(), args)
    problems = {name: _(PACK_PROBLEMS[name]) for name in problems}
    try:
        report = report_pack.pack(session, account, pack_filters(data, local_date(now())))
    except NotFound:
        abort(404)
    return report, problems


def export(session: Session, account: Account, args: Mapping[str, str]) -> ReportExport:
    """The pack's CSV and XLSX export (broker.web.staff_exports keeps it as "pack")."""
    report, problems = _pack(session, account, args)
    refuse_problems(problems)
    return ReportExport(_export_name(report), _filter_lines(report), _pack_tables(report))


def _filter_lines(report: PackReport) -> list[tuple[str, str]]:
    program = report.program
    return [
        (_("报表"), _("绩效自评")),
        (_("补贴项目"), f"{program.code} {program.name}" if program else _("无")),
        (_("年度"), str(report.filters.year)),
    ]


def _percent(title: str) -> Column:
    """A percentage or a ratio to two places: the `hours` kind is the 0.00 number format."""
    return Column(title, "hours")


def _pack_tables(report: PackReport) -> list[Table]:
    """The pack's tables under its headings, as the page, the PDF and the exports show them."""
    d, p, o, b, s = report.decision, report.process, report.output, report.benefit, report.satisfaction
    terms = [] if d is None else [[
        report.program.code, report.program.name, _(STATUS_NAMES[d.status]), _(MODE_NAMES[d.mode]), d.rate_percent,
        d.cap_per_startup, f"{d.starts_on.isoformat()} — {d.ends_on.isoformat()}", d.year_budget]]
    share = {score: n for score, n in s.distribution}
    return [
        Table("terms", _("项目依据与预算"),
              [Column(_("项目编号")), Column(_("项目名称")), Column(_("状态")), Column(_("补贴方式")),
               _percent(_("补贴比例（%）")), Column(_("每家年度上限"), "money"), Column(_("实施期间")),
               Column(_("年度到账预算"), "money")], terms),
        Table("deposits", _("资金文件（年度到账）"),
              [Column(_("资金文件文号")), Column(_("入账日期")), Column(_("金额"), "money")],
              [[deposit.reference, deposit.day.isoformat(), deposit.amount] for deposit in (d.deposits if d else [])]),
        Table("review", _("评审及时性"),
              [Column(_("应审方案"), "count"), Column(_("按期审结"), "count"), Column(_("超期审结"), "count"),
               Column(_("逾期未审"), "count"), _percent(_("按期审结率（%）"))],
              [[p.reviewed, p.on_time, p.late, p.lapsed, p.on_time_percent]]),
        Table("notices", _("公示与异议"),
              [Column(_("公示批次"), "count"), Column(_("公示补贴"), "count"), Column(_("因异议撤下"), "count"),
               Column(_("异议"), "count"), Column(_("异议成立"), "count"), Column(_("异议不成立"), "count"),
               Column(_("待答复"), "count")],
              [[p.notices, p.noticed, p.removed, p.objections, p.upheld, p.dismissed, p.open_objections]]),
        Table("output", _("产出指标"),
              [Column(_("服务企业"), "count"), Column(_("补贴笔数"), "count"), Column(_("承诺金额"), "money"),
               Column(_("兑付金额"), "money"), _percent(_("兑付率（%）")), _percent(_("预算使用率（%）"))],
              [[o.firms, o.awards, o.committed, o.redeemed, o.redemption_percent, o.budget_percent]]),
        Table("benefit", _("效益指标"),
              [Column(_("兑付补贴"), "money"), Column(_("交付资源原价"), "money"), _percent(_("杠杆（补贴÷原价）")),
               Column(_("灯塔企业"), "count"), _percent(_("灯塔企业占比（%）")), Column(_("灯塔承诺金额"), "money"),
               _percent(_("灯塔金额占比（%）"))],
              [[b.redeemed, b.delivered_gross, b.leverage, b.lighthouse_firms, b.lighthouse_firms_percent,
                b.lighthouse_committed, b.lighthouse_amount_percent]]),
        Table("satisfaction", _("满意度"), [Column(_("评价数"), "count"), _percent(_("平均分（1–5）"))],
              [[s.ratings, s.mean]]),
        Table("scores", _("评分分布"), [Column(_("评分")), Column(_("评价数"), "count"), _percent(_("占比（%）"))],
              [[_("%(score)s分", score=score), share[score], report_pack.percent_of(share[score], s.ratings)]
               for score, _n in s.distribution] if s.ratings else []),
    ]


def _render(report: PackReport, problems: dict[str, str], *, printing: bool) -> str:
    args = {name: value for name, value in request.args.items() if name in PackQuerySchema().fields}
    chart = {"scores": [_("%(score)s分", score=score) for score, _n in report.satisfaction.distribution],
             "values": [n for _score, n in report.satisfaction.distribution]}
    return render_template(
        "staff/report_pack.html", report=report, tables=_pack_tables(report), chart=chart, problems=problems,
        printing=printing,
        csv_url=url_for("staff_report_pack.pack_csv", **args), xlsx_url=url_for("staff_report_pack.pack_xlsx", **args),
        pdf_url=url_for("staff_report_pack.pack_pdf", **args),
    )


@bp.route("/staff/reports/pack", methods=["GET"], endpoint="pack")
@staff_only
def pack_page() -> Any:
    report, problems = _pack(get_session(), current_person().account, request.args)
    return _render(report, problems, printing=False), 422 if problems else 200


@bp.route("/staff/reports/pack.csv", methods=["GET"])
@staff_only
def pack_csv() -> Any:
    return inline_download(export, "csv")


@bp.route("/staff/reports/pack.xlsx", methods=["GET"])
@staff_only
def pack_xlsx() -> Any:
    return inline_download(export, "xlsx")


@bp.route("/staff/reports/pack.pdf", methods=["GET"])
@staff_only
def pack_pdf() -> Any:
    """The page's own template for print, as a PDF."""
    report, problems = _pack(get_session(), current_person().account, request.args)
    refuse_problems(problems)
    return pdf_download(f"{_export_name(report)}.pdf", _render(report, {}, printing=True))


def _export_name(report: PackReport) -> str:
    code = report.program.code if report.program else "none"
    return f"performance-pack-{code}-{report.filters.year}"
