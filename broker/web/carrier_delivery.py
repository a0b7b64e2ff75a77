"""The carrier page's delivery and settlement (运营商门户 · 交付与结算).

`/carrier/delivery`: the usage the carrier reported per allocation on its offers (granted against
used in the kind's unit, the last report, the subsidy the usage redeemed), filtered by kind,
status and month, 50 a page, the same list as CSV at `/carrier/delivery.csv`; under it the
settlement statements (结算单) with the carrier's claims on them (where a program pays the carrier),
each summed: claimed, approved, paid. `/carrier/delivery/statements/<id>` shows one statement's
lines that are the carrier's, through the same reads and partials as the staff statement page.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext

from broker.db import get_session
from broker.errors import InvalidInput, NotFound
from broker.models import AllocationStatus
from broker.services import delivery, settlement, settlement_pages
from broker.web.auth import current_person
from broker.web.carrier_allocations import ALLOCATION_STATUS
from broker.web.csv_export import csv_response
from broker.web.errors import error_page
from broker.web.formatting import local
from broker.web.guards import carrier_only
from broker.web.reports import KIND_NAMES, unit_name
from broker.web.formatting import quantity
from broker.web.staff_settlement import LINES_PER_PAGE, held_words

bp = Blueprint("carrier_delivery", __name__, template_folder="templates")

PAGE_SIZE = 50
STATEMENTS_PER_PAGE = 20
STATUSES = {code: ALLOCATION_STATUS[code.value] for code in delivery.DELIVERED}


def _page_number(name: str = "page") -> int:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100000 else 1


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


def _filters() -> tuple[dict[str, Any], dict[str, str]]:
    """The filters as the service takes them, and the problems with them in words (a bad month is left out)."""
    status, kind, month = (request.args.get(name, "").strip() for name in ("status", "kind", "month"))
    filters: dict[str, Any] = {"status": AllocationStatus(status) if status in ALLOCATION_STATUS else None,
                               "kind": kind if kind in KIND_NAMES else None, "month": None}
    errors = {}
    if month:
        try:
            period = settlement.parse_period(month)
        except InvalidInput:
            period = None
        if period is None or "Q" in month:  # the service's periods include quarters; this filter is a month
            errors["month"] = gettext("月份应写作如 2026-12（年-月）。")
        else:
            filters["month"] = period
    return filters, errors


def _words() -> dict[str, Any]:
    return {"kind_name": lambda code: gettext(KIND_NAMES[code]) if code in KIND_NAMES else code,
            "allocation_status": lambda code: gettext(ALLOCATION_STATUS[code]) if code in ALLOCATION_STATUS else code,
            "kinds": KIND_NAMES, "statuses": STATUSES, "quantity": quantity}


@bp.route("/carrier/delivery", methods=["GET"], endpoint="delivery")
@carrier_only
def delivery_page() -> tuple[str, int]:
    """Usage per allocation on the carrier's offers, and the statements with the carrier's claims."""
    filters, errors = _filters()
    page, statements_page = _page_number(), _page_number("statements_page")
    account = current_person().account
    usage = delivery.carrier_usage(get_session(), account, **filters, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    statements = settlement_pages.statement_list(get_session(), account, (statements_page - 1) * STATEMENTS_PER_PAGE,
                                                 STATEMENTS_PER_PAGE)
    return render_template(
        "carrier/delivery.html", usage=usage, page=page, pages=_pages(usage.total, PAGE_SIZE),
        statements=statements, statements_page=statements_page,
        statement_pages=_pages(statements.total, STATEMENTS_PER_PAGE), errors=errors,
        chosen={name: request.args.get(name, "").strip() for name in ("status", "kind", "month")}, **_words(),
    ), 422 if errors else 200


@bp.route("/carrier/delivery.csv", methods=["GET"])
@carrier_only
def delivery_csv() -> Response:
    """The same usage list, every row, as CSV (UTF-8 with the byte-order mark, for Excel)."""
    filters, _ = _filters()
    lines = delivery.carrier_usage_export(get_session(), current_person().account, **filters)
    words = _words()
    header = [gettext("分配编号"), gettext("状态"), gettext("资源编号"), gettext("资源类型"), gettext("企业"),
              gettext("分配数量"), gettext("已用数量"), gettext("计量单位"), gettext("最近上报时间（北京时间）"),
              gettext("已核验补贴（元）")]
    return csv_response("delivery.csv", header, (
        [line.allocation_id, words["allocation_status"](line.status.value), line.offer_external_id,
         words["kind_name"](line.kind), line.startup_name or "", line.granted, line.used, unit_name(line.kind),
         local(line.last_reported_at).strftime("%Y-%m-%d %H:%M") if line.last_reported_at else "", line.redeemed]
        for line in lines))


@bp.route("/carrier/delivery/statements/<int:statement_id>", methods=["GET"], endpoint="statement")
@carrier_only
def statement_view(statement_id: int) -> tuple[str, int]:
    """One statement: the carrier's lines on it, their totals, what was approved and paid."""
    page = _page_number()
    try:
        found = settlement_pages.statement_page(get_session(), current_person().account, statement_id,
                                                (page - 1) * LINES_PER_PAGE, LINES_PER_PAGE, 0, PAGE_SIZE)
    except NotFound:
        return error_page(404)
    return render_template("carrier/statement.html", found=found, view=found.statement, held_words=held_words,
                           page=page, pages=_pages(found.line_count, LINES_PER_PAGE)), 200
