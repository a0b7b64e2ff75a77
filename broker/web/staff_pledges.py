"""Staff: carrier pledges (运营商承诺) for a period.

`/staff/pledges?period=2027-Q1&carrier=<code>`: every carrier's (or one carrier's) pledge tracking,
pledged, published, allocated, delivered and the shortfall per carrier × kind (broker.services.pledges
says what each counts), an ECharts bar chart of the four summed per kind with its table beneath, and
the same lines as CSV at `/staff/pledges.csv` (the page's filters honoured). The API's
`GET /api/v1/pledge-tracking` gives the same numbers.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext

from broker.db import get_session
from broker.errors import NotFound
from broker.services import pledges
from broker.web.auth import current_person
from broker.web.carrier_pledges import chosen_period, tracking_words
from broker.web.csv_export import csv_response
from broker.web.guards import N_, staff_only
from broker.web.reports import KIND_NAMES, unit_name

bp = Blueprint("staff_pledges", __name__, template_folder="templates")

SERIES = {"pledged": N_("承诺数量"), "published": N_("已上架"), "allocated": N_("已分配"), "delivered": N_("已交付")}


def _tracking() -> tuple[pledges.Tracking, str, dict[str, str]]:
    period, errors = chosen_period()
    carrier = request.args.get("carrier", "").strip() or None
    try:
        found = pledges.pledge_tracking(get_session(), current_person().account, period, carrier)
    except NotFound:
        errors["carrier"] = gettext("没有这家运营商。")
        found = pledges.pledge_tracking(get_session(), current_person().account, period)
    return found, period, errors


def _chart(tracking: pledges.Tracking) -> dict[str, Any]:
    sums = tracking.by_kind()
    return {"kinds": [f"{gettext(KIND_NAMES[k])}（{unit_name(k)}）" for k in sums],
            "series": [{"name": gettext(label), "data": [float(sums[k][name]) for k in sums]}
                       for name, label in SERIES.items()]}


@bp.route("/staff/pledges", methods=["GET"], endpoint="pledges")
@staff_only
def pledges_page() -> tuple[str, int]:
    """Every carrier's pledge tracking for a period: a chart per kind, the table beneath."""
    tracking, period, errors = _tracking()
    return render_template("staff/pledges.html", tracking=tracking, period=period, errors=errors,
                           carrier=request.args.get("carrier", ""), chart=_chart(tracking), series=SERIES,
                           **tracking_words()), 422 if errors else 200


@bp.route("/staff/pledges.csv", methods=["GET"])
@staff_only
def pledges_csv() -> Response:
    """The same lines as CSV (UTF-8 with the byte-order mark, for Excel)."""
    tracking, period, _ = _tracking()
    header = [gettext("期间"), gettext("运营商编码"), gettext("运营商"), gettext("资源类型"), gettext("计量单位"),
              gettext("承诺数量"), gettext("已上架"), gettext("已分配"), gettext("已交付"), gettext("缺口")]
    return csv_response(f"pledges-{period}.csv", header, (
        [period, line.carrier_code, line.carrier_name, gettext(KIND_NAMES[line.kind]), unit_name(line.kind),
         line.pledged, line.published, line.allocated, line.delivered, line.shortfall] for line in tracking.lines))
