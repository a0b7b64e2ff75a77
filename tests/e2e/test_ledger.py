"""The subsidy ledger through the API: the best program pays (or an allowed stack), every movement is
a row, balances come from the rows and reconcile, bad input changes nothing, and each side sees
only its own money. On a clock the test controls, with a real cycle making the allocations."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.models import Award, LedgerEntry, SubsidyProgram
from broker.services import ledger
from tests.e2e.test_offers import gpu_offer, publish

MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Shanghai
WINDOW = {"window_start": "2026-12-07", "window_end": "2026-12-20"}
DOCUMENT = "沪经信智〔2025〕489号"


def program_body(code, **overrides):
    body = {"code": code, "name": f"补贴 {code}", "kinds": ["gpu"], "rate": "0.3", "cap_per_startup": "100000",
            "budget": "1000000", "funding_document": DOCUMENT, "starts_on": "2026-01-01", "ends_on": "2027-01-01"}
    return {**body, **overrides}


@pytest.fixture
def district(client, make_actor, frozen_clock):
    frozen_clock(MONDAY_0900)
    staff, carrier, startup = make_actor("staff"), make_actor("carrier"), make_actor("startup")
    publish(client, carrier,
            gpu_offer("h100", quantity="1000", unit_price="10"),
            gpu_offer("ascend", attributes={"gpu_model": "910B", "gpu_memory_gb": 64}, quantity="1000", unit_price="10"))
    return {"staff": staff, "carrier": carrier, "startup": startup}


def open_program(client, staff, code, **overrides):
    response = client.post("/api/v1/subsidy-programs", json=program_body(code, **overrides), headers=staff.headers)
    assert response.status_code == 201, response.json
    return response.json


def approve_one(client, district, quantity="100", gpu_model=None):
    """The startup asks for `quantity` GPU-hours; a cycle proposes; staff approve. Returns the allocation."""
    body = {"kind": "gpu", "quantity": quantity, **WINDOW}
    if gpu_model:
        body["attributes"] = {"gpu_model": gpu_model}
    asked = client.post("/api/v1/requests", json=body, headers=district["startup"].headers)
    assert asked.status_code == 201, asked.json
    cycle = client.post("/api/v1/cycles", json={}, headers=district["staff"].headers)
    assert cycle.status_code == 201, cycle.json
    [allocation] = client.get(f"/api/v1/allocations?request_id={asked.json['id']}", headers=district["staff"].headers).json
    approved = client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=district["staff"].headers)
    assert approved.status_code == 200, approved.json
    return approved.json


def awards_of(session, allocation_id):
    session.expire_all()
    return {a.program.code: a for a in session.scalars(sa.select(Award).where(Award.allocation_id == allocation_id))}


def test_the_best_program_pays_not_the_oldest(client, session, district):
    staff = district["staff"]
    open_program(client, staff, "old-voucher", rate="0.2")
    open_program(client, staff, "new-voucher", rate="0.4")
    allocation = approve_one(client, district)  # 100 GPU-hours at ¥10
    assert (allocation["gross"], allocation["subsidy"], allocation["net"]) == ("1000.00", "400.00", "600.00")
    assert [(a["program"], a["mode"], a["amount"]) for a in allocation["awards"]] == [("new-voucher", "after", "400.00")]
    mine = client.get(f"/api/v1/allocations?request_id={allocation['request_id']}", headers=district["startup"].headers).json
    assert mine[0]["net"] == "600.00"
    awards = awards_of(session, allocation["id"])
    assert set(awards) == {"new-voucher"}  # 从优不重复: one program, the one that gives the most
    assert awards["new-voucher"].amount == Decimal("400.00") == awards["new-voucher"].committed
    rows = client.get(f"/api/v1/ledger?award_id={awards['new-voucher'].id}", headers=staff.headers).json
    assert [(r["kind"], r["amount"]) for r in rows] == [("commit", "400.00")]
    assert ledger.reconcile(session).ok


def test_a_stack_group_pays_together_within_its_combined_cap(client, session, district):
    staff = district["staff"]
    group = client.post("/api/v1/subsidy-stack-groups", json={"code": "city-district", "name": "市区协同", "combined_cap": "0.6"},
                        headers=staff.headers)
    assert group.status_code == 201, group.json
    open_program(client, staff, "city", rate="0.3", stack_group="city-district")
    open_program(client, staff, "district", rate="0.5", stack_group="city-district")
    open_program(client, staff, "solo", rate="0.55")
    offer_id = client.get("/api/v1/offers?kind=gpu", headers=staff.headers).json[0]["id"]
    quote = client.get(f"/api/v1/offers/{offer_id}/quote?quantity=100", headers=district["startup"].headers).json
    # Alone: 30%, 50%, 55%. Together the city and district programs pay 60% (their cap), more than any alone.
    assert quote["paid_by"] == [{"program": "city", "amount": "100.00"}, {"program": "district", "amount": "500.00"}]
    assert (quote["subsidy"], quote["net"]) == ("600.00", "400.00")
    lines = {line["program"]: line for line in quote["programs"]}
    assert lines["solo"]["alone"] == "550.00" and "another program pays more" in lines["solo"]["reason"]
    allocation = approve_one(client, district)
    awards = awards_of(session, allocation["id"])
    assert {code: a.amount for code, a in awards.items()} == {"city": Decimal("100.00"), "district": Decimal("500.00")}
    assert ledger.reconcile(session).ok


def test_rates_follow_what_is_supplied_and_caps_bind_per_allocation_and_year(client, session, district):
    staff = district["staff"]
    open_program(client, staff, "voucher", rate="0.3", cap_per_allocation="450", cap_per_startup="700",
                 rate_rules=[{"rate": "0.5", "attributes": {"gpu_model": ["910B"]}}])
    domestic = approve_one(client, district, gpu_model="910B")  # ¥1,000 at 50% = ¥500, capped per allocation at ¥450
    assert awards_of(session, domestic["id"])["voucher"].amount == Decimal("450.00")
    assert awards_of(session, domestic["id"])["voucher"].rate == Decimal("0.5")
    other = approve_one(client, district, gpu_model="H100")  # 30% = ¥300, but only ¥250 of the year's ¥700 cap is left
    assert awards_of(session, other["id"])["voucher"].amount == Decimal("250.00")
    third = approve_one(client, district, gpu_model="H100")
    assert awards_of(session, third["id"]) == {}  # the cap is used up: no award, no row
    balance = client.get("/api/v1/ledger/balances?by=program,startup,fiscal_year", headers=district["startup"].headers).json
    assert [(b["fiscal_year"], b["committed"]) for b in balance] == [(2026, "700.00")]
    assert ledger.reconcile(session).ok


def test_eligibility_window_kinds_suppliers_and_pauses_are_explained(client, session, district):
    staff = district["staff"]
    later = open_program(client, staff, "next-year", starts_on="2027-01-01", ends_on="2028-01-01")
    open_program(client, staff, "tokens-only", kinds=None, excluded_kinds=["gpu"])
    open_program(client, staff, "other-carrier", supplier_carrier_ids=[999])
    paused = open_program(client, staff, "paused")
    assert client.post(f"/api/v1/subsidy-programs/{paused['id']}/pause", headers=district["startup"].headers).status_code == 403
    assert client.post(f"/api/v1/subsidy-programs/{paused['id']}/pause", headers=staff.headers).json["status"] == "paused"
    assert client.post(f"/api/v1/subsidy-programs/{paused['id']}/pause", headers=staff.headers).status_code == 409
    offer_id = client.get("/api/v1/offers?kind=gpu", headers=staff.headers).json[0]["id"]
    quote = client.get(f"/api/v1/offers/{offer_id}/quote?quantity=100", headers=district["startup"].headers).json
    assert quote["subsidy"] == "0.00" and quote["paid_by"] == []
    reasons = quote["not_eligible"]
    assert "outside the program's period" in reasons["next-year"]
    assert reasons["tokens-only"] == "program does not cover gpu"
    assert reasons["other-carrier"] == "supplier not on the program's list"
    assert reasons["paused"] == "program paused"
    # Staff move the period: a change of terms, audited, for awards from now on.
    moved = client.patch(f"/api/v1/subsidy-programs/{later['id']}", json={"starts_on": "2026-12-01"}, headers=staff.headers)
    assert moved.status_code == 200, moved.json
    assert client.post(f"/api/v1/subsidy-programs/{paused['id']}/reopen", headers=staff.headers).json["status"] == "open"
    allocation = approve_one(client, district)
    assert set(awards_of(session, allocation["id"])) == {"next-year"}  # equal terms: the lower id wins, every time


def test_deposits_and_adjustments_are_rows_and_bad_ones_change_nothing(client, session, district):
    staff = district["staff"]
    program = open_program(client, staff, "voucher", budget="1000", cap_per_startup="1000")
    url = f"/api/v1/subsidy-programs/{program['id']}"
    before = client.get("/api/v1/ledger", headers=staff.headers).json
    bad = [
        ("deposits", {"amount": "-5", "funding_document": DOCUMENT}, 422, "amount"),
        ("deposits", {"amount": "5"}, 422, "funding_document"),
        ("adjustments", {"amount": "-5", "note": "录入错误"}, 422, "reason"),
        ("adjustments", {"amount": "-5", "reason": "mistake", "note": "x"}, 422, "reason"),
        ("adjustments", {"amount": "0", "reason": "correction", "note": "x"}, 422, "amount"),
    ]
    for path, body, status, field in bad:
        response = client.post(f"{url}/{path}", json=body, headers=staff.headers)
        assert response.status_code == status, (body, response.json)
        assert field in str(response.json["errors"]), response.json
    assert client.post(f"{url}/deposits", json={"amount": "5", "funding_document": DOCUMENT},
                       headers=district["startup"].headers).status_code == 403
    assert client.get("/api/v1/ledger", headers=staff.headers).json == before
    approve_one(client, district)  # ¥300 committed
    cut = client.post(f"{url}/adjustments", json={"amount": "-800", "reason": "correction", "note": "预算调减"}, headers=staff.headers)
    assert cut.status_code == 409 and "left" in cut.json["message"]  # the budget can't fall below what is committed
    raised = client.post(f"{url}/deposits", json={"amount": "2000", "funding_document": "浦科经委〔2026〕12号"}, headers=staff.headers)
    assert raised.status_code == 201 and raised.json["reference"] == "浦科经委〔2026〕12号"
    shown = client.get(url, headers=staff.headers).json
    assert (shown["budget"], shown["committed"], shown["remaining"]) == ("3000.00", "300.00", "2700.00")
    assert ledger.reconcile(session).ok


def test_rows_are_immutable_and_reconciliation_finds_a_tampered_total(client, session, district):
    open_program(client, district["staff"], "voucher")
    approve_one(client, district)
    row = session.scalar(sa.select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(1))
    for statement in (sa.update(LedgerEntry).where(LedgerEntry.id == row.id).values(amount=1),
                      sa.delete(LedgerEntry).where(LedgerEntry.id == row.id)):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with session.begin_nested():
                session.execute(statement)
    session.execute(sa.update(SubsidyProgram).values(committed=SubsidyProgram.committed + Decimal("0.01")))
    result = ledger.reconcile(session)
    assert not result.ok
    assert [(d.balance, d.stored - d.derived) for d in result.differences] == [("committed", Decimal("0.01"))]


def test_each_side_sees_only_its_own_money(client, session, district, make_actor):
    open_program(client, district["staff"], "voucher")
    allocation = approve_one(client, district)
    award = awards_of(session, allocation["id"])["voucher"]
    stranger, other_carrier = make_actor("startup"), make_actor("carrier")
    assert [r["kind"] for r in client.get("/api/v1/ledger", headers=district["startup"].headers).json] == ["commit"]
    assert [r["kind"] for r in client.get("/api/v1/ledger", headers=district["carrier"].headers).json] == ["commit"]
    assert client.get("/api/v1/ledger", headers=stranger.headers).json == []
    assert client.get("/api/v1/ledger", headers=other_carrier.headers).json == []
    assert client.get(f"/api/v1/awards/{award.id}", headers=stranger.headers).status_code == 404
    mine = client.get(f"/api/v1/awards/{award.id}", headers=district["startup"].headers).json
    assert [e["kind"] for e in mine["entries"]] == ["commit"] and mine["amount"] == "300.00"
    assert client.get("/api/v1/ledger/balances", headers=stranger.headers).json == []
    staff_view = client.get("/api/v1/ledger?kind=deposit", headers=district["staff"].headers).json
    assert [r["reference"] for r in staff_view] == [DOCUMENT]


def test_a_free_allotment_covers_its_units_once_a_year(client, session, district):
    staff = district["staff"]
    # 150 free GPU-hours of listed models per startup per year, no cash value: the carrier claims it.
    open_program(client, staff, "free-hours", mode="allotment", claimant="carrier", rate="1", allotment_per_startup="150",
                 rate_rules=[], supplier_offer_ids=None)
    first = approve_one(client, district, quantity="100")  # all 100 hours free: ¥1,000 at the offer's price
    second = approve_one(client, district, quantity="100")  # only the 50 hours left this year
    awards = [awards_of(session, a["id"])["free-hours"] for a in (first, second)]
    assert [(a.quantity, a.amount, a.rate, a.claimant.value) for a in awards] == [
        (Decimal("100.000"), Decimal("1000.00"), Decimal("1"), "carrier"), (Decimal("50.000"), Decimal("500.00"), Decimal("1"), "carrier")]
    assert (second["gross"], second["subsidy"], second["net"]) == ("1000.00", "500.00", "500.00")
    third = approve_one(client, district, quantity="100")
    assert awards_of(session, third["id"]) == {}  # the year's allotment is used up
    offer_id = client.get("/api/v1/offers?kind=gpu", headers=staff.headers).json[0]["id"]
    quote = client.get(f"/api/v1/offers/{offer_id}/quote?quantity=10", headers=district["startup"].headers).json
    assert quote["not_eligible"]["free-hours"] == "its allotment is used up"
    assert ledger.reconcile(session).ok
