"""The plumbing every district report shares: its tables described once, then drawn on the page, written
as CSV and as XLSX from that one description, so the page and both exports always have the same
columns and numbers.

A report's view builds a list of `Table`s from its service's dataclass (headers already in the
person's language) and a list of `(label, value)` filter lines, then:

- the page renders them with the `report_table` macro of templates/staff/_report.html;
- `csv_download` writes every table, one after another under its title, after the filter lines
  (UTF-8 with the BOM, the dialect of broker.web.csv_export);
- `xlsx_download` writes a sheet of filter lines, then one sheet per table: a bold header row and
  each column's number format (openpyxl's write-only mode); `xlsx_bytes` is that file as bytes, which
  the monthly report email attaches (broker/web/monthly_report.py);
- `pdf_download` turns the page itself, rendered for print (the template's `printing=True`: no chart
  script), into a PDF with WeasyPrint and static/staff_report_print.css (A4 landscape, Noto CJK).

A table's `rows` may be any iterable, a generator included: `write_csv` and `write_xlsx` read it once,
a row at a time, into a file object, so an export of a million rows never holds them in memory. The
inline downloads write to a temporary file and send it; the background exports (broker.web.staff_exports)
call the same two writers on the file they keep.

A report's export is one function (session, account, query-string args) → `ReportExport` (its file name,
filter lines and tables); `inline_download` serves it, and broker.web.staff_exports keeps them all by key.
"""

from __future__ import annotations

import io
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from flask import Response, current_app, request, send_file
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from broker.db import get_session
from broker.models import Account
from broker.web.auth import current_person
from broker.web.errors import error_page
from broker.web.csv_export import BOM, csv_writer

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_TYPE = "application/pdf"
# The page's own stylesheet, then what printing changes (linked with media="print" on the pages too).
PRINT_CSS = ("console.css", "staff_report_print.css")

# A column's kind: how the page shows it and which number format the spreadsheet gives it.
NUMBER_FORMATS = {"text": None, "count": "#,##0", "qty": "#,##0.###", "hours": "0.00", "money": "#,##0.00"}


@dataclass(frozen=True)
class Column:
    title: str
    kind: str = "text"  # a key of NUMBER_FORMATS

    def __post_init__(self) -> None:
        if self.kind not in NUMBER_FORMATS:
            raise ValueError(f"Unknown column kind {self.kind!r}; valid: {', '.join(NUMBER_FORMATS)}.")


@dataclass(frozen=True)
class Table:
    key: str  # the HTML id and the order of sheets
    title: str  # the caption, the CSV section's title and the sheet's name (at most 31 characters there)
    columns: Sequence[Column]
    rows: Iterable[Sequence[Any]] = field(default_factory=list)  # a list, or a generator read once by a writer
    # The whole table's rows where `rows` is one page of it or a generator (a count made in SQL); else len(rows).
    total: int | None = None


def row_count(tables: Sequence[Table]) -> float:
    """How many rows the tables' exports write: a table's `total`, or its rows' length; a generator's
    count is unknown until it is written (infinite here)."""
    return sum(table.total if table.total is not None else len(table.rows) if isinstance(table.rows, Sized)
               else math.inf for table in tables)


