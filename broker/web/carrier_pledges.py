"""The carrier page's pledges (运营商门户 · 承诺资源).

`/carrier/pledges?period=2027-Q1`: a form per kind recording what the carrier pledges to the district
for the period (quantity in the kind's unit, free or discounted at a unit price or a discount rate,
a note), saved one kind at a time (revising replaces the figures; the audit log keeps the old ones)
or removed; beneath, the carrier's own tracking for the period: pledged, published, allocated,
delivered and the shortfall per kind, as staff see it on `/staff/pledges`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext
from marshmallow import ValidationError

from broker.clock import local_date, now
from broker.db import get_session
from broker.errors import InvalidInput, NotFound
from broker.models import PledgeTerms
from broker.schemas.pledges import PledgeInSchema
from broker.services import pledges
from broker.web.auth import current_person
from broker.web.formatting import quantity
from broker.web.guards import N_, carrier_only
from broker.web.reports import KIND_NAMES, unit_name

bp = Blueprint("carrier_pledges", __name__, template_folder="templates")

TERMS_NAMES = {PledgeTerms.free.value: N_("免费"), PledgeTerms.discounted.value: N_("优惠")}
FIELDS = ("quantity", "terms", "unit_price", "discount_rate", "note")
# The service's and the schema's English problems, in the person's words (anything else: the field's own).
_PROBLEM_WORDS = {
    "A free pledge has no price.": N_("免费承诺不填单价或折扣率。"),
    "A discounted pledge needs a unit price or a discount rate.": N_("优惠承诺须填写单价或折扣率之一。"),
    "Give a unit price or a discount rate, not both.": N_("单价与折扣率只填一项。"),
}
_FIELD_WORDS = {
    "quantity": N_("数量须为大于 0 的数，最多三位小数。"),
    "terms": N_("请选择条件：免费或优惠。"),
    "unit_price": N_("单价以元计，不小于 0，最多两位小数。"),
    "discount_rate": N_("折扣率须大于 0、小于 1（0.2 即八折），最多四位小数。"),
    "note": N_("备注最多 500 字。"),
    "period": N_("期间应写作如 2027-Q1（季度）或 2027-01（月）。"),
}


def problem_words(problems: dict[str, Any]) -> dict[str, str]:
    """{field: [English problem]} as {field: one sentence in the person's language}."""
    words = {}
    for name, found in problems.items():
        first = found[0] if isinstance(found, list) and found else ""
        word = _PROBLEM_WORDS.get(first) or _FIELD_WORDS.get(name)
        if word:
            words[name] = gettext(word)
    return words


def current_quarter() -> str:
    today = local_date(now())
    return f"{today.year}-Q{(today.month - 1) // 3 + 1}"


def chosen_period() -> tuple[str, dict[str, str]]:
    """The period the page shows (this quarter unless asked), or this quarter and the problem with what was asked."""
    asked = (request.values.get("period") or "").strip()
    if not asked:
        return current_quarter(), {}
    try:
        pledges.parse_period(asked)
    except InvalidInput as error:
        return current_quarter(), problem_words(error.errors)
    return asked, {}


def tracking_words() -> dict[str, Any]:
    return {"kind_name": lambda code: gettext(KIND_NAMES[code]) if code in KIND_NAMES else code,
            "terms_name": lambda code: gettext(TERMS_NAMES[code]) if code in TERMS_NAMES else code,
            "unit_name": unit_name, "quantity": quantity, "kinds": KIND_NAMES, "terms_names": TERMS_NAMES}


def _page(period: str, period_errors: dict[str, str], *, typed: dict[str, str] | None = None, kind: str | None = None,
          errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    session, account = get_session(), current_person().account
    code = pledges.own_carrier_code(session, account)
    recorded = {p.kind: p for p in pledges.pledges(session, account, code, period)}
    tracking = pledges.pledge_tracking(session, account, period)
    done = {"saved": gettext("承诺已保存。"), "removed": gettext("承诺已撤销。")}.get(request.args.get("done", ""))
    return render_template("carrier/pledges.html", period=period, period_errors=period_errors, recorded=recorded,
                           tracking=tracking, typed=typed or {}, failed_kind=kind, errors=errors or {}, done=done,
                           **tracking_words()), status


@bp.route("/carrier/pledges", methods=["GET"], endpoint="pledges")
@carrier_only
def pledges_page() -> tuple[str, int]:
    """The carrier's pledges for a period, a form per kind, and its own tracking beneath."""
    period, errors = chosen_period()
    return _page(period, errors, status=422 if errors else 200)


@bp.route("/carrier/pledges", methods=["POST"])
@carrier_only
def save() -> Any:
    """Record or revise one kind's pledge for the period; bad input: the form again with its words, 422."""
    period, period_errors = chosen_period()
    kind = request.form.get("kind", "")
    if period_errors or kind not in KIND_NAMES:
        return _page(period, period_errors, status=422) if period_errors else abort(404)
    typed = {name: request.form.get(name, "").strip() for name in FIELDS}
    raw: dict[str, Any] = {"kind": kind, **{k: v for k, v in typed.items() if v != "" or k in ("quantity", "terms")}}
    try:
        item = PledgeInSchema().load(raw)
        session, account = get_session(), current_person().account
        pledges.record_pledge(session, account, pledges.own_carrier_code(session, account), period, item)
    except ValidationError as error:
        return _page(period, {}, typed=typed, kind=kind, errors=problem_words(error.normalized_messages()), status=422)
    except InvalidInput as error:
        return _page(period, {}, typed=typed, kind=kind, errors=problem_words(error.errors or {}), status=422)
    return redirect(url_for("carrier_pledges.pledges", period=period, done="saved", _anchor=f"pledge-{kind}"), code=303)


@bp.route("/carrier/pledges/remove", methods=["POST"])
@carrier_only
def remove() -> Any:
    """The carrier no longer pledges this kind for the period (a kind not pledged: 404)."""
    period, period_errors = chosen_period()
    if period_errors:
        return _page(period, period_errors, status=422)
    session, account = get_session(), current_person().account
    try:
        pledges.remove_pledge(session, account, pledges.own_carrier_code(session, account), period,
                              request.form.get("kind", ""))
    except NotFound:
        abort(404)
    return redirect(url_for("carrier_pledges.pledges", period=period, done="removed"), code=303)
