"""Staff set the matching policy and open subsidy programs; every change lands in the audit log."""

import pytest

POLICY = {
    "sector_weights": {"smart_driving": "2.5", "smart_healthcare": "2", "energy_management": 2},
    "default_weight": "1",
    "key_enterprise_bonus": "0.5",
    "wait_bonus_per_cycle": "0.2",
    "share_cap": "0.4",
    "approval_window_hours": 57,
}

PROGRAM = {
    "code": "tokens-2027",
    "name": "Tokens 使用及 API 调用专项补贴",
    "kinds": ["tokens"],
    "rate": "0.5",
    "cap_per_startup": "200000",
    "budget": "10000000",
    "eligible_sectors": ["smart_driving", "ai_models"],
    "max_company_age_years": 5,
    "starts_on": "2027-01-01",
    "ends_on": "2028-01-01",
}


def test_default_policy_then_staff_set_a_new_version(client, make_actor):
    staff, startup = make_actor("staff"), make_actor("startup")
    default = client.get("/api/v1/policy", headers=startup.headers).json
    assert default["id"] is None and default["sector_weights"]["smart_driving"] == "2.0"
    assert default["max_request_quantity"] == {
        "gpu": "100000.000", "cpu": "1000000.000", "data_line": "10000.000", "cloud_vm": "10000.000",
        "storage": "10000.000", "tokens": "100000.000"}
    assert client.put("/api/v1/policy", json=POLICY, headers=startup.headers).status_code == 403
    saved = client.put("/api/v1/policy", json=POLICY, headers=staff.headers)
    assert saved.status_code == 200, saved.json
    current = client.get("/api/v1/policy", headers=startup.headers).json
    assert current["share_cap"] == "0.4000" and current["sector_weights"]["smart_driving"] == "2.5000"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"share_cap": "1.5"}, "share_cap"),
        ({"share_cap": 0}, "share_cap"),
        ({"sector_weights": {"mining": "2"}}, "sector_weights"),
        ({"approval_window_hours": 0}, "approval_window_hours"),
        ({"approval_window_hours": 2.5}, "approval_window_hours"),
        ({"max_request_quantity": {"quantum": "5"}}, "max_request_quantity"),
        ({"max_request_quantity": {"gpu": "0"}}, "max_request_quantity"),
        ({"max_request_quantity": {"gpu": "-1"}}, "max_request_quantity"),
        ({"max_request_quantity": ["gpu"]}, "max_request_quantity"),
    ],
)
def test_bad_policy_is_refused(client, make_actor, change, field):
    staff = make_actor("staff")
    response = client.put("/api/v1/policy", json={**POLICY, **change}, headers=staff.headers)
    assert response.status_code == 422 and field in response.json["errors"]["json"]
    assert client.get("/api/v1/policy", headers=staff.headers).json["id"] is None


def test_staff_open_a_subsidy_program_everyone_sees_its_budget(client, make_actor):
    staff, startup = make_actor("staff"), make_actor("startup")
    assert client.post("/api/v1/subsidy-programs", json=PROGRAM, headers=startup.headers).status_code == 403
    created = client.post("/api/v1/subsidy-programs", json=PROGRAM, headers=staff.headers)
    assert created.status_code == 201, created.json
    assert created.json["remaining"] == "10000000.00" and created.json["committed"] == "0.00"
    listed = client.get("/api/v1/subsidy-programs", headers=startup.headers).json
    assert [p["code"] for p in listed] == ["tokens-2027"]
    assert client.post("/api/v1/subsidy-programs", json=PROGRAM, headers=staff.headers).status_code == 409
    bad = client.post(
        "/api/v1/subsidy-programs",
        json={**PROGRAM, "code": "x", "cap_per_startup": "20000000", "ends_on": "2026-01-01", "kinds": ["beer"]},
        headers=staff.headers,
    )
    assert bad.status_code == 422 and {"ends_on", "kinds"} <= set(bad.json["errors"]["json"])


def test_the_audit_log_records_who_changed_what(client, make_actor):
    staff, startup = make_actor("staff"), make_actor("startup", verified=False)
    client.post(f"/api/v1/startups/{startup.startup_id}/verify", headers=staff.headers)
    entries = client.get(
        f"/api/v1/audit?entity_type=startups&entity_id={startup.startup_id}", headers=staff.headers
    ).json
    verify = next(e for e in entries if e["action"] == "verify")
    assert verify["actor_id"] == staff.account_id
    assert verify["before"]["status"] == "pending" and verify["after"]["status"] == "verified"
    assert client.get("/api/v1/audit", headers=startup.headers).status_code == 403


def test_the_readme_states_the_default_maximum_per_request_of_every_kind():
    import pathlib

    from broker.resources import KINDS

    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    for name, kind in KINDS.items():
        assert f"{name} {int(kind.max_request)} {kind.unit}" in readme, name
