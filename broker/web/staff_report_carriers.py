"""Staff: report 5, the carrier statement (运营商对账) — a page, a CSV, an XLSX and a PDF of the same tables
(docs/reports.md). The pattern of broker/web/staff_reports.py: the API's schema for the filters, one
service call (broker.services.report_carriers), the tables built once for the page and the exports; the
PDF is the page's own template rendered for print (`printing=True`, report_exports.pdf_download).

A carrier's own statement (broker/web/carrier_statement.py, /carrier/statement) is these same functions
with its own endpoints and `own=True` (the template in the carrier page's frame, without the carrier
field); the service scopes it to the carrier's figures.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from broker.clock import local_date, now
from broker.db import get_session
from broker.errors import InvalidInput
from broker.models import Account
from broker.schemas.reports import CarrierQuerySchema, carrier_filters
from broker.services import report_carriers
from broker.services.report_carriers import CarrierFilters, CarrierReport
from broker.web.auth import current_person
from broker.web.report_exports import Column, ReportExport, Table, inline_download, pdf_download
from broker.web.reports import KIND_NAMES, unit_name
from broker.web.staff_report_utilisation import OWN_PROBLEMS, worded_filters
from broker.web.guards import staff_only
from broker.web.staff_reports import refuse_problems

bp = Blueprint("staff_report_carriers", __name__, template_folder="templates")

PAGE = "staff_report_carriers.carriers"


def _report(session: Session, actor: Account, args: Mapping[str, str]) -> tuple[CarrierReport, dict[str, str]]:
    data, problems = worded_filters(CarrierQuerySchema(), args)
    filters = carrier_filters(data, local_date(now()))
    try:
        return report_carriers.carrier_statement(session, actor, filters), problems
    except InvalidInput:  # a carrier code that is not there: the defaults, the problem next to the field
        filters = dataclasses.replace(filters, carrier=None)
        return report_carriers.carrier_statement(session, actor, filters), {**problems, "carrier": _(OWN_PROBLEMS["carrier"])}


def export(session: Session, account: Account, args: Mapping[str, str]) -> ReportExport:
    """The report's export (broker.web.staff_exports keeps it as "carriers"); a carrier's is its own."""
    report, problems = _report(session, account, args)
    refuse_problems(problems)
    return ReportExport(_export_name(report.filters), _filter_lines(report.filters), _tables(report))


def _filter_lines(filters: CarrierFilters) -> list[tuple[str, str]]:
    return [
        (_("报表"), _("运营商对账")),
        (_("期间（北京时间）"), f"{filters.start.isoformat()} — {filters.end.isoformat()}"),
        (_("运营商"), filters.carrier or _("全部")),
    ]


def _delivered_share(pledged: Decimal, delivered: Decimal) -> Decimal | None:
    return None if not pledged else (delivered * 100 / pledged).quantize(Decimal("0.1"))


def _tables(report: CarrierReport) -> list[Table]:
    """The report's tables, as the page shows them and the exports write them."""
    return [
        Table("money", _("补贴兑现与开通失败"),
              [Column(_("运营商")), Column(_("月份")), Column(_("已兑现补贴（元）"), "money"),
               Column(_("待结算（元）"), "money"), Column(_("开通失败"), "count")],
              [[row.carrier_name, row.month, row.redeemed, row.pending, row.failures] for row in report.money]),
        Table("kinds", _("承诺与交付"),
              [Column(_("运营商")), Column(_("月份")), Column(_("资源类别")), Column(_("单位")),
               Column(_("承诺（当月份额）"), "qty"), Column(_("已交付"), "qty"), Column(_("交付/承诺（%）"), "qty")],
              [[row.carrier_name, row.month, _(KIND_NAMES.get(row.kind, row.kind)), unit_name(row.kind), row.pledged,
                row.delivered, _delivered_share(row.pledged, row.delivered)] for row in report.kinds]),
    ]


def _chart(report: CarrierReport) -> dict[str, Any]:
    """Every carrier's redeemed and pending money summed per month (the first table's figures)."""
    redeemed: dict[str, Decimal] = defaultdict(Decimal)
    pending: dict[str, Decimal] = defaultdict(Decimal)
    for row in report.money:
        redeemed[row.month] += row.redeemed
        pending[row.month] += row.pending
    return {"months": report.months, "series": [
        {"name": _("已兑现补贴（元）"), "values": [float(redeemed[m]) for m in report.months]},
        {"name": _("待结算（元）"), "values": [float(pending[m]) for m in report.months]},
    ]}


def render_statement(page: str, report: CarrierReport, problems: dict[str, str], *, own: bool, printing: bool) -> str:
    """The statement's page (`page` is its endpoint; its exports are `page`_csv, _xlsx and _pdf), or the
    same page for print; `own`: a carrier's own statement."""
    args = {name: value for name, value in request.args.items() if name in CarrierQuerySchema().fields}
    return render_template(
        "staff/report_carriers.html", own=own, report=report, tables=_tables(report), chart=_chart(report),
        problems=problems, printing=printing, page_url=url_for(page), csv_url=url_for(f"{page}_csv", **args), xlsx_url=url_for(f"{page}_xlsx", **args),
        pdf_url=url_for(f"{page}_pdf", **args),
    )


def statement_page(page: str, *, own: bool = False) -> tuple[str, int]:
    """The statement the query asks for, on the page (422 with the defaults' figures when it asks wrongly)."""
    report, problems = _report(get_session(), current_person().account, request.args)
    return render_statement(page, report, problems, own=own, printing=False), 422 if problems else 200


def statement_export(page: str, extension: str, *, own: bool = False) -> Any:
    """The statement the query asks for as a CSV, an XLSX or a PDF (422 when it asks wrongly)."""
    if extension != "pdf":
        return inline_download(export, extension)
    report, problems = _report(get_session(), current_person().account, request.args)
    refuse_problems(problems)
    return pdf_download(f"{_export_name(report.filters)}.pdf", render_statement(page, report, {}, own=own, printing=True))


@bp.route("/staff/reports/carriers", methods=["GET"], endpoint="carriers")
@staff_only
def carriers_page() -> Any:
    return statement_page(PAGE)


@bp.route("/staff/reports/carriers.csv", methods=["GET"], endpoint="carriers_csv", defaults={"extension": "csv"})
@bp.route("/staff/reports/carriers.xlsx", methods=["GET"], endpoint="carriers_xlsx", defaults={"extension": "xlsx"})
@bp.route("/staff/reports/carriers.pdf", methods=["GET"], endpoint="carriers_pdf", defaults={"extension": "pdf"})
@staff_only
def carriers_export(extension: str) -> Any:
    return statement_export(PAGE, extension)


def _export_name(filters: CarrierFilters) -> str:
    return f"carriers-{filters.start.isoformat()}-{filters.end.isoformat()}"
