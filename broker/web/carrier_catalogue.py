"""The carrier page's catalogue (运营商门户 · 资源目录): the carrier's own offers, withdrawing one, the
catalog file template, and uploading a file in two steps: a preview of what it would change
(nothing kept), then applying the same file and its result.

Between the two steps the uploaded bytes stay on the server, named by the carrier and their
SHA-256 under the instance folder; the Apply form sends only that name back, so what is applied
is exactly what was previewed, never anything the browser says about it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext

from broker.clock import now
from broker.db import get_session
from broker.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from broker.models import OfferStatus
from broker.services import market, sync
from broker.web.auth import current_person
from broker.web.guards import N_, carrier_only
from broker.web.reports import KIND_NAMES, unit_name
from broker.web.formatting import quantity
from broker.web.report_exports import XLSX_TYPE
from broker.web.staff_carriers import quarantine_words

bp = Blueprint("carrier_catalogue", __name__, template_folder="templates")

PAGE_SIZE = 50
STATUS_NAMES = {"active": N_("在售"), "withdrawn": N_("已撤下")}
CHANGE_NAMES = {"new": N_("新增"), "update": N_("变更"), "republish": N_("重新上架"), "withdraw": N_("撤下")}
UPLOADS = "carrier_uploads"  # the instance folder's subfolder holding files between preview and apply
_KEPT = re.compile(r"^(?P<digest>[0-9a-f]{64})\.(?P<ext>csv|xlsx)$")


def _names() -> dict[str, object]:
    return {"kind_name": lambda code: gettext(KIND_NAMES[code]) if code in KIND_NAMES else code,
            "offer_status_name": lambda code: gettext(STATUS_NAMES[code]) if code in STATUS_NAMES else code,
            "kinds": KIND_NAMES, "statuses": STATUS_NAMES, "quarantine_words": quarantine_words, "quantity": quantity,
            "change_name": lambda code: gettext(CHANGE_NAMES[code]) if code in CHANGE_NAMES else code,
            "unit": unit_name}


def _catalogue_page(*, error: str | None = None, status: int = 200):
    kind = request.args.get("kind", "")
    state = request.args.get("status", "")
    raw_page = request.args.get("page", "")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100000 else 1
    found = market.carrier_offers(
        get_session(), current_person().account, kind=kind if kind in KIND_NAMES else None,
        status=OfferStatus(state) if state in STATUS_NAMES else None, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    done = gettext("资源已撤下，已承诺给企业的部分保留。") if request.args.get("done") == "withdrawn" else None
    return render_template("carrier/catalogue.html", found=found, page=page, pages=max(1, -(-found.total // PAGE_SIZE)),
                           kind=kind, state=state, error=error, done=done, **_names()), status


@bp.route("/carrier/catalogue", methods=["GET"])
@carrier_only
def catalogue():
    """The carrier's own offers, filtered by kind and status, 50 a page."""
    return _catalogue_page()


@bp.route("/carrier/catalogue/offers/<int:offer_id>/withdraw", methods=["POST"])
@carrier_only
def withdraw(offer_id: int):
    """Take an offer off the market, down to what is already promised; another carrier's: 404."""
    try:
        market.withdraw_offer(get_session(), current_person().account, offer_id)
    except (NotFound, Forbidden):
        abort(404)
    except Conflict:
        return _catalogue_page(error=gettext("该资源已撤下。"), status=409)
    return redirect(url_for("carrier_catalogue.catalogue", done="withdrawn"), code=303)


def _template_rows() -> list[list[str]]:
    try:
        return sync.catalog_template(get_session(), current_person().account,
                                     current_app.extensions["broker.carrier_adapters"])
    except (InvalidInput, sync.CarrierUnavailable):
        abort(404)


@bp.route("/carrier/catalogue/template.csv", methods=["GET"])
@carrier_only
def template_csv() -> Response:
    """The catalog template as CSV, UTF-8 with the byte-order mark, so Excel opens it in Chinese."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(_template_rows())
    return Response(out.getvalue().encode("utf-8-sig"), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=catalogue-template.csv"})


@bp.route("/carrier/catalogue/template.xlsx", methods=["GET"])
@carrier_only
def template_xlsx() -> Response:
    """The catalog template as a workbook."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "资源目录"
    for row in _template_rows():
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return Response(out.getvalue(), mimetype=XLSX_TYPE,
                    headers={"Content-Disposition": "attachment; filename=catalogue-template.xlsx"})


