"""Public notice (公示) through the API and the page: a batch of awards frozen over working days on
the Chinese calendar, read by anyone without a token and free of private data, an objection upheld
(the award leaves the batch by a reverse row), finalised only after the end with every objection
answered. On a clock the test controls, in September–October 2026 (Mid-autumn and National Day)."""

import datetime as dt
from decimal import Decimal

import chinese_calendar
import pytest
import sqlalchemy as sa

from broker.models import Award, AwardStatus, LedgerEntry, LedgerKind, Notice, NoticeState, Objection, Startup
from broker.services import ledger
from broker.workdays import add_working_days
from tests.e2e.test_ledger import program_body
from tests.e2e.test_offers import gpu_offer, publish

SHANGHAI_0900 = dt.timedelta(hours=-8, minutes=0)  # 09:00 in Shanghai is 01:00 UTC
START = dt.date(2026, 9, 29)  # a Tuesday, two working days before National Day (10/1–10/7 off)


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    """`hour` o'clock in Shanghai on `day`, as UTC."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc) + SHANGHAI_0900


@pytest.fixture
def district(client, make_actor, frozen_clock):
    clock = frozen_clock(at(dt.date(2026, 9, 21)))  # a Monday
    staff, carrier = make_actor("staff"), make_actor("carrier")
    startups = [make_actor("startup") for _ in range(3)]
    published = publish(client, carrier, gpu_offer("h100", quantity="1000", unit_price="10",
                                                   window_start="2026-09-21", window_end="2026-12-31"))
    assert published.status_code == 200, published.json
    program = client.post("/api/v1/subsidy-programs", json=program_body("model-voucher", name="模型券"), headers=staff.headers)
    assert program.status_code == 201, program.json
    return {"clock": clock, "staff": staff, "carrier": carrier, "startups": startups, "program": program.json}


def approve_for(client, staff, startup, quantity="100"):
    """The startup asks; a cycle proposes; staff approve. Returns the allocation's id."""
    asked = client.post("/api/v1/requests", json={"kind": "gpu", "quantity": quantity, "window_start": "2026-09-28",
                                                   "window_end": "2026-10-20"}, headers=startup.headers)
    assert asked.status_code == 201, asked.json
    assert client.post("/api/v1/cycles", json={}, headers=staff.headers).status_code == 201
    [allocation] = client.get(f"/api/v1/allocations?request_id={asked.json['id']}", headers=staff.headers).json
    approved = client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=staff.headers)
    assert approved.status_code == 200, approved.json
    return allocation["id"]


def award_of(session, allocation_id):
    session.expire_all()
    return session.scalar(sa.select(Award).where(Award.allocation_id == allocation_id))


@pytest.fixture
def awards(client, session, district):
    found = [award_of(session, approve_for(client, district["staff"], s, quantity)) for s, quantity in
             zip(district["startups"], ("100", "200", "300"))]
    assert [a.amount for a in found] == [Decimal("300.00"), Decimal("600.00"), Decimal("900.00")]
    return found


def freeze(client, staff, award_ids, starts_on=START, working_days=5, **extra):
    body = {"title": "2026年第三批模型券拟支持名单公示", "starts_on": starts_on.isoformat(), "working_days": working_days, **extra}
    if award_ids is not None:
        body["award_ids"] = award_ids
    return client.post("/api/v1/notices", json=body, headers=staff.headers)


def objection(client, notice_id, **overrides):
    body = {"name": "张三", "contact": "13800000000", "text": "该企业与供应商存在关联关系。", **overrides}
    return client.post(f"/api/v1/public/notices/{notice_id}/objections", json=body)


def notice_states(session, ids):
    session.expire_all()
    return [session.get(Award, i).notice_state for i in ids]


