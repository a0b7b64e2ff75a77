"""Evidence files: what an upload may be (sniffed, never named), the one key shape, and the settings."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest

import config
from broker.errors import InvalidInput, PayloadTooLarge
from broker.storage import (
    ALLOWED_TYPES,
    DEFAULT_MAX_BYTES,
    EVIDENCE_TYPES,
    InvalidKey,
    LocalStore,
    S3Store,
    StorageError,
    StoreMisconfigured,
    check_file,
    check_key,
    key_for,
    store_from_config,
)

ROOT = Path(__file__).resolve().parents[2]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["月份", "用量 (GPU·h)"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


OFD = _zip({"OFD.xml": b"<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>", "Doc_0/Document.xml": b"<x/>"})

# ------------------------------------------------------------------------------- check_file


def test_the_evidence_types():
    assert EVIDENCE_TYPES == ("contract", "invoice", "payment", "usage_statement")
    assert DEFAULT_MAX_BYTES == 20 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (OFD, "application/ofd"),
        (_xlsx(), XLSX),
        (b"month,gpu_hours\n2026-11,120\n", "text/csv"),
        ("\ufeff月份,用量\n2026-11,120\n".encode(), "text/csv"),  # UTF-8 with Excel's BOM
        ("月份,用量\r\n2026-11,120\r\n".encode("gb18030"), "text/csv"),  # Excel in China saves GB18030
        (b"<5 GPUs,count\n", "text/csv"),  # a "<" that opens no tag is text
    ],
)
def test_each_allowed_type_is_told_by_its_content(data, expected):
    assert check_file(data, "evidence", "application/octet-stream", DEFAULT_MAX_BYTES) == expected


def test_the_name_and_the_declared_type_are_not_trusted():
    pdf = b"%PDF-1.4 a contract"
    assert check_file(pdf, "photo.png", "image/png", 1000) == "application/pdf"
    with pytest.raises(InvalidInput) as raised:
        check_file(b"MZ\x90\x00\x03\x00\x00\x00", "invoice.pdf", "application/pdf", 1000)
    error = raised.value
    assert error.status_code == 422 and error.location == "files"
    assert list(error.errors) == ["file"]
    assert "invoice.pdf" in error.message and "application/pdf" in error.message
    for name in ALLOWED_TYPES:  # the refusal says what is allowed
        assert name in error.errors["file"][0]


@pytest.mark.parametrize(
    ("name", "declared"),
    [("notes.pdf", "application/pdf"), ("notes.pdf", "application/octet-stream"), ("scan.JPG", ""),
     ("usage", "application/pdf"), ("book.xlsx", "text/plain")],
)
def test_text_is_not_taken_as_csv_when_it_claims_a_signed_format(name, declared):
    # CSV has no signature, so plain text passes as CSV only when nothing says it is a PDF, an image,
    # an OFD or a workbook: a text file renamed .pdf is refused, naming what is allowed.
    with pytest.raises(InvalidInput) as raised:
        check_file(b"this is not really a contract\n", name, declared, 1000)
    problem = raised.value.errors["file"][0]
    assert problem.startswith(f"{name}") and "plain text" in problem
    for kind in ALLOWED_TYPES:
        assert kind in problem
    assert check_file(b"month,gpu_hours\n2026-11,120\n", "usage.csv", "text/csv", 1000) == "text/csv"
    assert check_file(b"month,gpu_hours\n", "usage.txt", "text/plain", 1000) == "text/csv"


@pytest.mark.parametrize(
    "data",
    [
        _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"}),  # a DOCX
        _zip({"readme.txt": b"hello"}),
        b"PK\x03\x04 not really a zip",
        b"<html><script>alert(1)</script></html>",
        b"  <?xml version='1.0'?><svg onload='alert(1)'/>",
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00",
        b"a,b\n\x00\x01\x02binary",
        bytes(range(256)),
    ],
)
def test_anything_else_is_refused_on_the_file_field(data):
    with pytest.raises(InvalidInput) as raised:
        check_file(data, "x.pdf", "application/pdf", DEFAULT_MAX_BYTES)
    assert raised.value.errors["file"][0].startswith("x.pdf (sent as application/pdf) is not a file type")


def test_an_empty_file_is_refused():
    with pytest.raises(InvalidInput) as raised:
        check_file(b"", "contract.pdf", "application/pdf", 1000)
    assert not isinstance(raised.value, PayloadTooLarge)
    assert raised.value.errors == {"file": ["contract.pdf is empty."]}


def test_a_file_over_the_limit_is_too_large_and_one_at_it_is_not():
    assert check_file(b"%PDF-" + b"x" * 995, "a.pdf", "application/pdf", 1000) == "application/pdf"
    with pytest.raises(PayloadTooLarge) as raised:
        check_file(b"%PDF-" + b"x" * 996, "a.pdf", "application/pdf", 1000)
    assert raised.value.status_code == 413 and "at most 1000 bytes" in raised.value.errors["file"][0]


# ------------------------------------------------------------------------------- keys


def test_a_key_is_the_sha256_under_two_folders_of_its_own_digits():
    digest = hashlib.sha256(b"invoice").hexdigest()
    assert key_for(digest) == f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    assert check_key(key_for(digest)) == key_for(digest)


@pytest.mark.parametrize(
    "key",
    [
        "../../../etc/passwd",
        "sha256/ab/cd/../../../../etc/passwd",
        "sha256/ab/cd/" + "ab" * 32,  # folders that are not the digest's first digits
        "sha256/ab/ab/" + "ab" * 31,  # too short
        "sha256/ab/ab/" + "ab" * 32 + "\n",
        "sha256/ab/ab/" + "AB" * 32,
        "sha256\\ab\\ab\\" + "ab" * 32,
        "/sha256/ab/ab/" + "ab" * 32,
        "sha256/ab/ab/" + "ab" * 32 + "/",
        "md5/ab/ab/" + "ab" * 16,
        None,
        b"sha256/ab/ab/" + b"ab" * 32,
    ],
)
def test_every_other_key_is_refused(key):
    with pytest.raises(InvalidKey):
        check_key(key)


def test_a_refused_key_never_reaches_the_folder(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not evidence")
    store = LocalStore(tmp_path / "evidence")
    for key in ("../secret.txt", str(outside), "sha256/../../secret.txt"):
        with pytest.raises(InvalidKey):
            store.get(key)
        with pytest.raises(InvalidKey):
            store.exists(key)


def test_a_local_write_that_fails_leaves_no_partial_file(tmp_path, monkeypatch):
    store = LocalStore(tmp_path)

    def full_disk(_descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StorageError, match="nothing was stored"):
        store.put(b"%PDF-1.7 contract", "application/pdf")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    stored = store.put(b"%PDF-1.7 contract", "application/pdf")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [stored.sha256]


# ------------------------------------------------------------------------------- settings


def test_the_local_store_defaults_to_evidence_in_the_instance_folder(tmp_path):
    settings = config.load_settings({})
    store = store_from_config(settings, instance_path=tmp_path)
    assert isinstance(store, LocalStore) and store.root == tmp_path / "evidence"
    assert store_from_config({"INSTANCE_PATH": str(tmp_path)}).root == tmp_path / "evidence"
    with pytest.raises(StoreMisconfigured, match="BROKER_EVIDENCE_DIR"):
        store_from_config({})


def test_the_variables_reach_the_store(tmp_path):
    settings = config.load_settings({"BROKER_EVIDENCE_DIR": str(tmp_path / "files"), "BROKER_EVIDENCE_MAX_BYTES": "1024"})
    assert settings["EVIDENCE_MAX_BYTES"] == 1024
    assert store_from_config(settings, instance_path=tmp_path / "unused").root == tmp_path / "files"
    settings = config.load_settings({
        "BROKER_EVIDENCE_STORE": "S3",
        "BROKER_S3_ENDPOINT_URL": "http://127.0.0.1:9",  # never contacted: the client connects on first use
        "BROKER_S3_BUCKET": "evidence",
        "BROKER_S3_ACCESS_KEY": "key-id",
        "BROKER_S3_SECRET_KEY": "the-secret",
        "BROKER_S3_REGION": "cn-east-1",
    })
    store = store_from_config(settings)
    assert isinstance(store, S3Store) and store.bucket == "evidence"
    assert store._client.meta.region_name == "cn-east-1"
    assert "the-secret" not in repr(store)


def test_an_unusable_store_setting_refuses_to_start_naming_the_variables():
    with pytest.raises(config.ConfigurationError, match="BROKER_S3_BUCKET.*BROKER_S3_SECRET_KEY"):
        config.load_settings({"BROKER_EVIDENCE_STORE": "s3", "BROKER_S3_ACCESS_KEY": "key-id"})
    with pytest.raises(config.ConfigurationError, match="'ftp' is not one of local, s3"):
        config.load_settings({"BROKER_EVIDENCE_STORE": "ftp"})
    with pytest.raises(config.ConfigurationError, match="BROKER_EVIDENCE_MAX_BYTES"):
        config.load_settings({"BROKER_EVIDENCE_MAX_BYTES": "20MB"})
    with pytest.raises(StoreMisconfigured, match="BROKER_S3_ACCESS_KEY"):
        store_from_config({"EVIDENCE_STORE": "s3", "S3_BUCKET": "b", "S3_SECRET_KEY": "s"})


def test_the_storage_and_calendar_modules_import_without_flask_sqlalchemy_or_boto3():
    probe = "import json, sys\nimport broker.storage, broker.workdays\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(done.stdout.strip().splitlines()[-1])}
    assert "broker" in loaded
    assert loaded & {"flask", "werkzeug", "sqlalchemy", "boto3", "botocore"} == set()
