"""A China Mobile open-API simulator: cursor pages of nested resource groups, Chinese fields,
yuan per unit per month, HMAC-signed requests.

    create_app(seed=0, offers=200, app_key="sim-mobile-key", app_secret="sim-mobile-secret", **misbehaviour)
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Flask, Response, request

from adapters.mobile import USAGE_UNITS, canonical_request, request_signature
from adapters.signing import webhook_signature
from adapters.simulators.common import OrderBook, SimOptions, access_answer, install, record_rng, window_for
from broker.clock import SHANGHAI

CARRIER = "mobile"
DEFAULT_KEY, DEFAULT_SECRET = "sim-mobile-key", "sim-mobile-secret"
GROUP_SIZE = 10
MAX_GROUPS = 100
SIGNATURE_WINDOW_MS = 300_000
CATEGORIES = ["智算", "通算", "云主机", "存储", "专线", "大模型"]
KINDS = dict(zip(CATEGORIES, ["gpu", "cpu", "cloud_vm", "storage", "data_line", "tokens"]))
REGIONS = ["上海", "上海", "北京", "广州", "香港"]


def group_count(options: SimOptions) -> int:
    return -(-options.offers // GROUP_SIZE)


def resource_code(index: int) -> str:
    return f"CMCC-{index:08d}"


def group(options: SimOptions, g: int) -> dict[str, Any]:
    """Resource group number g and its resources, as mobile publishes them."""
    rng = record_rng(CARRIER + "-group", options.seed, g)
    category = rng.choice(CATEGORIES)
    first, last = g * GROUP_SIZE, min((g + 1) * GROUP_SIZE, options.offers)
    return {
        "组编号": f"G{g:06d}",
        "资源类别": category,
        "地域": rng.choice(REGIONS),
        "资源列表": [resource(options, category, i) for i in range(first, last)],
    }


def resource(options: SimOptions, category: str, index: int) -> dict[str, Any]:
    rng = record_rng(CARRIER, options.seed, index)
    start, end = window_for(rng, options.first_month)
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    item: dict[str, Any] = {"资源编码": resource_code(index), "起始月份": start.strftime("%Y-%m"), "租期(月)": months}
    kind = KINDS[category]
    if kind == "gpu":
        model, memory = rng.choice([("A100", 80), ("H100", 80), ("910B", 64)])
        item.update(规格={"型号": model, "显存(GB)": memory}, 数量=rng.choice([4, 8, 16, 64]), 数量单位="卡",
                    **{"刊例价(元/单位/月)": f"{rng.randint(6000, 30000)}.00"})
    elif kind == "cpu":
        item.update(规格={"架构": rng.choice(["x86_64", "aarch64"])}, 数量=rng.choice([64, 256, 1024]),
                    数量单位="核", **{"刊例价(元/单位/月)": f"{rng.randint(30, 120)}.50"})
    elif kind == "cloud_vm":
        item.update(规格={"规格族": rng.choice(["c7.large", "m7.xlarge"]), "操作系统": "BC-Linux 21.10"},
                    数量=rng.choice([16, 64, 200]), 数量单位="vCPU", **{"刊例价(元/单位/月)": f"{rng.randint(40, 90)}"})
    elif kind == "storage":
        unit = rng.choice(["GB", "TB", "PB"])
        amount = {"GB": rng.choice([500, 2500]), "TB": rng.choice([10, 50]), "PB": 1}[unit]
        per = {"GB": "0.12", "TB": "120", "PB": "110000"}[unit]
        item.update(规格={"存储类型": rng.choice(["标准", "低频", "归档", "SSD"])}, 数量=amount, 数量单位=unit,
                    **{"刊例价(元/单位/月)": per})
    elif kind == "data_line":
        unit = rng.choice(["Mbps", "Gbps"])
        item.update(规格={"A端": "上海长宁", "Z端": rng.choice(["香港", "新加坡", "北京"]), "跨境": rng.choice(["是", "否"])},
                    数量=rng.choice([100, 500]) if unit == "Mbps" else rng.choice([1, 10]), 数量单位=unit,
                    **{"刊例价(元/单位/月)": "35" if unit == "Mbps" else "30000"})
    else:
        item.update(规格={"模型": rng.choice(["jiutian-13b", "qwen-72b"])}, 数量=rng.choice([1000, 50000]),
                    数量单位="万tokens", **{"刊例价(元/单位/月)": "0.8"})
    list_price = Decimal(item["刊例价(元/单位/月)"])
    item["优惠价(元/单位/月)"] = str(rng.choice([Decimal(0), list_price / 2, list_price]))
    if index % GROUP_SIZE and rng.random() < options.duplicate_rate:
        item["资源编码"] = resource_code(index - 1)
    if rng.random() < options.malformed_rate:
        corrupt(item, rng)
    return item


def access(group: dict[str, Any], index: int, sub_id: str) -> dict[str, Any]:
    """接入信息 of a subscription, as mobile answers it: with the secret (APIKey, 初始密码) beside the rest."""
    console = f"https://ecloud.10086.example/console/subscriptions/{sub_id}"
    pool = f"{group['地域']}资源池"
    secret = "sim-" + sub_id[::-1].lower()
    kind = KINDS[group["资源类别"]]
    if kind == "tokens":
        spec = group["资源列表"][index % GROUP_SIZE].get("规格") or {}
        return {"接入地址": "https://jiutian.10086.example/api/v1", "模型名称": spec.get("模型", ""),
                "APIKey": secret, "控制台": console, "使用说明": "在控制台“API 密钥”页获取 APIKey 后按 OpenAI 兼容接口调用。"}
    if kind == "data_line":
        return {"电路编号": f"CMCC-DL-{sub_id[-6:]}", "交接点": "上海长宁 移动数据中心 2F 配线架 B-04", "控制台": console}
    if kind == "storage":
        return {"接入地址": "https://eos.10086.example", "资源池": pool, "AccessKey": secret,
                "SecretKey": secret, "控制台": console}
    return {"登录地址": f"{sub_id.lower()}.ecloud.10086.example", "登录账号": "cmcc-user", "初始密码": secret,
            "资源池": pool, "控制台": console}


def corrupt(item: dict[str, Any], rng: random.Random) -> None:
    how = rng.randrange(5)
    if how == 0:
        del item["刊例价(元/单位/月)"]
    elif how == 1:
        item["起始月份"] = "2026/13"
    elif how == 2:
        item["数量"] = "很多"
    elif how == 3:
        item["数量单位"] = "桶"
    else:
        item["租期(月)"] = 0


def encode_cursor(next_group: int) -> str:
    return base64.urlsafe_b64encode(f"g:{next_group}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    text = base64.urlsafe_b64decode(cursor.encode()).decode()
    if not text.startswith("g:"):
        raise ValueError(cursor)
    return int(text[2:])


def envelope(data: Any, status: int = 200, code: str = "0000", message: str = "成功") -> Response:
    return Response(
        json.dumps({"返回码": code, "返回信息": message, "数据": data}, ensure_ascii=False, default=str),
        status=status,
        content_type="application/json; charset=utf-8",
    )


def build_webhook(secret: str, now: datetime, groups: list[int], **options: Any) -> tuple[dict[str, str], bytes]:
    """A signed push of the given resource groups, as mobile would POST it to the broker."""
    sim = SimOptions.build(options, set())
    body = json.dumps({"事件": "资源变更", "资源组": [group(sim, g) for g in groups]}, ensure_ascii=False).encode()
    timestamp = int(now.timestamp())
    return {"X-CMCC-Timestamp": str(timestamp), "X-CMCC-Signature": webhook_signature(secret, timestamp, body),
            "Content-Type": "application/json"}, body


def create_app(**options: Any) -> Flask:
    """The simulator app; options are SimOptions fields plus `app_key` and `app_secret`."""
    sim = SimOptions.build(options, {"app_key", "app_secret"})
    app_key = sim.extra.get("app_key", DEFAULT_KEY)
    app_secret = sim.extra.get("app_secret", DEFAULT_SECRET)
    app = Flask(__name__)
    orders = OrderBook("CMCC-SUB-")
    install(app, sim, orders, data_prefix="/openapi/")

    @app.before_request
    def _verify_signature() -> Response | None:
        if not request.path.startswith("/openapi/"):
            return None
        headers = request.headers
        stamp, nonce = headers.get("X-CMCC-Timestamp", ""), headers.get("X-CMCC-Nonce", "")
        if headers.get("X-CMCC-AppKey") != app_key or not stamp.isdigit() or not nonce:
            return envelope(None, 401, "4010", "签名错误: 缺少或无效的 AppKey/Timestamp/Nonce")
        if abs(time.time() * 1000 - int(stamp)) > SIGNATURE_WINDOW_MS:
            return envelope(None, 401, "4011", "签名已过期")
        canonical = canonical_request(request.method, request.path, request.query_string.decode(),
                                      stamp, nonce, request.get_data())
        if not hmac.compare_digest(request_signature(app_secret, canonical), headers.get("X-CMCC-Signature", "")):
            return envelope(None, 401, "4012", "签名错误")
        return None

    @app.get("/openapi/v2/resource-groups")
    def resource_groups() -> Response:
        limit = request.args.get("limit", 20, type=int)
        if not 1 <= limit <= MAX_GROUPS:
            return envelope(None, 400, "4001", f"limit 须在 1..{MAX_GROUPS}")
        try:
            first = decode_cursor(request.args["cursor"]) if "cursor" in request.args else 0
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return envelope(None, 400, "4002", "无效的游标")
        last = min(first + limit, group_count(sim))
        return envelope({
            "资源组": [group(sim, g) for g in range(first, last)],
            "下一页游标": encode_cursor(last) if last < group_count(sim) else None,
        })

    @app.post("/openapi/v2/subscriptions")
    def subscribe() -> Response:
        key = request.headers.get("X-CMCC-Request-Id")
        if not key:
            return envelope(None, 400, "4003", "缺少 X-CMCC-Request-Id")
        body = request.get_json(silent=True) or {}
        try:
            index = int(str(body["资源编码"]).removeprefix("CMCC-"))
            amount = Decimal(str(body["订购数量"]))
        except (KeyError, ValueError, ArithmeticError):
            return envelope(None, 400, "4004", "资源编码与订购数量必填")
        if not 0 <= index < sim.offers:
            return envelope(None, 404, "4040", "资源不存在")
        resources = group(sim, index // GROUP_SIZE)
        kind = KINDS[resources["资源类别"]]
        if body.get("数量单位") != USAGE_UNITS[kind][0] or amount <= 0:
            return envelope(None, 400, "4005", f"订购数量须为正数, 单位 {USAGE_UNITS[kind][0]}")
        try:
            order, created = orders.place(key, body, lambda sub_id: {
                "订购编号": sub_id, "order_id": sub_id, "订购状态": "已生效", "amount": amount,
                "unit": USAGE_UNITS[kind][0],
                "接入信息": access_answer(sim, access(resources, index, sub_id), url_key="控制台", text_key="使用说明")})
        except ValueError:
            return envelope(None, 409, "4090", "请求编号已用于不同的订购")
        return envelope({"订购编号": order["订购编号"], "订购状态": order["订购状态"], "接入信息": order["接入信息"]},
                        201 if created else 200)

    @app.post("/openapi/v2/subscriptions/<sub_id>/cancel")
    def cancel(sub_id: str) -> Response:
        if orders.release(sub_id) is None:
            return envelope(None, 404, "4041", "订购不存在")
        return envelope({"订购编号": sub_id, "订购状态": "已退订"})

    @app.get("/openapi/v2/usage")
    def usage() -> Response:
        try:
            since = datetime.strptime(request.args.get("since", "2000-01-01 00:00:00"), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return envelope(None, 400, "4006", "since 格式须为 YYYY-MM-DD HH:MM:SS")
        # Beijing time, second precision, no offset: the carrier's quirk.
        records = [
            {"记录编号": f"U-{o['order_id']}", "订购编号": o["order_id"], "外部订单号": o["_key"],
             "用量": str(o["amount"] / 10), "用量单位": o["unit"],
             "记录时间": o["_created"].astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")}
            for o in orders.since(since.replace(tzinfo=SHANGHAI))
        ]
        return envelope({"用量记录": records, "下一页游标": None})

    return app
