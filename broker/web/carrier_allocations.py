"""The carrier page's allocations (运营商门户 · 分配): the allocations on the carrier's own offers,
50 a page, filtered by status and kind, with provisioning attempts, the last error and the
carrier's reference; the startup's name and contact only while the allocation is approved,
provisioning or active (`market.STARTUP_SHOWN_TO_CARRIER`), nothing else of the startup. The
same list as CSV, streamed.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext

from broker.db import get_session
from broker.models import AllocationStatus
from broker.services import market
from broker.web.auth import current_person
from broker.web.csv_export import csv_response
from broker.web.guards import N_, carrier_only
from broker.web.reports import KIND_NAMES
from broker.web.formatting import quantity

bp = Blueprint("carrier_allocations", __name__, template_folder="templates")

PAGE_SIZE = 50
ALLOCATION_STATUS = {
    "proposed": N_("待审批"), "approved": N_("已批准"), "provisioning": N_("开通中"), "active": N_("使用中"),
    "released": N_("已释放"), "rejected": N_("未批准"), "lapsed": N_("已过期"), "cancelled": N_("已取消"),
}


def _filters() -> dict[str, object]:
    status = request.args.get("status", "")
    kind = request.args.get("kind", "")
    return {"status": AllocationStatus(status) if status in ALLOCATION_STATUS else None,
            "kind": kind if kind in KIND_NAMES else None}


def _names() -> dict[str, object]:
    return {"kind_name": lambda code: gettext(KIND_NAMES[code]) if code in KIND_NAMES else code,
            "allocation_status": lambda code: gettext(ALLOCATION_STATUS[code]) if code in ALLOCATION_STATUS else code,
            "kinds": KIND_NAMES, "statuses": ALLOCATION_STATUS, "quantity": quantity}


@bp.route("/carrier/allocations", methods=["GET"])
@carrier_only
def allocations():
    """The allocations on the carrier's offers, newest first."""
    raw_page = request.args.get("page", "")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100000 else 1
    found = market.carrier_allocations(get_session(), current_person().account, **_filters(),
                                       offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return render_template("carrier/allocations.html", found=found, page=page,
                           pages=max(1, -(-found.total // PAGE_SIZE)), status=request.args.get("status", ""),
                           kind=request.args.get("kind", ""), **_names())


@bp.route("/carrier/allocations.csv", methods=["GET"])
@carrier_only
def allocations_csv() -> Response:
    """The same list, every row, as CSV (UTF-8 with the byte-order mark, for Excel)."""
    lines = market.carrier_allocations_export(get_session(), current_person().account, **_filters())
    names = _names()
    header = [gettext("分配编号"), gettext("状态"), gettext("资源编号"), gettext("资源类型"), gettext("数量"),
              gettext("单价（元）"), gettext("开通尝试次数"), gettext("最近错误"), gettext("运营商单号"),
              gettext("企业"), gettext("联系人"), gettext("联系邮箱"), gettext("联系电话")]
    return csv_response("allocations.csv", header, (
        [line.id, names["allocation_status"](line.status.value), line.offer_external_id, names["kind_name"](line.kind),
         line.quantity, line.unit_price, line.provision_attempts, line.last_error or "", line.carrier_ref or "",
         line.startup_name or "", line.contact_name or "", line.contact_email or "", line.contact_phone or ""]
        for line in lines))
