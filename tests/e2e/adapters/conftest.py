"""Carrier simulators served over real HTTP on 127.0.0.1, and adapters pointed at them."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from adapters.base import CarrierAdapter, CarrierConfig
from adapters.mobile import MobileAdapter
from adapters.registry import AdapterRegistry
from adapters.telecom import TelecomAdapter
from adapters.unicom import UnicomAdapter


@dataclass(frozen=True)
class Carrier:
    """How to run one adapter against its simulator in tests."""

    adapter: type[CarrierAdapter]
    credentials: dict[str, str]  # credential → environment variable
    environ: dict[str, str]  # the variables' values: the simulator's default credentials
    options: dict[str, str] = field(default_factory=dict)


CARRIERS = {
    "telecom": Carrier(TelecomAdapter, {"token": "CTC_TOKEN"}, {"CTC_TOKEN": "sim-telecom-token"}),
    "mobile": Carrier(
        MobileAdapter,
        {"app_key": "CMCC_KEY", "app_secret": "CMCC_SECRET"},
        {"CMCC_KEY": "sim-mobile-key", "CMCC_SECRET": "sim-mobile-secret"},
    ),
    "unicom": Carrier(
        UnicomAdapter,
        {"username": "CU_USER", "password": "CU_PASSWORD"},
        {"CU_USER": "sim-unicom", "CU_PASSWORD": "sim-unicom-password"},
    ),
    "unicom_xlsx": Carrier(
        UnicomAdapter,
        {"username": "CU_USER", "password": "CU_PASSWORD"},
        {"CU_USER": "sim-unicom", "CU_PASSWORD": "sim-unicom-password"},
        {"format": "xlsx"},
    ),
}


def registered_names() -> list[str]:
    """Every adapter the entry points register, plus the in-tree ones (before installation)."""
    return sorted(set(AdapterRegistry.from_entry_points().names()) | {"telecom", "mobile", "unicom"})


def carrier_for(name: str) -> Carrier:
    if name not in CARRIERS:
        pytest.fail(f"adapter {name!r} is registered but has no test setup in CARRIERS")
    return CARRIERS[name]


# Quick failure in tests: short timeouts, tiny back-off, a breaker that opens after 2 faults.
TEST_CONFIG = dict(
    connect_timeout=1.0, read_timeout=2.0, retries=2, backoff_factor=0.01,
    breaker_fail_max=2, breaker_reset_timeout=60.0, page_size=50,
)


class _QuietHandler(WSGIRequestHandler):
    def log(self, *args: Any) -> None:
        pass


class Simulator:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def stats(self) -> dict[str, int]:
        return requests.get(f"{self.url}/_sim/stats", timeout=2).json()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The contract runs once per registered adapter (and once more for unicom's XLSX files).
    if "adapter_name" in metafunc.fixturenames:
        metafunc.parametrize("adapter_name", registered_names() + ["unicom_xlsx"])


@pytest.fixture
def carriers() -> dict[str, Carrier]:
    return CARRIERS


@pytest.fixture
def serve() -> Iterator[Callable[[Any], Simulator]]:
    """serve(app) runs a WSGI app on 127.0.0.1 for the test's duration."""
    running: list[Simulator] = []

    def start(app: Any) -> Simulator:
        running.append(Simulator(app))
        return running[-1]

    yield start
    for simulator in running:
        simulator.close()


@pytest.fixture
def carrier_sim(serve: Callable[[Any], Simulator]) -> Callable[..., tuple[CarrierAdapter, Simulator]]:
    """carrier_sim(name, config overrides..., sim options...) → (adapter, simulator)."""

    def start(name: str, *, config: dict[str, Any] | None = None, **sim_options: Any):
        carrier = carrier_for(name)
        module, _, attribute = carrier.adapter.simulator.partition(":")
        simulator = serve(getattr(importlib.import_module(module), attribute)(**sim_options))
        settings = {**TEST_CONFIG, "options": carrier.options, **(config or {})}
        adapter = carrier.adapter(
            CarrierConfig(base_url=simulator.url, credentials=carrier.credentials, **settings),
            environ=carrier.environ,
        )
        return adapter, simulator

    return start
