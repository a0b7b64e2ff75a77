"""The monthly report email's attachment: the month's fulfilment, spend and utilisation tables, built by
the reports' own table functions and written by `report_exports.xlsx_bytes`, the writer of the console's
XLSX exports, so the attachment holds what those exports hold for the month.

The `monthly_report` job reaches it through `app.extensions["broker.monthly_workbook"]` (set by
`broker.web.init_console`): the scheduler and the services import no web layer.
"""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from broker.services.monthly_report import MonthlyReport
from broker.web.report_exports import xlsx_bytes
from broker.web.staff_report_spend import spend_tables
from broker.web.staff_report_utilisation import utilisation_tables
from broker.web.staff_reports import fulfilment_tables


def workbook(report: MonthlyReport, language: str) -> bytes:
    """The month's XLSX in `language`: the period on the first sheet, then each report's tables."""
    with force_locale(language):
        filters = [(_("报表"), _("月度报告")),
                   (_("期间（北京时间）"), f"{report.start.isoformat()} — {report.end.isoformat()}")]
        tables = [*fulfilment_tables(report.fulfilment), *spend_tables(report.spend),
                  *utilisation_tables(report.utilisation, report.idle_lines, report.use_lines)]
        return xlsx_bytes(filters, tables, _("筛选条件"))
