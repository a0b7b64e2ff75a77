"""Staff: report 3, subsidy spend (补贴资金使用) — a page, a CSV and an XLSX of the same tables (docs/reports.md).

Thin views on the pattern of broker/web/staff_reports.py: the filters come from the query string through the
API's schema, one call to broker.services.report_spend.spend, the tables built once (`spend_tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from broker.clock import local_date, now
from broker.db import get_session
from broker.models import Account, Sector
from broker.schemas.reports import SpendQuerySchema, spend_filters
from broker.services import report_spend
from broker.services.report_spend import SIZE_BANDS, SpendReport, SpendRow
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only
from broker.web.report_exports import Column, ReportExport, Table, inline_download
from broker.web.reports import SECTOR_NAMES
from broker.web.staff_reports import load_filters, refuse_problems

bp = Blueprint("staff_report_spend", __name__, template_folder="templates")

SIZE_NAMES = {"micro": N_("微型（10人以下）"), "small": N_("小型（10–99人）"), "medium": N_("中型（100–299人）"),
              "large": N_("大型（300人及以上）")}
# What is wrong with this report's own filters (the period's come from staff_reports).
SPEND_PROBLEMS = {"program": N_("请选择列表中的补贴项目。"), "carrier": N_("请选择列表中的运营商。"),
                  "size": N_("请选择列表中的企业规模。")}


def _spend(session: Session, account: Account, args: Mapping[str, str]) -> tuple[SpendReport, dict[str, str]]:
    data, problems = load_filters(SpendQuerySchema(), args)
    problems = {name: _(SPEND_PROBLEMS[name]) if name in SPEND_PROBLEMS else text for name, text in problems.items()}
    return report_spend.spend(session, account, spend_filters(data, local_date(now()))), problems


def export(session: Session, account: Account, args: Mapping[str, str]) -> ReportExport:
    """The report's export (broker.web.staff_exports keeps it as "spend")."""
    report, problems = _spend(session, account, args)
    refuse_problems(problems)
    return ReportExport(_export_name(report), _filter_lines(report), spend_tables(report))


def _named(choices: list[tuple[int, str, str]], wanted: int | None) -> str:
    return next((f"{name}（{code}）" for id_, code, name in choices if id_ == wanted), _("全部"))


def _filter_lines(report: SpendReport) -> list[tuple[str, str]]:
    """The filters applied, in words: the first lines of every export."""
    f = report.filters
    return [
        (_("报表"), _("补贴资金使用")),
        (_("期间（北京时间）"), f"{f.start.isoformat()} — {f.end.isoformat()}"),
        (_("补贴项目"), _named(report.program_choices, f.program_id)),
        (_("领域"), _(SECTOR_NAMES[f.sector.value]) if f.sector else _("全部")),
        (_("运营商"), _named(report.carrier_choices, f.carrier_id)),
        (_("企业规模"), _(SIZE_NAMES[f.size]) if f.size else _("全部")),
    ]


def _money_columns() -> list[Column]:
    return [Column(_("承诺"), "money"), Column(_("核验使用"), "money"), Column(_("核销"), "money"),
            Column(_("释放"), "money"), Column(_("追回"), "money"), Column(_("其他调整"), "money")]


def _money_values(row: SpendRow) -> list[Any]:
    return [row.committed, row.redeemed, row.written_off, row.released, row.clawed_back, row.adjusted]


def _flow_table(key: str, title: str, first: str, rows: list[tuple[str, SpendRow]]) -> Table:
    """A table of flows with the usage paid for and the leverage (per 100 yuan of resources delivered)."""
    columns = [Column(first), *_money_columns(), Column(_("所付资源总值"), "money"), Column(_("每百元资源补贴（元）"), "hours")]
    return Table(key, title, columns, [
        [label, *_money_values(row), row.usage_value, None if row.leverage is None else row.leverage * 100]
        for label, row in rows])


def _sector(code: str) -> str:
    return _(SECTOR_NAMES[code]) if code in SECTOR_NAMES else code


def spend_tables(report: SpendReport) -> list[Table]:
    """The report's tables, as the page shows them and the exports write them."""
    size = {code: _(name) for code, name in SIZE_NAMES.items()}
    return [
        _flow_table("total", _("补贴资金（期间合计）"), _("范围"), [(_("合计"), report.total)]),
        _flow_table("months", _("按月份"), _("月份"), [(row.key, row) for row in report.months]),
        _flow_table("programs", _("按补贴项目"), _("补贴项目"), [(f"{row.name}（{row.key}）", row) for row in report.programs]),
        _flow_table("sectors", _("按领域"), _("领域"), [(_sector(row.key), row) for row in report.sectors]),
        _flow_table("carriers", _("按运营商"), _("运营商"), [(f"{row.name}（{row.key}）", row) for row in report.carriers]),
        _flow_table("sizes", _("按企业规模"), _("企业规模"), [(size.get(row.key, row.key), row) for row in report.sizes]),
        Table("caps", _("达到年度上限的企业"),
              [Column(_("补贴项目")), Column(_("财政年度")), Column(_("每家年度上限"), "money"),
               Column(_("获补企业"), "count"), Column(_("达上限企业"), "count"), Column(_("占比（%）"), "hours")],
              [[f"{row.name}（{row.program}）", str(row.fiscal_year), row.cap, row.firms, row.at_cap, row.share]
               for row in report.caps]),
        Table("detail", _("明细：项目×领域×运营商×规模×月份"),
              [Column(_("补贴项目")), Column(_("领域")), Column(_("运营商")), Column(_("企业规模")), Column(_("月份")),
               *_money_columns()],
              [[row.program, _sector(row.sector), row.carrier, size.get(row.size, row.size), row.month, *_money_values(row)]
               for row in report.detail]),
    ]


@bp.route("/staff/reports/spend", methods=["GET"], endpoint="spend")
@staff_only
def spend_page() -> Any:
    report, problems = _spend(get_session(), current_person().account, request.args)
    tables = spend_tables(report)
    chart = {"months": [row.key for row in report.months],
             "series": [{"name": column.title, "values": [str(row[index]) for row in tables[1].rows]}
                        for index, column in enumerate(tables[1].columns[1:6], start=1)]}
    args = {name: value for name, value in request.args.items() if name in SpendQuerySchema().fields}
    page = render_template(
        "staff/report_spend.html", report=report, tables=tables, chart=chart, problems=problems,
        sectors=[(sector.value, _(SECTOR_NAMES[sector.value])) for sector in Sector],
        sizes=[(code, _(SIZE_NAMES[code])) for code, _low, _high in SIZE_BANDS],
        csv_url=url_for("staff_report_spend.spend_csv", **args), xlsx_url=url_for("staff_report_spend.spend_xlsx", **args),
    )
    return page, 422 if problems else 200


@bp.route("/staff/reports/spend.csv", methods=["GET"])
@staff_only
def spend_csv() -> Any:
    return inline_download(export, "csv")


@bp.route("/staff/reports/spend.xlsx", methods=["GET"])
@staff_only
def spend_xlsx() -> Any:
    return inline_download(export, "xlsx")


def _export_name(report: SpendReport) -> str:
    return f"spend-{report.filters.start.isoformat()}-{report.filters.end.isoformat()}"
