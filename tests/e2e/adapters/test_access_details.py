"""Each adapter against its simulator: the carrier's access details come back mapped to the broker's
fields, its secrets are not kept, and broken details are dropped and logged without failing the order."""

from __future__ import annotations

import json
import logging

import pytest

from adapters.base import AccessDetails, OfferRecord, ProvisionRequest

CARRIERS = ("telecom", "mobile", "unicom")


def first_of(offers: list[OfferRecord], kind: str) -> OfferRecord:
    found = [o for o in offers if o.kind == kind]
    if not found:
        pytest.fail(f"the simulator's catalogue has no {kind} lot: pick another seed")
    return found[0]


def order(adapter, offer: OfferRecord, allocation_id: str = "alloc-1"):
    return adapter.provision(ProvisionRequest(allocation_id, offer.external_id, offer.kind, offer.quantity,
                                              offer.window_start, offer.window_end))


# What each carrier's simulator answers, by kind, as the broker keeps it.
EXPECTED = {
    ("telecom", "tokens"): {"endpoint": "https://maas.ctyun.example/v1", "model": str, "console_url": str,
                            "instructions": str, "secret_at_carrier": True},
    ("telecom", "gpu"): {"host": str, "username": "ctcuser", "region": str, "console_url": str,
                         "secret_at_carrier": True},
    ("telecom", "data_line"): {"circuit_id": str, "handover_point": str, "console_url": str},
    ("mobile", "tokens"): {"endpoint": "https://jiutian.10086.example/api/v1", "model": str, "console_url": str,
                           "instructions": str, "secret_at_carrier": True},
    ("mobile", "gpu"): {"host": str, "username": "cmcc-user", "region": str, "console_url": str,
                        "secret_at_carrier": True},
    ("mobile", "data_line"): {"circuit_id": str, "handover_point": str, "console_url": str},
    ("unicom", "tokens"): {"endpoint": "https://maas.cucloud.example/openapi/v1", "model": str, "console_url": str,
                           "instructions": str},
    ("unicom", "gpu"): {"host": str, "username": "cuuser", "region": str, "console_url": str,
                        "secret_at_carrier": True},
    ("unicom", "data_line"): {"circuit_id": str, "handover_point": str, "console_url": str},
}


@pytest.mark.parametrize("carrier, kind", sorted(EXPECTED))
def test_details_are_mapped_and_secrets_not_kept(carrier: str, kind: str, carrier_sim) -> None:
    adapter, simulator = carrier_sim(carrier, offers=200, seed=3)
    offer = first_of(adapter.fetch_offers().offers, kind)
    provisioned = order(adapter, offer)
    assert isinstance(provisioned.access, AccessDetails)
    stored = provisioned.access.stored()
    expected = EXPECTED[(carrier, kind)]
    assert set(stored) == set(expected), stored
    for name, want in expected.items():
        assert stored[name] == want if not isinstance(want, type) else isinstance(stored[name], want) and stored[name]
    if "console_url" in stored:
        assert stored["console_url"].startswith("https://") and provisioned.carrier_reference in stored["console_url"]
    # The secret the simulator put in its answer ("sim-" + the order id backwards) is nowhere.
    [placed] = simulator.app.extensions["simulator"]["orders"].orders.values()
    answer = json.dumps(placed, ensure_ascii=False, default=str)
    secret = "sim-" + provisioned.carrier_reference[::-1]
    assert (secret.lower() in answer.lower()) == bool(stored.get("secret_at_carrier"))
    assert secret.lower() not in json.dumps(stored, ensure_ascii=False).lower()


@pytest.mark.parametrize("carrier", CARRIERS)
def test_broken_details_are_dropped_and_logged_and_the_order_still_succeeds(carrier: str, carrier_sim, caplog) -> None:
    adapter, simulator = carrier_sim(carrier, offers=200, seed=3, bad_access=True)
    offer = first_of(adapter.fetch_offers().offers, "tokens")
    with caplog.at_level(logging.INFO, logger="adapters.base"):
        provisioned = order(adapter, offer)
    assert provisioned.status == "active" and provisioned.carrier_reference
    stored = provisioned.access.stored()
    # The script URL, the 5,000-character instructions and the unknown field are gone; the rest stays.
    assert "console_url" not in stored and "instructions" not in stored and "javascript" not in str(stored)
    assert stored["endpoint"].startswith("https://") and stored["model"]
    assert "not an http(s) URL" in caplog.text and "longer than 500 characters" in caplog.text
    assert "internal_ticket" in caplog.text and "javascript" not in caplog.text
    assert simulator.stats()["orders"] == 1
