"""The carrier page's demand (需求汇总): the demand startups declared in a survey, anonymised: by kind,
region and month, never a firm or its sector, and without any cell fewer than 3 firms declared (the
page says how many were left out), so a carrier can plan what to pledge.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from broker.clock import now
from broker.db import get_session
from broker.errors import NotFound
from broker.services import surveys
from broker.web.auth import current_person
from broker.web.guards import carrier_only
from broker.web.staff_surveys import chart_of, names

bp = Blueprint("carrier_demand", __name__, template_folder="templates")


@bp.route("/carrier/demand", methods=["GET"], endpoint="demand")
@carrier_only
def demand_page() -> str:
    """The anonymised demand of the survey asked for (?survey=), else of the newest."""
    raw = request.args.get("survey", "")
    try:
        found = surveys.carrier_demand(get_session(), current_person().account,
                                       int(raw) if raw.isdigit() and len(raw) < 10 else None, now())
    except NotFound:
        abort(404)
    chart = chart_of(found.aggregate.cells) if found.aggregate else None
    return render_template("carrier/demand.html", found=found, chart=chart, **names())
