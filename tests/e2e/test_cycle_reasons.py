"""Every reason a cycle gives for a request left short, each built across two cycles.

Cycle 1's proposals (or its approved grants) hold capacity; cycle 2's requests are then left
short for one cause each, and the cycle report must name that cause, not a nearer-looking
one. Everything goes through the API on a real database, on a clock the test controls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.models import Offer
from tests.e2e.test_cycle_workflow import MONDAY_0900
from tests.e2e.test_offers import gpu_offer, publish



def gpu(quantity: str, **overrides) -> dict:
    """A request for H100 hours in the first half of December, any region, at most ¥15."""
    body = {
        "kind": "gpu",
        "quantity": quantity,
        "attributes": {"gpu_model": ["H100"]},
        "window_start": "2026-12-01",
        "window_end": "2026-12-15",
        "max_unit_price": "15",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@dataclass
class Case:
    offers: list[dict]
    first: dict[str, dict]  # cycle 1's requests by label: they hold the capacity
    held: dict[str, str]  # offer external id -> what cycle 1 must have left promised on it
    second: dict[str, dict]  # cycle 2's requests by label
    unfilled: dict[str, str]  # cycle 2's report: label -> reason
    share_cap: str = "1"
    budgets: dict[str, str] = field(default_factory=dict)  # label -> cycle budget
    sectors: dict[str, str] = field(default_factory=dict)  # label -> sector (default ai_models)
    approve_first: bool = False  # approve cycle 1's proposals before cycle 2 runs


CASES = {
    # The finding: the only compatible lot is fully held, another lot's window does not fit.
    "capacity_held: fully held by proposals (was window)": Case(
        offers=[gpu_offer("h100", unit_price="10"),
                gpu_offer("h100-late", unit_price="10", window_start="2027-01-01")],
        first={"holder": gpu("1000")}, held={"h100": "1000", "h100-late": "0"},
        second={"asker": gpu("500")}, unfilled={"asker": "capacity_held"},
    ),
    "capacity_held: fully held by approved grants (was window)": Case(
        offers=[gpu_offer("h100", unit_price="10"),
                gpu_offer("h100-late", unit_price="10", window_start="2027-01-01")],
        first={"holder": gpu("1000")}, held={"h100": "1000"}, approve_first=True,
        second={"asker": gpu("500")}, unfilled={"asker": "capacity_held"},
    ),
    "capacity_held: the rest of a partly held lot (was capacity_taken)": Case(
        offers=[gpu_offer("h100", unit_price="10")],
        first={"holder": gpu("800")}, held={"h100": "800"},
        second={"asker": gpu("500")}, unfilled={"asker": "capacity_held"},
    ),
    "capacity_held: what is left is below the minimum (was below_minimum)": Case(
        offers=[gpu_offer("h100", unit_price="10")],
        first={"holder": gpu("800")}, held={"h100": "800"},
        second={"asker": gpu("500", min_quantity="300")}, unfilled={"asker": "capacity_held"},
    ),
    "capacity_held: its budget couldn't have paid either (was budget)": Case(
        offers=[gpu_offer("h100", unit_price="10")],
        first={"holder": gpu("800")}, held={"h100": "800"},
        second={"asker": gpu("500", min_quantity="300")}, budgets={"asker": "1000"},
        unfilled={"asker": "capacity_held"},
    ),
    "capacity_held: a whole data line (was no_compatible_offer)": Case(
        offers=[gpu_offer("line", kind="data_line", quantity="100", unit_price="10",
                          attributes={"a_end": "sh", "z_end": "hk"})],
        first={"holder": {**gpu("100", kind="data_line"), "attributes": {"z_end": ["hk"]}}},
        held={"line": "100"},
        second={"asker": {**gpu("100", kind="data_line"), "attributes": {"z_end": ["hk"]}}},
        unfilled={"asker": "capacity_held"},
    ),
    "below_minimum: more than the lot ever had": Case(
        offers=[gpu_offer("h100", unit_price="10")],
        first={"holder": gpu("800")}, held={"h100": "800"},
        second={"asker": gpu("1500", min_quantity="1200")}, unfilled={"asker": "below_minimum"},
    ),
    "capacity_taken: a higher-ranked request of this cycle": Case(
        offers=[gpu_offer("h100", unit_price="10")],
        first={"holder": gpu("600")}, held={"h100": "600"},
        second={"winner": gpu("400"), "loser": gpu("400", min_quantity="100")},
        sectors={"winner": "smart_driving", "loser": "digital_culture"},
        unfilled={"loser": "capacity_taken"},
    ),
    "capacity_short: it got every unit there is (was capacity_taken)": Case(
        offers=[gpu_offer("h100", unit_price="10"),
                gpu_offer("a100", unit_price="10", attributes={"gpu_model": "A100", "gpu_memory_gb": 80})],
        first={"holder": gpu("1000", attributes={"gpu_model": ["A100"]})}, held={"a100": "1000", "h100": "0"},
        second={"asker": gpu("1500")}, unfilled={"asker": "capacity_short"},
    ),
    "share_cap": Case(
        offers=[gpu_offer("h100", unit_price="10")], share_cap="0.5",
        first={"holder": gpu("400")}, held={"h100": "400"},
        second={"asker": gpu("500")}, unfilled={"asker": "share_cap"},
    ),
    "budget": Case(
        offers=[gpu_offer("h100", unit_price="10")],
        first={"holder": gpu("500")}, held={"h100": "500"},
        second={"asker": gpu("400")}, budgets={"asker": "2000"}, unfilled={"asker": "budget"},
    ),
    "price_ceiling: the lot that fits is dearer, and fully held (was no_compatible_offer)": Case(
        offers=[gpu_offer("h100", unit_price="20"),
                gpu_offer("a100", unit_price="5", attributes={"gpu_model": "A100", "gpu_memory_gb": 80})],
        first={"holder": gpu("1000", max_unit_price="25")}, held={"h100": "1000", "a100": "0"},
        second={"asker": gpu("500")}, unfilled={"asker": "price_ceiling"},
    ),
    "window: no lot covers it, the nearest fully held (was no_compatible_offer)": Case(
        offers=[gpu_offer("h100", unit_price="10", window_end="2026-12-10")],
        first={"holder": gpu("1000", window_end="2026-12-10")}, held={"h100": "1000"},
        second={"asker": gpu("500", window_end="2026-12-20")}, unfilled={"asker": "window"},
    ),
    "region: the lot is elsewhere, and fully held (was no_compatible_offer)": Case(
        offers=[gpu_offer("h100", unit_price="10", region="sh-pudong")],
        first={"holder": gpu("1000")}, held={"h100": "1000"},
        second={"asker": gpu("500", regions=["sh-changning"])}, unfilled={"asker": "region"},
    ),
    "no_compatible_offer: nobody has the model": Case(
        offers=[gpu_offer("h100", unit_price="10")],
        first={"holder": gpu("1000")}, held={"h100": "1000"},
        second={"asker": gpu("500", attributes={"gpu_model": ["910B"]})},
        unfilled={"asker": "no_compatible_offer"},
    ),
}


@pytest.fixture
def clock(frozen_clock):
    return frozen_clock(MONDAY_0900)


def run_cycle(client, staff) -> dict:
    response = client.post("/api/v1/cycles", json={}, headers=staff.headers)
    assert response.status_code == 201, response.json
    return response.json


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_cycle_two_names_the_binding_cause(client, session, make_actor, clock, case):
    staff, carrier = make_actor("staff"), make_actor("carrier")
    policy = client.get("/api/v1/policy", headers=staff.headers).json
    policy = {k: policy[k] for k in ("sector_weights", "default_weight", "key_enterprise_bonus",
                                     "wait_bonus_per_cycle", "approval_window_hours")}
    saved = client.put("/api/v1/policy", json={**policy, "share_cap": case.share_cap}, headers=staff.headers)
    assert saved.status_code == 200, saved.json
    published = publish(client, carrier, *case.offers)
    assert published.status_code == 200, published.json

    def submit(requests: dict[str, dict]) -> dict[int, str]:
        labels = {}
        for label, body in requests.items():
            startup = make_actor("startup", sector=case.sectors.get(label, "ai_models"))
            if label in case.budgets:
                patched = client.patch(f"/api/v1/startups/{startup.startup_id}",
                                       json={"cycle_budget": case.budgets[label]}, headers=startup.headers)
                assert patched.status_code == 200, patched.json
            created = client.post("/api/v1/requests", json=body, headers=startup.headers)
            assert created.status_code == 201, created.json
            labels[created.json["id"]] = label
        return labels

    submit(case.first)
    first = run_cycle(client, staff)
    assert first["stats"]["unfilled"] == []
    if case.approve_first:
        for proposal in client.get(f"/api/v1/allocations?cycle_id={first['id']}", headers=staff.headers).json:
            approved = client.post(f"/api/v1/allocations/{proposal['id']}/approve", json={}, headers=staff.headers)
            assert approved.status_code == 200, approved.json
    session.expire_all()
    promised = dict(session.execute(sa.select(Offer.external_id, Offer.promised)).all())
    assert {k: promised[k] for k in case.held} == {k: Decimal(v) for k, v in case.held.items()}

    labels = submit(case.second)
    second = run_cycle(client, staff)
    report = {labels[u["request_id"]]: u["reason"] for u in second["stats"]["unfilled"]}
    assert report == case.unfilled
    # The report counts the offers the cycle could promise from, not the fully held ones.
    assert second["stats"]["offers"] == sum(promised[o["external_id"]] < Decimal(o["quantity"]) for o in case.offers)
