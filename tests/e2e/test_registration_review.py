"""A squatted credit code: the real company is told whom to call, staff reject or remove the squatter.

Registration is open to anyone, so anyone can take a real company's unified social credit code
first. Staff turn such a registration away (reject a pending one, remove one that was already
verified); either frees the code, ends the squatter's tokens and requests, and deletes nothing.
"""

import datetime as dt
from types import SimpleNamespace

import sqlalchemy as sa

from broker.models import Account, Allocation, ApiToken, AuditEntry, Offer, ResourceRequest, Startup
from config import DEFAULT_DISTRICT_CONTACT
from tests.conftest import startup_payload
from tests.e2e.test_offers import _promise, gpu_offer, publish
from tests.e2e.test_requests import ask

REAL = startup_payload(41)  # the real company's registration; the squatter sends the same code
SQUATTER = {**REAL, "name": "抢注者科技有限公司", "contact_email": "squatter@example.cn"}


def register(client, payload):
    response = client.post("/api/v1/startups", json=payload)
    assert response.status_code == 201, response.json
    return response.json["startup"]["id"], {"Authorization": f"Bearer {response.json['credentials']['token']}"}


def future_window():
    start = dt.date.today() + dt.timedelta(days=30)  # a month ahead in any time zone
    return {"window_start": start.isoformat(), "window_end": (start + dt.timedelta(days=14)).isoformat()}


def test_the_duplicate_code_409_tells_the_real_company_how_to_reach_the_district(client):
    register(client, SQUATTER)
    refused = client.post("/api/v1/startups", json=REAL)
    assert refused.status_code == 409
    body = refused.json
    assert body["code"] == 409 and body["status"] == "Conflict"
    assert "already registered" in body["message"]
    assert DEFAULT_DISTRICT_CONTACT in body["message"] and "021-22050983" in body["message"]


def test_the_district_contact_in_the_409_comes_from_the_settings(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "DISTRICT_CONTACT", "科委窗口 kw@example.cn")
    assert client.post("/api/v1/startups", json=startup_payload(42)).status_code == 201
    again = client.post("/api/v1/startups", json=startup_payload(42))
    assert again.status_code == 409
    assert "科委窗口 kw@example.cn" in again.json["message"] and DEFAULT_DISTRICT_CONTACT not in again.json["message"]


def test_staff_reject_a_pending_squatter_which_frees_the_code_for_the_real_company(client, session, make_actor):
    staff = make_actor("staff")
    squatter_id, squatter = register(client, SQUATTER)
    mine = client.get(f"/api/v1/startups/{squatter_id}", headers=squatter)
    assert mine.json["status"] == "pending" and mine.json["rejection_reason"] is None

    reason = "该统一社会信用代码属于另一家企业 (the code belongs to another company)"
    rejected = client.post(f"/api/v1/startups/{squatter_id}/reject", json={"reason": reason}, headers=staff.headers)
    assert rejected.status_code == 200, rejected.json
    assert rejected.json["status"] == "rejected" and rejected.json["rejection_reason"] == reason
    assert rejected.json["reviewed_by_id"] == staff.account_id and rejected.json["reviewed_at"].endswith("+08:00")

    # The squatter's tokens stop working, and the refusal tells it why.
    refused = client.get("/api/v1/me", headers=squatter)
    assert refused.status_code == 401 and "rejected" in refused.json["message"] and reason in refused.json["message"]
    # The real company registers the code and is pending review like anyone else.
    real_id, real = register(client, REAL)
    assert client.get("/api/v1/me", headers=real).json["startup_id"] == real_id
    # Nothing deleted: the squatter's row keeps the code, and the audit log has the decision.
    session.expire_all()
    assert {s.id for s in session.scalars(sa.select(Startup).where(Startup.uscc == REAL["uscc"]))} == {
        squatter_id, real_id}
    decision = session.scalar(sa.select(AuditEntry).where(
        AuditEntry.entity_type == "startups", AuditEntry.entity_id == squatter_id, AuditEntry.action == "reject"))
    assert decision.actor_id == staff.account_id
    assert decision.before["status"] == "pending" and decision.after["rejection_reason"] == reason
    revoked = session.scalars(sa.select(ApiToken).join(Account, ApiToken.account_id == Account.id).where(
        Account.startup_id == squatter_id)).all()
    assert revoked and all(t.revoked_at is not None for t in revoked)


def test_a_rejection_needs_a_reason_and_names_the_field(client, session, make_actor):
    staff, pending = make_actor("staff"), make_actor("startup", verified=False)
    url = f"/api/v1/startups/{pending.startup_id}/reject"
    for body in ({}, {"reason": ""}, {"reason": "   "}, None):
        response = client.post(url, json=body, headers=staff.headers)
        assert response.status_code == 422, (body, response.json)
        assert "reason" in response.json["errors"]["json"]
    session.expire_all()
    assert session.get(Startup, pending.startup_id).status.value == "pending"
    assert client.get("/api/v1/me", headers=pending.headers).status_code == 200


