"""Demand surveys (需求摸排) through the API and the reminder job, on a small district with known numbers."""

import datetime as dt

import pytest
import sqlalchemy as sa

from broker.models import OutboxEmail, Startup, SurveyDeclaration
from broker.services import people, surveys

DEC_01_0900 = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Shanghai
CAMPAIGN = {"title": "2027年一季度算力需求摸排", "period": "2027-Q1", "opens_on": "2026-12-01",
            "closes_on": "2026-12-31", "kinds": ["tokens", "gpu"]}


def line(kind="gpu", quantity="100", region="上海", month="2027-01-01", price=None, purpose="模型训练"):
    return {"kind": kind, "quantity": quantity, "region": region, "month": month, "max_unit_price": price,
            "purpose": purpose}


@pytest.fixture
def clock(frozen_clock):
    return frozen_clock(DEC_01_0900)


@pytest.fixture
def district(client, make_actor, clock):
    """Staff, a carrier, two Lighthouse (smart driving) startups, three AI-model ones, one not verified, an open survey."""
    staff = make_actor("staff")
    d1, d2 = make_actor("startup", sector="smart_driving"), make_actor("startup", sector="smart_driving")
    m1, m2, m3 = (make_actor("startup", sector="ai_models") for _ in range(3))
    opened = client.post("/api/v1/surveys", json=CAMPAIGN, headers=staff.headers)
    assert opened.status_code == 201, opened.json
    return {"staff": staff, "carrier": make_actor("carrier"), "d1": d1, "d2": d2, "m1": m1, "m2": m2, "m3": m3,
            "pending": make_actor("startup", verified=False), "id": opened.json["id"], "campaign": opened.json}


def declare(client, actor, campaign_id, *lines):
    return client.put(f"/api/v1/surveys/{campaign_id}/declarations", json={"lines": list(lines)}, headers=actor.headers)


def declare_district(client, d):
    for who, lines in (("d1", [line(quantity="100", price="10")]), ("d2", [line(quantity="50", price="12")]),
                       ("m1", [line(quantity="30")]), ("m2", [line(quantity="20", month="2027-02-01")]),
                       ("m3", [line(kind="tokens", quantity="1000", region="北京")])):
        answer = declare(client, d[who], d["id"], *lines)
        assert answer.status_code == 200, answer.json


def test_staff_open_a_survey_and_its_status_follows_the_dates(client, district, clock):
    assert district["campaign"]["status"] == "open" and district["campaign"]["kinds"] == ["gpu", "tokens"]
    listed = client.get("/api/v1/surveys", headers=district["d1"].headers)
    assert [c["id"] for c in listed.json] == [district["id"]]
    clock.set(dt.datetime(2027, 1, 1, 1, 0, tzinfo=dt.timezone.utc))
    assert client.get("/api/v1/surveys", headers=district["staff"].headers).json[0]["status"] == "closed"


@pytest.mark.parametrize("change, field", [
    ({"period": "2027-Q5"}, "period"), ({"closes_on": "2026-11-30"}, "closes_on"), ({"kinds": ["gold"]}, "kinds"),
    ({"kinds": []}, "kinds"), ({"title": ""}, "title"),
])
def test_a_bad_survey_is_422_with_its_field_and_nothing_opened(client, district, session, change, field):
    answer = client.post("/api/v1/surveys", json={**CAMPAIGN, **change}, headers=district["staff"].headers)
    assert answer.status_code == 422 and field in str(answer.json["errors"]), answer.json
    assert len(client.get("/api/v1/surveys", headers=district["staff"].headers).json) == 1


def test_only_staff_open_surveys(client, district):
    for who in ("d1", "carrier"):
        assert client.post("/api/v1/surveys", json=CAMPAIGN, headers=district[who].headers).status_code == 403


def test_staff_aggregate_by_kind_region_month_and_sector_by_hand(client, district):
    declare_district(client, district)
    answer = client.get(f"/api/v1/surveys/{district['id']}/aggregate", headers=district["staff"].headers)
    assert answer.status_code == 200 and answer.json["firms"] == 5
    assert [(c["kind"], c["region"], c["month"], c["sector"], c["lighthouse"], c["firms"], c["quantity"], c["avg_max_price"])
            for c in answer.json["cells"]] == [
        ("gpu", "上海", "2027-01-01", "ai_models", False, 1, "30.000", None),
        ("gpu", "上海", "2027-01-01", "smart_driving", True, 2, "150.000", "11.00"),
        ("gpu", "上海", "2027-02-01", "ai_models", False, 1, "20.000", None),
        ("tokens", "北京", "2027-01-01", "ai_models", False, 1, "1000.000", None),
    ]


