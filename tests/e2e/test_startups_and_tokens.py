"""Startups register themselves, staff verify them; tokens are shown once and can be revoked."""

import sqlalchemy as sa

from broker.models import Account, ApiToken, Startup
from tests.conftest import startup_payload
from tests.e2e.test_requests import shanghai_after_midnight  # noqa: F401  (the fixture)


def wrong_check_character(code: str) -> str:
    return code[:-1] + ("1" if code[-1] != "1" else "2")


def test_startup_registers_gets_a_token_once_and_waits_for_verification(client, session, make_actor):
    response = client.post("/api/v1/startups", json=startup_payload(1, sector="smart_driving"))
    assert response.status_code == 201, response.json
    token = response.json["credentials"]["token"]
    assert token.startswith("sab_") and len(token) > 40
    startup_id = response.json["startup"]["id"]
    assert response.json["startup"]["status"] == "pending"
    headers = {"Authorization": f"Bearer {token}"}

    stored = session.scalars(sa.select(ApiToken.token_hash)).all()
    assert token not in stored and all(len(h) == 64 for h in stored)
    assert token not in client.get("/api/v1/tokens", headers=headers).get_data(as_text=True)

    ask = {"kind": "tokens", "quantity": 100, "window_start": "2026-12-01", "window_end": "2026-12-31"}
    refused = client.post("/api/v1/requests", json=ask, headers=headers)
    assert refused.status_code == 403 and "verified" in refused.json["message"]

    staff = make_actor("staff")
    verified = client.post(f"/api/v1/startups/{startup_id}/verify", headers=staff.headers)
    assert verified.status_code == 200 and verified.json["status"] == "verified"
    assert client.post("/api/v1/requests", json=ask, headers=headers).status_code == 201
    again = client.post(f"/api/v1/startups/{startup_id}/verify", headers=staff.headers)
    assert again.status_code == 409


def test_a_startup_cannot_verify_itself(client, make_actor):
    startup = make_actor("startup", verified=False)
    response = client.post(f"/api/v1/startups/{startup.startup_id}/verify", headers=startup.headers)
    assert response.status_code == 403
    assert client.get(f"/api/v1/startups/{startup.startup_id}", headers=startup.headers).json["status"] == "pending"


def test_registering_twice_with_one_credit_code_is_a_conflict_and_creates_nothing(client, session):
    assert client.post("/api/v1/startups", json=startup_payload(7)).status_code == 201
    before = session.scalar(sa.select(sa.func.count(Account.id)))
    response = client.post("/api/v1/startups", json={**startup_payload(7), "name": "另一家"})
    assert response.status_code == 409
    assert session.scalar(sa.select(sa.func.count(Account.id))) == before


def test_bad_registration_names_every_bad_field_and_writes_nothing(client, session):
    payload = {
        **startup_payload(2),
        "uscc": wrong_check_character(startup_payload(2)["uscc"]),
        "headcount": 2.5,
        "sector": "mining",
        "founded_on": "2999-01-01",
        "contact_email": "not-an-email",
        "shoe_size": 42,
    }
    response = client.post("/api/v1/startups", json=payload)
    assert response.status_code == 422
    errors = response.json["errors"]["json"]
    assert "Check character" in errors["uscc"][0]
    assert set(errors) >= {"uscc", "headcount", "sector", "founded_on", "contact_email", "shoe_size"}
    assert session.scalar(sa.select(sa.func.count(Startup.id))) == 0


def test_staff_revoke_a_startup_token_and_it_stops_working(client, make_actor):
    staff, startup = make_actor("staff"), make_actor("startup")
    assert client.get("/api/v1/me", headers=startup.headers).status_code == 200
    token_id = client.get("/api/v1/tokens", headers=startup.headers).json[0]["id"]
    revoked = client.post(f"/api/v1/tokens/{token_id}/revoke", headers=staff.headers)
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    response = client.get("/api/v1/me", headers=startup.headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_staff_cannot_revoke_an_admin_token_but_an_admin_can(client, make_actor):
    staff, admin, other_admin = make_actor("staff"), make_actor("admin"), make_actor("admin")
    admin_token = client.get(f"/api/v1/tokens?account_id={admin.account_id}", headers=staff.headers).json[0]["id"]
    assert client.post(f"/api/v1/tokens/{admin_token}/revoke", headers=staff.headers).status_code == 403
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 200
    assert client.post(f"/api/v1/tokens/{admin_token}/revoke", headers=other_admin.headers).status_code == 200
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 401


def test_staff_issue_a_new_token_for_a_carrier(client, make_actor):
    staff, carrier = make_actor("staff"), make_actor("carrier")
    response = client.post(f"/api/v1/accounts/{carrier.account_id}/tokens", headers=staff.headers)
    assert response.status_code == 201
    fresh = {"Authorization": f"Bearer {response.json['token']}"}
    assert client.get("/api/v1/me", headers=fresh).json["carrier_id"] == carrier.carrier_id


def test_wrong_or_missing_tokens_are_401(client):
    assert client.get("/api/v1/offers").status_code == 401
    assert client.get("/api/v1/offers", headers={"Authorization": "Bearer sab_nope"}).status_code == 401
    assert client.get("/api/v1/offers", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_a_startup_sets_its_budget_per_cycle_and_others_cannot(client, make_actor):
    startup, other, staff = make_actor("startup"), make_actor("startup"), make_actor("staff")
    url = f"/api/v1/startups/{startup.startup_id}"
    updated = client.patch(url, json={"cycle_budget": "20000", "contact_name": "李娜"}, headers=startup.headers)
    assert updated.status_code == 200 and updated.json["cycle_budget"] == "20000.00"
    assert client.patch(url, json={"cycle_budget": "-5"}, headers=startup.headers).status_code == 422
    assert client.patch(url, json={"status": "verified"}, headers=startup.headers).status_code == 422
    assert client.patch(url, json={"cycle_budget": "1"}, headers=other.headers).status_code == 404
    assert client.patch(url, json={"cycle_budget": "1"}, headers=staff.headers).status_code == 403
    assert client.get(url, headers=staff.headers).json["cycle_budget"] == "20000.00"


def test_founding_dates_are_checked_against_today_in_shanghai_by_the_apps_clock(client, session, shanghai_after_midnight):
    # 01:00 on 2 December in Shanghai, still 1 December in UTC.
    founded_today = client.post("/api/v1/startups", json={**startup_payload(51), "founded_on": "2026-12-02"})
    assert founded_today.status_code == 201, founded_today.json
    tomorrow = client.post("/api/v1/startups", json={**startup_payload(52), "founded_on": "2026-12-03"})
    assert tomorrow.status_code == 422 and "founded_on" in tomorrow.json["errors"]["json"]