def write_csv(out: IO[bytes], filters: Sequence[tuple[str, str]], tables: Sequence[Table]) -> int:
    """The filter lines, then each table under its title, a blank line between, as one CSV file; the rows written."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv_writer(text)
    text.write(BOM)
    for label, value in filters:
        writer.writerow([label, value])
    written = 0
    for table in tables:
        writer.writerows(([], [table.title], [column.title for column in table.columns]))
        for row in table.rows:
            writer.writerow([_csv_value(value) for value in row])
            written += 1
    text.flush()
    text.detach()  # `out` stays open: it is the caller's
    return written


def csv_download(filename: str, filters: Sequence[tuple[str, str]], tables: Sequence[Table]) -> Response:
    """`write_csv` as an attachment."""
    return _attachment(filename, "text/csv", lambda out: write_csv(out, filters, tables))


def _csv_value(value: Any) -> Any:
    """As people write it: nothing for no value, a quantity without trailing zeros (10, not 10.000)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def write_xlsx(out: IO[bytes], filters: Sequence[tuple[str, str]], tables: Sequence[Table], filters_title: str) -> int:
    """A workbook: the filters on the first sheet, then one sheet per table with its header row and number
    formats; the rows written. openpyxl's write-only sheets keep their rows in temporary files, not in memory."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    bold = Font(bold=True)

    def header(sheet: Any, titles: Sequence[str]) -> list[WriteOnlyCell]:
        cells = [WriteOnlyCell(sheet, value=title) for title in titles]
        for cell in cells:
            cell.font = bold
        return cells

    sheet = book.create_sheet(_sheet_title(filters_title))
    for label, value in filters:
        sheet.append([*header(sheet, [label]), value])
    written = 0
    for table in tables:
        sheet = book.create_sheet(_sheet_title(table.title))
        sheet.append(header(sheet, [column.title for column in table.columns]))
        for row in table.rows:
            written += 1
            cells = []
            for column, value in zip(table.columns, row, strict=True):
                cell = WriteOnlyCell(sheet, value=value)
                if NUMBER_FORMATS[column.kind] and value is not None:
                    cell.number_format = NUMBER_FORMATS[column.kind]
                cells.append(cell)
            sheet.append(cells)
    book.save(out)
    return written


def xlsx_bytes(filters: Sequence[tuple[str, str]], tables: Sequence[Table], filters_title: str) -> bytes:
    """The workbook of `write_xlsx` as bytes: the monthly report email's attachment is the console's export."""
    out = io.BytesIO()
    write_xlsx(out, filters, tables, filters_title)
    return out.getvalue()


def _sheet_title(title: str) -> str:
    """A table's title as a sheet's name: at most 31 characters, none of the seven Excel refuses (an English
    title such as "Detail: program × …" has a colon)."""
    return re.sub(r"[\\/?*\[\]:]", "-", title)[:31]


def pdf_download(filename: str, html: str) -> Response | tuple[str, int]:
    """A report's page rendered for print, as a PDF (A4 landscape, Noto CJK), fetching nothing from anywhere;
    503 saying what to install where WeasyPrint cannot load."""
    try:
        from weasyprint import CSS, HTML
        from weasyprint.urls import URLFetcher
    except (ImportError, OSError):  # WeasyPrint loads pango as it is imported: a server without it writes no PDF
        return error_page(503, _("这台服务器缺少生成 PDF 所需的 pango 库（Debian：apt-get install libpango-1.0-0 "
                                 "libpangoft2-1.0-0），暂时不能导出 PDF；CSV 和 XLSX 导出不受影响。"))

    class NothingFetched(URLFetcher):
        """The stylesheets are handed over below; no URL in the page is opened (no network, no files)."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            raise ValueError(f"not fetched: {url}")

    static = Path(__file__).parent / "static"
    document = HTML(string=html, url_fetcher=NothingFetched())
    pdf = document.write_pdf(stylesheets=[CSS(filename=str(static / name), url_fetcher=NothingFetched())
                                          for name in PRINT_CSS])
    return Response(pdf, mimetype=PDF_TYPE, headers={"Content-Disposition": f"attachment; filename={filename}"})


def xlsx_download(filename: str, filters: Sequence[tuple[str, str]], tables: Sequence[Table],
                  filters_title: str) -> Response:
    """`write_xlsx` as an attachment."""
    return _attachment(filename, XLSX_TYPE, lambda out: write_xlsx(out, filters, tables, filters_title))


def _attachment(filename: str, mimetype: str, write: Callable[[IO[bytes]], int]) -> Response:
    """What `write` writes, through a temporary file (deleted as it is closed once sent), as an attachment."""
    spool = tempfile.TemporaryFile()
    try:
        write(spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return send_file(spool, mimetype=mimetype, as_attachment=True, download_name=filename, etag=False)


def write_export(extension: str, out: IO[bytes], filters: Sequence[tuple[str, str]], tables: Sequence[Table],
                 filters_title: str) -> int:
    """`write_csv` or `write_xlsx` by the file's extension; the rows written."""
    if extension == "csv":
        return write_csv(out, filters, tables)
    return write_xlsx(out, filters, tables, filters_title)


@dataclass(frozen=True)
class ReportExport:
    """What a report exports with its filters: the file's name without extension, the filter lines, the tables."""

    name: str
    filters: Sequence[tuple[str, str]]
    tables: Sequence[Table]

    def filename(self, extension: str) -> str:
        return f"{self.name}.{extension}"

    def write(self, extension: str, out: IO[bytes]) -> int:
        """The CSV or the XLSX written to `out`; the rows written."""
        return write_export(extension, out, self.filters, self.tables, _("筛选条件"))

    def download(self, extension: str) -> Response:
        return _attachment(self.filename(extension), "text/csv" if extension == "csv" else XLSX_TYPE,
                           lambda out: self.write(extension, out))


# A report's export, from the query string's filters (raises broker.errors.InvalidInput on bad ones).
ExportBuilder = Callable[[Session, Account, Mapping[str, str]], ReportExport]


def inline_download(build: ExportBuilder, extension: str) -> Any:
    """The report's CSV or XLSX now, unless it has more rows than BROKER_EXPORT_INLINE_ROWS: then 413 and
    the way to its background export."""
    export = build(get_session(), current_person().account, request.args)
    rows, limit = row_count(export.tables), current_app.config["EXPORT_INLINE_ROWS"]
    if rows > limit:
        return error_page(413, _("这份报表超过即时导出的上限（%(limit)s 行）。请在报表页面点击“后台导出”，"
                                 "完成后在“我的导出”页面下载。", limit=f"{limit:,}"))
    return export.download(extension)
