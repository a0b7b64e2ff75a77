"""Evidence per award through the API: the award's startup or supplying carrier uploads, staff verify
or reject with a reason, the award knows when every required piece is verified, each side sees
only its own, and bad input leaves no row and no stored object."""

import hashlib
import io
from pathlib import Path

import pytest
import sqlalchemy as sa

from broker.models import AuditEntry, Award, Event, Evidence
from broker.services import ledger
from broker.storage import ALLOWED_TYPES, S3Store, StorageError, key_for
from tests.e2e.test_ledger import approve_one, awards_of, district, open_program  # noqa: F401
from tests.integration.test_evidence_store_contract import s3_endpoint  # noqa: F401

CONTRACT = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Title (GPU rental contract) >> endobj\n"
INVOICE = b"%PDF-1.4\n1 0 obj << /Title (VAT invoice 00421) >> endobj\n"
USAGE = "月份,GPU小时\n2026-12,100\n".encode()


@pytest.fixture
def store(app):
    return app.extensions["broker.evidence_store"]


@pytest.fixture
def award(client, session, district):
    """An award of a program that requires a contract and an invoice before it pays."""
    open_program(client, district["staff"], "voucher", evidence_required=["invoice", "contract"])
    allocation = approve_one(client, district)
    found = awards_of(session, allocation["id"])["voucher"]
    assert found.evidence_complete is False
    return found


def send(client, actor, award_id, type_, data, name="contract.pdf", content_type=None):
    upload = (io.BytesIO(data), name, content_type) if content_type else (io.BytesIO(data), name)
    return client.post(f"/api/v1/awards/{award_id}/evidence", data={"type": type_, "file": upload},
                       content_type="multipart/form-data", headers=actor.headers)


def unique(data, tag):
    """The same kind of file with bytes of its own: the store is shared by the whole test session."""
    return data + f"% {tag}\n".encode()


def complete(session, award_id):
    session.expire_all()
    return session.get(Award, award_id).evidence_complete


def rows(session, award_id):
    session.expire_all()
    return session.scalars(sa.select(Evidence).where(Evidence.award_id == award_id).order_by(Evidence.id)).all()


def test_upload_list_and_download_give_back_the_same_bytes(client, session, district, award, store):
    startup, carrier, staff = district["startup"], district["carrier"], district["staff"]
    contract = unique(CONTRACT, "upload-list-download")
    sent = send(client, startup, award.id, "contract", contract, name="租赁合同 2026.pdf")
    assert sent.status_code == 201, sent.json
    piece = sent.json
    digest = hashlib.sha256(contract).hexdigest()
    assert (piece["type"], piece["status"], piece["side"], piece["sha256"], piece["size"]) == (
        "contract", "pending", "startup", digest, len(contract))
    assert (piece["content_type"], piece["file_name"], piece["uploaded_by_id"]) == (
        "application/pdf", "租赁合同 2026.pdf", startup.account_id)
    usage = send(client, carrier, award.id, "usage_statement", USAGE + b"carrier,1\n", name="usage.csv")
    assert usage.status_code == 201, usage.json
    assert (usage.json["side"], usage.json["content_type"]) == ("carrier", "text/csv")

    for actor in (startup, carrier, staff):  # both sides of the award, and staff, see both pieces
        listed = client.get(f"/api/v1/awards/{award.id}/evidence", headers=actor.headers)
        assert listed.status_code == 200, listed.json
        assert [p["type"] for p in listed.json] == ["contract", "usage_statement"]

    got = client.get(f"/api/v1/evidence/{piece['id']}/file", headers=carrier.headers)
    assert got.status_code == 200
    assert got.data == contract and hashlib.sha256(got.data).hexdigest() == digest
    assert got.headers["Content-Type"] == "application/pdf"
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    assert "\n" not in disposition and got.headers["X-Content-Type-Options"] == "nosniff"
    assert store.get(key_for(digest)) == contract
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "subsidy_evidence",
                                                       AuditEntry.entity_id == piece["id"]))
    assert entry.action == "upload" and entry.actor_id == startup.account_id


