"""Mobile → broker units: cards/cores × window hours, yuan per unit per month, GB/TB/PB, 万tokens."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from adapters.base import CarrierConfig, RecordError, WebhookSignatureError
from adapters.mobile import MobileAdapter, parse_resource, parse_usage
from adapters.simulators import mobile as sim
from adapters.simulators.common import SimOptions

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=8)))


def group(category: str, region: str = "上海") -> dict:
    return {"组编号": "G1", "资源类别": category, "地域": region}


def item(**fields) -> dict:
    return {"资源编码": "CMCC-1", "起始月份": "2027-01", "租期(月)": 2, "刊例价(元/单位/月)": "0",
            "优惠价(元/单位/月)": "0", **fields}


def test_gpu_cards_for_every_hour_of_the_window_priced_per_card_month() -> None:
    record = parse_resource(group("智算"), item(规格={"型号": "A100", "显存(GB)": 80}, 数量=8, 数量单位="卡",
                                                **{"刊例价(元/单位/月)": "14160", "优惠价(元/单位/月)": "7080"}))
    # January + February 2027: 59 days = 1416 hours.
    assert (record.window_start, record.window_end) == (date(2027, 1, 1), date(2027, 2, 28))
    assert (record.kind, record.region, record.quantity) == ("gpu", "sh", Decimal(8 * 1416))
    assert record.list_price == Decimal(20)  # ¥14160 × 2 months / 1416 hours
    assert record.unit_price == Decimal(10)
    assert record.attributes == {"gpu_model": "A100", "gpu_memory_gb": 80}


def test_cpu_cores_for_every_hour() -> None:
    record = parse_resource(group("通算", "北京"), item(规格={"架构": "x86_64"}, 数量=64, 数量单位="核",
                                                     **{"刊例价(元/单位/月)": "100"}))
    assert (record.kind, record.region, record.quantity) == ("cpu", "bj", Decimal(64 * 1416))
    assert record.list_price == (Decimal(200) / 1416).quantize(Decimal("0.0001"), ROUND_HALF_UP)


def test_cloud_vm_vcpus_times_months() -> None:
    record = parse_resource(group("云主机"), item(规格={"规格族": "c7.large", "操作系统": "BC-Linux"}, 数量=16,
                                                数量单位="vCPU", **{"刊例价(元/单位/月)": "45.5"}))
    assert (record.kind, record.quantity, record.list_price) == ("cloud_vm", Decimal(32), Decimal("45.5"))


@pytest.mark.parametrize(("amount", "unit", "monthly", "tb_months", "per_tb_month"), [
    (500, "GB", "0.12", Decimal(1), Decimal(120)),
    (10, "TB", "120", Decimal(20), Decimal(120)),
    (1, "PB", "110000", Decimal(2000), Decimal(110)),
])
def test_storage_gb_tb_pb_to_tb_months(amount, unit, monthly, tb_months, per_tb_month) -> None:
    record = parse_resource(group("存储"), item(规格={"存储类型": "低频"}, 数量=amount, 数量单位=unit,
                                              **{"刊例价(元/单位/月)": monthly}))
    assert (record.kind, record.quantity, record.list_price) == ("storage", tb_months, per_tb_month)
    assert record.attributes == {"tier": "infrequent"}


@pytest.mark.parametrize(("amount", "unit", "mbps", "per_mbps"), [
    (500, "Mbps", Decimal(500), Decimal(70)),  # ¥35 per Mbps per month × 2 months
    (10, "Gbps", Decimal(10000), Decimal(60)),  # ¥30000 per Gbps per month = ¥30 per Mbps, × 2
])
def test_line_bandwidth_and_monthly_price_over_the_window(amount, unit, mbps, per_mbps) -> None:
    monthly = "35" if unit == "Mbps" else "30000"
    record = parse_resource(group("专线"), item(规格={"A端": "上海长宁", "Z端": "香港", "跨境": "是"}, 数量=amount,
                                              数量单位=unit, **{"刊例价(元/单位/月)": monthly}))
    assert (record.kind, record.quantity, record.list_price) == ("data_line", mbps, per_mbps)
    assert record.attributes["cross_border"] == "yes" and record.divisible is False


def test_tokens_wan_per_month_to_millions() -> None:
    record = parse_resource(group("大模型"), item(规格={"模型": "jiutian-13b"}, 数量=1000, 数量单位="万tokens",
                                               **{"刊例价(元/单位/月)": "0.8"}))
    # 1000 万 = 10 million tokens a month, for 2 months; ¥0.8 per 万 = ¥80 per million.
    assert (record.kind, record.quantity, record.list_price) == ("tokens", Decimal(20), Decimal(80))


@pytest.mark.parametrize(("fields", "reason"), [
    ({"数量单位": "卡"}, "数量单位 '卡' does not fit category '存储'"),
    ({"起始月份": "2026/13"}, "起始月份 '2026/13' is not a month"),
    ({"租期(月)": 0}, "租期"),
    ({"数量": "很多"}, "数量 is not a number"),
    ({"规格": {"存储类型": "冷"}}, "存储类型 '冷' unknown"),
])
def test_malformed_resources_are_refused(fields, reason) -> None:
    base = item(规格={"存储类型": "标准"}, 数量=1, 数量单位="TB")
    with pytest.raises(RecordError, match=reason.replace("(", r"\(")):
        parse_resource(group("存储"), {**base, **fields})


def test_every_simulated_category_converts() -> None:
    options = SimOptions(seed=3, offers=400)
    kinds = set()
    for g in range(40):
        raw = sim.group(options, g)
        for resource in raw["资源列表"]:
            record = parse_resource(raw, resource)
            kinds.add(record.kind)
            months = resource["租期(月)"]
            hours = ((record.window_end - record.window_start).days + 1) * 24
            if record.kind in ("gpu", "cpu"):
                assert record.quantity == resource["数量"] * hours
            elif record.kind == "cloud_vm":
                assert record.quantity == resource["数量"] * months
    assert kinds == {"gpu", "cpu", "cloud_vm", "storage", "data_line", "tokens"}


def test_usage_is_beijing_time_and_broker_units() -> None:
    line = parse_usage({"记录编号": "U1", "订购编号": "S1", "外部订单号": "alloc-1", "用量": "500",
                        "用量单位": "万tokens", "记录时间": "2026-11-22 10:00:00"})
    assert (line.kind, line.quantity) == ("tokens", Decimal(5))
    assert line.recorded_at == NOW


def adapter() -> MobileAdapter:
    return MobileAdapter(CarrierConfig("https://cmcc.example", {"app_key": "K", "app_secret": "S"}),
                         environ={"K": "k", "S": "s"})


def test_webhook_push_is_verified_and_parsed() -> None:
    headers, body = sim.build_webhook("whsec", NOW, [0, 1], seed=4)
    result = adapter().parse_webhook(headers, body, b"whsec", NOW)
    assert not result.complete and len(result.offers) == 20 and result.rejected == []
    assert result.push is not None and result.push.signed_at == NOW
    with pytest.raises(WebhookSignatureError):
        adapter().parse_webhook(headers, body, b"other", NOW)
