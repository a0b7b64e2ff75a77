"""The matching cycle and staff decisions through the API, on a clock the test controls."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.models import Award, Offer
from broker.services import ledger
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask

MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Shanghai


@pytest.fixture
def clock(frozen_clock):
    return frozen_clock(MONDAY_0900)


@pytest.fixture
def market(client, make_actor, clock):
    """One carrier with a scarce H100 lot and plenty of tokens; three startups asking."""
    staff = make_actor("staff")
    carrier = make_actor("carrier")
    publish(
        client, carrier,
        gpu_offer("h100", quantity="1000", unit_price="10"),
        gpu_offer("tok", kind="tokens", attributes={"model": "telechat-2"}, quantity="100000", unit_price="2", list_price="4"),
    )
    driving = make_actor("startup", sector="smart_driving")
    models = make_actor("startup", sector="ai_models")
    culture = make_actor("startup", sector="digital_culture")
    window = {"window_start": "2026-12-07", "window_end": "2026-12-20"}
    ids = {}
    for name, actor, body in [
        ("driving_gpu", driving, ask(quantity="800", min_quantity="100", max_unit_price="20", regions=None, **window)),
        ("models_gpu", models, ask(quantity="800", min_quantity="100", max_unit_price="20", regions=None, **window)),
        ("culture_tokens", culture, {"kind": "tokens", "quantity": "5000", **window}),
        ("culture_cheap", culture, ask(quantity="10", max_unit_price="1", regions=None, min_quantity=None, **window)),
    ]:
        body = {k: v for k, v in body.items() if v is not None}
        response = client.post("/api/v1/requests", json=body, headers=actor.headers)
        assert response.status_code == 201, response.json
        ids[name] = response.json["id"]
    return {"staff": staff, "carrier": carrier, "driving": driving, "models": models, "culture": culture, "ids": ids}


def run(client, staff, dry_run=False):
    response = client.post("/api/v1/cycles/dry-run" if dry_run else "/api/v1/cycles", json={}, headers=staff.headers)
    assert response.status_code in (200, 201), response.json
    return response.json


def test_a_cycle_proposes_holds_capacity_and_explains_what_is_left_short(client, session, market):
    staff, ids = market["staff"], market["ids"]
    preview = run(client, staff, dry_run=True)
    assert preview["dry_run"] is True and preview["proposals"]
    assert session.scalar(sa.select(sa.func.sum(Offer.promised))) == 0  # a dry run holds nothing

    cycle = run(client, staff)
    assert cycle["status"] == "proposed"
    assert cycle["approval_deadline"] == "2026-12-02T18:00:00+08:00"  # 57 h: Wednesday 18:00
    stats = cycle["stats"]
    assert stats["proposals"] >= 3 and stats["gap"] is not None and stats["bound"] >= stats["objective"] - 1e-6
    reasons = {u["request_id"]: u["reason"] for u in stats["unfilled"]}
    assert reasons[ids["culture_cheap"]] == "price_ceiling"
    assert set(stats["fulfilment_by_sector"]) == {"smart_driving", "ai_models", "digital_culture"}

    allocations = client.get(f"/api/v1/allocations?cycle_id={cycle['id']}", headers=staff.headers).json
    by_request = {}
    for a in allocations:
        by_request.setdefault(a["request_id"], Decimal(0))
        by_request[a["request_id"]] += Decimal(a["quantity"])
    # Smart driving (a Lighthouse sector) weighs double and would take all 800, but the
    # policy's share cap holds one startup to half of the kind's supply.
    assert by_request[ids["driving_gpu"]] == 500
    assert reasons[ids["driving_gpu"]] == "share_cap"
    assert by_request[ids["models_gpu"]] == 500
    h100 = session.scalar(sa.select(Offer).where(Offer.external_id == "h100"))
    assert h100.promised == h100.quantity == 1000

    detail = client.get(f"/api/v1/cycles/{cycle['id']}", headers=staff.headers).json
    assert detail["stats"] == stats
    startup_view = client.get("/api/v1/requests", headers=market["driving"].headers).json[0]
    assert startup_view["status"] == "proposed"
    assert client.post("/api/v1/cycles", json={}, headers=market["driving"].headers).status_code == 403

    # A second cycle cannot promise the same units again.
    second = run(client, staff)
    assert second["stats"]["proposals"] == 0
    session.expire_all()
    assert session.scalar(sa.select(Offer.promised).where(Offer.external_id == "h100")) == 1000


def test_approve_reject_batch_and_deadline(client, session, market, clock):
    staff, carrier = market["staff"], market["carrier"]
    cycle = run(client, staff)
    proposals = client.get(f"/api/v1/allocations?cycle_id={cycle['id']}", headers=staff.headers).json
    first, second, *rest = proposals

    approved = client.post(f"/api/v1/allocations/{first['id']}/approve", json={}, headers=staff.headers)
    assert approved.status_code == 200 and approved.json["status"] == "approved"
    again = client.post(f"/api/v1/allocations/{first['id']}/approve", json={}, headers=staff.headers)
    assert again.status_code == 409
    no_reason = client.post(f"/api/v1/allocations/{second['id']}/reject", json={}, headers=staff.headers)
    assert no_reason.status_code == 422 and "reason" in no_reason.json["errors"]["json"]
    assert client.post(f"/api/v1/allocations/{second['id']}/approve", json={}, headers=carrier.headers).status_code == 403

    rejected = client.post(f"/api/v1/allocations/{second['id']}/reject", json={"reason": "重复申请"}, headers=staff.headers)
    assert rejected.status_code == 200 and rejected.json["decision_reason"] == "重复申请"
    offer = session.get(Offer, second["offer_id"])
    session.refresh(offer)
    held = sum(Decimal(p["quantity"]) for p in proposals if p["offer_id"] == offer.id and p["id"] != second["id"])
    assert offer.promised == held  # the rejected proposal's capacity went back

    batch = [{"allocation_id": p["id"], "decision": "approve"} for p in rest] + [
        {"allocation_id": first["id"], "decision": "approve"}
    ]
    refused = client.post(f"/api/v1/cycles/{cycle['id']}/decisions", json={"decisions": batch}, headers=staff.headers)
    assert refused.status_code == 409 and str(len(rest)) in refused.json["errors"]["json"]["decisions"]
    assert {client.get(f"/api/v1/allocations/{p['id']}", headers=staff.headers).json["status"] for p in rest} == {"proposed"}

    clock.advance(dt.timedelta(hours=58))  # past Wednesday 18:00
    late = client.post(f"/api/v1/cycles/{cycle['id']}/decisions", json={"decisions": batch[:-1]}, headers=staff.headers)
    assert late.status_code == 409 and "window" in str(late.json)


def test_undecided_proposals_lapse_and_their_capacity_returns(client, session, market, clock, app):
    from broker.services.cycles import close_approval_windows

    staff = market["staff"]
    cycle = run(client, staff)
    assert close_approval_windows(session, clock()) == 0  # not yet
    clock.advance(dt.timedelta(hours=57))
    lapsed = close_approval_windows(session, clock())
    assert lapsed == cycle["stats"]["proposals"]
    assert client.get(f"/api/v1/cycles/{cycle['id']}", headers=staff.headers).json["status"] == "closed"
    session.expire_all()
    assert session.scalar(sa.select(sa.func.sum(Offer.promised))) == 0
    request = client.get(f"/api/v1/requests/{market['ids']['driving_gpu']}", headers=staff.headers).json
    assert request["status"] == "submitted" and request["cycles_waited"] == 1
    events = client.get("/api/v1/events", headers=market["driving"].headers).json
    assert [e["type"] for e in events] == ["startup.verified", "allocation.proposed", "allocation.lapsed"]


def test_approval_commits_subsidy_within_budget_and_caps(client, session, market):
    staff = market["staff"]
    program = client.post(
        "/api/v1/subsidy-programs",
        json={"code": "tok", "name": "Tokens 专项补贴", "kinds": ["tokens"], "rate": "0.5", "cap_per_startup": "3000",
              "budget": "100000", "funding_document": "沪经信智〔2025〕489号", "starts_on": "2026-01-01",
              "ends_on": "2027-01-01"},
        headers=staff.headers,
    ).json
    offer_id = client.get("/api/v1/offers?kind=tokens", headers=staff.headers).json[0]["id"]
    culture = market["culture"]
    quote = client.get(f"/api/v1/offers/{offer_id}/quote?quantity=5000", headers=culture.headers).json
    # The startup sees its price before it asks: ¥10,000, of which the program pays its cap.
    assert (quote["gross"], quote["subsidy"], quote["net"]) == ("10000.00", "3000.00", "7000.00")
    assert quote["paid_by"] == [{"program": "tok", "amount": "3000.00"}]
    assert quote["programs"] == [{"program": "tok", "name": "Tokens 专项补贴", "pays": "3000.00", "alone": "3000.00",
                                  "reason": None}]
    assert quote["not_eligible"] == {}
    assert client.get(f"/api/v1/offers/{offer_id}/quote?quantity=5000", headers=staff.headers).status_code == 403
    assert client.get(f"/api/v1/offers/{offer_id}/quote?quantity=-1", headers=culture.headers).status_code == 422
    cycle = run(client, staff)
    tokens = next(
        a for a in client.get(f"/api/v1/allocations?cycle_id={cycle['id']}", headers=staff.headers).json
        if a["kind"] == "tokens"
    )
    client.post(f"/api/v1/allocations/{tokens['id']}/approve", json={}, headers=staff.headers)
    [award] = session.scalars(sa.select(Award).where(Award.allocation_id == tokens["id"])).all()
    # 5000 M tokens × ¥2 = ¥10,000; half is ¥5,000 but the per-startup cap is ¥3,000.
    assert award.amount == award.committed == Decimal("3000.00") and award.program_id == program["id"]
    assert ledger.reconcile(session).ok, ledger.reconcile(session).differences
    assert client.get(f"/api/v1/subsidy-programs/{program['id']}", headers=staff.headers).json["remaining"] == "97000.00"


def test_appeal_thread_on_a_rejected_allocation(client, market):
    staff, driving, models = market["staff"], market["driving"], market["models"]
    cycle = run(client, staff)
    mine = client.get("/api/v1/allocations", headers=driving.headers).json[0]
    assert client.post(f"/api/v1/allocations/{mine['id']}/appeals", json={"message": "为何?"}, headers=driving.headers).status_code == 409
    client.post(f"/api/v1/allocations/{mine['id']}/reject", json={"reason": "材料不全"}, headers=staff.headers)
    filed = client.post(f"/api/v1/allocations/{mine['id']}/appeals", json={"message": "已补充材料，请复核"}, headers=driving.headers)
    assert filed.status_code == 201
    assert client.post(f"/api/v1/allocations/{mine['id']}/appeals", json={"message": "again"}, headers=models.headers).status_code == 404
    answered = client.post(f"/api/v1/appeals/{filed.json['id']}/answer", json={"answer": "下周期优先处理"}, headers=staff.headers)
    assert answered.status_code == 200 and answered.json["status"] == "answered"
    thread = client.get(f"/api/v1/allocations/{mine['id']}/appeals", headers=driving.headers).json
    assert thread[0]["answer"] == "下周期优先处理"
    assert client.get("/api/v1/appeals", headers=models.headers).json == []
    feed = [e["type"] for e in client.get("/api/v1/events", headers=driving.headers).json]
    assert feed[-1] == "appeal.answered"
    audit = client.get(f"/api/v1/audit?entity_type=appeals&entity_id={filed.json['id']}", headers=staff.headers).json
    assert [e["action"] for e in audit] == ["answer", "create"]
    assert cycle["id"]


def test_a_startups_budget_per_cycle_bounds_what_it_is_proposed(client, market):
    staff, models = market["staff"], market["models"]
    client.patch(f"/api/v1/startups/{models.startup_id}", json={"cycle_budget": "2000"}, headers=models.headers)
    cycle = run(client, staff)
    mine = client.get(f"/api/v1/allocations?cycle_id={cycle['id']}", headers=models.headers).json
    spent = sum(Decimal(a["quantity"]) * Decimal(a["unit_price"]) for a in mine)
    assert 0 < spent <= 2000  # ¥10 a GPU-hour: at most 200 of the 800 it asked for
    reasons = {u["request_id"]: u["reason"] for u in cycle["stats"]["unfilled"]}
    assert reasons[market["ids"]["models_gpu"]] == "budget"