def test_the_same_file_is_stored_once(client, session, district, award, store):
    startup, carrier = district["startup"], district["carrier"]
    invoice = unique(INVOICE, "stored-once")
    first = send(client, startup, award.id, "invoice", invoice, name="invoice.pdf")
    again = send(client, startup, award.id, "invoice", invoice, name="invoice (1).pdf")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"]  # the same piece again, not a second row
    # The carrier sends the same PDF as proof of payment: a piece of its own, the same stored object.
    payment = send(client, carrier, award.id, "payment", invoice, name="payment.pdf")
    assert payment.status_code == 201, payment.json
    pieces = rows(session, award.id)
    assert len(pieces) == 2 and {p.storage_key for p in pieces} == {key_for(hashlib.sha256(invoice).hexdigest())}
    folder = store.root.joinpath(*pieces[0].storage_key.split("/")).parent
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == [pieces[0].sha256]


def test_staff_review_and_evidence_complete_flips_only_when_every_required_type_is_verified(
        client, session, district, award):
    startup, carrier, staff = district["startup"], district["carrier"], district["staff"]
    contract = send(client, startup, award.id, "contract", unique(CONTRACT, "review")).json
    invoice = send(client, carrier, award.id, "invoice", unique(INVOICE, "review-1"), name="invoice.pdf").json
    usage = send(client, startup, award.id, "usage_statement", USAGE + b"review,1\n", name="usage.csv").json

    rejected = client.post(f"/api/v1/evidence/{invoice['id']}/reject", json={"reason": "发票抬头与合同不符"},
                           headers=staff.headers)
    assert rejected.status_code == 200, rejected.json
    assert (rejected.json["status"], rejected.json["reason"], rejected.json["reviewed_by_id"]) == (
        "rejected", "发票抬头与合同不符", staff.account_id)
    assert rejected.json["evidence_complete"] is False
    verified = client.post(f"/api/v1/evidence/{contract['id']}/verify", headers=staff.headers)
    assert verified.status_code == 200, verified.json
    assert verified.json["status"] == "verified" and complete(session, award.id) is False  # the invoice is missing
    # A piece the program does not require, verified, completes nothing.
    assert client.post(f"/api/v1/evidence/{usage['id']}/verify", headers=staff.headers).status_code == 200
    assert complete(session, award.id) is False
    # A reviewed piece is reviewed once: a new upload replaces a rejected one, as a new row.
    assert client.post(f"/api/v1/evidence/{invoice['id']}/verify", headers=staff.headers).status_code == 409
    assert client.post(f"/api/v1/evidence/{contract['id']}/reject", json={"reason": "x"},
                       headers=staff.headers).status_code == 409
    second = send(client, carrier, award.id, "invoice", unique(INVOICE, "review-2"), name="invoice-v2.pdf")
    assert second.status_code == 201 and second.json["id"] != invoice["id"]
    assert client.post(f"/api/v1/evidence/{second.json['id']}/verify", headers=staff.headers).json["evidence_complete"] is True
    assert complete(session, award.id) is True
    assert [(p.type.value, p.status.value) for p in rows(session, award.id)] == [
        ("contract", "verified"), ("invoice", "rejected"), ("usage_statement", "verified"), ("invoice", "verified")]

    session.expire_all()
    feed = session.scalars(sa.select(Event).where(Event.type.like("evidence.%")).order_by(Event.id)).all()
    assert [(e.type, e.startup_id) for e in feed] == [
        ("evidence.rejected", startup.startup_id), ("evidence.verified", startup.startup_id),
        ("evidence.verified", startup.startup_id), ("evidence.verified", startup.startup_id)]
    assert feed[0].payload["reason"] == "发票抬头与合同不符" and feed[0].carrier_id == carrier.carrier_id
    assert feed[-1].payload["evidence_complete"] is True and feed[-1].payload["award_id"] == award.id
    flags = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.entity_type == "subsidy_awards",
                                                             AuditEntry.entity_id == award.id)).all()
    assert "evidence_complete" in flags
    assert ledger.reconcile(session).ok


