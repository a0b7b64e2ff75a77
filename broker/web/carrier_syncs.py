"""The carrier page's syncs (运营商门户 · 同步记录): the carrier's own sync history, page by page, and the
latest or a chosen sync's quarantined records (the reason in words, the record as sent) and conflicts,
exactly as district staff see them on /staff/carriers/<code>: the same service read
(`carriers.own_sync_history` → `carriers.sync_history`), the same partial and words. Staff's actions
on failed provisioning are not here; another carrier's sync is 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from broker.db import get_session
from broker.errors import NotFound
from broker.services import carriers
from broker.web.auth import current_person
from broker.web.guards import carrier_only
from broker.web.staff_carriers import PER_PAGE, page_number, sync_asked, words

bp = Blueprint("carrier_syncs", __name__, template_folder="templates")


@bp.route("/carrier/syncs", methods=["GET"])
@carrier_only
def syncs() -> str:
    """The carrier's syncs, newest first, and one sync's quarantined records and conflicts."""
    page = page_number("page")
    try:
        history = carriers.own_sync_history(get_session(), current_person().account,
                                            sync_id=sync_asked(), page=page, per_page=PER_PAGE)
    except NotFound:
        abort(404)
    return render_template("carrier/syncs.html", history=history, page=page,
                           pages=max(1, -(-history.syncs_total // PER_PAGE)),
                           query={k: v for k, v in request.args.items() if v}, **words())
