"""China Mobile (中国移动): cursor-paginated JSON with Chinese field names, HMAC-signed requests.

Carrier quirks, all normalised here:
- resources come nested in groups (资源组) that carry the category (资源类别) and region (地域)
  shared by their resources (资源列表);
- every price is yuan per unit per month (元/单位/月), and windows are whole months: a start
  month (起始月份, "2026-12") and a term (租期(月));
- compute is counted in cards or cores: the broker's GPU-/core-hours are cards × every hour of
  the window, so the monthly price per card becomes price × months / hours in the window;
- storage capacity comes in GB, TB or PB (数量单位), bandwidth in Mbps or Gbps, token quotas
  per month in 万tokens (tens of thousands);
- answers are wrapped as {"返回码": "0000", "返回信息": ..., "数据": ...}; any other code is an
  error even under HTTP 200;
- usage times (记录时间) are Beijing time without an offset.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Mapping
from urllib.parse import unquote, urlsplit

import requests

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
    UsageRecord,
    UsageResult,
)
from adapters.feed import RECORD_ERRORS, FeedBuilder, reason_for, rejected_record
from adapters.http import HttpCarrierAdapter
from adapters.signing import verify_webhook
from adapters.units import add_months, price, quantity, to_decimal, window_hours

OK = "0000"

KIND_BY_CATEGORY = {
    "智算": "gpu",
    "通算": "cpu",
    "云主机": "cloud_vm",
    "存储": "storage",
    "专线": "data_line",
    "大模型": "tokens",
}
REGIONS = {"上海": "sh", "北京": "bj", "广州": "gz", "深圳": "sz", "杭州": "hz", "香港": "hk"}
TIERS = {"标准": "standard", "低频": "infrequent", "归档": "archive", "SSD": "ssd"}
# 数量单位 → (kind, broker units per carrier unit)
QUANTITY_UNITS = {
    "卡": ("gpu", None),  # per card: multiplied by the window's hours
    "核": ("cpu", None),
    "vCPU": ("cloud_vm", Decimal(1)),
    "GB": ("storage", Decimal("0.001")),
    "TB": ("storage", Decimal(1)),
    "PB": ("storage", Decimal(1000)),
    "Mbps": ("data_line", Decimal(1)),
    "Gbps": ("data_line", Decimal(1000)),
    "万tokens": ("tokens", Decimal("0.01")),
}
# What subscriptions and usage are counted in, per kind (用量单位), and broker units per one.
USAGE_UNITS = {
    "gpu": ("卡时", Decimal(1)),
    "cpu": ("核时", Decimal(1)),
    "cloud_vm": ("vCPU·月", Decimal(1)),
    "storage": ("TB·月", Decimal(1)),
    "data_line": ("Mbps", Decimal(1)),
    "tokens": ("万tokens", Decimal("0.01")),
}
KIND_BY_USAGE_UNIT = {unit: kind for kind, (unit, _) in USAGE_UNITS.items()}
SUBSCRIPTION_STATUS = {"已生效": "active", "处理中": "pending"}
# A subscription's 接入信息 → the broker's AccessDetails; its secrets (APIKey, 初始密码, AccessKey…)
# are not kept: the startup reads those in mobile's console.
ACCESS_NAMES = {
    "接入地址": "endpoint", "控制台": "console_url", "资源池": "region", "模型名称": "model", "登录地址": "host",
    "登录账号": "username", "电路编号": "circuit_id", "交接点": "handover_point", "使用说明": "instructions",
}


def parse_resource(group: Mapping[str, Any], item: Mapping[str, Any]) -> OfferRecord:
    """One resource of a group as an OfferRecord; RecordError (or KeyError…) if malformed."""
    kind = KIND_BY_CATEGORY.get(group["资源类别"])
    if kind is None:
        raise RecordError(f"unknown 资源类别 {group['资源类别']!r}; known: {', '.join(KIND_BY_CATEGORY)}")
    region_name = str(group["地域"]).strip()
    region = REGIONS.get(region_name, region_name.lower())
    spec = item.get("规格") or {}

    start_text = str(item["起始月份"])
    try:
        start = datetime.strptime(start_text, "%Y-%m").date()
    except ValueError:
        raise RecordError(f"起始月份 {start_text!r} is not a month YYYY-MM") from None
    months = item["租期(月)"]
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
        raise RecordError(f"租期(月) {months!r} is not a whole number of months 1..120")
    end = add_months(start, months)
    hours = Decimal(window_hours(start, end))

    unit = item["数量单位"]
    unit_kind, broker_per_unit = QUANTITY_UNITS.get(unit, (None, None))
    if unit_kind != kind:
        raise RecordError(f"数量单位 {unit!r} does not fit category {group['资源类别']!r}")
    amount = to_decimal(item["数量"], "数量")
    monthly_list = to_decimal(item["刊例价(元/单位/月)"], "刊例价(元/单位/月)")
    monthly_startup = to_decimal(item["优惠价(元/单位/月)"], "优惠价(元/单位/月)")

    attributes: dict[str, str | int] = {}
    if kind in ("gpu", "cpu"):
        # Cards (or cores) for every hour of the window; priced per card per month.
        total = amount * hours
        per_broker_unit = Decimal(months) / hours
        if kind == "gpu":
            attributes["gpu_model"] = spec["型号"]
            if "显存(GB)" in spec:
                attributes["gpu_memory_gb"] = spec["显存(GB)"]
        else:
            attributes["arch"] = spec["架构"]
    elif kind == "data_line":
        # A line's bandwidth is its quantity; its price covers the whole window.
        total = amount * broker_per_unit
        per_broker_unit = Decimal(months) / broker_per_unit
        attributes["a_end"] = spec["A端"]
        attributes["z_end"] = spec["Z端"]
        attributes["cross_border"] = {"是": "yes", "否": "no"}[spec.get("跨境", "否")]
    else:  # cloud_vm, storage, tokens: unit-months
        total = amount * broker_per_unit * months
        per_broker_unit = 1 / broker_per_unit
        if kind == "cloud_vm":
            attributes["flavor"] = spec["规格族"]
            attributes["os"] = spec["操作系统"]
        elif kind == "storage":
            tier = spec["存储类型"]
            if tier not in TIERS:
                raise RecordError(f"存储类型 {tier!r} unknown; known: {', '.join(TIERS)}")
            attributes["tier"] = TIERS[tier]
        else:
            attributes["model"] = spec["模型"]
    return OfferRecord(
        external_id=str(item["资源编码"]),
        kind=kind,
        region=region,
        attributes=attributes,
        quantity=quantity(total),
        window_start=start,
        window_end=end,
        list_price=price(monthly_list * per_broker_unit),
        unit_price=price(monthly_startup * per_broker_unit),
    )


def add_groups(feed: FeedBuilder, groups: Any, where: str) -> None:
    if not isinstance(groups, list):
        feed.reject(groups, where, None, "资源组 is not a list")
        return
    for g, group in enumerate(groups):
        items = group.get("资源列表") if isinstance(group, dict) else None
        if not isinstance(items, list):
            feed.reject(group, f"{where} group {g}", None, "group without a 资源列表 list")
            continue
        header = {k: v for k, v in group.items() if k != "资源列表"}
        for i, item in enumerate(items):
            location = f"{where} group {g} item {i}"
            if not isinstance(item, dict):
                feed.reject(item, location, None, "record is not an object")
                continue
            raw = {"资源组": header, **item}
            feed.add(raw, location, item.get("资源编码") if isinstance(item.get("资源编码"), str) else None,
                     lambda group=group, item=item: parse_resource(group, item))


def canonical_request(method: str, path: str, query: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What mobile signs: method, path, raw query, timestamp, nonce and the body's SHA-256."""
    return "\n".join(
        [method.upper(), unquote(path), query, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    ).encode()


def request_signature(secret: str, canonical: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), canonical, hashlib.sha256).digest()).decode()


