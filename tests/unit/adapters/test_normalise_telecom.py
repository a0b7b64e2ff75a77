"""Telecom → broker units: fen → yuan, Gbps → Mbps, cards × hours, instances × vCPUs × months."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from adapters.base import CarrierConfig, RecordError, WebhookSignatureError
from adapters.simulators import telecom as sim
from adapters.simulators.common import SimOptions
from adapters.telecom import TelecomAdapter, parse_resource, parse_usage

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=8)))
BASE = {"resource_id": "CTC-1", "region_code": "cn-sh1", "start_date": "2026-12-01", "end_date": "2026-12-31"}


def test_gpu_cards_times_hours_and_fen_per_card_hour() -> None:
    record = parse_resource({**BASE, "resource_type": "GPU", "spec": {"gpu_model": "H100", "gpu_memory": "80GB"},
                             "gpu_cards": 8, "hours": 744, "list_price_fen": 1250, "startup_price_fen": 625})
    assert (record.kind, record.region) == ("gpu", "sh")
    assert record.attributes == {"gpu_model": "H100", "gpu_memory_gb": 80}
    assert record.quantity == Decimal("5952")  # GPU-hours
    assert (record.list_price, record.unit_price) == (Decimal("12.5"), Decimal("6.25"))
    assert (record.window_start, record.window_end) == (date(2026, 12, 1), date(2026, 12, 31))


def test_cpu_cores_times_hours() -> None:
    record = parse_resource({**BASE, "resource_type": "CPU", "spec": {"arch": "aarch64"}, "cores": 64,
                             "hours": 100, "list_price_fen": 7, "startup_price_fen": 0})
    assert (record.kind, record.quantity, record.list_price) == ("cpu", Decimal(6400), Decimal("0.07"))


def test_line_gbps_to_mbps_and_price_per_gbps_to_per_mbps() -> None:
    record = parse_resource({**BASE, "resource_type": "LINE", "region_code": "cn-hk1",
                             "spec": {"a_end": "上海长宁", "z_end": "香港", "cross_border": True},
                             "bandwidth_gbps": Decimal("2.5"), "list_price_fen": 1234567, "startup_price_fen": 0,
                             "divisible": False})
    assert (record.kind, record.region, record.quantity) == ("data_line", "hk", Decimal(2500))
    assert record.list_price == Decimal("12.3457")  # ¥12345.67 per Gbps = ¥12.34567 per Mbps, half-up
    assert record.attributes == {"a_end": "上海长宁", "z_end": "香港", "cross_border": "yes"}
    assert record.divisible is False


def test_ecs_instances_times_vcpus_times_months_priced_per_instance_month() -> None:
    record = parse_resource({**BASE, "resource_type": "ECS", "spec": {"flavor": "s7.xlarge.4", "os": "CTyunOS", "vcpus": 4},
                             "instances": 10, "months": 3, "list_price_fen": 20000, "startup_price_fen": 10000})
    assert (record.kind, record.quantity) == ("cloud_vm", Decimal(120))  # vCPU-months
    assert (record.list_price, record.unit_price) == (Decimal(50), Decimal(25))  # ¥200 / 4 vCPU


def test_tokens_thousands_to_millions_and_price_per_thousand_to_per_million() -> None:
    record = parse_resource({**BASE, "resource_type": "TOKEN", "spec": {"model": "telechat"}, "token_quota_k": 1500,
                             "list_price_fen": 3, "startup_price_fen": 0})
    assert (record.kind, record.quantity, record.list_price) == ("tokens", Decimal("1.5"), Decimal("30"))


def test_quantity_rounds_down_never_up() -> None:
    record = parse_resource({**BASE, "resource_type": "TOKEN", "spec": {"model": "m"}, "token_quota_k": 1,
                             "list_price_fen": 0, "startup_price_fen": 0})
    assert record.quantity == Decimal("0.001")
    record = parse_resource({**BASE, "resource_type": "GPU", "spec": {"gpu_model": "A100"}, "gpu_cards": 3,
                             "hours": Decimal("0.3333"), "list_price_fen": 0, "startup_price_fen": 0})
    assert record.quantity == Decimal("0.999")
    with pytest.raises(RecordError, match="quantity is zero"):
        parse_resource({**BASE, "resource_type": "LINE", "spec": {"a_end": "a", "z_end": "z"},
                        "bandwidth_gbps": Decimal("0.0000001"), "list_price_fen": 0, "startup_price_fen": 0})


def test_every_simulated_kind_converts_as_its_fields_say() -> None:
    options = SimOptions(seed=5)
    seen = set()
    for index in range(60):
        item = sim.resource(options, index)
        record = parse_resource(item)
        seen.add(item["resource_type"])
        fen = Decimal(item["list_price_fen"])
        if item["resource_type"] == "GPU":
            assert record.quantity == item["gpu_cards"] * item["hours"]
            assert record.list_price == fen / 100
        elif item["resource_type"] == "LINE":
            assert record.quantity == Decimal(str(item["bandwidth_gbps"])) * 1000
            assert record.list_price == (fen / 100 / 1000).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        elif item["resource_type"] == "ECS":
            vcpus = item["spec"]["vcpus"]
            assert record.quantity == item["instances"] * vcpus * item["months"]
            assert record.list_price == (fen / 100 / vcpus).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        elif item["resource_type"] == "TOKEN":
            assert record.quantity == Decimal(item["token_quota_k"]) / 1000
            assert record.list_price == fen / 100 * 1000
    assert seen == {"GPU", "CPU", "LINE", "ECS", "TOKEN"}


def test_usage_converts_back_to_broker_units() -> None:
    line = parse_usage({"usage_id": "U1", "order_id": "O1", "client_token": "alloc-1", "resource_type": "LINE",
                        "amount": "0.25", "unit": "gbps", "record_time": "2026-11-22T10:00:00+08:00"})
    assert (line.kind, line.quantity, line.allocation_id) == ("data_line", Decimal(250), "alloc-1")


def adapter() -> TelecomAdapter:
    return TelecomAdapter(CarrierConfig("https://ctc.example", {"token": "T"}), environ={"T": "t"})


def test_webhook_push_is_verified_and_parsed_as_a_delta() -> None:
    headers, body = sim.build_webhook("whsec", NOW, [0, 1, 2], seed=2)
    result = adapter().parse_webhook(headers, body, "whsec", NOW + timedelta(seconds=30))
    assert not result.complete
    assert result.push is not None and result.push.signed_at == NOW.replace(microsecond=0)
    assert [o.external_id for o in result.offers] == ["CTC-0000000", "CTC-0000001", "CTC-0000002"]
    assert result.offers == [parse_resource(sim.resource(SimOptions(seed=2), i)) for i in range(3)]


def test_webhook_with_malformed_records_quarantines_them() -> None:
    headers, body = sim.build_webhook("whsec", NOW, list(range(40)), seed=2, malformed_rate=0.3)
    result = adapter().parse_webhook(headers, body, "whsec", NOW)
    assert result.rejected and len(result.offers) + len(result.rejected) == 40


def test_webhook_bad_or_stale_signature_is_refused() -> None:
    headers, body = sim.build_webhook("whsec", NOW, [0])
    with pytest.raises(WebhookSignatureError, match="bad"):
        adapter().parse_webhook(headers, body + b" ", "whsec", NOW)
    with pytest.raises(WebhookSignatureError, match="stale"):
        adapter().parse_webhook(headers, body, "whsec", NOW + timedelta(minutes=10))
