"""A carrier's catalog file (CSV or XLSX) read into rows, within limits checked before parsing.

- CSV is UTF-8, with or without the byte-order mark Excel writes, or else GB18030: what Excel
  on Chinese Windows saves a "CSV" in. The encoding used is reported with the rows.
- XLSX is a zip. Its directory is read first, and a file whose members would unpack past the
  limit, or that packs tighter than any spreadsheet does (a zip bomb), is refused before
  openpyxl opens it. Python's zipfile never inflates a member past its declared size (it fails
  the CRC instead), so the declared sizes bound the work.
- A file with more non-blank data rows than the limit is refused whole: no row of it is parsed.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adapters.base import AdapterError, CatalogLimitError, UploadLimits

# Tried in this order; GB18030 also decodes GBK and GB2312 files.
CSV_ENCODINGS = ("utf-8", "gb18030")


@dataclass
class Table:
    rows: list[tuple[int, list[Any]]]  # (line number from 1, cells), the header first
    encoding: str | None = None  # CSV only


def read_table(content: bytes, filename: str, limits: UploadLimits | None = None, *, carrier: str) -> Table:
    """The rows of a .csv or .xlsx file; AdapterError if unreadable, CatalogLimitError if over a limit."""
    lowered = filename.lower()
    if lowered.endswith(".csv"):
        text, encoding = decode_csv(content, filename, carrier=carrier)
        try:
            return Table(_counted(_csv_rows(text), limits, filename, carrier), encoding)
        except csv.Error as error:
            raise _unreadable(filename, error, carrier) from None
    if lowered.endswith(".xlsx"):
        try:
            if limits is not None:
                check_archive(content, filename, limits, carrier=carrier)
            return Table(_counted(_xlsx_rows(content), limits, filename, carrier))
        except AdapterError:
            raise
        except Exception as error:  # noqa: BLE001  a hostile workbook makes zipfile and openpyxl raise
            # anything (BadZipFile, KeyError, XML ParseError, IndexError for no sheet…): the file's fault
            raise _unreadable(filename, error, carrier) from None
    raise AdapterError(f"catalog {filename!r}: expected a .csv or .xlsx file", carrier=carrier)


def _unreadable(filename: str, error: Exception, carrier: str) -> AdapterError:
    return AdapterError(f"catalog {filename!r} is unreadable: {type(error).__name__}: {error}",
                        carrier=carrier, carrier_fault=True)


def decode_csv(content: bytes, filename: str, *, carrier: str) -> tuple[str, str]:
    """The file's text and the encoding it was read in: utf-8-sig, utf-8 or gb18030."""
    if content.startswith(codecs.BOM_UTF8):
        candidates: tuple[str, ...] = ("utf-8-sig",)
    else:
        candidates = CSV_ENCODINGS
    for encoding in candidates:
        try:
            return content.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AdapterError(
        f"catalog {filename!r} is unreadable: its text is neither UTF-8 nor GB18030 "
        "(save it from Excel as \"CSV UTF-8\", or as CSV on Chinese Windows)",
        carrier=carrier, carrier_fault=True,
    )


def check_archive(content: bytes, filename: str, limits: UploadLimits, *, carrier: str) -> None:
    """Refuse an XLSX whose members unpack past the limit or pack like a zip bomb, from its directory alone."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        members = archive.infolist()
    unpacked = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members)
    if unpacked > limits.max_uncompressed_bytes:
        raise CatalogLimitError(
            f"catalog {filename!r} unpacks to {unpacked} bytes; at most {limits.max_uncompressed_bytes} are "
            "accepted (BROKER_UPLOAD_MAX_UNCOMPRESSED_BYTES)",
            setting="BROKER_UPLOAD_MAX_UNCOMPRESSED_BYTES", too_large=True, carrier=carrier,
        )
    ratio = unpacked / packed if packed else 0.0
    if ratio > limits.max_compression_ratio:
        raise CatalogLimitError(
            f"catalog {filename!r} is compressed {ratio:.0f}:1; at most {limits.max_compression_ratio:g}:1 is "
            "accepted (BROKER_UPLOAD_MAX_COMPRESSION_RATIO)",
            setting="BROKER_UPLOAD_MAX_COMPRESSION_RATIO", too_large=True, carrier=carrier,
        )


def _counted(rows: Iterator[tuple[int, list[Any]]], limits: UploadLimits | None, filename: str,
             carrier: str) -> list[tuple[int, list[Any]]]:
    """All rows, or CatalogLimitError as soon as the non-blank data rows pass the limit."""
    kept: list[tuple[int, list[Any]]] = []
    data_rows = 0
    for line, cells in rows:
        kept.append((line, cells))
        if len(kept) > 1 and any(str(cell).strip() for cell in cells):
            data_rows += 1
            if limits is not None and data_rows > limits.max_rows:
                raise CatalogLimitError(
                    f"catalog {filename!r} has more than {limits.max_rows} rows; at most {limits.max_rows} are "
                    "accepted in one upload (BROKER_UPLOAD_MAX_ROWS): split it",
                    setting="BROKER_UPLOAD_MAX_ROWS", too_large=False, carrier=carrier,
                )
    return kept


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    for line, row in enumerate(reader, start=1):
        yield line, row


def _xlsx_rows(content: bytes) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook  # only needed for XLSX catalogs

    workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        for line, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, ["" if cell is None else cell for cell in row]
    finally:
        workbook.close()