class MobileSigner(requests.auth.AuthBase):
    """Signs each request with the app secret (X-CMCC-AppKey/Timestamp/Nonce/Signature).

    urllib3 re-sends the same signed bytes on a retry, so the nonce repeats; mobile accepts a
    repeated nonce within the timestamp window, and the timestamp is fresh per call.
    """

    def __init__(self, app_key: str, app_secret: str) -> None:
        self._app_key = app_key
        self._app_secret = app_secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url)
        timestamp = str(int(time.time() * 1000))
        nonce = secrets.token_hex(8)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        canonical = canonical_request(request.method or "GET", parts.path, parts.query, timestamp, nonce, body)
        request.headers.update({
            "X-CMCC-AppKey": self._app_key,
            "X-CMCC-Timestamp": timestamp,
            "X-CMCC-Nonce": nonce,
            "X-CMCC-Signature": request_signature(self._app_secret, canonical),
        })
        return request

    def __repr__(self) -> str:
        return "MobileSigner('********')"


class MobileAdapter(HttpCarrierAdapter):
    """China Mobile's open API (cursor pages, Chinese fields, yuan per unit per month, HMAC)."""

    name: ClassVar[str] = "mobile"
    credential_names: ClassVar[tuple[str, ...]] = ("app_key", "app_secret")
    unsupported_features: ClassVar[frozenset[Feature]] = frozenset({Feature.CATALOG_UPLOAD})
    simulator: ClassVar[str | None] = "adapters.simulators.mobile:create_app"
    idempotency_header: ClassVar[str | None] = "X-CMCC-Request-Id"
    MAX_GROUPS_PER_PAGE: ClassVar[int] = 100
    MAX_PAGES: ClassVar[int] = 100_000  # a cursor that never ends is a carrier bug

    def _auth(self) -> requests.auth.AuthBase:
        return MobileSigner(self._secrets["app_key"].reveal(), self._secrets["app_secret"].reveal())

    def _error_message(self, response: requests.Response) -> str:
        try:
            body = inputs.loads(response.content)
            return f"[{body['返回码']}] {body['返回信息']}"
        except (ValueError, KeyError, TypeError):
            return super()._error_message(response)

    def _data(self, body: Any) -> Any:
        if not isinstance(body, dict) or "返回码" not in body:
            raise self._error("answer is not a {返回码, 返回信息, 数据} envelope", fault=True)
        if body["返回码"] != OK:
            raise self._error(f"[{body['返回码']}] {body.get('返回信息', '')}", fault=False)
        return body.get("数据")

    def _pages(self, *segments: str, params: dict[str, Any], items_key: str):
        """Yield (page number, items) following 下一页游标 until it is empty."""
        cursor = None
        for page in range(1, self.MAX_PAGES + 1):
            query = dict(params, **({"cursor": cursor} if cursor else {}))
            data = self._data(self._get_json(*segments, params=query))
            try:
                items, cursor = data[items_key], data.get("下一页游标")
            except (KeyError, TypeError) as error:
                raise self._error(f"page {page} is malformed: {reason_for(error)}", fault=True) from None
            yield page, items
            # The cursor is an opaque token we send back as a parameter; it is never a URL.
            if not cursor:
                return
        raise self._error(f"cursor did not end after {self.MAX_PAGES} pages", fault=True)

    def fetch_offers(self) -> FetchResult:
        """Follow the cursor through every page of resource groups."""
        feed = FeedBuilder(self.name)
        limit = min(self.config.page_size, self.MAX_GROUPS_PER_PAGE)
        for page, groups in self._pages("openapi", "v2", "resource-groups", params={"limit": limit}, items_key="资源组"):
            add_groups(feed, groups, f"page {page}")
        return feed.finish()

    def provision(self, request: ProvisionRequest) -> Provisioned:
        """Subscribe; the allocation id goes in X-CMCC-Request-Id, mobile's idempotency key."""
        unit, broker_per_unit = USAGE_UNITS[request.kind]
        body = {
            "资源编码": request.offer_external_id,
            "订购数量": str((request.quantity / broker_per_unit).normalize()),
            "数量单位": unit,
            "开始日期": request.window_start.isoformat(),
            "结束日期": request.window_end.isoformat(),
        }
        data = self._data(self._post_json("openapi", "v2", "subscriptions", payload=body,
                                          idempotency_key=request.allocation_id))
        try:
            return Provisioned(str(data["订购编号"]), SUBSCRIPTION_STATUS.get(data["订购状态"], "pending"),
                               AccessDetails.from_carrier(data.get("接入信息"), ACCESS_NAMES, carrier=self.name))
        except (KeyError, TypeError, AttributeError) as error:
            raise self._error(f"subscription answer is malformed: {reason_for(error)}", fault=True) from None

    def release(self, carrier_reference: str) -> None:
        """Cancel a subscription (退订); cancelling twice is accepted."""
        self._data(self._post_json("openapi", "v2", "subscriptions", carrier_reference, "cancel",
                                   payload={}, idempotency_key=f"cancel-{carrier_reference}"))

    def fetch_usage(self, since: datetime) -> UsageResult:
        """Follow the cursor through usage records since a time."""
        result = UsageResult(self.name)
        since_text = since.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        for page, records in self._pages("openapi", "v2", "usage", params={"since": since_text}, items_key="用量记录"):
            for index, record in enumerate(records if isinstance(records, list) else [records]):
                try:
                    result.records.append(parse_usage(record))
                except RECORD_ERRORS as error:
                    record_id = record.get("记录编号") if isinstance(record, dict) else None
                    result.rejected.append(rejected_record(record, f"page {page} item {index}", record_id, error))
        return result

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, secret: str | bytes, now: datetime
    ) -> FetchResult:
        """Verify X-CMCC-Signature (hex) and parse the pushed resource groups."""
        push = verify_webhook(headers, body, secret, now, carrier=self.name,
                              timestamp_header="X-CMCC-Timestamp", signature_header="X-CMCC-Signature")
        result = parse_webhook_body(body)
        result.push = push
        return result


