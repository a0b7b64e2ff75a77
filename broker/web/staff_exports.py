"""Staff: background report exports (后台导出) — asking for one from a report page, the list of one's own
exports (/staff/exports, 我的导出) and the download of a ready one; and the console's registry of report
exports, by key, which both the inline downloads and the `run_exports` job use.

Each report's module has one `export(session, account, args)` (broker.web.report_exports.ReportExport):
its inline .csv/.xlsx endpoints call it, `REPORT_EXPORTS` names it here, and `ExportWriter` (kept in
app.extensions for the scheduler, which imports no console) calls it again in the job, in the language
the page was shown in, and writes the file with the same writer as the inline download.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request, send_file, url_for
from flask_babel import force_locale
from sqlalchemy.orm import Session

from broker.clock import now
from broker.db import get_session
from broker.models import Account, ExportJob
from broker.services import exports
from broker.web import i18n
from broker.web.auth import current_person
from broker.web.guards import N_, REPORT_SCREENS, staff_only
from broker.web.report_exports import XLSX_TYPE, ExportBuilder, Table, row_count
from broker.web import (
    staff_report_carriers, staff_report_compliance, staff_report_gap, staff_report_pack, staff_report_spend,
    staff_report_utilisation, staff_reports,
)

bp = Blueprint("staff_exports", __name__, template_folder="templates")

# Every report's export by key: the key is also the last part of its page's endpoint (staff_report_gap.gap).
REPORT_EXPORTS: dict[str, ExportBuilder] = {
    "fulfilment": staff_reports.export,
    "gap": staff_report_gap.export,
    "spend": staff_report_spend.export,
    "utilisation": staff_report_utilisation.export,
    "carriers": staff_report_carriers.export,
    "compliance": staff_report_compliance.export,
    "pack": staff_report_pack.export,
}
STATUS_WORDS = {"queued": N_("排队中"), "running": N_("正在导出"), "ready": N_("已完成"), "failed": N_("导出失败"),
                "expired": N_("已过期删除")}
PER_PAGE = 50


class ExportWriter:
    """The `run_exports` job's writer: one export's report built as its person's account, in its language."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def __call__(self, session: Session, job: ExportJob, out: IO[bytes]) -> tuple[str, int]:
        with self.app.app_context(), force_locale(job.locale):
            export = REPORT_EXPORTS[job.report](session, session.get(Account, job.account_id), job.args)
            return export.filename(job.format), export.write(job.format, out)


def init_exports(app: Flask) -> None:
    app.extensions["broker.export_writer"] = ExportWriter(app)
    app.jinja_env.globals["export_offer"] = export_offer


@dataclass(frozen=True)
class ExportOffer:
    """What a report page offers to export: inline links while the report is small, always the background form."""

    action: str
    inline: bool


def export_offer(tables: list[Table]) -> ExportOffer | None:
    """The offer of the report page being shown (None on a page that is not a registered report)."""
    key = (request.endpoint or "").rpartition(".")[2]
    if key not in REPORT_EXPORTS:
        return None
    args = {name: value for name, value in request.args.items() if value.strip()}
    return ExportOffer(url_for("staff_exports.request_export", report=key, **args),
                       row_count(tables) <= current_app.config["EXPORT_INLINE_ROWS"])


@bp.route("/staff/reports/<report>/exports", methods=["POST"])
@staff_only
def request_export(report: str) -> Any:
    """Queue the report's export with the page's filters (the query string); bad filters are refused (422)."""
    person, session = current_person(), get_session()
    if report not in REPORT_EXPORTS:
        abort(404)
    args: Mapping[str, str] = request.args
    REPORT_EXPORTS[report](session, person.account, args)  # the filters checked now, not when the job runs
    session.rollback()  # end the check's reads
    exports.queue_export(session, person, report, args, request.form.get("format", ""), i18n.current_language(),
                         REPORT_EXPORTS, now())
    return redirect(url_for("staff_exports.exports"), 303)


@bp.route("/staff/exports", methods=["GET"], endpoint="exports")
@staff_only
def exports_page() -> Any:
    raw_page = request.args.get("page", "")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100000 else 1
    jobs, total = exports.own_exports(get_session(), current_person(), page, PER_PAGE)
    return render_template("staff/exports.html", jobs=jobs, page=page, pages=max(1, -(-total // PER_PAGE)),
                           total=total, status_words=STATUS_WORDS, keep_days=current_app.config["EXPORT_KEEP_DAYS"],
                           report_names={endpoint.rpartition(".")[2]: label for endpoint, label in REPORT_SCREENS})


@bp.route("/staff/exports/<int:export_id>/download", methods=["GET"])
@staff_only
def download(export_id: int) -> Any:
    """The file of one's own ready export; anyone else's is not found (404)."""
    job, path = exports.ready_export(get_session(), current_person(), export_id, current_app.instance_path)
    mimetype = "text/csv" if job.format == "csv" else XLSX_TYPE
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=job.filename or path.name)
