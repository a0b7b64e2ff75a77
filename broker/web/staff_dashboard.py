"""The staff dashboard (工作台, /staff): the district's position at a glance, each figure linking
to the list behind it. One reading service (`services.dashboard.overview`), nothing changed.

The charts (ECharts, served from /static/vendor) draw what the tables beside them say; the
tables are what a screen reader reads, so the charts are hidden from it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, url_for
from flask_babel import gettext

from broker.db import get_session
from broker.services import dashboard
from broker.web.auth import current_person
from broker.web.guards import N_, staff_only

bp = Blueprint("staff_dashboard", __name__, template_folder="templates")

# The kinds as the district names them; a kind missing here shows its code.
KIND_LABELS = {"gpu": N_("GPU算力"), "cpu": N_("CPU算力"), "data_line": N_("专线"), "cloud_vm": N_("云主机"),
               "storage": N_("云存储"), "tokens": N_("大模型Tokens")}


def screen_url(endpoint: str) -> str | None:
    """The URL of another staff screen, or None while that screen is not built yet."""
    return url_for(endpoint) if endpoint in current_app.view_functions else None


@bp.route("/staff", methods=["GET"], endpoint="dashboard")
@staff_only
def dashboard_page() -> str:
    figures = dashboard.overview(get_session(), current_person().account)
    labels = {kind: gettext(label) for kind, label in KIND_LABELS.items()}
    return render_template(
        "staff/dashboard.html", figures=figures, kind_labels=labels, chart=_chart_data(figures, labels),
        review_url=screen_url("staff_review.queue"), cycles_url=screen_url("staff_cycles.cycles"),
        appeals_url=screen_url("staff_appeals.appeals"), programs_url=screen_url("staff_programs.programs"),
    )


def _chart_data(figures: dashboard.Dashboard, labels: dict[str, str]) -> dict[str, Any]:
    """What the charts draw, as JSON for static/staff_dashboard.js: the same numbers as the tables."""
    kinds = [row.kind for row in figures.kinds]
    return {
        "kinds": [labels.get(kind, kind) for kind in kinds],
        "series": {"supply": gettext("可供"), "demand": gettext("需求"), "budget": gettext("预算"),
                   "committed": gettext("已承诺"), "redeemed": gettext("已兑付"), "wan": gettext("万元")},
        "supply": [float(row.supply) for row in figures.kinds],
        "demand": [float(row.demand) for row in figures.kinds],
        "cycles": [gettext("第%(id)s轮", id=point.cycle_id) for point in figures.trend],
        "trend": [{"name": labels.get(kind, kind),
                   "data": [None if point.fulfilment[kind] is None else round(point.fulfilment[kind] * 100, 1)
                            for point in figures.trend]} for kind in kinds],
        "programs": [program.name for program in figures.programs],
        "budget": [float(program.budget) / 10000 for program in figures.programs],
        "committed": [float(program.committed) / 10000 for program in figures.programs],
        "redeemed": [float(program.redeemed) / 10000 for program in figures.programs],
    }