def parse_webhook_body(body: bytes) -> FetchResult:
    """The offers in a (verified) mobile push: {"事件": ..., "资源组": [...]}."""
    feed = FeedBuilder(MobileAdapter.name, complete=False)
    try:
        groups = inputs.loads(body, parse_float=Decimal)["资源组"]
    except (ValueError, KeyError, TypeError) as error:
        raise AdapterError(f"unreadable webhook body: {reason_for(error)}", carrier=MobileAdapter.name) from None
    add_groups(feed, groups, "push")
    return feed.finish()


def parse_usage(record: Mapping[str, Any]) -> UsageRecord:
    unit = record["用量单位"]
    kind = KIND_BY_USAGE_UNIT.get(unit)
    if kind is None:
        raise RecordError(f"unknown 用量单位 {unit!r}")
    try:
        recorded_at = datetime.strptime(record["记录时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    except (TypeError, ValueError):
        raise RecordError(f"记录时间 {record['记录时间']!r} is not YYYY-MM-DD HH:MM:SS") from None
    return UsageRecord(
        external_id=str(record["记录编号"]),
        allocation_id=str(record["外部订单号"]),
        carrier_reference=str(record["订购编号"]),
        kind=kind,
        quantity=quantity(to_decimal(record["用量"], "用量") * USAGE_UNITS[kind][1]),
        recorded_at=recorded_at,
    )
