"""China Telecom (中国电信): page-numbered JSON REST with a bearer token.

Carrier quirks, all normalised here:
- prices are integers in fen (分), per the carrier's own unit of the resource type;
- bandwidth is in Gbps (the broker counts Mbps), priced per Gbps for the whole window;
- GPU capacity comes as cards × hours, CPU as cores × hours (one card-hour is one GPU-hour);
- cloud servers come as instances × months, priced per instance-month, with vCPUs in the spec;
- token quotas are in thousands of tokens, priced per thousand;
- every answer is wrapped as {"code": 0, "message": ..., "data": ...}; code != 0 is an error
  even under HTTP 200.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Mapping

import requests

from broker import inputs

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
from adapters.units import parse_date, price, quantity, to_decimal

FEN_PER_YUAN = Decimal(100)
MBPS_PER_GBPS = Decimal(1000)
TOKENS_K_PER_MILLION = Decimal(1000)

# resource_type → broker kind
KIND_BY_TYPE = {"GPU": "gpu", "CPU": "cpu", "LINE": "data_line", "ECS": "cloud_vm", "TOKEN": "tokens"}
# The carrier's unit name for each kind, as its order and usage APIs spell it, and how many
# broker units one carrier unit is.
CARRIER_UNIT = {
    "gpu": ("card_hour", Decimal(1)),
    "cpu": ("core_hour", Decimal(1)),
    "data_line": ("gbps", MBPS_PER_GBPS),
    "cloud_vm": ("vcpu_month", Decimal(1)),
    "tokens": ("k_tokens", 1 / TOKENS_K_PER_MILLION),
}
REGIONS = {"cn-sh1": "sh", "cn-sh2": "sh", "cn-bj1": "bj", "cn-gz1": "gz", "cn-hk1": "hk"}
ORDER_STATUS = {"RUNNING": "active", "CREATING": "pending"}
# An order answer's `access` fields → the broker's AccessDetails; the rest (api_key,
# initial_password…) are not kept: the startup reads those in telecom's console.
ACCESS_NAMES = {
    "api_base_url": "endpoint", "console_url": "console_url", "region_code": "region", "model_name": "model",
    "ssh_host": "host", "ssh_user": "username", "circuit_id": "circuit_id", "handover_point": "handover_point",
    "guide": "instructions",
}


def normalise_region(code: str) -> str:
    """Broker region for a telecom region code; unknown codes pass through lower-cased."""
    if not isinstance(code, str) or not code.strip():
        raise RecordError("missing region_code")
    return REGIONS.get(code.strip(), code.strip().lower())


def parse_resource(item: Mapping[str, Any]) -> OfferRecord:
    """One telecom resource item as an OfferRecord; RecordError (or KeyError…) if malformed."""
    kind = KIND_BY_TYPE.get(item["resource_type"])
    if kind is None:
        raise RecordError(
            f"unknown resource_type {item['resource_type']!r}; known: {', '.join(KIND_BY_TYPE)}"
        )
    spec = item.get("spec") or {}
    list_fen = to_decimal(item["list_price_fen"], "list_price_fen")
    startup_fen = to_decimal(item["startup_price_fen"], "startup_price_fen")
    attributes: dict[str, str | int] = {}
    # quantity in broker units, and how many broker units one priced carrier unit holds
    if kind == "gpu":
        amount = to_decimal(item["gpu_cards"], "gpu_cards") * to_decimal(item["hours"], "hours")
        per_unit = Decimal(1)
        attributes["gpu_model"] = spec["gpu_model"]
        if "gpu_memory" in spec:  # "80GB"
            memory = str(spec["gpu_memory"]).upper().removesuffix("GB").strip()
            if not memory.isdigit():
                raise RecordError(f"gpu_memory {spec['gpu_memory']!r} is not a whole number of GB")
            attributes["gpu_memory_gb"] = int(memory)
    elif kind == "cpu":
        amount = to_decimal(item["cores"], "cores") * to_decimal(item["hours"], "hours")
        per_unit = Decimal(1)
        attributes["arch"] = spec["arch"]
    elif kind == "data_line":
        amount = to_decimal(item["bandwidth_gbps"], "bandwidth_gbps") * MBPS_PER_GBPS
        per_unit = MBPS_PER_GBPS
        attributes["a_end"] = spec["a_end"]
        attributes["z_end"] = spec["z_end"]
        attributes["cross_border"] = "yes" if spec.get("cross_border") is True else "no"
    elif kind == "cloud_vm":
        vcpus = to_decimal(spec["vcpus"], "spec.vcpus")
        if vcpus == 0:
            raise RecordError("spec.vcpus is zero")
        amount = to_decimal(item["instances"], "instances") * vcpus * to_decimal(item["months"], "months")
        per_unit = vcpus  # priced per instance-month
        attributes["flavor"] = spec["flavor"]
        attributes["os"] = spec["os"]
    else:  # tokens
        amount = to_decimal(item["token_quota_k"], "token_quota_k") / TOKENS_K_PER_MILLION
        per_unit = 1 / TOKENS_K_PER_MILLION
        attributes["model"] = spec["model"]
    divisible = item.get("divisible")
    return OfferRecord(
        external_id=str(item["resource_id"]),
        kind=kind,
        region=normalise_region(item["region_code"]),
        attributes=attributes,
        quantity=quantity(amount),
        window_start=parse_date(item["start_date"], "start_date"),
        window_end=parse_date(item["end_date"], "end_date"),
        list_price=price(list_fen / FEN_PER_YUAN / per_unit),
        unit_price=price(startup_fen / FEN_PER_YUAN / per_unit),
        divisible=None if divisible is None else bool(divisible),
    )


def add_resources(feed: FeedBuilder, items: Any, where: str) -> None:
    if not isinstance(items, list):
        feed.reject(items, where, None, "resources is not a list")
        return
    for index, item in enumerate(items):
        location = f"{where} item {index}"
        if not isinstance(item, dict):
            feed.reject(item, location, None, "record is not an object")
            continue
        external_id = item.get("resource_id")
        feed.add(item, location, str(external_id) if external_id is not None else None,
                 lambda item=item: parse_resource(item))


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth('********')"


class TelecomAdapter(HttpCarrierAdapter):
    """China Telecom's resource API (page-numbered REST, fen, Gbps, cards × hours)."""

    name: ClassVar[str] = "telecom"
    credential_names: ClassVar[tuple[str, ...]] = ("token",)
    unsupported_features: ClassVar[frozenset[Feature]] = frozenset({Feature.CATALOG_UPLOAD})
    simulator: ClassVar[str | None] = "adapters.simulators.telecom:create_app"
    idempotency_header: ClassVar[str | None] = "Idempotency-Key"
    # Telecom caps page_size at 1000 and answers 400 above it.
    MAX_PAGE_SIZE: ClassVar[int] = 1000

    def _auth(self) -> requests.auth.AuthBase:
        return BearerAuth(self._secrets["token"].reveal())

    def _error_message(self, response: requests.Response) -> str:
        try:
            body = inputs.loads(response.content)
            return f"[{body['code']}] {body['message']}"
        except (ValueError, KeyError, TypeError):
            return super()._error_message(response)

    def _data(self, body: Any) -> Any:
        if not isinstance(body, dict) or "code" not in body:
            raise self._error("answer is not a {code, message, data} envelope", fault=True)
        if body["code"] != 0:
            raise self._error(f"[{body['code']}] {body.get('message', '')}", fault=False)
        return body.get("data")

    def fetch_offers(self) -> FetchResult:
        """Fetch every page of the resource catalogue."""
        feed = FeedBuilder(self.name)
        page_size = min(self.config.page_size, self.MAX_PAGE_SIZE)
        page, total_pages = 1, 1
        while page <= total_pages:
            data = self._data(
                self._get_json("api", "v1", "resources", params={"page": page, "page_size": page_size})
            )
            try:
                total_pages = int(data["total_pages"])
                items = data["resources"]
            except (KeyError, TypeError, ValueError) as error:
                raise self._error(f"page {page} is malformed: {reason_for(error)}", fault=True) from None
            # Page numbers shift if the catalogue changes mid-fetch: an item may appear on two
            # pages (dropped as a duplicate) or be missed until the next sync.
            add_resources(feed, items, f"page {page}")
            page += 1
        return feed.finish()

    def provision(self, request: ProvisionRequest) -> Provisioned:
        """Order an allocation; the allocation id is the Idempotency-Key, so retries are safe."""
        unit, broker_per_unit = CARRIER_UNIT[request.kind]
        body = {
            "resource_id": request.offer_external_id,
            "amount": str((request.quantity / broker_per_unit).normalize()),
            "unit": unit,
            "start_date": request.window_start.isoformat(),
            "end_date": request.window_end.isoformat(),
        }
        data = self._data(
            self._post_json("api", "v1", "orders", payload=body, idempotency_key=request.allocation_id)
        )
        try:
            return Provisioned(str(data["order_id"]), ORDER_STATUS.get(data["status"], "pending"),
                               AccessDetails.from_carrier(data.get("access"), ACCESS_NAMES, carrier=self.name))
        except (KeyError, TypeError, AttributeError) as error:
            raise self._error(f"order answer is malformed: {reason_for(error)}", fault=True) from None

    def release(self, carrier_reference: str) -> None:
        """Release an order (telecom answers 200 to a second release)."""
        self._data(self._post_json("api", "v1", "orders", carrier_reference, "release", payload={},
                                   idempotency_key=f"release-{carrier_reference}"))

    def fetch_usage(self, since: datetime) -> UsageResult:
        """Fetch usage records since a time, every page."""
        result = UsageResult(self.name)
        page, total_pages = 1, 1
        while page <= total_pages:
            data = self._data(
                self._get_json("api", "v1", "usage", params={"start_time": since.isoformat(), "page": page})
            )
            try:
                total_pages = int(data["total_pages"])
                records = list(data["records"])
            except (KeyError, TypeError, ValueError) as error:
                raise self._error(f"usage page {page} is malformed: {reason_for(error)}", fault=True) from None
            for index, record in enumerate(records):
                try:
                    result.records.append(parse_usage(record))
                except RECORD_ERRORS as error:
                    usage_id = record.get("usage_id") if isinstance(record, dict) else None
                    result.rejected.append(
                        rejected_record(record, f"page {page} item {index}", usage_id, error)
                    )
            page += 1
        return result

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, secret: str | bytes, now: datetime
    ) -> FetchResult:
        """Verify X-CTC-Signature ("sha256=<hex>") and parse the pushed resources."""
        push = verify_webhook(
            headers, body, secret, now,
            carrier=self.name,
            timestamp_header="X-CTC-Timestamp",
            signature_header="X-CTC-Signature",
            signature_prefix="sha256=",
        )
        result = parse_webhook_body(body)
        result.push = push
        return result


