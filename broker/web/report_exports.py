"""The plumbing every district report shares: its tables described once, then drawn on the page, written
as CSV and as XLSX from that one description, so the page and both exports always have the same
columns and numbers.

A report's view builds a list of `Table`s from its service's dataclass (headers already in the
person's language) and a list of `(label, value)` filter lines, then:

- the page renders them with the `report_table` macro of templates/staff/_report.html;
- `csv_download` writes every table, one after another under its title, after the filter lines
  (UTF-8 with the BOM, via broker.web.csv_export, streamed);
- `xlsx_download` writes a sheet of filter lines, then one sheet per table: a bold header row and
  each column's number format (openpyxl's write-only mode, a row at a time); `xlsx_bytes` is that
  file as bytes, which the monthly report email attaches (broker/web/monthly_report.py);
- `pdf_download` turns the page itself, rendered for print (the template's `printing=True`: no chart
  script), into a PDF with WeasyPrint and static/staff_report_print.css (A4 landscape, Noto CJK).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pathlib import Path

from flask import Response
from flask_babel import gettext as _

from broker.web.csv_export import csv_response
from broker.web.errors import error_page

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
    rows: Sequence[Sequence[Any]] = field(default_factory=list)


def csv_download(filename: str, filters: Sequence[tuple[str, str]], tables: Sequence[Table]) -> Response:
    """The filter lines, then each table under its title, a blank line between, as one CSV file."""

    def rows() -> Iterator[list[Any]]:
        for label, value in filters[1:]:
            yield [label, value]
        for table in tables:
            yield []
            yield [table.title]
            yield [column.title for column in table.columns]
            for row in table.rows:
                yield [_csv_value(value) for value in row]

    first = list(filters[0]) if filters else []
    return csv_response(filename, first, rows())


def _csv_value(value: Any) -> Any:
    """As people write it: nothing for no value, a quantity without trailing zeros (10, not 10.000)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def xlsx_download(filename: str, filters: Sequence[tuple[str, str]], tables: Sequence[Table],
                  filters_title: str) -> Response:
    """The workbook of `xlsx_bytes` as a download."""
    return Response(xlsx_bytes(filters, tables, filters_title), mimetype=XLSX_TYPE,
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


def xlsx_bytes(filters: Sequence[tuple[str, str]], tables: Sequence[Table], filters_title: str) -> bytes:
    """A workbook: the filters on the first sheet, then one sheet per table with its header row and number formats.

    The console's exports and the monthly report email's attachment are both this file."""
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
    for table in tables:
        sheet = book.create_sheet(_sheet_title(table.title))
        sheet.append(header(sheet, [column.title for column in table.columns]))
        for row in table.rows:
            cells = []
            for column, value in zip(table.columns, row, strict=True):
                cell = WriteOnlyCell(sheet, value=value)
                if NUMBER_FORMATS[column.kind] and value is not None:
                    cell.number_format = NUMBER_FORMATS[column.kind]
                cells.append(cell)
            sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
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
