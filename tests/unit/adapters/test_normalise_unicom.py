"""Unicom → broker units: units inside strings, YYYYMMDD dates, CSV and XLSX catalogs."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import Workbook

from adapters.base import AdapterError, CarrierConfig, RecordError
from adapters.simulators import unicom as sim
from adapters.simulators.common import SimOptions
from adapters.unicom import COLUMNS, UnicomAdapter, parse_amount, parse_catalog, parse_price, parse_row, parse_usage


@pytest.mark.parametrize(("text", "kind", "broker_quantity"), [
    ("500 GPU时", "gpu", Decimal(500)),
    ("1200卡时", "gpu", Decimal(1200)),
    ("20,000 核时", "cpu", Decimal(20000)),
    ("800000 Kbps", "data_line", Decimal(800)),
    ("500Mbps", "data_line", Decimal(500)),
    ("1Gbps", "data_line", Decimal(1000)),
    ("40 vCPU·月", "cloud_vm", Decimal(40)),
    ("500 GB·月", "storage", Decimal("0.5")),
    ("10 TB·月", "storage", Decimal(10)),
    ("1 PB·月", "storage", Decimal(1000)),
    ("5000 万tokens", "tokens", Decimal(50)),
    ("50 百万tokens", "tokens", Decimal(50)),
    ("2 亿tokens", "tokens", Decimal(200)),
])
def test_every_quantity_unit(text, kind, broker_quantity) -> None:
    number, unit_kind, factor = parse_amount(text, "可售数量")
    assert (unit_kind, number * factor) == (kind, broker_quantity)


@pytest.mark.parametrize(("text", "kind", "per_broker_unit"), [
    ("12.5 元/GPU时", "gpu", Decimal("12.5")),
    ("8000元/Gbps", "data_line", Decimal(8)),
    ("0.02 元/Kbps", "data_line", Decimal(20)),
    ("0.1 元/GB·月", "storage", Decimal(100)),
    ("95000 元/PB·月", "storage", Decimal(95)),
    ("0.1 元/万tokens", "tokens", Decimal(10)),
    ("900 元/亿tokens", "tokens", Decimal(9)),
    ("免费", "gpu", Decimal(0)),
    ("0", "gpu", Decimal(0)),
])
def test_every_price_unit(text, kind, per_broker_unit) -> None:
    assert parse_price(text, "刊例价", kind) == per_broker_unit


@pytest.mark.parametrize(("text", "reason"), [
    ("面议", "is not a number"),
    ("12 元/核时", "priced in a unit of cpu, not gpu"),
    ("12", "is not '<number> 元/<unit>'"),
])
def test_bad_prices(text, reason) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_price(text, "刊例价", "gpu")


def row(**cells) -> dict:
    base = dict(zip(COLUMNS, ["CU1", "专线", "上海", "A端=上海长宁;Z端=新加坡;跨境=是", "1Gbps", "20261201",
                              "20261231", "8000元/Gbps", "4000 元/Gbps"]))
    return {**base, **cells}


def test_row_with_units_inside_strings_and_compact_dates() -> None:
    record = parse_row(row())
    assert (record.kind, record.region, record.quantity) == ("data_line", "sh", Decimal(1000))
    assert (record.list_price, record.unit_price) == (Decimal(8), Decimal(4))
    assert (record.window_start, record.window_end) == (date(2026, 12, 1), date(2026, 12, 31))
    assert record.attributes == {"a_end": "上海长宁", "z_end": "新加坡", "cross_border": "yes"}
    gpu = parse_row(row(资源类型="GPU算力", 规格="型号=910B;显存=64GB", 可售数量="500 GPU时",
                        开始日期=20261201, 结束日期=20261231.0, 刊例价="12.5 元/GPU时", 优惠价="免费"))
    assert gpu.attributes == {"gpu_model": "910B", "gpu_memory_gb": 64}
    assert (gpu.quantity, gpu.unit_price) == (Decimal(500), Decimal(0))


@pytest.mark.parametrize(("cells", "reason"), [
    ({"可售数量": "500 GPU时"}, "is not a quantity of data_line"),
    ({"可售数量": "500 桶"}, "unknown unit '桶'"),
    ({"开始日期": "20261345"}, "开始日期 '20261345' is not a date YYYYMMDD"),
    ({"资源类型": "量子"}, "unknown 资源类型"),
    ({"规格": "颜色=红"}, "规格 key '颜色' unknown"),
])
def test_bad_rows(cells, reason) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_row(row(**cells))


def test_simulated_csv_and_xlsx_catalogs_parse_identically() -> None:
    options = SimOptions(seed=9, offers=80, malformed_rate=0.1, duplicate_rate=0.05)
    from_csv, csv_rows = parse_catalog(sim.build_file(options, "csv"), "catalog.csv")
    from_xlsx, xlsx_rows = parse_catalog(sim.build_file(options, "xlsx"), "catalog.XLSX")
    assert csv_rows == xlsx_rows == 80
    assert from_csv.offers == from_xlsx.offers
    assert [(r.external_id, r.location) for r in from_csv.rejected] == [
        (r.external_id, r.location) for r in from_xlsx.rejected
    ]
    assert len(from_csv.offers) + len(from_csv.rejected) == 80
    assert {o.kind for o in from_csv.offers} == {"gpu", "cpu", "data_line", "cloud_vm", "storage", "tokens"}


def adapter() -> UnicomAdapter:
    return UnicomAdapter(CarrierConfig("https://cu.example", {"username": "U", "password": "P"}),
                         environ={"U": "u", "P": "p"})


def test_uploaded_catalog_with_excel_bom_and_blank_lines() -> None:
    text = ",".join(COLUMNS) + "\r\n" + ",".join(row().values()) + "\r\n\r\n" + "CU2,专线,上海\r\n"
    result = adapter().parse_catalog(("\ufeff" + text).encode("utf-8"), "upload.csv")
    assert [o.external_id for o in result.offers] == ["CU1"]
    [short] = result.rejected
    assert (short.external_id, short.location, short.reason) == ("CU2", "row 4", "row has 3 cells, the header 9")


def test_uploaded_xlsx_catalog() -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(COLUMNS))
    sheet.append([*list(row().values())[:5], 20261201, 20261231, "8000元/Gbps", "免费"])
    out = io.BytesIO()
    workbook.save(out)
    result = adapter().parse_catalog(out.getvalue(), "upload.xlsx")
    assert [(o.external_id, o.quantity, o.unit_price) for o in result.offers] == [("CU1", Decimal(1000), Decimal(0))]


@pytest.mark.parametrize(("content", "filename", "message"), [
    (b"not a zip", "x.xlsx", "unreadable"),
    (b"\xff\xfe\x00bad", "x.csv", "unreadable"),
    ("资源编号,地域\r\nCU1,上海\r\n".encode(), "x.csv", "lacks columns: 资源类型"),
    (b"", "x.csv", "empty"),
    (b"a,b", "x.pdf", "expected a .csv or .xlsx"),
])
def test_unreadable_catalogs_are_adapter_errors(content, filename, message) -> None:
    with pytest.raises(AdapterError, match=message):
        adapter().parse_catalog(content, filename)


def test_usage_units_inside_strings() -> None:
    line = parse_usage({"id": "U1", "order_no": "O1", "out_order_no": "alloc-1", "used": "0.5 亿tokens",
                        "time": "20261122100000"})
    assert (line.kind, line.quantity, line.recorded_at.isoformat()) == ("tokens", Decimal(50), "2026-11-22T10:00:00+08:00")
