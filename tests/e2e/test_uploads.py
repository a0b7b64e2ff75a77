"""Catalog uploads within limits: size as sent and as unpacked, rows, and the CSV's encoding (issue 9)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
import sqlalchemy as sa

from broker.models import CarrierSync, Offer, QuarantinedRecord
from tests.e2e.test_webhooks import _catalog, carriers  # noqa: F401  (the fixture)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _upload(client, carrier, content, content_type):
    return client.post("/api/v1/carriers/unicom/catalog", data=content,
                       headers={**carrier.headers, "Content-Type": content_type})


def _nothing_applied(session):
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count(Offer.id))) == 0
    assert session.scalar(sa.select(sa.func.count(QuarantinedRecord.id))) == 0
    failed = session.scalar(sa.select(CarrierSync).order_by(CarrierSync.id.desc()))
    assert failed is not None and failed.status.value == "failed" and failed.source.value == "upload"
    return failed


def _bomb(expanded: int) -> bytes:
    """A real catalog workbook whose sheet also holds `expanded` bytes of padding (an XML comment)."""
    source = zipfile.ZipFile(io.BytesIO(_catalog("xlsx")))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename.startswith("xl/worksheets/"):
                data = data.replace(b"<sheetData>", b"<!--" + b"A" * expanded + b"--><sheetData>", 1)
            bomb.writestr(entry.filename, data)
    return out.getvalue()


@pytest.mark.parametrize(("encoding", "reported"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030")])
def test_a_csv_saved_by_excel_on_chinese_windows_is_read_and_the_encoding_said(client, session, carriers, encoding, reported):
    content = _catalog().decode("utf-8").encode(encoding)
    uploaded = _upload(client, carriers["unicom"], content, "text/csv")
    assert uploaded.status_code == 200, uploaded.json
    assert uploaded.json["encoding"] == reported and uploaded.json["counts"]["new"] > 0
    listed = client.get("/api/v1/carriers/unicom/syncs", headers=carriers["unicom"].headers).json
    assert listed[0]["encoding"] == reported


def test_a_csv_in_neither_encoding_is_refused_naming_both(client, session, carriers):
    content = _catalog().decode("utf-8").encode("utf-16")
    refused = _upload(client, carriers["unicom"], content, "text/csv")
    assert refused.status_code == 422
    assert "UTF-8" in refused.json["errors"]["json"]["file"][0] and "GB18030" in refused.json["errors"]["json"]["file"][0]
    assert "UnicodeDecodeError" not in refused.get_data(as_text=True)


@pytest.mark.slow
def test_an_xlsx_that_unpacks_past_the_limit_is_refused_before_it_is_parsed(client, session, carriers, app):
    bomb = _bomb(200 * 1024 * 1024)  # the file: well under the body limit, 200 MiB unpacked
    assert len(bomb) < app.config["MAX_CONTENT_LENGTH"]
    started = time.monotonic()
    refused = _upload(client, carriers["unicom"], bomb, XLSX)
    assert time.monotonic() - started < 5
    assert refused.status_code == 413, refused.json
    assert "BROKER_UPLOAD_MAX_UNCOMPRESSED_BYTES" in refused.json["message"]
    assert str(app.config["UPLOAD_MAX_UNCOMPRESSED_BYTES"]) in refused.json["errors"]["json"]["file"][0]
    _nothing_applied(session)


def test_an_xlsx_compressed_like_a_zip_bomb_is_refused(client, session, carriers):
    refused = _upload(client, carriers["unicom"], _bomb(8 * 1024 * 1024), XLSX)  # under 20 MiB, ~1000:1
    assert refused.status_code == 413, refused.json
    assert "BROKER_UPLOAD_MAX_COMPRESSION_RATIO" in refused.json["message"]
    _nothing_applied(session)


def test_a_catalog_with_more_rows_than_allowed_is_refused_whole(client, session, carriers, app):
    limit = app.config["UPLOAD_MAX_ROWS"]
    header = _catalog().decode("utf-8").splitlines()[0]
    content = (header + "\r\n" + "x,\r\n" * (limit + 1)).encode()  # the issue's: 44 KiB of short rows
    refused = _upload(client, carriers["unicom"], content, "text/csv")
    assert refused.status_code == 422, refused.json
    assert "BROKER_UPLOAD_MAX_ROWS" in refused.json["message"] and str(limit) in refused.json["message"]
    failed = _nothing_applied(session)
    assert "BROKER_UPLOAD_MAX_ROWS" in failed.error


def test_a_catalog_of_exactly_the_row_limit_is_read(client, session, carriers, app, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_ROWS", 60)
    uploaded = _upload(client, carriers["unicom"], _catalog(), "text/csv")  # 60 offers
    assert uploaded.status_code == 200 and uploaded.json["counts"]["new"] == 60
    monkeypatch.setitem(app.config, "UPLOAD_MAX_ROWS", 59)
    assert _upload(client, carriers["unicom"], _catalog(), "text/csv").status_code == 422


def test_an_upload_over_the_body_limit_gets_a_413_with_the_limit(client, carriers, app):
    too_big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    multipart = client.post("/api/v1/carriers/unicom/catalog", headers=carriers["unicom"].headers,
                            data={"file": (io.BytesIO(too_big), "catalog.csv")}, content_type="multipart/form-data")
    assert multipart.status_code == 413 and multipart.is_json
    assert "BROKER_MAX_BODY_BYTES" in multipart.json["message"]
    raw = _upload(client, carriers["unicom"], too_big, "text/csv")
    assert raw.status_code == 413 and str(app.config["MAX_CONTENT_LENGTH"]) in raw.json["message"]


def test_a_broken_workbook_is_a_422_not_a_500(client, session, carriers):
    source = zipfile.ZipFile(io.BytesIO(_catalog("xlsx")))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as broken:
        for entry in source.infolist():
            data = b"<worksheet><sheetData><row>" if entry.filename.startswith("xl/worksheets/") else source.read(entry)
            broken.writestr(entry.filename, data)
    refused = _upload(client, carriers["unicom"], out.getvalue(), XLSX)
    assert refused.status_code == 422 and "unreadable" in refused.json["errors"]["json"]["file"][0]
    _nothing_applied(session)
