"""China Unicom (中国联通): a catalog file (CSV or XLSX) downloaded behind HTTP basic auth.

Carrier quirks, all normalised here:
- the catalog is a file, announced by an index (GET /cu/catalog/latest) that names it and gives
  its row count and SHA-256. The index also carries a CDN `download_url`, which we ignore: the
  file is fetched from our configured base URL by its validated file id. A file whose checksum
  or row count disagrees with the index is refused whole — a truncated catalog would look like
  a shorter one, and withdraw the offers it lost;
- dates are YYYYMMDD (spreadsheets turn them into numbers);
- quantities and prices carry their unit inside the string: "500 GPU时", "1Gbps", "2 亿tokens",
  "12.5 元/GPU时", "8000元/Gbps"; a free offer's price may read "免费";
- specs are "key=value;key=value" with Chinese keys.
The same parser reads catalogs that Unicom staff upload by hand (parse_catalog).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Mapping

import requests
from requests.auth import HTTPBasicAuth

from broker import inputs
from broker.clock import SHANGHAI

from adapters.base import (
    AccessDetails,
    AdapterError,
    Feature,
    FetchResult,
    OfferRecord,
    Provisioned,
    ProvisionRequest,
    RecordError,
    UploadLimits,
    UsageRecord,
    UsageResult,
)
from adapters.feed import RECORD_ERRORS, FeedBuilder, reason_for, rejected_record
from adapters.http import HttpCarrierAdapter
from adapters.tables import read_table
from adapters.units import parse_date, price, quantity, to_decimal

COLUMNS = ("资源编号", "资源类型", "地域", "规格", "可售数量", "开始日期", "结束日期", "刊例价", "优惠价")
KIND_BY_TYPE = {
    "GPU算力": "gpu",
    "通用算力": "cpu",
    "专线": "data_line",
    "云主机": "cloud_vm",
    "对象存储": "storage",
    "大模型Tokens": "tokens",
}
# unit as written → (kind, broker units per one)
UNITS: dict[str, tuple[str, Decimal]] = {
    "GPU时": ("gpu", Decimal(1)),
    "卡时": ("gpu", Decimal(1)),
    "核时": ("cpu", Decimal(1)),
    "Kbps": ("data_line", Decimal("0.001")),
    "Mbps": ("data_line", Decimal(1)),
    "Gbps": ("data_line", Decimal(1000)),
    "vCPU·月": ("cloud_vm", Decimal(1)),
    "GB·月": ("storage", Decimal("0.001")),
    "TB·月": ("storage", Decimal(1)),
    "PB·月": ("storage", Decimal(1000)),
    "万tokens": ("tokens", Decimal("0.01")),
    "百万tokens": ("tokens", Decimal(1)),
    "亿tokens": ("tokens", Decimal(100)),
}
# The unit orders and usage are counted in, per kind.
ORDER_UNITS = {"gpu": "GPU时", "cpu": "核时", "data_line": "Mbps", "cloud_vm": "vCPU·月",
               "storage": "TB·月", "tokens": "百万tokens"}
SPEC_KEYS = {
    "gpu": {"型号": "gpu_model", "显存": "gpu_memory_gb"},
    "cpu": {"架构": "arch"},
    "data_line": {"A端": "a_end", "Z端": "z_end", "跨境": "cross_border"},
    "cloud_vm": {"规格": "flavor", "系统": "os"},
    "storage": {"类型": "tier"},
    "tokens": {"模型": "model"},
}
TIERS = {"标准": "standard", "低频": "infrequent", "归档": "archive", "SSD": "ssd"}
REGIONS = {"上海": "sh", "北京": "bj", "广州": "gz", "深圳": "sz", "香港": "hk"}
ORDER_STATE = {"OPEN": "active", "PENDING": "pending"}
# An order answer's `access` → the broker's AccessDetails; its password is not kept: the startup
# reads it in unicom's console.
ACCESS_NAMES = {
    "endpoint": "endpoint", "console": "console_url", "pool": "region", "model": "model", "host": "host",
    "user": "username", "circuit_no": "circuit_id", "handover": "handover_point", "note": "instructions",
}
# A header cell may say its unit after the name, in brackets: "可售数量（如 500 GPU时）" is 可售数量.
_HEADER_NOTE = re.compile(r"\s*[（(][^（()）]*[)）]\s*$")
# The catalog template's header (each column with how it is written) and example row.
TEMPLATE_HEADER = (
    "资源编号", "资源类型（GPU算力/通用算力/专线/云主机/对象存储/大模型Tokens）", "地域（上海/北京/广州/深圳/香港）",
    "规格（键=值;键=值）", "可售数量（数量 单位，如 500 GPU时）", "开始日期（YYYYMMDD）", "结束日期（YYYYMMDD）",
    "刊例价（元/单位，如 12.5 元/GPU时）", "优惠价（元/单位，或 免费）",
)
TEMPLATE_EXAMPLE = (
    "CU-SH-GPU-0001", "GPU算力", "上海", "型号=A800;显存=80GB", "500 GPU时", "20270101", "20271231",
    "12.5 元/GPU时", "9.8 元/GPU时",
)
_AMOUNT = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(\S.*?)\s*$")
_FILE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FREE = "免费"


def parse_amount(text: Any, what: str) -> tuple[Decimal, str, Decimal]:
    """"500 GPU时" → (500, "gpu", 1): the number, the kind its unit measures, broker units per one."""
    match = _AMOUNT.match(str(text or ""))
    if not match:
        raise RecordError(f"{what} {text!r} is not '<number> <unit>'")
    number, unit = match.groups()
    if unit not in UNITS:
        raise RecordError(f"{what} {text!r}: unknown unit {unit!r}; known: {', '.join(UNITS)}")
    kind, factor = UNITS[unit]
    return to_decimal(number, what), kind, factor


def parse_price(text: Any, what: str, kind: str) -> Decimal:
    """"12.5 元/GPU时" → yuan per broker unit; "免费" or "0" → 0."""
    cell = str(text if text is not None else "").strip()
    if cell == FREE:
        return price(Decimal(0))
    number, _, unit = cell.partition("元/")
    if not unit:
        if to_decimal(number, what) == 0:
            return price(Decimal(0))  # a bare 0 needs no unit
        raise RecordError(f"{what} {text!r} is not '<number> 元/<unit>'")
    per_unit, unit_kind, factor = parse_amount(f"{number.strip()} {unit.strip()}", what)
    if unit_kind != kind:
        raise RecordError(f"{what} {text!r} is priced in a unit of {unit_kind}, not {kind}")
    return price(per_unit / factor)


def parse_spec(text: Any, kind: str) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {}
    for pair in filter(None, (p.strip() for p in str(text or "").split(";"))):
        key, sep, value = pair.partition("=")
        if not sep:
            raise RecordError(f"规格 part {pair!r} is not key=value")
        name = SPEC_KEYS[kind].get(key.strip())
        if name is None:
            raise RecordError(f"规格 key {key!r} unknown for {kind}; known: {', '.join(SPEC_KEYS[kind])}")
        value = value.strip()
        if name == "gpu_memory_gb":
            digits = value.upper().removesuffix("GB")
            if not digits.isdigit():
                raise RecordError(f"显存 {value!r} is not a whole number of GB")
            attributes[name] = int(digits)
        elif name == "cross_border":
            attributes[name] = {"是": "yes", "否": "no"}.get(value, value)
        elif name == "tier":
            attributes[name] = TIERS.get(value, value)
        else:
            attributes[name] = value
    return attributes


def parse_row(row: Mapping[str, Any]) -> OfferRecord:
    """One catalog row (column name → cell) as an OfferRecord; RecordError if malformed."""
    kind = KIND_BY_TYPE.get(str(row["资源类型"]).strip())
    if kind is None:
        raise RecordError(f"unknown 资源类型 {row['资源类型']!r}; known: {', '.join(KIND_BY_TYPE)}")
    amount, unit_kind, factor = parse_amount(row["可售数量"], "可售数量")
    if unit_kind != kind:
        raise RecordError(f"可售数量 {row['可售数量']!r} is not a quantity of {kind}")
    region = str(row["地域"] or "").strip()
    return OfferRecord(
        external_id=str(row["资源编号"] or "").strip(),
        kind=kind,
        region=REGIONS.get(region, region.lower()),
        attributes=parse_spec(row["规格"], kind),
        quantity=quantity(amount * factor),
        window_start=parse_date(row["开始日期"], "开始日期", fmt="compact"),
        window_end=parse_date(row["结束日期"], "结束日期", fmt="compact"),
        list_price=parse_price(row["刊例价"], "刊例价", kind),
        unit_price=parse_price(row["优惠价"], "优惠价", kind),
    )


def parse_catalog(
    content: bytes, filename: str, *, carrier: str = "unicom", limits: UploadLimits | None = None
) -> tuple[FetchResult, int]:
    """Parse a unicom catalog file (by extension: .csv or .xlsx) → (result, data rows read).

    Raises AdapterError if the file as a whole is unreadable or lacks columns, CatalogLimitError
    if it is over `limits` (checked before any row is parsed); a bad row is quarantined.
    """
    table = read_table(content, filename, limits, carrier=carrier)
    rows = table.rows
    feed = FeedBuilder(carrier)
    feed.result.encoding = table.encoding
    if not rows:
        raise AdapterError(f"catalog {filename!r} is empty", carrier=carrier, carrier_fault=True)
    header = [_HEADER_NOTE.sub("", str(cell).strip()) for cell in rows[0][1]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise AdapterError(f"catalog {filename!r} lacks columns: {', '.join(missing)}",
                           carrier=carrier, carrier_fault=True)
    data_rows = 0
    for line, cells in rows[1:]:
        if not any(str(c).strip() for c in cells):
            continue  # blank line
        data_rows += 1
        location = f"row {line}"
        if len(cells) != len(header):
            raw = dict(zip(header, cells)) if len(cells) <= len(header) else {"cells": cells}
            feed.reject(raw, location, raw.get("资源编号") or None,
                        f"row has {len(cells)} cells, the header {len(header)}")
            continue
        row = dict(zip(header, cells))
        external_id = str(row["资源编号"]).strip() or None
        feed.add(row, location, external_id, lambda row=row: parse_row(row))
    return feed.finish(), data_rows


class UnicomAdapter(HttpCarrierAdapter):
    """China Unicom's catalog files (CSV/XLSX, YYYYMMDD, units inside strings), basic auth.

    config.options["format"] picks "csv" (default) or "xlsx".
    """

    name: ClassVar[str] = "unicom"
    credential_names: ClassVar[tuple[str, ...]] = ("username", "password")
    # Unicom doesn't push: changes arrive as a new catalog file (fetch or upload).
    unsupported_features: ClassVar[frozenset[Feature]] = frozenset({Feature.WEBHOOK})
    simulator: ClassVar[str | None] = "adapters.simulators.unicom:create_app"
    idempotency_header: ClassVar[str | None] = None  # the key travels in the body: out_order_no

    def _auth(self) -> requests.auth.AuthBase:
        return HTTPBasicAuth(self._secrets["username"].reveal(), self._secrets["password"].reveal())

    def _error_message(self, response: requests.Response) -> str:
        try:
            body = inputs.loads(response.content)
            return f"[{body['err_code']}] {body['err_msg']}"
        except (ValueError, KeyError, TypeError):
            return super()._error_message(response)

    def _ok(self, body: Any) -> Mapping[str, Any]:
        if not isinstance(body, dict) or "result" not in body:
            raise self._error("answer lacks a result field", fault=True)
        if body["result"] != "SUCCESS":
            raise self._error(f"[{body.get('err_code')}] {body.get('err_msg', '')}", fault=False)
        return body

    def fetch_offers(self) -> FetchResult:
        """Download the latest catalog file named by the index, check it, and parse it."""
        file_format = self.config.options.get("format", "csv")
        if file_format not in ("csv", "xlsx"):
            raise self._error(f"options.format must be csv or xlsx, not {file_format!r}", fault=False)
        index = self._ok(self._get_json("cu", "catalog", "latest", params={"format": file_format}))
        file_id, rows, digest = index.get("file_id"), index.get("rows"), index.get("sha256")
        if not isinstance(file_id, str) or not _FILE_ID.match(file_id) or not isinstance(rows, int) \
                or not isinstance(digest, str):
            raise self._error("catalog index lacks a valid file_id, rows or sha256", fault=True)
        filename = f"{file_id}.{file_format}"
        response = self._get_bytes("cu", "catalog", "files", filename)
        if hashlib.sha256(response.content).hexdigest() != digest.lower():
            raise self._error(f"catalog {filename} does not match its checksum (truncated download?)",
                              fault=True)
        try:
            result, data_rows = parse_catalog(response.content, filename, carrier=self.name)
        except AdapterError as error:
            raise self._error(error.message, fault=True) from None
        if data_rows != rows:
            raise self._error(f"catalog {filename} has {data_rows} rows, its index says {rows}", fault=True)
        return result

    def parse_catalog(self, content: bytes, filename: str, limits: UploadLimits | None = None) -> FetchResult:
        """Parse a catalog file uploaded by hand (.csv or .xlsx), within `limits`."""
        return parse_catalog(content, filename, carrier=self.name, limits=limits)[0]

    def catalog_template(self) -> list[list[str]]:
        """The header with each column's units, and one example row."""
        return [list(TEMPLATE_HEADER), list(TEMPLATE_EXAMPLE)]

    def provision(self, request: ProvisionRequest) -> Provisioned:
        """Place an order; the allocation id is out_order_no, unicom's idempotency key."""
        unit = ORDER_UNITS[request.kind]
        factor = UNITS[unit][1]
        body = {
            "out_order_no": request.allocation_id,
            "resource_no": request.offer_external_id,
            "quantity": f"{(request.quantity / factor).normalize():f} {unit}",
            "start": request.window_start.strftime("%Y%m%d"),
            "end": request.window_end.strftime("%Y%m%d"),
        }
        answer = self._ok(self._post_json("cu", "orders", payload=body, idempotency_key=request.allocation_id))
        try:
            return Provisioned(str(answer["order_no"]), ORDER_STATE.get(answer["state"], "pending"),
                               AccessDetails.from_carrier(answer.get("access"), ACCESS_NAMES, carrier=self.name))
        except KeyError as error:
            raise self._error(f"order answer is malformed: {reason_for(error)}", fault=True) from None

    def release(self, carrier_reference: str) -> None:
        """Close an order; closing twice is accepted."""
        self._ok(self._post_json("cu", "orders", carrier_reference, "close", payload={},
                                 idempotency_key=f"close-{carrier_reference}"))

    def fetch_usage(self, since: datetime) -> UsageResult:
        """Fetch usage lines since a time (one answer, no pages)."""
        since_text = since.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")
        answer = self._ok(self._get_json("cu", "usage", params={"since": since_text}))
        result = UsageResult(self.name)
        items = answer.get("items")
        if not isinstance(items, list):
            raise self._error("usage answer lacks an items list", fault=True)
        for index, item in enumerate(items):
            try:
                result.records.append(parse_usage(item))
            except RECORD_ERRORS as error:
                item_id = item.get("id") if isinstance(item, dict) else None
                result.rejected.append(rejected_record(item, f"item {index}", item_id, error))
        return result


def parse_usage(item: Mapping[str, Any]) -> UsageRecord:
    amount, kind, factor = parse_amount(item["used"], "used")
    try:
        recorded_at = datetime.strptime(str(item["time"]), "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        raise RecordError(f"time {item['time']!r} is not YYYYMMDDHHMMSS") from None
    return UsageRecord(
        external_id=str(item["id"]),
        allocation_id=str(item["out_order_no"]),
        carrier_reference=str(item["order_no"]),
        kind=kind,
        quantity=quantity(amount * factor),
        recorded_at=recorded_at,
    )
