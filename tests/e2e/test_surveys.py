"""Demand surveys (需求摸排) through the API and the reminder job, on a small district with known numbers."""

import datetime as dt

import pytest
import sqlalchemy as sa

from broker.models import Carrier, OutboxEmail, Role, Startup, SurveyDeclaration
from broker.services import people, surveys
from broker.services.passwords import hash_password
from tests.conftest import make_uscc, statements_sent
from tests.e2e.test_console_sign_in import sign_in, token_of
from tests.e2e.test_staff_appeals import company_person_signed_in

PASSWORD = "需求摸排-2027-Q1-测试"

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


# -- the console ---------------------------------------------------------------------------------


def staff_signed_in(client, session):
    people.create_district_person(session, "wu.lei@changning.example.gov.cn", "吴磊", Role.staff, PASSWORD)
    session.commit()
    assert sign_in(client, "wu.lei@changning.example.gov.cn", PASSWORD).status_code == 303


def carrier_signed_in(client, session, carrier_id):
    session.execute(sa.update(Carrier).where(Carrier.id == carrier_id).values(uscc=make_uscc(901)))
    person = people.find_or_link(session, make_uscc(901), "zhao@carrier.example.cn", "赵强", "legal_representative", DEC_01_0900)
    person.password_hash = hash_password(PASSWORD)
    session.commit()
    assert sign_in(client, "zhao@carrier.example.cn", PASSWORD).status_code == 303


def founder_signed_in(app, client, session, district, who="d1"):
    company_person_signed_in(app, client, session, district[who].startup_id, f"{who}@example.com", DEC_01_0900)
    session.commit()


def form_line(client, **change):
    return {"csrf_token": token_of(client, "/portal/surveys"), "kind": "gpu", "quantity": "100", "region": "上海",
            "month": "2027-01-01", "max_unit_price": "10", "purpose": "自动驾驶模型训练", **change}


def test_staff_open_a_survey_from_the_console_and_a_bad_one_is_422(client, session, district):
    staff_signed_in(client, session)
    page = client.get("/staff/surveys").get_data(as_text=True)
    assert "2027年一季度算力需求摸排" in page and "填报中" in page
    body = {"csrf_token": token_of(client, "/staff/surveys"), "title": "2027年二季度摸排", "period": "2027-Q2",
            "opens_on": "2027-03-01", "closes_on": "2026-11-01", "kinds": ["gpu"]}
    bad = client.post("/staff/surveys", data=body)
    assert bad.status_code == 422 and "截止日期不能早于开始日期" in bad.get_data(as_text=True)
    assert len(surveys.campaigns(session, _staff(session), DEC_01_0900)) == 1
    good = client.post("/staff/surveys", data={**body, "closes_on": "2027-03-20"})
    assert good.status_code == 303 and "done=opened" in good.headers["Location"]
    assert "2027年二季度摸排" in client.get(good.headers["Location"]).get_data(as_text=True)


def _staff(session):
    from broker.models import Account
    return session.scalar(sa.select(Account).where(Account.role == Role.staff))


def test_a_founder_declares_revises_and_removes_from_the_portal_and_staff_see_the_aggregate(app, client, session, district):
    declare_district(client, district)
    founder_signed_in(app, client, session, district)
    assert client.post(f"/portal/surveys/{district['id']}/lines", data=form_line(client)).status_code == 303
    revised = client.post(f"/portal/surveys/{district['id']}/lines", data=form_line(client, quantity="60"))
    assert revised.status_code == 303
    page = client.get(revised.headers["Location"]).get_data(as_text=True)
    assert "已保存，截止前可随时修改。" in page and ">60 " in page and "自动驾驶模型训练" in page
    session.expire_all()
    mine = [d for d in session.scalars(sa.select(SurveyDeclaration)) if d.startup_id == district["d1"].startup_id]
    assert [d.quantity for d in mine] == [60]
    bad = client.post(f"/portal/surveys/{district['id']}/lines", data=form_line(client, month="2027-05-01", quantity="0"))
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "数量须大于 0" in text and "请选择本次摸排期间内的月份" in text
    other = session.scalar(sa.select(SurveyDeclaration.id).where(SurveyDeclaration.startup_id == district["d2"].startup_id))
    assert client.post(f"/portal/surveys/{district['id']}/lines/{other}/remove",
                       data={"csrf_token": token_of(client, "/portal/surveys")}).status_code == 404
    assert client.post(f"/portal/surveys/{district['id']}/lines/{mine[0].id}/remove",
                       data={"csrf_token": token_of(client, "/portal/surveys")}).status_code == 303
    assert session.get(SurveyDeclaration, other) is not None
    client.post("/sign-out", data={"csrf_token": token_of(client, "/portal/surveys")})
    staff_signed_in(client, session)
    page = client.get(f"/staff/surveys/{district['id']}").get_data(as_text=True)
    assert "已有 4 家企业填报" in page and "智能驾驶" in page and "★" in page and 'id="survey-chart"' in page


def test_a_closed_survey_is_read_only_in_the_portal(app, client, session, district, clock):
    declare(client, district["d1"], district["id"], line())
    clock.set(dt.datetime(2027, 1, 2, 1, 0, tzinfo=dt.timezone.utc))
    founder_signed_in(app, client, session, district)
    token = token_of(client, "/portal/surveys")
    page = client.get("/portal/surveys").get_data(as_text=True)
    assert "已截止" in page and "填报或修改一项需求" not in page and "模型训练" in page
    refused = client.post(f"/portal/surveys/{district['id']}/lines", data={**form_line(client), "csrf_token": token})
    assert refused.status_code == 409 and "该摸排已截止" in refused.get_data(as_text=True)


def test_the_carrier_sees_the_anonymised_demand_and_is_told_of_the_cells_left_out(client, session, district):
    declare_district(client, district)
    carrier_signed_in(client, session, district["carrier"].carrier_id)
    page = client.get("/carrier/demand").get_data(as_text=True)
    assert "180" in page and "另有 2 项因填报企业少于 3 家未予显示" in page
    assert "智能驾驶" not in page and "Startup" not in page
    client.post("/language", data={"language": "en", "csrf_token": token_of(client, "/carrier/demand"), "next": "/carrier/demand"})
    english = client.get("/carrier/demand").get_data(as_text=True)
    assert "Demand summary" in english and "2 more left out: fewer than 3 firms declared them." in english


def test_each_side_reaches_only_its_own_survey_pages(app, client, session, district):
    assert client.get("/staff/surveys").headers["Location"].startswith("/sign-in")
    assert client.get("/portal/surveys").headers["Location"].startswith("/sign-in")
    founder_signed_in(app, client, session, district)
    assert client.get("/staff/surveys").status_code == 403 and client.get("/carrier/demand").status_code == 403
    assert client.get(f"/staff/surveys/{district['id']}").status_code == 403
    client.post("/sign-out", data={"csrf_token": token_of(client, "/portal/surveys")})
    staff_signed_in(client, session)
    assert client.get("/portal/surveys").status_code == 403 and client.get("/carrier/demand").status_code == 403
    assert client.get("/staff/surveys/1000000").status_code == 404


def test_the_pages_send_as_many_statements_for_one_line_as_for_many(app, client, session, district):
    declare(client, district["d1"], district["id"], line())
    founder_signed_in(app, client, session, district)
    few = len(statements_sent(app, client, "/portal/surveys"))
    declare(client, district["d1"], district["id"], *[line(month=f"2027-0{m}-01", region=r) for m in (1, 2, 3) for r in "ABCDE"])
    assert len(statements_sent(app, client, "/portal/surveys")) == few