def test_a_program_that_requires_nothing_is_complete_from_the_start(client, session, district):
    open_program(client, district["staff"], "no-papers")
    allocation = approve_one(client, district)
    award = awards_of(session, allocation["id"])["no-papers"]
    assert award.evidence_complete is True
    piece = send(client, district["startup"], award.id, "contract", unique(CONTRACT, "no-papers")).json
    rejected = client.post(f"/api/v1/evidence/{piece['id']}/reject", json={"reason": "unsigned"},
                           headers=district["staff"].headers)
    assert rejected.status_code == 200 and rejected.json["evidence_complete"] is True


def test_another_startup_or_carrier_sees_nothing_and_only_staff_review(client, session, district, award, make_actor):
    startup, staff = district["startup"], district["staff"]
    piece = send(client, startup, award.id, "contract", unique(CONTRACT, "isolation")).json
    stranger, other_carrier = make_actor("startup"), make_actor("carrier")
    for outsider in (stranger, other_carrier):
        refused = send(client, outsider, award.id, "contract", unique(CONTRACT, "outsider"))
        assert refused.status_code == 404, refused.json
        assert client.get(f"/api/v1/awards/{award.id}/evidence", headers=outsider.headers).status_code == 404
        assert client.get(f"/api/v1/evidence/{piece['id']}", headers=outsider.headers).status_code == 404
        assert client.get(f"/api/v1/evidence/{piece['id']}/file", headers=outsider.headers).status_code == 404
        assert client.post(f"/api/v1/evidence/{piece['id']}/verify", headers=outsider.headers).status_code == 403
    assert client.get(f"/api/v1/evidence/{piece['id']}/file").status_code == 401
    # Staff review evidence; they don't upload it for either side.
    assert send(client, staff, award.id, "contract", unique(CONTRACT, "staff")).status_code == 403
    assert client.post(f"/api/v1/evidence/{piece['id']}/verify", headers=startup.headers).status_code == 403
    assert send(client, startup, 999999, "contract", unique(CONTRACT, "no-award")).status_code == 404
    assert [p.id for p in rows(session, award.id)] == [piece["id"]]


def _nothing_changed(session, store, award_id, data):
    assert rows(session, award_id) == []
    assert not store.exists(key_for(hashlib.sha256(data).hexdigest()))


def test_a_file_over_the_limit_is_413_naming_the_limit(client, session, district, award, store, app, monkeypatch):
    monkeypatch.setitem(app.config, "EVIDENCE_MAX_BYTES", 4096)
    startup = district["startup"]
    just_over = unique(CONTRACT, "too-large") + b"0" * 4096
    refused = send(client, startup, award.id, "contract", just_over)
    assert refused.status_code == 413, refused.json
    assert "at most 4096 bytes" in refused.json["errors"]["files"]["file"][0]
    _nothing_changed(session, store, award.id, just_over)
    # Far over: refused by the body's size before the upload is read, still naming the evidence limit.
    far_over = unique(CONTRACT, "far-too-large") + b"0" * 200_000
    refused = send(client, startup, award.id, "contract", far_over)
    assert refused.status_code == 413, refused.json
    assert "at most 4096 bytes" in refused.json["message"] and list(refused.json["errors"]["files"]) == ["file"]
    _nothing_changed(session, store, award.id, far_over)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00 evidence-exe", "invoice.exe"),
        (b"this is a contract, honestly (renamed)\n", "contract.pdf"),
        (b"<html><body>invoice</body></html>", "invoice.html"),
    ],
)
def test_a_refused_type_is_422_naming_file_and_the_allowed_types(client, session, district, award, store, data, name):
    refused = send(client, district["startup"], award.id, "contract", data, name=name)
    assert refused.status_code == 422, refused.json
    [problem] = refused.json["errors"]["files"]["file"]
    assert name in problem
    for kind in ALLOWED_TYPES:
        assert kind in problem
    _nothing_changed(session, store, award.id, data)


