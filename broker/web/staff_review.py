"""The review queue (审批队列): a cycle's proposals with filters, approve or reject one, and bulk
decisions the server makes item by item (`cycles.decide_each`), each item's result shown.

`/staff/review` is the latest cycle whose proposals await decisions (or an empty state);
`/staff/cycles/<id>/review` is one cycle's. The page works without script: the countdown to the
approval deadline is the deadline itself in Asia/Shanghai, which a little script counts down.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import Sector
from broker.services import cycles, review
from broker.web.auth import current_person
from broker.web.guards import staff_only

bp = Blueprint("staff_review", __name__, template_folder="templates")

DECISIONS = ("approve", "reject")


def _filters() -> tuple[review.Filters, dict[str, str], list[str]]:
    """The GET form's filters, as typed (to re-show) and parsed; a value that does not parse is
    left out and named in the problems."""
    args = {name: request.args.get(name, "").strip()
            for name in ("kind", "sector", "carrier", "key", "amount_min", "amount_max")}
    problems: list[str] = []
    sector = None
    if args["sector"]:
        try:
            sector = Sector(args["sector"])
        except ValueError:
            problems.append(gettext("没有这个行业。"))
    carrier = int(args["carrier"]) if args["carrier"].isdigit() else None
    if args["carrier"] and carrier is None:
        problems.append(gettext("没有这个运营商。"))
    amounts: dict[str, Decimal | None] = {}
    for name in ("amount_min", "amount_max"):
        amounts[name] = None
        if args[name]:
            try:
                amounts[name] = Decimal(args[name].replace(",", ""))
                if not amounts[name].is_finite() or amounts[name] < 0:
                    raise InvalidOperation
            except InvalidOperation:
                amounts[name] = None
                problems.append(gettext("金额须为不小于零的数字（元）。"))
    key = {"yes": True, "no": False}.get(args["key"])
    filters = review.Filters(args["kind"] or None, sector, carrier, key, amounts["amount_min"], amounts["amount_max"])
    return filters, args, problems


def _page(cycle_id: int | None, *, results: list[cycles.ItemResult] | None = None,
          errors: dict[int, str] | None = None, typed: dict[int, str] | None = None, status: int = 200):
    filters, args, problems = _filters()
    raw_page = request.args.get("page", "")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100000 else 1
    try:
        queue = review.review_queue(get_session(), current_person().account, cycle_id, filters, now(), page)
    except NotFound:
        return render_template("staff/review.html", queue=None, missing=True, args=args, problems=[],
                               sectors=list(Sector), results=None, errors={}, typed={}), 404

    def page_url(number: int) -> str:  # the same filters, another page
        return url_for(request.endpoint, page=number, **request.view_args, **{k: v for k, v in args.items() if v})

    return render_template(
        "staff/review.html", queue=queue, missing=False, args=args, problems=problems, sectors=list(Sector),
        results=results, errors=errors or {}, typed=typed or {}, now=now(), page_url=page_url,
    ), status


@bp.route("/staff/review", methods=["GET"])
@staff_only
def queue():
    """The latest cycle whose proposals await decisions."""
    return _page(None)


@bp.route("/staff/cycles/<int:cycle_id>/review", methods=["GET"])
@staff_only
def cycle_queue(cycle_id: int):
    """One cycle's queue."""
    return _page(cycle_id)


@bp.route("/staff/cycles/<int:cycle_id>/review", methods=["POST"])
@staff_only
def decide(cycle_id: int):
    """One row's approve or reject (its button names it), or the bulk form's chosen rows."""
    form = request.form
    single = form.get("one", "")
    if single:
        action, _, raw_id = single.partition(":")
        ids = [int(raw_id)] if raw_id.isdigit() else []
        reasons = {i: form.get(f"reason-{i}", "").strip() for i in ids}
    else:
        action = form.get("bulk", "")
        ids = sorted({int(v) for v in form.getlist("chosen") if v.isdigit()})
        reasons = {i: form.get("bulk_reason", "").strip() for i in ids}
    if action not in DECISIONS or not ids:
        return _page(cycle_id, errors={0: gettext("请选择要审批的申请。")}, status=422)
    if action == "reject":
        missing = [i for i in ids if not reasons[i]]
        if missing:
            # Nothing is decided: the form comes back with the message next to the reason.
            message = gettext("驳回必须填写理由。")
            return _page(cycle_id, errors={i: message for i in missing} | {0: message}, typed=reasons, status=422)
    decisions = [{"allocation_id": i, "decision": action, "reason": reasons[i] or None} for i in ids]
    try:
        results = cycles.decide_each(get_session(), current_person().account, cycle_id, decisions, now())
    except NotFound:
        return _page(cycle_id)
    except (Conflict, InvalidInput) as error:
        return _page(cycle_id, errors={0: error.message}, status=409)
    return _page(cycle_id, results=results)
