"""Reading catalog files: the CSV's encoding, a hostile XLSX, and the limits checked before parsing."""

from __future__ import annotations

import io
import zipfile

import pytest

from adapters.base import AdapterError, CatalogLimitError, UploadLimits
from adapters.simulators import unicom as sim
from adapters.simulators.common import SimOptions
from adapters.tables import read_table
from adapters.unicom import parse_catalog

CSV = sim.build_file(SimOptions.build({"offers": 20, "seed": 3}, set()), "csv")
XLSX = sim.build_file(SimOptions.build({"offers": 20, "seed": 3}, set()), "xlsx")


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_a_csv_in_a_chinese_windows_encoding_reads_like_the_utf8_one(encoding):
    expected, _ = parse_catalog(CSV, "c.csv")
    result, _ = parse_catalog(CSV.decode("utf-8").encode(encoding), "c.csv")
    assert result.encoding == "gb18030" and expected.encoding == "utf-8"
    assert result.offers == expected.offers and len(result.offers) > 0


def test_a_byte_order_mark_is_reported_and_dropped():
    result, _ = parse_catalog(b"\xef\xbb\xbf" + CSV, "c.csv")
    assert result.encoding == "utf-8-sig" and result.offers == parse_catalog(CSV, "c.csv")[0].offers


def _workbook(replace: dict[str, bytes | None]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(XLSX))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            data = replace.get(entry.filename, source.read(entry))
            if data is not None:
                target.writestr(entry.filename, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "replace",
    [
        {"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row><c>"},  # XML cut short
        {"xl/workbook.xml": b"not xml at all"},
        {"xl/workbook.xml": None},  # a member missing
    ],
    ids=["truncated-sheet", "garbage-workbook", "no-workbook"],
)
def test_a_broken_workbook_is_unreadable_never_a_crash(replace):
    with pytest.raises(AdapterError, match="unreadable"):
        read_table(_workbook(replace), "x.xlsx", UploadLimits(), carrier="unicom")


def test_the_zip_directory_is_checked_against_the_limits():
    sizes = zipfile.ZipFile(io.BytesIO(XLSX)).infolist()
    unpacked = sum(i.file_size for i in sizes)
    read_table(XLSX, "x.xlsx", UploadLimits(max_uncompressed_bytes=unpacked), carrier="unicom")
    with pytest.raises(CatalogLimitError, match="BROKER_UPLOAD_MAX_UNCOMPRESSED_BYTES") as caught:
        read_table(XLSX, "x.xlsx", UploadLimits(max_uncompressed_bytes=unpacked - 1), carrier="unicom")
    assert caught.value.too_large and caught.value.setting == "BROKER_UPLOAD_MAX_UNCOMPRESSED_BYTES"
    with pytest.raises(CatalogLimitError, match="BROKER_UPLOAD_MAX_COMPRESSION_RATIO"):
        read_table(XLSX, "x.xlsx", UploadLimits(max_compression_ratio=2), carrier="unicom")


@pytest.mark.parametrize(("content", "filename"), [(CSV, "c.csv"), (XLSX, "c.xlsx")])
def test_rows_are_counted_before_any_is_parsed(content, filename):
    assert len(read_table(content, filename, UploadLimits(max_rows=20), carrier="unicom").rows) == 21
    with pytest.raises(CatalogLimitError, match="more than 19 rows") as caught:
        parse_catalog(content, filename, limits=UploadLimits(max_rows=19))
    assert not caught.value.too_large
    # A pull is the carrier's whole catalogue: no upload limits apply to it.
    assert len(parse_catalog(content, filename)[0].offers) > 0


def test_the_template_header_says_each_columns_units_and_still_reads_as_the_columns():
    """The carrier page's template (adapters.unicom.TEMPLATE_HEADER): a bracketed note after a
    column's name is not part of it, full-width or not; the example row is one good offer."""
    from adapters.unicom import TEMPLATE_EXAMPLE, TEMPLATE_HEADER, UnicomAdapter

    assert UnicomAdapter.catalog_template(None) == [list(TEMPLATE_HEADER), list(TEMPLATE_EXAMPLE)]
    text = ",".join(TEMPLATE_HEADER) + "\r\n" + ",".join(TEMPLATE_EXAMPLE) + "\r\n"
    result, rows = parse_catalog(text.encode("gbk"), "模板.csv")
    assert rows == 1 and not result.rejected and result.encoding == "gb18030"
    offer = result.offers[0]
    assert (offer.external_id, offer.kind, offer.region, offer.quantity) == ("CU-SH-GPU-0001", "gpu", "sh", 500)
    half_width = text.replace("（", "(").replace("）", ")")
    assert parse_catalog(half_width.encode("utf-8"), "c.csv")[0].offers == result.offers
