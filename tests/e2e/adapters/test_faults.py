"""Adapters survive their carriers' faults: retries, breaker, timeouts, bad bodies, lost answers."""

from __future__ import annotations

import socket
import time
from datetime import date
from decimal import Decimal

import pytest
from flask import Flask, redirect

from adapters.base import AdapterError, CarrierConfig, CircuitOpenError, ProvisionRequest


def test_transient_errors_are_retried(adapter_name: str, carrier_sim) -> None:
    adapter, simulator = carrier_sim(adapter_name, offers=40, fail_first=2)
    result = adapter.fetch_offers()
    assert len(result.offers) == 40
    assert simulator.stats()["failed"] == 2


def test_rate_limit_is_retried(adapter_name: str, carrier_sim) -> None:
    adapter, simulator = carrier_sim(adapter_name, offers=10, fail_first=1, error_status=429, retry_after=0)
    assert len(adapter.fetch_offers().offers) == 10


def test_persistent_errors_open_the_circuit(adapter_name: str, carrier_sim) -> None:
    adapter, simulator = carrier_sim(adapter_name, offers=10, error_rate=1.0)
    for _ in range(2):  # breaker_fail_max
        with pytest.raises(AdapterError) as caught:
            adapter.fetch_offers()
        assert caught.value.status == 503 and caught.value.carrier_fault
        assert "simulated carrier failure" in str(caught.value)  # the carrier's own message
    calls = simulator.stats()["requests"]
    assert calls == 2 * 3  # each fetch: one try and two retries
    started = time.monotonic()
    with pytest.raises(CircuitOpenError):
        adapter.fetch_offers()
    assert time.monotonic() - started < 0.05
    assert simulator.stats()["requests"] == calls  # the open circuit sent nothing


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dead_carrier_costs_one_quick_failure(carriers) -> None:
    carrier = carriers["telecom"]
    adapter = carrier.adapter(
        CarrierConfig(f"http://127.0.0.1:{_closed_port()}", carrier.credentials, connect_timeout=0.5,
                      read_timeout=0.5, retries=1, backoff_factor=0.01, breaker_fail_max=1),
        environ=carrier.environ,
    )
    started = time.monotonic()
    with pytest.raises(AdapterError) as caught:
        adapter.fetch_offers()
    assert caught.value.carrier_fault and "ConnectionError" in str(caught.value)
    with pytest.raises(CircuitOpenError):
        adapter.fetch_offers()
    assert time.monotonic() - started < 2


def test_hanging_carrier_times_out(adapter_name: str, carrier_sim) -> None:
    adapter, _ = carrier_sim(adapter_name, offers=5, latency=1.0, config={"read_timeout": 0.2, "retries": 0})
    started = time.monotonic()
    with pytest.raises(AdapterError) as caught:
        adapter.fetch_offers()
    assert time.monotonic() - started < 0.9
    assert "Timeout" in str(caught.value)


def test_truncated_body_is_an_adapter_error(adapter_name: str, carrier_sim) -> None:
    adapter, _ = carrier_sim(adapter_name, offers=30, truncate=True)
    with pytest.raises(AdapterError) as caught:
        adapter.fetch_offers()
    assert caught.value.carrier_fault
    assert "truncated" in str(caught.value)


def test_wrong_content_type_is_an_adapter_error(adapter_name: str, carrier_sim) -> None:
    adapter, _ = carrier_sim(adapter_name, offers=30, wrong_content_type=True)
    with pytest.raises(AdapterError, match="expected JSON, got content type 'text/html"):
        adapter.fetch_offers()


def test_lost_answer_to_an_order_is_retried_without_ordering_twice(adapter_name: str, carrier_sim) -> None:
    adapter, simulator = carrier_sim(adapter_name, offers=20, lose_first_posts=2)
    offer = adapter.fetch_offers().offers[0]
    provisioned = adapter.provision(ProvisionRequest("alloc-9", offer.external_id, offer.kind, offer.quantity,
                                                     offer.window_start, offer.window_end))
    stats = simulator.stats()
    assert stats["posts"] == 3 and stats["orders"] == 1
    assert provisioned == adapter.provision(ProvisionRequest(
        "alloc-9", offer.external_id, offer.kind, offer.quantity, offer.window_start, offer.window_end))


def test_post_without_idempotency_key_is_not_retried(carrier_sim) -> None:
    adapter, simulator = carrier_sim("telecom", offers=5, fail_first=1)
    with pytest.raises(AdapterError) as caught:
        adapter._post_json("api", "v1", "orders", payload={})
    assert caught.value.status == 503
    assert simulator.stats()["posts"] == 1


def test_redirects_are_not_followed(serve, carriers) -> None:
    elsewhere = Flask("elsewhere")
    hits: list[str] = []

    @elsewhere.route("/<path:anything>")
    def record(anything: str) -> str:
        hits.append(anything)
        return "{}"

    target = serve(elsewhere)
    carrier_app = Flask("carrier")

    @carrier_app.route("/<path:anything>")
    def moved(anything: str):
        return redirect(f"{target.url}/{anything}", code=302)

    simulator = serve(carrier_app)
    carrier = carriers["telecom"]
    adapter = carrier.adapter(CarrierConfig(simulator.url, carrier.credentials, retries=0), environ=carrier.environ)
    with pytest.raises(AdapterError, match="redirect"):
        adapter.fetch_offers()
    assert hits == []


def test_order_ids_from_payloads_stay_under_the_base_url(carrier_sim) -> None:
    adapter, simulator = carrier_sim("telecom", offers=5)
    with pytest.raises(AdapterError) as caught:
        adapter.release("../../../etc/passwd")
    assert caught.value.status == 404
    assert adapter._url("orders", "https://evil.example/x").startswith(simulator.url + "/orders/https%3A%2F%2F")


def test_provisioning_an_unknown_offer_is_not_a_carrier_fault(carrier_sim) -> None:
    adapter, _ = carrier_sim("mobile", offers=5)
    for _ in range(3):  # more than breaker_fail_max: 4xx answers never open the circuit
        with pytest.raises(AdapterError) as caught:
            adapter.provision(ProvisionRequest("a1", "CMCC-99999999", "gpu", Decimal(10),
                                               date(2026, 12, 1), date(2026, 12, 31)))
        assert caught.value.status == 404 and not caught.value.carrier_fault
    assert adapter.breaker.state == "closed"


def test_simulate_command_lists_valid_carriers() -> None:
    from click.testing import CliRunner

    from adapters.simulators.cli import simulate_command

    result = CliRunner().invoke(simulate_command, ["nokia"])
    assert result.exit_code == 2
    assert "no simulator for 'nokia'; valid: idp, mobile, telecom, unicom" in result.output
