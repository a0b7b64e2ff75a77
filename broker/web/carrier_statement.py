"""The carrier page's statement (运营商门户 · 对账单): report 5, the carrier statement, of the signed-in
carrier only — its pledged and delivered quantities, its redeemed and pending subsidy and its
provisioning failures per month, as staff see them on /staff/reports/carriers, with the same CSV, XLSX
and PDF: staff_report_carriers' views and template with `own=True`; the service scopes them to the carrier.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from broker.web.guards import carrier_only
from broker.web.staff_report_carriers import statement_export, statement_page

bp = Blueprint("carrier_statement", __name__, template_folder="templates")

PAGE = "carrier_statement.statement"


@bp.route("/carrier/statement", methods=["GET"], endpoint="statement")
@carrier_only
def statement() -> Any:
    return statement_page(PAGE, own=True)


@bp.route("/carrier/statement.csv", methods=["GET"], endpoint="statement_csv", defaults={"extension": "csv"})
@bp.route("/carrier/statement.xlsx", methods=["GET"], endpoint="statement_xlsx", defaults={"extension": "xlsx"})
@bp.route("/carrier/statement.pdf", methods=["GET"], endpoint="statement_pdf", defaults={"extension": "pdf"})
@carrier_only
def statement_download(extension: str) -> Any:
    return statement_export(PAGE, extension, own=True)
