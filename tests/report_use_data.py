"""Allocations with known usage for reports 4 (utilisation) and 5 (carrier statement), on the
settlement tests' `period` fixture (tests/e2e/test_settlement.py: one carrier with a GPU lot at
¥250 an hour, a voucher paying half, startups alpha and beta, staff builder/first/second, the clock
at 2026-11-30 09:00 Shanghai). Requests through the API, one real cycle, staff approve; the carrier
sets them up through `allocations.begin_provisioning`/`provisioned` (what the provisioning job
calls); usage is reported and redeemed as `provisioning.pull_usage` does (test_settlement.use).

Every request's window is 2026-12-07 … 2026-12-20: 14 days, its middle day 12-14.

| allocation   | kind                  | qty      | usage (Shanghai, 09:00)                 | used   | by 12-14 |
|--------------|-----------------------|----------|-----------------------------------------|--------|----------|
| alpha_gpu    | gpu                   | 1000 h   | 12-10: 100, 12-16: 300                  | 400    | 100 (10 %) |
| beta_gpu     | gpu                   | 200 h    | 12-09: 60                               | 60     | 60 (30 %)  |
| alpha_tokens | tokens, model qwen-max| 500 M    | 12-08: 50                               | 50     | 50 (10 %)  |
| beta_line    | data_line, 100 Mbps   | 14 line-days | 12-08, 12-09 (two reports), 12-14 07:00 (UTC: 12-13) | 3 days | 2 days (14.3 %) |
"""

from __future__ import annotations

import datetime as dt

from broker.models import Allocation
from broker.services import allocations, report_utilisation
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_settlement import at, use

WINDOW = ("2026-12-07", "2026-12-20")
LINE_OFFER = gpu_offer("line", kind="data_line", quantity="1000", unit_price="100", list_price="120",
                       attributes={"a_end": "长宁", "z_end": "浦东", "cross_border": "no"})
TOKENS_OFFER = gpu_offer("tokens", kind="tokens", quantity="100000", unit_price="2", list_price="3",
                         attributes={"model": "qwen-max"})


def grant(client, people, asks: dict[str, tuple[str, str, str]]) -> dict[str, int]:
    """Each ask (startup, kind, quantity) becomes a request; one cycle proposes; staff approve. Allocation ids."""
    requests = {}
    for key, (who, kind, quantity) in asks.items():
        asked = client.post("/api/v1/requests", headers=people[who].headers, json={
            "kind": kind, "quantity": quantity, "window_start": WINDOW[0], "window_end": WINDOW[1]})
        assert asked.status_code == 201, asked.json
        requests[key] = asked.json["id"]
    assert client.post("/api/v1/cycles", json={}, headers=people["first"].headers).status_code == 201
    found = {}
    for key, request_id in requests.items():
        listed = client.get(f"/api/v1/allocations?request_id={request_id}", headers=people["first"].headers).json
        assert len(listed) == 1, (key, client.get("/api/v1/cycles", headers=people["first"].headers).json)
        [allocation] = listed
        approved = client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=people["first"].headers)
        assert approved.status_code == 200, approved.json
        found[key] = allocation["id"]
    return found


def set_up(session, allocation_id: int, when: dt.datetime) -> None:
    """The carrier confirmed the allocation: it is active."""
    allocation = session.get(Allocation, allocation_id)
    allocations.begin_provisioning(allocation, when)
    allocations.provisioned(session, allocation, f"ref-{allocation_id}", when)
    session.commit()


def give_up(session, allocation_id: int, when: dt.datetime) -> None:
    """Provisioning failed and its retries ran out (what the provisioning job records last)."""
    allocation = session.get(Allocation, allocation_id)
    allocations.begin_provisioning(allocation, when)
    allocations.provisioning_failed(session, allocation, "carrier: no capacity", None, when)
    session.commit()


def build_use_district(client, session, people) -> dict[str, int]:
    """The table above; the clock left at 2026-12-16 12:00 Shanghai."""
    published = publish(client, people["carrier"], LINE_OFFER, TOKENS_OFFER)
    assert published.status_code == 200 and published.json["created"] == 2, published.json
    ids = grant(client, people, {"alpha_gpu": ("alpha", "gpu", "1000"), "beta_gpu": ("beta", "gpu", "200"),
                                 "alpha_tokens": ("alpha", "tokens", "500"), "beta_line": ("beta", "data_line", "100")})
    day = dt.date(2026, 12, 7)
    people["clock"].set(at(day, 8))
    for allocation_id in ids.values():
        set_up(session, allocation_id, at(day, 8))
    use(session, ids["alpha_gpu"], "100", at(dt.date(2026, 12, 10)), "u-ag-1")
    use(session, ids["alpha_gpu"], "300", at(dt.date(2026, 12, 16)), "u-ag-2")
    use(session, ids["beta_gpu"], "60", at(dt.date(2026, 12, 9)), "u-bg-1")
    use(session, ids["alpha_tokens"], "50", at(dt.date(2026, 12, 8)), "u-at-1")
    for n, (day_of_month, hour) in enumerate(((8, 9), (9, 9), (9, 20), (14, 7))):
        use(session, ids["beta_line"], "100", at(dt.date(2026, 12, day_of_month), hour), f"u-bl-{n}")
    people["clock"].set(at(dt.date(2026, 12, 16), 12))
    roll_up(session, at(dt.date(2026, 12, 16), 11))
    return ids


def roll_up(session, when: dt.datetime) -> None:
    """The scheduler's refresh_rollups job: the utilisation report reads the rollup it rebuilds."""
    report_utilisation.refresh(session, when)
