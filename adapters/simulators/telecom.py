"""A China Telecom API simulator: page-numbered JSON, prices in fen, Gbps, cards × hours.

    create_app(seed=0, offers=200, token="sim-telecom-token", **misbehaviour)
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Flask, Response, request

from adapters.signing import webhook_signature
from adapters.simulators.common import (
    OrderBook,
    SimOptions,
    access_answer,
    install,
    parse_since,
    record_rng,
    window_for,
)

CARRIER = "telecom"
DEFAULT_TOKEN = "sim-telecom-token"
MAX_PAGE_SIZE = 1000
UNITS = {"GPU": "card_hour", "CPU": "core_hour", "LINE": "gbps", "ECS": "vcpu_month", "TOKEN": "k_tokens"}
REGIONS = ["cn-sh1", "cn-sh2", "cn-bj1", "cn-gz1", "cn-hk1"]
GPUS = [("A100", "80GB"), ("H100", "80GB"), ("910B", "64GB"), ("L40S", "48GB")]
LINES = [("上海长宁", "香港", True), ("上海长宁", "北京亦庄", False), ("上海虹桥", "新加坡", True)]
FLAVORS = [("s7.xlarge.4", 4), ("c7.2xlarge.2", 8), ("m7.4xlarge.8", 16)]
_TYPES = list(UNITS)
_TYPE_CUM_WEIGHTS = [4, 6, 7, 9, 10]  # what choices(weights=[4, 2, 1, 2, 1]) accumulates: the same draws


def resource_id(index: int) -> str:
    return f"CTC-{index:07d}"


def resource(options: SimOptions, index: int) -> dict[str, Any]:
    """Resource number `index` of the catalogue, as telecom publishes it."""
    rng = record_rng(CARRIER, options.seed, index)
    rtype = rng.choices(_TYPES, cum_weights=_TYPE_CUM_WEIGHTS)[0]  # weights 4, 2, 1, 2, 1
    start, end = window_for(rng, options.first_month)
    hours = ((end - start).days + 1) * 24
    item: dict[str, Any] = {
        "resource_id": resource_id(index),
        "resource_type": rtype,
        "region_code": rng.choice(REGIONS),
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
    }
    if rtype == "GPU":
        model, memory = rng.choice(GPUS)
        item.update(spec={"gpu_model": model, "gpu_memory": memory}, gpu_cards=rng.choice([1, 2, 4, 8, 16]),
                    hours=hours, list_price_fen=rng.randint(800, 4000))
    elif rtype == "CPU":
        item.update(spec={"arch": rng.choice(["x86_64", "aarch64"])}, cores=rng.choice([32, 64, 128]),
                    hours=hours, list_price_fen=rng.randint(5, 40))
    elif rtype == "LINE":
        a_end, z_end, cross = rng.choice(LINES)
        item.update(spec={"a_end": a_end, "z_end": z_end, "cross_border": cross},
                    bandwidth_gbps=rng.choice([0.1, 0.5, 1, 2.5, 10]), list_price_fen=rng.randint(1_000_000, 9_000_000))
    elif rtype == "ECS":
        flavor, vcpus = rng.choice(FLAVORS)
        months = round((end - start).days / 30)
        item.update(spec={"flavor": flavor, "os": rng.choice(["CTyunOS 23", "Ubuntu 22.04"]), "vcpus": vcpus},
                    instances=rng.randint(1, 50), months=months, list_price_fen=rng.randint(20_000, 200_000))
    else:
        item.update(spec={"model": rng.choice(["telechat-52b", "deepseek-v3"])},
                    token_quota_k=rng.choice([100_000, 1_000_000, 5_000_000]), list_price_fen=rng.randint(1, 8))
    # Startups pay nothing, half or a carrier discount.
    item["startup_price_fen"] = rng.choice([0, 0, item["list_price_fen"] // 2, item["list_price_fen"] * 8 // 10])
    item["divisible"] = rtype != "LINE"
    if index > 0 and rng.random() < options.duplicate_rate:
        item["resource_id"] = resource_id(index - 1)
    if rng.random() < options.malformed_rate:
        corrupt(item, rng)
    return item


def access(item: dict[str, Any], order_id: str) -> dict[str, Any]:
    """How the startup reaches an order of this resource, as telecom's order answer says it: with a
    secret (an API key, an initial password) beside the display-safe fields, as real answers do."""
    console = f"https://console.ctyun.example/orders/{order_id}"
    region = item["region_code"]
    host = f"{order_id.lower()}.{region}.ctyun.example"
    secret = "sim-" + order_id[::-1].lower()
    rtype = item["resource_type"]
    if rtype == "TOKEN":
        return {"api_base_url": "https://maas.ctyun.example/v1", "model_name": item["spec"]["model"],
                "api_key": "sk-" + secret, "console_url": console,
                "guide": "OpenAI 兼容接口：请求头 Authorization: Bearer <API Key>，API Key 在控制台“密钥管理”中查看。"}
    if rtype == "LINE":
        return {"circuit_id": f"CTC-CKT-{order_id[-6:]}", "console_url": console,
                "handover_point": f"{item['spec']['a_end']} 数据中心 3F 配线架 ODF-12 端口 7"}
    return {"ssh_host": host, "ssh_user": "ctcuser" if rtype == "GPU" else "root", "initial_password": secret,
            "region_code": region, "console_url": console}


def corrupt(item: dict[str, Any], rng: random.Random) -> None:
    """Break one record the ways real feeds break."""
    how = rng.randrange(6)
    if how == 0:
        del item["list_price_fen"]
    elif how == 1:
        item["start_date"] = "2026-13-45"
    elif how == 2:
        item["resource_type"] = "QUANTUM"
    elif how == 3:
        item["startup_price_fen"] = -100
    elif how == 4:
        item["start_date"], item["end_date"] = item["end_date"], item["start_date"]
    else:
        item["region_code"] = ""


def envelope(data: Any, status: int = 200, code: int = 0, message: str = "success") -> Response:
    response = Response(
        json.dumps({"code": code, "message": message, "data": data}, ensure_ascii=False, default=str),
        status=status,
        content_type="application/json; charset=utf-8",
    )
    return response


def build_webhook(secret: str, now: datetime, indices: list[int], **options: Any) -> tuple[dict[str, str], bytes]:
    """A signed push of the given catalogue entries, as telecom would POST it to the broker."""
    sim = SimOptions.build(options, set())
    body = json.dumps(
        {"event": "resources.updated", "resources": [resource(sim, i) for i in indices]}, ensure_ascii=False
    ).encode()
    timestamp = int(now.timestamp())
    return {
        "X-CTC-Timestamp": str(timestamp),
        "X-CTC-Signature": "sha256=" + webhook_signature(secret, timestamp, body),
        "Content-Type": "application/json",
    }, body


def create_app(**options: Any) -> Flask:
    """The simulator app; options are SimOptions fields plus `token`."""
    sim = SimOptions.build(options, {"token"})
    token = sim.extra.get("token", DEFAULT_TOKEN)
    app = Flask(__name__)
    orders = OrderBook("CTC-ORD-")
    install(app, sim, orders, data_prefix="/api/")

    @app.before_request
    def _authenticate() -> Response | None:
        if request.path.startswith("/api/") and request.headers.get("Authorization") != f"Bearer {token}":
            return envelope(None, 401, 40100, "invalid or missing token")
        return None

    @app.get("/api/v1/resources")
    def resources() -> Response:
        page = request.args.get("page", 1, type=int)
        page_size = request.args.get("page_size", sim.page_size, type=int)
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            return envelope(None, 400, 40001, f"page must be >= 1 and page_size 1..{MAX_PAGE_SIZE}")
        total_pages = max(1, -(-sim.offers // page_size))
        first = (page - 1) * page_size
        items = [resource(sim, i) for i in range(first, min(first + page_size, sim.offers))]
        return envelope({"page": page, "page_size": page_size, "total_count": sim.offers,
                         "total_pages": total_pages, "resources": items})

    @app.post("/api/v1/orders")
    def place_order() -> Response:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return envelope(None, 400, 40002, "Idempotency-Key header is required")
        body = request.get_json(silent=True) or {}
        try:
            index = int(str(body["resource_id"]).removeprefix("CTC-"))
            item = resource(sim, index) if 0 <= index < sim.offers else None
            amount = Decimal(str(body["amount"]))
        except (KeyError, ValueError, ArithmeticError):
            return envelope(None, 400, 40003, "resource_id and amount are required")
        if item is None:
            return envelope(None, 404, 40400, "resource not found")
        rtype = item["resource_type"]
        if body.get("unit") != UNITS[rtype] or amount <= 0:
            return envelope(None, 400, 40004, f"amount must be a positive number of {UNITS[rtype]}")
        try:
            order, created = orders.place(key, body, lambda order_id: {
                "order_id": order_id, "status": "RUNNING", "resource_type": rtype,
                "amount": amount, "unit": UNITS[rtype],
                "access": access_answer(sim, access(item, order_id), url_key="console_url", text_key="guide")})
        except ValueError as error:
            return envelope(None, 409, 40900, str(error))
        return envelope({"order_id": order["order_id"], "status": order["status"], "access": order["access"]},
                        201 if created else 200)

    @app.post("/api/v1/orders/<order_id>/release")
    def release_order(order_id: str) -> Response:
        order = orders.release(order_id)
        if order is None:
            return envelope(None, 404, 40401, "order not found")
        return envelope({"order_id": order_id, "status": "RELEASED"})

    @app.get("/api/v1/usage")
    def usage() -> Response:
        page = request.args.get("page", 1, type=int)
        try:
            since = parse_since(request.args.get("start_time"))
        except ValueError:
            return envelope(None, 400, 40005, "start_time must be ISO 8601")
        # Each order reports a tenth of its amount as used, at the moment it was placed.
        records = [
            {"usage_id": f"U-{o['order_id']}", "order_id": o["order_id"], "client_token": o["_key"],
             "resource_type": o["resource_type"], "amount": str(o["amount"] / 10), "unit": o["unit"],
             "record_time": o["_created"].isoformat()}
            for o in orders.since(since)
        ]
        size = 100
        return envelope({"page": page, "total_pages": max(1, -(-len(records) // size)),
                         "records": records[(page - 1) * size: page * size]})

    return app
