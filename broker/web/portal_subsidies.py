"""The portal's subsidies page (补贴): per program the company's money as the ledger derives it
(committed, redeemed, left to redeem) and its cap left this year; its awards with the evidence
their program asks for, the state of each piece, and an upload form per type still missing;
warnings when a cap is nearly used up or money is about to lapse.

Thin views: the page is `broker.services.portal_subsidies.my_subsidies`; an upload is
`broker.services.evidence.upload`, as through the API (same size and type checks; a refusal is
re-shown in the person's language at 422 and nothing is stored). Another company's award is 404;
district staff and carriers get 403.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from broker.models.evidence import EvidenceStatus
from broker.models.ledger import EvidenceType
from broker.services import evidence, portal_subsidies
from broker.web.auth import current_person
from broker.web.guards import N_, company_only
from broker.web.portal_requests import page_number
from broker.web.reports import KIND_NAMES
from broker.web.staff_programs import EVIDENCE_NAMES
from broker.web.staff_startups import ALLOCATION_STATUS_NAMES

bp = Blueprint("portal_subsidies", __name__, template_folder="templates")

STORE = "broker.evidence_store"
# Room in the body for the multipart boundaries and the `type` field beside the file, so a file
# just over the limit is refused by the limit's own words (as the API does).
MULTIPART_ROOM = 64 * 1024

EVIDENCE_STATUS_NAMES = {
    EvidenceStatus.pending: N_("待审核"),
    EvidenceStatus.verified: N_("已核验"),
    EvidenceStatus.rejected: N_("被退回"),
}
AWARD_STATUS_NAMES = {"committed": N_("已承诺"), "released": N_("已结束，未用部分已退回"), "clawed_back": N_("已追回")}


def _max_bytes() -> int:
    return int(current_app.config["EVIDENCE_MAX_BYTES"])


@bp.before_request
def _room_for_an_evidence_file() -> None:
    if request.endpoint == "portal_subsidies.upload":
        request.max_content_length = _max_bytes() + MULTIPART_ROOM


def _words(table: dict) -> Any:
    return lambda code: gettext(table[code]) if code in table else code


def _page(*, error: str | None = None, failed: tuple[int, str] | None = None, status: int = 200) -> tuple[str, int]:
    found = portal_subsidies.my_subsidies(get_session(), current_person().account, page_number(), now())
    done = gettext("材料已上传，等待区科委审核。") if request.args.get("done") == "uploaded" else None
    return render_template(
        "portal/subsidies.html", found=found, error=error, failed=failed, done=done,
        kind_name=_words(KIND_NAMES), evidence_name=_words(EVIDENCE_NAMES),
        evidence_status=_words(EVIDENCE_STATUS_NAMES), award_status=_words(AWARD_STATUS_NAMES),
        allocation_status=_words(ALLOCATION_STATUS_NAMES), max_mib=f"{_max_bytes() / (1024 * 1024):g}",
    ), status


@bp.route("/portal/subsidies", methods=["GET"])
@company_only
def subsidies() -> tuple[str, int]:
    """Balances per program, the awards with their evidence, and the warnings."""
    return _page()


def _refusal(error: Exception) -> str:
    """The evidence service's refusal in the person's language."""
    if isinstance(error, PayloadTooLarge):
        return gettext("文件过大：证明材料最大 %(mib)s MB。", mib=f"{_max_bytes() / (1024 * 1024):g}")
    if isinstance(error, Conflict):
        return gettext("该补贴已被追回，不再接收证明材料。")
    message = getattr(error, "message", "")
    if message.endswith("is empty."):
        return gettext("文件是空的，请重新选择。")
    if "not a file type evidence may be" in message:
        return gettext("文件类型不支持：证明材料只能是 PDF、PNG、JPEG、OFD、XLSX 或 CSV 文件。")
    return gettext("文件名不符合要求，请改名后重新上传。")


@bp.route("/portal/subsidies/awards/<int:award_id>/evidence", methods=["POST"])
@company_only
def upload(award_id: int) -> Any:
    """The company uploads one piece of evidence for its award (as through the API)."""
    raw_type = request.form.get("type", "")
    file = request.files.get("file")
    failed = (award_id, raw_type)
    if raw_type not in EvidenceType.__members__:
        return _page(error=gettext("请选择材料类型。"), failed=failed, status=422)
    if file is None or not file.filename:
        return _page(error=gettext("请选择要上传的文件。"), failed=failed, status=422)
    try:
        evidence.upload(get_session(), current_person().account, current_app.extensions[STORE], award_id,
                        EvidenceType(raw_type), evidence.Upload(file.read(), file.filename, file.mimetype or ""), now(),
                        max_bytes=_max_bytes())
    except NotFound:
        abort(404)
    except (InvalidInput, PayloadTooLarge) as error:
        return _page(error=_refusal(error), failed=failed, status=422)
    except Conflict as error:
        return _page(error=_refusal(error), failed=failed, status=409)
    return redirect(url_for("portal_subsidies.subsidies", done="uploaded") + f"#award-{award_id}", code=303)