def _kept_folder() -> Path:
    return Path(current_app.instance_path) / UPLOADS / str(current_person().account.carrier_id)


def _upload_form(error: str, status: int):
    return render_template("carrier/upload.html", error=error, **_names()), status


def _refusal(error: DomainError) -> str:
    if isinstance(error, PayloadTooLarge):
        return gettext("文件过大，未导入任何内容。")
    if isinstance(error, sync.CarrierUnavailable):
        return gettext("本平台暂未配置贵公司的接入，请联系区科委。")
    detail = (error.errors or {}).get("file", [""])[0] if isinstance(getattr(error, "errors", None), dict) else ""
    if "not supported" in detail:
        return gettext("贵公司的资源通过接口同步，不支持上传目录文件。")
    if "lacks columns" in detail:
        return gettext("文件缺少必需的列：%(columns)s。请使用模板。", columns=detail.rpartition(": ")[2])
    if "neither UTF-8 nor GB18030" in detail:
        return gettext("无法识别文件编码：请另存为 UTF-8 或 GBK/GB18030 编码的 CSV。")
    if "rows" in detail and "at most" in detail:
        return gettext("文件行数超过单次上传的上限，请拆分后上传。")
    return gettext("文件无法读取，未导入任何内容。请上传模板格式的 CSV 或 XLSX 文件。")


@bp.route("/carrier/catalogue/upload", methods=["GET"])
@carrier_only
def upload():
    """The upload form."""
    return render_template("carrier/upload.html", error=None, **_names())


@bp.route("/carrier/catalogue/upload", methods=["POST"])
@carrier_only
def preview():
    """Read the file and show what it would change, keeping only the file (for Apply)."""
    sent = request.files.get("file")
    name = (sent.filename or "") if sent is not None else ""
    ext = name.lower().rpartition(".")[2]
    if sent is None or not name:
        return _upload_form(gettext("请选择要上传的目录文件。"), 422)
    if ext not in ("csv", "xlsx"):
        return _upload_form(gettext("只接受 CSV 或 XLSX 文件。"), 422)
    content = sent.read()
    try:
        found = sync.preview_catalog(get_session(), current_person().account, current_person().account.carrier.code,
                                     current_app.extensions["broker.carrier_adapters"], content, name, now(),
                                     current_app.config)
    except (InvalidInput, PayloadTooLarge, sync.CarrierUnavailable) as error:
        return _upload_form(_refusal(error), 413 if isinstance(error, PayloadTooLarge) else 422)
    kept = f"{hashlib.sha256(content).hexdigest()}.{ext}"
    folder = _kept_folder()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / kept).write_bytes(content)
    return render_template("carrier/preview.html", preview=found, kept=kept, filename=name, **_names())


@bp.route("/carrier/catalogue/upload/apply", methods=["POST"])
@carrier_only
def apply():
    """Apply the file that was previewed, as kept on the server."""
    match = _KEPT.match(request.form.get("kept", ""))
    path = _kept_folder() / match.group(0) if match else None
    if path is None or not path.is_file():
        return _upload_form(gettext("预览已过期，请重新上传文件。"), 422)
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != match.group("digest"):
        return _upload_form(gettext("预览已过期，请重新上传文件。"), 422)
    try:
        done = sync.upload_catalog(get_session(), current_person().account, current_person().account.carrier.code,
                                   current_app.extensions["broker.carrier_adapters"], content,
                                   f"catalog.{match.group('ext')}", now(), current_app.config)
    except (InvalidInput, PayloadTooLarge, sync.CarrierUnavailable) as error:
        return _upload_form(_refusal(error), 413 if isinstance(error, PayloadTooLarge) else 422)
    path.unlink(missing_ok=True)
    return redirect(url_for("carrier_catalogue.result", sync_id=done.id), code=303)


@bp.route("/carrier/catalogue/uploads/<int:sync_id>", methods=["GET"])
@carrier_only
def result(sync_id: int):
    """What an applied upload changed, and the rows it quarantined with the reasons."""
    try:
        found = sync.upload_result(get_session(), current_person().account, sync_id)
    except NotFound:
        abort(404)
    return render_template("carrier/result.html", result=found, **_names())