def test_a_notice_over_national_day_with_an_upheld_objection(client, session, district, awards):
    staff, clock = district["staff"], district["clock"]
    ids = [a.id for a in awards]
    frozen = freeze(client, staff, ids)
    assert frozen.status_code == 201, frozen.json
    notice = frozen.json
    # The end comes from the calendar: the five working days from START, counted on chinese-calendar's own tables.
    ends_on = dt.date.fromisoformat(notice["ends_on"])
    assert ends_on == add_working_days(START, 5)
    span = [START + dt.timedelta(days=d) for d in range((ends_on - START).days + 1)]
    assert sum(chinese_calendar.is_workday(d) for d in span) == 5 and chinese_calendar.is_workday(ends_on)
    assert any(chinese_calendar.is_holiday(d) and d.weekday() < 5 for d in span)  # it runs across the holiday
    assert notice_states(session, ids) == [NoticeState.in_notice] * 3

    # Anyone reads it, without a token: names, programs, amounts, and nothing private.
    public = client.get(f"/api/v1/public/notices/{notice['id']}")
    assert public.status_code == 200, public.json
    body = public.json
    assert body["ends_on"] == ends_on.isoformat() and body["timezone"] == "Asia/Shanghai"
    assert body["programs"] == ["模型券"]
    assert ends_on.isoformat() in body["ends"] and body["objections"]["until"] == ends_on.isoformat()
    assert body["objections"]["url"] == f"/api/v1/public/notices/{notice['id']}/objections"
    startups = [session.get(Startup, s.startup_id) for s in district["startups"]]
    assert [(i["startup_name"], i["program_name"], i["amount"], i["removed"]) for i in body["items"]] == [
        (s.name, "模型券", amount, False) for s, amount in zip(startups, ("300.00", "600.00", "900.00"))]
    assert all(set(i) == {"id", "startup_name", "program_name", "amount", "removed"} for i in body["items"])
    listed = client.get("/api/v1/public/notices")
    assert listed.status_code == 200 and [n["id"] for n in listed.json] == [notice["id"]]
    page = client.get(f"/notices/{notice['id']}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert all(s.name in html for s in startups) and "900.00" in html and "<script" not in html
    assert f"至 {ends_on.isoformat()}（北京时间）止" in html and "异议" in html
    for s in startups:
        for private in filter(None, (s.uscc, s.contact_name, s.contact_email, s.contact_phone)):
            assert private not in public.get_data(as_text=True) and private not in html and private not in listed.get_data(as_text=True)
    for private_key in ("award_id", "startup_id", "uscc", "allocation_id"):
        assert private_key not in public.get_data(as_text=True)
    assert client.get("/notices/999999").status_code == 404

    # A rename does not change the public list.
    old_name = startups[0].name
    session.execute(sa.update(Startup).where(Startup.id == startups[0].id).values(name="改名后的公司"))
    session.commit()
    assert client.get(f"/api/v1/public/notices/{notice['id']}").json["items"][0]["startup_name"] == old_name

    # Before it starts, no objection yet; during it, anyone may object.
    early = objection(client, notice["id"])
    assert early.status_code == 409 and START.isoformat() in early.json["message"]
    clock.set(at(dt.date(2026, 9, 30), 10))
    second = body["items"][1]["id"]
    lodged = objection(client, notice["id"], item_id=second)
    assert lodged.status_code == 201, lodged.json
    assert set(lodged.json) == {"id", "notice_id", "item_id", "lodged_at", "status"}
    general = objection(client, notice["id"], text="名单公示时间过短。")
    assert general.status_code == 201, general.json

    # Not final before the end.
    early_end = client.post(f"/api/v1/notices/{notice['id']}/finalise", headers=staff.headers)
    assert early_end.status_code == 409 and ends_on.isoformat() in early_end.json["message"]

    # Staff see the objections (a startup does not) and uphold the one against the second award.
    assert client.get("/api/v1/objections", headers=district["startups"][0].headers).status_code == 403
    seen = client.get(f"/api/v1/objections?notice_id={notice['id']}&status=open", headers=staff.headers).json
    assert [(o["id"], o["name"], o["contact"]) for o in seen] == [(lodged.json["id"], "张三", "13800000000"),
                                                                  (general.json["id"], "张三", "13800000000")]
    upheld = client.post(f"/api/v1/objections/{lodged.json['id']}/answer",
                         json={"decision": "upheld", "answer": "经核实，该企业与供应商存在关联关系，移出名单。"}, headers=staff.headers)
    assert upheld.status_code == 200, upheld.json
    assert upheld.json["status"] == "upheld" and upheld.json["answered_by"] == staff.account_id
    again = client.post(f"/api/v1/objections/{lodged.json['id']}/answer",
                        json={"decision": "dismissed", "answer": "再议"}, headers=staff.headers)
    assert again.status_code == 409
    session.expire_all()
    removed = session.get(Award, ids[1])
    assert (removed.status, removed.notice_state, removed.committed) == (AwardStatus.released, NoticeState.removed, Decimal("0.00"))
    rows = session.scalars(sa.select(LedgerEntry).where(LedgerEntry.award_id == removed.id).order_by(LedgerEntry.id)).all()
    assert [(r.kind, r.amount, r.reason) for r in rows] == [
        (LedgerKind.commit, Decimal("600.00"), None), (LedgerKind.reverse, Decimal("600.00"), "objection_upheld")]
    assert rows[1].reverses_id == rows[0].id
    program = client.get(f"/api/v1/subsidy-programs/{district['program']['id']}", headers=staff.headers).json
    assert program["committed"] == "1200.00"
    feed = client.get("/api/v1/events", headers=district["startups"][1].headers).json
    assert [e["payload"]["given_back"] for e in feed if e["type"] == "subsidy.award_removed"] == ["600.00"]
    assert not [e for e in client.get("/api/v1/events", headers=district["startups"][0].headers).json
                if e["type"] == "subsidy.award_removed"]
    assert ledger.reconcile(session).ok
    assert client.get(f"/api/v1/public/notices/{notice['id']}").json["items"][1]["removed"] is True

    # After its last working day: no more objections, and 409 names the end date.
    clock.set(at(ends_on + dt.timedelta(days=1)))
    late = objection(client, notice["id"])
    assert late.status_code == 409 and f"ended on {ends_on.isoformat()}" in late.json["message"]
    # An objection still open holds the batch back; answered, it becomes final.
    held = client.post(f"/api/v1/notices/{notice['id']}/finalise", headers=staff.headers)
    assert held.status_code == 409 and str(general.json["id"]) in held.json["message"]
    assert client.post(f"/api/v1/objections/{general.json['id']}/answer",
                       json={"decision": "dismissed", "answer": "公示期符合规定。"}, headers=staff.headers).status_code == 200
    assert client.post(f"/api/v1/notices/{notice['id']}/finalise", headers=district["startups"][0].headers).status_code == 403
    final = client.post(f"/api/v1/notices/{notice['id']}/finalise", headers=staff.headers)
    assert final.status_code == 200, final.json
    assert final.json["status"] == "final" and final.json["finalised_at"]
    assert notice_states(session, ids) == [NoticeState.final, NoticeState.removed, NoticeState.final]
    assert client.post(f"/api/v1/notices/{notice['id']}/finalise", headers=staff.headers).status_code == 409
    assert client.get(f"/api/v1/public/notices/{notice['id']}").json["status"] == "final"
    assert "名单已确定" in client.get(f"/notices/{notice['id']}").get_data(as_text=True)
    assert ledger.reconcile(session).ok


def test_bad_input_is_refused_naming_the_field_and_changes_nothing(client, session, district, awards):
    staff = district["staff"]
    first = freeze(client, staff, [awards[0].id])
    assert first.status_code == 201, first.json
    notice_id = first.json["id"]
    before = (session.scalar(sa.select(sa.func.count(Notice.id))), notice_states(session, [a.id for a in awards]))

    # Freezing: an award already noticed, one that does not exist, and other shapes refused.
    bad_batches = [
        ({"award_ids": [awards[1].id, awards[0].id]}, 422, "award_ids", "already in_notice"),
        ({"award_ids": [awards[1].id, 999999]}, 422, "award_ids", "No such award"),
        ({"award_ids": []}, 422, "award_ids", ""),
        ({"award_ids": [awards[1].id], "working_days": 0}, 422, "working_days", ""),
        ({"award_ids": [awards[1].id], "working_days": 61}, 422, "working_days", ""),
        ({"award_ids": [awards[1].id], "working_days": "5"}, 422, "working_days", ""),
        ({"award_ids": [awards[1].id], "starts_on": dt.date(2026, 9, 1)}, 422, "starts_on", "Before today"),
        ({"award_ids": [awards[1].id], "program": "model-voucher", "fiscal_year": 2026}, 422, "award_ids", ""),
        ({"award_ids": None, "program": "model-voucher"}, 422, "fiscal_year", ""),
        ({"award_ids": None, "program": "nope", "fiscal_year": 2026}, 422, "program", "No program"),
        ({"award_ids": [awards[1].id], "colour": "red"}, 422, "colour", ""),
    ]
    for overrides, status, field, words in bad_batches:
        body = {"award_ids": None, **overrides}
        starts_on = body.pop("starts_on", START)
        working_days = body.pop("working_days", 5)
        response = freeze(client, staff, body.pop("award_ids"), starts_on=starts_on, working_days=working_days, **body)
        assert response.status_code == status, (overrides, response.json)
        assert field in str(response.json["errors"]) and words in str(response.json), (overrides, response.json)
    # A notice that reaches into 2027: the State Council's schedule for it is not in the calendar library yet.
    late_year = freeze(client, staff, [awards[1].id], starts_on=dt.date(2026, 12, 28), working_days=10)
    assert late_year.status_code == 422, late_year.json
    assert "2027" in late_year.json["message"] and "State Council" in late_year.json["message"]
    assert "working_days" in late_year.json["errors"]["json"]
    assert freeze(client, district["startups"][0], [awards[1].id]).status_code == 403
    blank_title = freeze(client, staff, [awards[1].id], title=" ")
    assert blank_title.status_code == 422 and "title" in blank_title.json["errors"]["json"]

    # Objections: blank, over-long, missing fields, an item of another notice, an unknown notice.
    district["clock"].set(at(START))
    item_id = client.get(f"/api/v1/public/notices/{notice_id}").json["items"][0]["id"]
    bad_objections = [
        ({"text": ""}, 422, "text"),
        ({"text": "   "}, 422, "text"),
        ({"text": "异" * 2001}, 422, "text"),
        ({"name": "x" * 101}, 422, "name"),
        ({"contact": ""}, 422, "contact"),
        ({"item_id": item_id + 1000}, 422, "item_id"),
        ({"item_id": 0}, 422, "item_id"),
        ({"uscc": "x"}, 422, "uscc"),
    ]
    for overrides, status, field in bad_objections:
        response = objection(client, notice_id, **overrides)
        assert response.status_code == status, (overrides, response.json)
        assert field in response.json["errors"]["json"], response.json
    assert objection(client, 999999).status_code == 404
    assert objection(client, notice_id, text="异" * 2000).status_code == 201  # the limit itself is fine
    assert session.scalar(sa.select(sa.func.count(Objection.id))) == 1

    # Answers: an unknown decision, no answer, upholding an objection to the batch as a whole.
    [lodged] = client.get("/api/v1/objections", headers=staff.headers).json
    for body, field in (({"decision": "maybe", "answer": "x"}, "decision"), ({"decision": "dismissed"}, "answer"),
                        ({"decision": "upheld", "answer": "x"}, "decision")):
        response = client.post(f"/api/v1/objections/{lodged['id']}/answer", json=body, headers=staff.headers)
        assert response.status_code == 422 and field in response.json["errors"]["json"], (body, response.json)
    assert client.post("/api/v1/objections/999999/answer", json={"decision": "dismissed", "answer": "x"},
                       headers=staff.headers).status_code == 404
    after = (session.scalar(sa.select(sa.func.count(Notice.id))), notice_states(session, [a.id for a in awards]))
    assert after == before
    assert ledger.reconcile(session).ok


def test_a_batch_by_program_and_year_takes_only_committed_awards_not_yet_noticed(client, session, district, awards):
    staff = district["staff"]
    assert freeze(client, staff, [awards[0].id]).status_code == 201
    cancelled = client.post(f"/api/v1/allocations/{awards[1].allocation_id}/cancel", json={"reason": "企业放弃"},
                            headers=staff.headers)
    assert cancelled.status_code == 200, cancelled.json
    batch = freeze(client, staff, None, program="model-voucher", fiscal_year=2026)
    assert batch.status_code == 201, batch.json
    assert [i["award_id"] for i in batch.json["items"]] == [awards[2].id]
    assert batch.json["program_id"] == district["program"]["id"] and batch.json["fiscal_year"] == 2026
    again = freeze(client, staff, None, program="model-voucher", fiscal_year=2026)
    assert again.status_code == 422 and "program" in again.json["errors"]["json"]
    # A program that goes without a notice is refused by name.
    other = client.post("/api/v1/subsidy-programs", json=program_body("no-notice", requires_notice=False), headers=staff.headers)
    assert other.status_code == 201, other.json
    refused = freeze(client, staff, None, program="no-notice", fiscal_year=2026)
    assert refused.status_code == 422 and "does not require" in str(refused.json["errors"])


def test_the_daily_job_finalises_ended_notices_with_every_objection_answered(app, client, session, district, awards):
    from scheduler import jobs

    staff, clock = district["staff"], district["clock"]
    quiet = freeze(client, staff, [awards[0].id]).json
    contested = freeze(client, staff, [awards[1].id, awards[2].id]).json
    clock.set(at(START))
    assert objection(client, contested["id"]).status_code == 201
    ended = dt.date.fromisoformat(quiet["ends_on"])
    jobs.finalise_notices(app, at(ended, 23))  # its last day is not over yet
    assert notice_states(session, [awards[0].id]) == [NoticeState.in_notice]
    jobs.finalise_notices(app, at(ended + dt.timedelta(days=1), 0))
    assert notice_states(session, [a.id for a in awards]) == [NoticeState.final, NoticeState.in_notice, NoticeState.in_notice]
    statuses = {n["id"]: n["status"] for n in client.get("/api/v1/public/notices").json}
    assert statuses == {quiet["id"]: "final", contested["id"]: "open"}
    assert ledger.reconcile(session).ok


def test_an_upheld_objection_voids_the_award_whole_usage_redeemed_so_far_included(client, session, district, awards):
    from broker.models import Allocation, UsageReport
    from broker.services import subsidies

    staff, clock = district["staff"], district["clock"]
    target = awards[1]  # ¥600 on 200 GPU-hours
    allocation = session.get(Allocation, target.allocation_id)
    usage = UsageReport(carrier_id=allocation.offer.carrier_id, external_id="u-early", allocation_id=allocation.id,
                        quantity=Decimal(50), recorded_at=clock())
    session.add(usage)
    session.flush()
    assert subsidies.redeem_usage(session, allocation, usage, clock()) == Decimal("150.00")  # a quarter used
    notice = freeze(client, staff, [target.id]).json
    clock.set(at(START))
    item = client.get(f"/api/v1/public/notices/{notice['id']}").json["items"][0]
    lodged = objection(client, notice["id"], item_id=item["id"])
    assert lodged.status_code == 201, lodged.json
    upheld = client.post(f"/api/v1/objections/{lodged.json['id']}/answer",
                         json={"decision": "upheld", "answer": "经核实，移出名单。"}, headers=staff.headers)
    assert upheld.status_code == 200, upheld.json
    session.expire_all()
    voided = session.get(Award, target.id)
    assert (voided.committed, voided.redeemed, voided.status) == (Decimal("0.00"), Decimal("0.00"), AwardStatus.released)
    rows = session.scalars(sa.select(LedgerEntry).where(LedgerEntry.award_id == target.id).order_by(LedgerEntry.id)).all()
    assert [(r.kind, r.amount, r.reason) for r in rows] == [
        (LedgerKind.commit, Decimal("600.00"), None), (LedgerKind.redeem, Decimal("150.00"), None),
        (LedgerKind.reverse, Decimal("150.00"), "objection_upheld"), (LedgerKind.reverse, Decimal("600.00"), "objection_upheld")]
    feed = client.get("/api/v1/events", headers=district["startups"][1].headers).json
    assert [e["payload"]["given_back"] for e in feed if e["type"] == "subsidy.award_removed"] == ["600.00"]
    assert ledger.reconcile(session).ok
