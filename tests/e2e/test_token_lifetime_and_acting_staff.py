"""Tokens may expire; what is done with a token staff minted for another account names that staff
member; responses that carry a secret are never cached."""

import datetime as dt
import io

import pytest
import sqlalchemy as sa

from broker.clock import SHANGHAI
from broker.models import ApiToken, AuditEntry
from tests.conftest import startup_payload
from tests.e2e.test_webhooks import _catalog, carriers  # noqa: F401  (the carriers fixture)

START = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@pytest.fixture
def clock(frozen_clock):
    return frozen_clock(START)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tokens(session) -> int:
    return session.scalar(sa.select(sa.func.count(ApiToken.id)))


def test_a_token_with_an_expiry_stops_working_when_it_expires(client, make_actor, clock):
    staff, carrier = make_actor("staff"), make_actor("carrier")
    issued = client.post(f"/api/v1/accounts/{carrier.account_id}/tokens", json={"expires_in_days": 1}, headers=staff.headers)
    assert issued.status_code == 201, issued.json
    expires = START + dt.timedelta(days=1)
    assert dt.datetime.fromisoformat(issued.json["expires_at"]) == expires
    assert issued.json["expires_at"].endswith("+08:00")
    fresh = _bearer(issued.json["token"])
    assert client.get("/api/v1/me", headers=fresh).status_code == 200

    clock.set(expires - dt.timedelta(seconds=1))
    assert client.get("/api/v1/me", headers=fresh).status_code == 200
    clock.set(expires)
    expired = client.get("/api/v1/me", headers=fresh)
    assert expired.status_code == 401 and "expired" in expired.json["message"]
    assert expired.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/me", headers=carrier.headers).status_code == 200  # the carrier's own token has none

    listed = client.get(f"/api/v1/tokens?account_id={carrier.account_id}", headers=staff.headers).json
    assert {t["id"]: t["expires_at"] for t in listed} == {listed[0]["id"]: None, issued.json["token_id"]: issued.json["expires_at"]}
    active = client.get(f"/api/v1/tokens?account_id={carrier.account_id}&active=true", headers=staff.headers).json
    assert issued.json["token_id"] not in [t["id"] for t in active]
    inactive = client.get(f"/api/v1/tokens?account_id={carrier.account_id}&active=false", headers=staff.headers).json
    assert [t["id"] for t in inactive] == [issued.json["token_id"]]


def test_an_expiry_can_be_a_moment_in_shanghai_time(client, make_actor, clock):
    staff, startup = make_actor("staff"), make_actor("startup")
    moment = (START + dt.timedelta(days=3)).astimezone(SHANGHAI).replace(tzinfo=None, microsecond=0)
    issued = client.post(f"/api/v1/accounts/{startup.account_id}/tokens", json={"expires_at": moment.isoformat()},
                         headers=staff.headers)
    assert issued.status_code == 201, issued.json
    assert dt.datetime.fromisoformat(issued.json["expires_at"]) == moment.replace(tzinfo=SHANGHAI)


def test_without_a_body_a_token_does_not_expire(client, session, make_actor, clock):
    staff, carrier = make_actor("staff"), make_actor("carrier")
    issued = client.post(f"/api/v1/accounts/{carrier.account_id}/tokens", headers=staff.headers)
    assert issued.status_code == 201 and issued.json["expires_at"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 366}, "expires_in_days"),
        ({"expires_in_days": 2.5}, "expires_in_days"),
        ({"expires_in_days": "7"}, "expires_in_days"),
        ({"expires_at": "2020-01-01T00:00:00+08:00"}, "expires_at"),
        ({"expires_at": "2999-01-01T00:00:00+08:00"}, "expires_at"),
        ({"expires_at": "soon"}, "expires_at"),
        ({"expires_at": "2026-12-31T00:00:00+08:00", "expires_in_days": 3}, "expires_at"),
        ({"valid_for": 3}, "valid_for"),
    ],
)
def test_a_bad_expiry_is_422_naming_the_field_and_issues_nothing(client, session, make_actor, clock, body, field):
    staff, carrier = make_actor("staff"), make_actor("carrier")
    before = _tokens(session)
    refused = client.post(f"/api/v1/accounts/{carrier.account_id}/tokens", json=body, headers=staff.headers)
    assert refused.status_code == 422, refused.json
    assert field in refused.json["errors"]["json"], refused.json
    assert _tokens(session) == before


