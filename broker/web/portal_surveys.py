"""The startup portal's demand surveys (需求摸排): every survey that has opened, and for each open
one a form that declares a line (the same kind, region and month again revises it) and a button per
line that removes it; a closed survey is shown read-only.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, InvalidInput, NotFound
from broker.services import surveys
from broker.web.auth import current_person
from broker.web.guards import N_, company_only
from broker.web.staff_surveys import field_errors, names

bp = Blueprint("portal_surveys", __name__, template_folder="templates")

DONE = {"saved": N_("已保存，截止前可随时修改。"), "removed": N_("已删除该条需求。")}


def _page(*, form_of: int | None = None, form: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
          error: str | None = None, status: int = 200) -> tuple[str, int]:
    found = surveys.portal_surveys(get_session(), current_person().account, now())
    done = request.args.get("done")
    return render_template("portal/surveys.html", found=found, form_of=form_of, form=form or {}, errors=errors or {},
                           error=error, done=gettext(DONE[done]) if done in DONE else None,
                           months=surveys.period_months, **names()), status


@bp.route("/portal/surveys", methods=["GET"], endpoint="surveys")
@company_only
def surveys_page() -> tuple[str, int]:
    """The surveys that have opened, with the startup's own lines."""
    return _page()


@bp.route("/portal/surveys/<int:campaign_id>/lines", methods=["POST"])
@company_only
def declare(campaign_id: int) -> Any:
    """Declare a line, or revise the line of the same kind, region and month."""
    line = {k: request.form.get(k, "") for k in ("kind", "quantity", "region", "month", "max_unit_price", "purpose")}
    try:
        surveys.declare(get_session(), current_person().account, campaign_id, line, now())
    except NotFound:
        abort(404)
    except InvalidInput as refused:
        return _page(form_of=campaign_id, form=line, errors=field_errors(refused), status=422)
    except Conflict:
        return _page(error=gettext("该摸排已截止，填报不能再修改。"), status=409)
    return redirect(url_for("portal_surveys.surveys", done="saved", _anchor=f"survey-{campaign_id}"), code=303)


@bp.route("/portal/surveys/<int:campaign_id>/lines/<int:line_id>/remove", methods=["POST"])
@company_only
def remove(campaign_id: int, line_id: int) -> Any:
    """Remove one of the startup's lines while the survey is open; another startup's: 404."""
    try:
        surveys.remove_line(get_session(), current_person().account, campaign_id, line_id, now())
    except NotFound:
        abort(404)
    except Conflict:
        return _page(error=gettext("该摸排已截止，填报不能再修改。"), status=409)
    return redirect(url_for("portal_surveys.surveys", done="removed", _anchor=f"survey-{campaign_id}"), code=303)