def test_other_bad_input_changes_nothing(client, session, district, award, store):
    startup, staff = district["startup"], district["staff"]
    data = unique(CONTRACT, "bad-input")
    unknown = send(client, startup, award.id, "receipt", data)
    assert unknown.status_code == 422 and list(unknown.json["errors"]["files"]) == ["type"]
    no_file = client.post(f"/api/v1/awards/{award.id}/evidence", data={"type": "contract"},
                          content_type="multipart/form-data", headers=startup.headers)
    assert no_file.status_code == 422 and "file" in no_file.json["errors"]["files"]
    empty = send(client, startup, award.id, "contract", b"")
    assert empty.status_code == 422 and "empty" in empty.json["errors"]["files"]["file"][0]
    bad_name = send(client, startup, award.id, "contract", data, name="a\x00.pdf")
    assert bad_name.status_code == 422 and "file" in bad_name.json["errors"]["files"]
    _nothing_changed(session, store, award.id, data)

    piece = send(client, startup, award.id, "contract", data).json
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        refused = client.post(f"/api/v1/evidence/{piece['id']}/reject", json=body, headers=staff.headers)
        assert refused.status_code == 422 and "reason" in refused.json["errors"]["json"], refused.json
    assert client.post("/api/v1/evidence/999999/verify", headers=staff.headers).status_code == 404
    [stored] = rows(session, award.id)
    assert (stored.status.value, stored.reason, stored.reviewed_at) == ("pending", None, None)
    assert complete(session, award.id) is False
    assert session.scalars(sa.select(Event).where(Event.type.like("evidence.%"))).all() == []


class _Unreachable:
    """A store whose every call fails, as an S3 endpoint that is down."""

    def put(self, data, content_type):
        raise StorageError("The evidence file could not be saved; nothing was stored.")

    def get(self, key):
        raise StorageError("The evidence file could not be read.")

    def exists(self, key):
        raise StorageError("The evidence store could not be read.")


def test_a_store_that_fails_is_503_and_leaves_no_row(client, session, district, award, app, monkeypatch):
    monkeypatch.setitem(app.extensions, "broker.evidence_store", _Unreachable())
    refused = send(client, district["startup"], award.id, "contract", unique(CONTRACT, "store-down"))
    assert refused.status_code == 503 and "nothing was stored" in refused.json["message"]
    assert rows(session, award.id) == []


def test_the_app_makes_its_store_once_from_the_settings(app, tmp_path):
    from broker import create_app

    assert app.extensions["broker.evidence_store"].root == Path(app.instance_path) / "evidence"
    s3 = create_app({"BROKER_ENV": "test", "DATABASE_URL": "sqlite://", "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path),
                     "EVIDENCE_STORE": "s3", "S3_ENDPOINT_URL": "http://127.0.0.1:9", "S3_BUCKET": "evidence",
                     "S3_ACCESS_KEY": "id", "S3_SECRET_KEY": "secret"})
    store = s3.extensions["broker.evidence_store"]
    assert isinstance(store, S3Store) and store.bucket == "evidence"  # made without a request


def test_upload_and_download_through_an_s3_store(client, session, district, award, app, monkeypatch, s3_endpoint):
    store = S3Store(s3_endpoint, "evidence-e2e", "test-access-key", "test-secret-key", "us-east-1")
    store._client.create_bucket(Bucket="evidence-e2e")
    monkeypatch.setitem(app.extensions, "broker.evidence_store", store)
    contract = unique(CONTRACT, "s3")
    first = send(client, district["startup"], award.id, "contract", contract)
    same_bytes = send(client, district["carrier"], award.id, "payment", contract, name="payment.pdf")
    assert (first.status_code, same_bytes.status_code) == (201, 201)
    assert store._client.list_objects_v2(Bucket="evidence-e2e")["KeyCount"] == 1
    got = client.get(f"/api/v1/evidence/{same_bytes.json['id']}/file", headers=district["staff"].headers)
    assert got.status_code == 200 and got.data == contract and got.headers["Content-Type"] == "application/pdf"
