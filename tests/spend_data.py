"""A small district with known subsidy spend (issue 14, reports 3 and 6), built through the API and the
services as tests/e2e/test_settlement.py does: a voucher paying half the cost (cap ¥112,500 a firm a
year), one carrier's GPU lot at ¥250 an hour, two startups, usage, a settlement, release and a clawback.

The figures, by hand (Shanghai dates):

| when       | alpha (ai_models, 25 people: small)        | beta (smart_driving, 150 people: medium)       |
|------------|--------------------------------------------|------------------------------------------------|
| 2026-12-01 | 1000 h approved: cost 250,000, half is 125,000, capped: commit 112,500 | 200 h approved: commit 25,000 |
| 2026-12-10 | 400 h used: redeem 112,500 × 400/1000 = 45,000 |                                           |
| 2026-12-18 | 600 h used: redeem 67,500                  | 100 h used: redeem 12,500                      |
| 2027-01-04 | written off 112,500 (statement 2026-Q4)    | written off 12,500; unused 12,500 released; clawed back 12,500 (double subsidy) |

Totals: committed 137,500, redeemed 125,000, written off 125,000, released 12,500, clawed back 12,500.
Usage redeemed against: 1,100 h × ¥250 = 275,000, so leverage 125,000 / 275,000 = 0.4545.
At cap in 2026: alpha (committed 112,500 = the cap) of the two firms with an award: 50%.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from broker.models import Allocation, Award, Startup, UsageReport
from broker.services import subsidies

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), SHANGHAI).astimezone(dt.UTC)


def _ok(answer, status: int = 200):
    assert answer.status_code == status, answer.json
    return answer.json


def use(session, allocation_id: int, quantity: str, when: dt.datetime, external_id: str) -> None:
    """The carrier reports usage and it redeems the award pro rata (as provisioning.pull_usage does)."""
    allocation = session.get(Allocation, allocation_id)
    usage = UsageReport(carrier_id=allocation.offer.carrier_id, external_id=external_id, allocation_id=allocation_id,
                        quantity=Decimal(quantity), recorded_at=when)
    session.add(usage)
    session.flush()
    subsidies.redeem_usage(session, allocation, usage, when)
    session.commit()


def build_spend_district(client, session, make_actor, frozen_clock) -> dict:
    """The district of the table above. Returns the actors, the program, the carrier and the award ids."""
    clock = frozen_clock(at(dt.date(2026, 12, 1)))
    people = {name: make_actor("staff") for name in ("builder", "first", "second")}
    people["carrier"] = make_actor("carrier")
    people["alpha"] = make_actor("startup", sector="ai_models")
    people["beta"] = make_actor("startup", sector="smart_driving")
    session.get(Startup, people["beta"].startup_id).headcount = 150
    session.commit()
    staff = people["first"].headers
    _ok(client.post("/api/v1/offers", headers=people["carrier"].headers, json={"offers": [{
        "external_id": "big", "kind": "gpu", "region": "sh-changning", "attributes": {"gpu_model": "H100", "gpu_memory_gb": 80},
        "quantity": "10000", "window_start": "2026-12-01", "window_end": "2027-03-01", "list_price": "300",
        "unit_price": "250"}]}))
    program = _ok(client.post("/api/v1/subsidy-programs", headers=people["builder"].headers, json={
        "code": "voucher", "name": "算力券", "kinds": ["gpu"], "rate": "0.5", "cap_per_startup": "112500",
        "budget": "1000000", "funding_document": "沪经信智〔2025〕489号", "starts_on": "2026-01-01",
        "ends_on": "2027-07-01", "evidence_required": [], "requires_notice": False}), 201)
    requests = {name: _ok(client.post("/api/v1/requests", headers=people[name].headers, json={
        "kind": "gpu", "quantity": quantity, "window_start": "2026-12-07", "window_end": "2026-12-20"}), 201)["id"]
        for name, quantity in (("alpha", "1000"), ("beta", "200"))}
    _ok(client.post("/api/v1/cycles", json={}, headers=staff), 201)
    allocations = {}
    for name, request_id in requests.items():
        [allocation] = _ok(client.get(f"/api/v1/allocations?request_id={request_id}", headers=staff))
        _ok(client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=staff))
        allocations[name] = allocation["id"]

    use(session, allocations["alpha"], "400", at(dt.date(2026, 12, 10)), "u-1")
    use(session, allocations["alpha"], "600", at(dt.date(2026, 12, 18)), "u-2")
    use(session, allocations["beta"], "100", at(dt.date(2026, 12, 18)), "u-3")

    clock.set(at(dt.date(2027, 1, 4)))
    statement = _ok(client.post("/api/v1/settlements", json={"program": "voucher", "period": "2026-Q4"},
                                headers=people["builder"].headers), 201)
    for approver in ("first", "second"):
        _ok(client.post(f"/api/v1/settlements/{statement['id']}/approve",
                        json={"disbursement_reference": "ICBC-20270104-001"}, headers=people[approver].headers))
    _ok(client.post(f"/api/v1/subsidy-programs/{program['id']}/release-unused", json={"until": "2027-01-04"}, headers=staff))
    session.expire_all()
    awards = {name: session.scalar(sa.select(Award.id).where(Award.allocation_id == allocation_id))
              for name, allocation_id in allocations.items()}
    session.commit()  # end the read: on SQLite an open one would keep the app's next write waiting
    _ok(client.post(f"/api/v1/awards/{awards['beta']}/clawback", headers=staff,
                    json={"reason": "double_subsidy", "note": "已获市级算力补贴", "ban_until": "2030-01-01"}))
    return {**people, "clock": clock, "program": program, "allocations": allocations, "awards": awards}