def parse_webhook_body(body: bytes) -> FetchResult:
    """The offers in a (verified) telecom push: {"event": ..., "resources": [...]}."""
    feed = FeedBuilder(TelecomAdapter.name, complete=False)
    try:
        payload = inputs.loads(body, parse_float=Decimal)
        items = payload["resources"]
    except (ValueError, KeyError, TypeError) as error:
        raise AdapterError(f"unreadable webhook body: {reason_for(error)}", carrier=TelecomAdapter.name) from None
    add_resources(feed, items, "push")
    return feed.finish()


def parse_usage(record: Mapping[str, Any]) -> UsageRecord:
    kind = KIND_BY_TYPE.get(record["resource_type"])
    if kind is None:
        raise RecordError(f"unknown resource_type {record['resource_type']!r}")
    unit, broker_per_unit = CARRIER_UNIT[kind]
    if record["unit"] != unit:
        raise RecordError(f"unit {record['unit']!r} where {unit!r} was expected for {kind}")
    recorded_at = datetime.fromisoformat(record["record_time"])
    if recorded_at.tzinfo is None:
        raise RecordError("record_time has no timezone")
    return UsageRecord(
        external_id=str(record["usage_id"]),
        allocation_id=str(record["client_token"]),
        carrier_reference=str(record["order_id"]),
        kind=kind,
        quantity=quantity(to_decimal(record["amount"], "amount") * broker_per_unit),
        recorded_at=recorded_at,
    )