def test_carriers_see_no_firm_and_no_cell_of_fewer_than_three_firms(client, district):
    declare_district(client, district)
    answer = client.get(f"/api/v1/surveys/{district['id']}/demand", headers=district["carrier"].headers)
    assert answer.status_code == 200, answer.json
    assert answer.json["cells"] == [{"kind": "gpu", "region": "上海", "month": "2027-01-01", "firms": 3,
                                     "quantity": "180.000", "avg_max_price": "11.00"}]
    assert answer.json["suppressed"] == 2
    assert "sector" not in str(answer.json) and "startup" not in str(answer.json)
    assert client.get(f"/api/v1/surveys/{district['id']}/aggregate", headers=district["carrier"].headers).status_code == 403
    assert client.get(f"/api/v1/surveys/{district['id']}/demand", headers=district["d1"].headers).status_code == 403


def test_a_revision_replaces_the_line_and_a_line_left_out_is_removed(client, district, session):
    first = declare(client, district["d1"], district["id"], line(quantity="100"), line(kind="tokens", quantity="5"))
    assert first.status_code == 200 and len(first.json["lines"]) == 2
    kept_id = [x["id"] for x in first.json["lines"] if x["kind"] == "gpu"][0]
    revised = declare(client, district["d1"], district["id"], line(quantity="250", price="9.5"))
    assert [(x["id"], x["quantity"], x["max_unit_price"]) for x in revised.json["lines"]] == [(kept_id, "250.000", "9.50")]
    assert session.scalar(sa.select(sa.func.count()).select_from(SurveyDeclaration)) == 1
    mine = client.get(f"/api/v1/surveys/{district['id']}/declarations", headers=district["d1"].headers)
    assert [x["quantity"] for x in mine.json["lines"]] == ["250.000"]
    # another startup sees only its own (none)
    assert client.get(f"/api/v1/surveys/{district['id']}/declarations", headers=district["d2"].headers).json["lines"] == []


@pytest.mark.parametrize("bad, field", [
    ({"kind": "storage"}, "kind"), ({"month": "2027-04-01"}, "month"), ({"month": "2027-01-15"}, "month"),
    ({"quantity": "0"}, "quantity"), ({"max_unit_price": "1.234"}, "max_unit_price"), ({"purpose": "x" * 501}, "purpose"),
])
def test_a_bad_line_is_422_with_its_field_and_nothing_changed(client, district, session, bad, field):
    declare(client, district["d1"], district["id"], line())
    answer = declare(client, district["d1"], district["id"], {**line(quantity="7"), **bad})
    assert answer.status_code == 422 and field in str(answer.json["errors"]), answer.json
    assert [d.quantity for d in session.scalars(sa.select(SurveyDeclaration))] == [100]


def test_after_the_close_declarations_are_refused_and_kept(client, district, clock, session):
    declare(client, district["d1"], district["id"], line())
    clock.set(dt.datetime(2026, 12, 31, 15, 59, tzinfo=dt.timezone.utc))  # 23:59 on the last day: still open
    assert declare(client, district["d1"], district["id"], line(quantity="5")).status_code == 200
    clock.set(dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.timezone.utc))  # 1 January in Shanghai
    answer = declare(client, district["d1"], district["id"], line(quantity="9"))
    assert answer.status_code == 409, answer.json
    assert [d.quantity for d in session.scalars(sa.select(SurveyDeclaration))] == [5]


def test_scoping(client, district):
    missing = 10 ** 6
    assert declare(client, district["pending"], district["id"], line()).status_code == 403
    assert declare(client, district["staff"], district["id"], line()).status_code == 403
    assert declare(client, district["d1"], missing, line()).status_code == 404
    assert client.get(f"/api/v1/surveys/{missing}/aggregate", headers=district["staff"].headers).status_code == 404
    assert client.get(f"/api/v1/surveys/{district['id']}/declarations").status_code == 401


def test_a_survey_not_yet_open_is_hidden_from_companies(client, district):
    later = client.post("/api/v1/surveys", json={**CAMPAIGN, "opens_on": "2027-01-05", "closes_on": "2027-01-20"},
                        headers=district["staff"].headers)
    assert later.json["status"] == "scheduled"
    assert declare(client, district["d1"], later.json["id"], line()).status_code == 404


def test_the_reminder_emails_each_verified_startups_person_once(client, district, session, clock):
    at = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.timezone.utc)
    for who in ("d1", "pending"):
        startup = session.get(Startup, district[who].startup_id)
        people.find_or_link(session, startup.uscc, f"{who}@example.com", "王芳", "legal_representative", at)
    session.commit()
    assert surveys.send_reminders(session, at) == 0  # 30 days before the close: not yet
    three_days_before = dt.datetime(2026, 12, 28, 1, 0, tzinfo=dt.timezone.utc)
    assert surveys.send_reminders(session, three_days_before) == 1
    assert surveys.send_reminders(session, three_days_before + dt.timedelta(days=1)) == 0  # once per survey
    emails = list(session.scalars(sa.select(OutboxEmail)))
    assert [(e.to_address, e.dedupe_key) for e in emails] == [("d1@example.com", f"survey:{district['id']}:person:"
                                                               f"{emails[0].dedupe_key.rsplit(':', 1)[1]}")]
    assert "2026-12-31" in emails[0].subject and "2027-Q1" in emails[0].body