def test_only_a_pending_registration_is_rejected(client, make_actor):
    staff, verified, pending = make_actor("staff"), make_actor("startup"), make_actor("startup", verified=False)
    assert client.post(f"/api/v1/startups/{verified.startup_id}/reject", json={"reason": "x"},
                       headers=staff.headers).status_code == 409
    assert client.get("/api/v1/me", headers=verified.headers).status_code == 200
    first = client.post(f"/api/v1/startups/{pending.startup_id}/reject", json={"reason": "x"}, headers=staff.headers)
    assert first.status_code == 200
    again = client.post(f"/api/v1/startups/{pending.startup_id}/reject", json={"reason": "y"}, headers=staff.headers)
    assert again.status_code == 409 and again.json["message"]
    # A turned-away registration is never verified afterwards, nor removed a second time.
    assert client.post(f"/api/v1/startups/{pending.startup_id}/verify", headers=staff.headers).status_code == 409
    assert client.post(f"/api/v1/startups/{pending.startup_id}/remove", json={"reason": "z"},
                       headers=staff.headers).status_code == 409
    assert client.post("/api/v1/startups/999999/reject", json={"reason": "x"}, headers=staff.headers).status_code == 404


def test_staff_remove_a_verified_squatter_its_requests_end_and_the_code_is_free(client, session, make_actor):
    staff, carrier = make_actor("staff"), make_actor("carrier")
    squatter_id, squatter = register(client, SQUATTER)
    assert client.post(f"/api/v1/startups/{squatter_id}/verify", headers=staff.headers).status_code == 200
    publish(client, carrier, gpu_offer("lot-q"))
    held = _promise(session, SimpleNamespace(startup_id=squatter_id), "lot-q", 300)  # a proposal holds 300
    queued = client.post("/api/v1/requests", json=ask(**future_window()), headers=squatter)
    assert queued.status_code == 201, queued.json

    reason = "冒用他人统一社会信用代码 (registered in another company's name)"
    removed = client.post(f"/api/v1/startups/{squatter_id}/remove", json={"reason": reason}, headers=staff.headers)
    assert removed.status_code == 200, removed.json
    assert removed.json["status"] == "removed" and removed.json["rejection_reason"] == reason
    assert removed.json["verified_at"] is not None  # when it was verified stays on record

    assert client.get("/api/v1/me", headers=squatter).status_code == 401
    session.expire_all()
    assert {r.status.value for r in session.scalars(sa.select(ResourceRequest).where(
        ResourceRequest.startup_id == squatter_id))} == {"withdrawn"}
    assert session.get(Allocation, held.allocations[0].id).status.value == "rejected"
    assert session.scalar(sa.select(Offer.promised).where(Offer.external_id == "lot-q")) == 0
    assert session.get(Startup, squatter_id).uscc == REAL["uscc"]  # kept, for the record

    real_id, real = register(client, REAL)
    assert client.post(f"/api/v1/startups/{real_id}/verify", headers=staff.headers).status_code == 200
    assert client.post("/api/v1/requests", json=ask(**future_window()), headers=real).status_code == 201
    # Staff find both registrations of the code, and which one holds it.
    listed = client.get("/api/v1/startups?status=removed", headers=staff.headers).json
    assert [s["id"] for s in listed] == [squatter_id]


def test_a_removal_needs_a_reason_and_staff(client, session, make_actor):
    staff, startup, other = make_actor("staff"), make_actor("startup"), make_actor("startup")
    url = f"/api/v1/startups/{startup.startup_id}/remove"
    missing = client.post(url, json={}, headers=staff.headers)
    assert missing.status_code == 422 and "reason" in missing.json["errors"]["json"]
    assert client.post(url, json={"reason": "x"}, headers=startup.headers).status_code == 403
    assert client.post(url, json={"reason": "x"}, headers=other.headers).status_code == 403
    assert client.post(url, json={"reason": "x"}).status_code == 401
    session.expire_all()
    assert session.get(Startup, startup.startup_id).status.value == "verified"


def test_a_turned_away_startup_gets_no_new_token(client, app, make_actor):
    from broker.cli import main

    staff, admin, pending = make_actor("staff"), make_actor("admin"), make_actor("startup", verified=False)
    client.post(f"/api/v1/startups/{pending.startup_id}/reject", json={"reason": "squatted"}, headers=staff.headers)
    for who in (staff, admin):
        response = client.post(f"/api/v1/accounts/{pending.account_id}/tokens", headers=who.headers)
        assert response.status_code == 409 and "rejected" in response.json["message"]
    console = app.test_cli_runner().invoke(main, ["startups", "token", str(pending.startup_id)])
    assert console.exit_code == 2 and "rejected" in console.output and "sab_" not in console.output