def _entries(client, staff, **filters):
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return client.get(f"/api/v1/audit?{query}&page_size=100", headers=staff.headers).json


def test_changes_made_with_a_token_staff_minted_name_the_staff_member(client, session, make_actor):
    staff, startup, auditor = make_actor("staff"), make_actor("startup"), make_actor("admin")
    minted = client.post(f"/api/v1/accounts/{startup.account_id}/tokens", headers=staff.headers).json
    token = session.get(ApiToken, minted["token_id"])
    assert token.issued_by_id == staff.account_id

    acting = client.patch(f"/api/v1/startups/{startup.startup_id}", json={"contact_name": "王芳"},
                          headers=_bearer(minted["token"]))
    assert acting.status_code == 200
    own = client.patch(f"/api/v1/startups/{startup.startup_id}", json={"contact_name": "李娜"}, headers=startup.headers)
    assert own.status_code == 200

    updates = [e for e in _entries(client, auditor, entity_type="startups", entity_id=startup.startup_id)
               if e["action"] == "update"]
    assert [(e["after"]["contact_name"], e["actor_id"], e["acting_staff_id"]) for e in updates] == [
        ("李娜", startup.account_id, None),
        ("王芳", startup.account_id, staff.account_id),
    ]
    by_staff = _entries(client, auditor, acting_staff_id=staff.account_id)
    assert {e["entity_type"] for e in by_staff} == {"startups"} and len(by_staff) == 1

    # Minting the token is itself on record, with who minted it.
    minting = _entries(client, auditor, entity_type="api_tokens", entity_id=minted["token_id"])
    assert minting[0]["actor_id"] == staff.account_id and minting[0]["after"]["issued_by_id"] == staff.account_id


def test_a_token_staff_issue_themselves_is_not_acting_for_anyone(client, make_actor):
    staff, startup = make_actor("staff"), make_actor("startup", verified=False)
    mine = client.post(f"/api/v1/accounts/{staff.account_id}/tokens", headers=staff.headers).json
    assert client.post(f"/api/v1/startups/{startup.startup_id}/verify", headers=_bearer(mine["token"])).status_code == 200
    [verify] = [e for e in _entries(client, staff, entity_type="startups", entity_id=startup.startup_id)
                if e["action"] == "verify"]
    assert verify["actor_id"] == staff.account_id and verify["acting_staff_id"] is None


def test_bulk_changes_made_with_a_minted_token_name_the_staff_member_too(client, session, make_actor, carriers):  # noqa: F811
    """A catalog upload writes its audit rows in bulk, beside the flush hook: they name the staff member too."""
    staff, unicom = make_actor("staff"), carriers["unicom"]

    def upload(headers, content):
        response = client.post("/api/v1/carriers/unicom/catalog", headers=headers, content_type="multipart/form-data",
                               data={"file": (io.BytesIO(content), "catalog.csv")})
        assert response.status_code == 200, response.json
        return response.json

    upload(unicom.headers, _catalog())
    minted = client.post(f"/api/v1/accounts/{unicom.account_id}/tokens", headers=staff.headers).json
    later = upload(_bearer(minted["token"]), _catalog(first_month=dt.date(2030, 1, 1)))
    assert later["counts"]["changed"] > 0
    rows = session.execute(sa.select(AuditEntry.actor_id, AuditEntry.acting_staff_id)
                           .where(AuditEntry.action == "sync_update")).all()
    assert len(rows) == later["counts"]["changed"]
    assert set(rows) == {(unicom.account_id, staff.account_id)}


def test_responses_that_carry_a_secret_are_never_cached(client, make_actor):
    staff, carrier = make_actor("staff"), make_actor("carrier")
    responses = {
        "registration": client.post("/api/v1/startups", json=startup_payload(90)),
        "issued token": client.post(f"/api/v1/accounts/{carrier.account_id}/tokens", headers=staff.headers),
        "webhook secret": client.put("/api/v1/me/webhook", json={"url": "http://127.0.0.1:9/hook"}, headers=carrier.headers),
    }
    for name, response in responses.items():
        assert response.status_code in (200, 201), (name, response.json)
        assert response.headers.get("Cache-Control") == "no-store", name
        assert response.headers.get("Pragma") == "no-cache", name
