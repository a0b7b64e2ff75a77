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
    "funding_document": "沪经信智〔2025〕489号",
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
    # The opening budget is a deposit row that names its funding document.
    [deposit] = client.get(f"/api/v1/ledger?program_id={created.json['id']}", headers=staff.headers).json
    assert (deposit["kind"], deposit["amount"], deposit["reference"]) == ("deposit", "10000000.00", "沪经信智〔2025〕489号")
    listed = client.get("/api/v1/subsidy-programs", headers=startup.headers).json
    assert [p["code"] for p in listed] == ["tokens-2027"]
    assert client.post("/api/v1/subsidy-programs", json=PROGRAM, headers=staff.headers).status_code == 409
    bad = client.post(
        "/api/v1/subsidy-programs",
        json={**PROGRAM, "code": "x", "cap_per_startup": "20000000", "ends_on": "2026-01-01", "kinds": ["beer"]},
        headers=staff.headers,
    )
    assert bad.status_code == 422 and {"ends_on", "kinds"} <= set(bad.json["errors"]["json"])
    undocumented = {k: v for k, v in PROGRAM.items() if k != "funding_document"} | {"code": "y"}
    missing = client.post("/api/v1/subsidy-programs", json=undocumented, headers=staff.headers)
    assert missing.status_code == 422 and "funding_document" in missing.json["errors"]["json"]


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


def test_audit_snapshots_show_times_in_shanghai_and_storage_stays_utc(client, session, make_actor):
    import datetime as dt

    import sqlalchemy as sa

    from broker.models import AuditEntry

    staff, startup = make_actor("staff"), make_actor("startup", verified=False)
    client.post(f"/api/v1/startups/{startup.startup_id}/verify", headers=staff.headers)
    entries = client.get(f"/api/v1/audit?entity_type=startups&entity_id={startup.startup_id}", headers=staff.headers).json
    verify = next(e for e in entries if e["action"] == "verify")
    create = next(e for e in entries if e["action"] == "create")
    assert verify["after"]["verified_at"].endswith("+08:00") and verify["at"].endswith("+08:00")
    assert create["after"]["created_at"].endswith("+08:00")
    assert create["after"]["founded_on"] == "2022-03-01"  # a date is a date, not a time
    served = dt.datetime.fromisoformat(verify["after"]["verified_at"])
    stored = session.scalar(sa.select(AuditEntry.after).where(AuditEntry.id == verify["id"]))["verified_at"]
    assert stored.endswith("+00:00") and dt.datetime.fromisoformat(stored) == served


def test_audit_entity_types_come_from_one_list_and_are_documented(client, make_actor):
    import pathlib

    from broker.models import AUDITED_ENTITY_TYPES, Audited

    def tables(cls):
        return {c.__tablename__ for c in cls.__subclasses__()} | {t for c in cls.__subclasses__() for t in tables(c)}

    assert set(AUDITED_ENTITY_TYPES) == tables(Audited) and "startups" in AUDITED_ENTITY_TYPES
    staff = make_actor("staff")
    refused = client.get("/api/v1/audit?entity_type=startup", headers=staff.headers)
    assert refused.status_code == 422 and "startups" in refused.json["errors"]["query"]["entity_type"][0]
    spec = client.get("/api/openapi.json").json
    parameter = next(p for p in spec["paths"]["/api/v1/audit"]["get"]["parameters"] if p["name"] == "entity_type")
    assert parameter["schema"]["enum"] == list(AUDITED_ENTITY_TYPES)
    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    audit_row = next(line for line in readme.splitlines() if line.startswith("| `GET /api/v1/audit`"))
    assert all(f"`{name}`" in audit_row for name in AUDITED_ENTITY_TYPES), audit_row
