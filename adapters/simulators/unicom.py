"""A China Unicom catalog simulator: an index naming a CSV or XLSX catalog file, basic auth.

    create_app(seed=0, offers=200, username="sim-unicom", password="sim-unicom-password", **misbehaviour)

The catalog file is built on the first request for it and kept (100,000 rows: about a second
for CSV, several for XLSX).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import threading
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Flask, Response, request

from adapters.simulators.common import OrderBook, SimOptions, access_answer, install, record_rng, window_for
from adapters.unicom import COLUMNS, ORDER_UNITS
from broker.clock import SHANGHAI

CARRIER = "unicom"
DEFAULT_USER, DEFAULT_PASSWORD = "sim-unicom", "sim-unicom-password"
FILE_ID = "CU-CATALOG-20261122"
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
TYPES = ["GPU算力", "通用算力", "专线", "云主机", "对象存储", "大模型Tokens"]


def row(options: SimOptions, index: int, *, spreadsheet: bool = False) -> list[Any]:
    """Catalog row number `index`, cells in COLUMNS order."""
    rng = record_rng(CARRIER, options.seed, index)
    rtype = rng.choice(TYPES)
    start, end = window_for(rng, options.first_month)
    if rtype == "GPU算力":
        model, memory = rng.choice([("A100", "80GB"), ("H100", "80GB"), ("910B", "64GB")])
        spec, unit, amount, list_price = f"型号={model};显存={memory}", rng.choice(["GPU时", "卡时"]), rng.choice([500, 2000]), "12.5"
    elif rtype == "通用算力":
        spec, unit, amount, list_price = f"架构={rng.choice(['x86_64', 'aarch64'])}", "核时", 20000, "0.08"
    elif rtype == "专线":
        unit = rng.choice(["Kbps", "Mbps", "Gbps"])
        amount = {"Kbps": 800000, "Mbps": 500, "Gbps": 1}[unit]
        list_price = {"Kbps": "0.02", "Mbps": "20", "Gbps": "8000"}[unit]
        spec = f"A端=上海长宁;Z端={rng.choice(['香港', '新加坡'])};跨境=是"
    elif rtype == "云主机":
        spec, unit, amount, list_price = "规格=s6.large;系统=CentOS 7", "vCPU·月", 40, "55"
    elif rtype == "对象存储":
        unit = rng.choice(["GB·月", "TB·月", "PB·月"])
        amount = {"GB·月": 500, "TB·月": 10, "PB·月": 1}[unit]
        list_price = {"GB·月": "0.1", "TB·月": "100", "PB·月": "95000"}[unit]
        spec = f"类型={rng.choice(['标准', '低频', '归档'])}"
    else:
        unit = rng.choice(["万tokens", "百万tokens", "亿tokens"])
        amount = {"万tokens": 5000, "百万tokens": 50, "亿tokens": 2}[unit]
        list_price = {"万tokens": "0.1", "百万tokens": "10", "亿tokens": "900"}[unit]
        spec = f"模型={rng.choice(['yuanjing-70b', 'qwen-72b'])}"
    # Half the lots state the unit with a space, half without: both occur in real files.
    space = " " if rng.random() < 0.5 else ""
    startup = rng.choice(["免费", "0", f"{Decimal(list_price) / 2} 元/{unit}"])
    dates = [start.strftime("%Y%m%d"), end.strftime("%Y%m%d")]
    if spreadsheet:
        dates = [int(d) for d in dates]  # what Excel does to an unformatted date column
    cells = [f"CU{index:08d}", rtype, rng.choice(["上海", "北京", "广州", "香港"]), spec,
             f"{amount}{space}{unit}", *dates, f"{list_price} 元/{unit}", startup]
    if index > 0 and rng.random() < options.duplicate_rate:
        cells[0] = f"CU{index - 1:08d}"
    if rng.random() < options.malformed_rate:
        corrupt(cells, rng, spreadsheet)
    return cells


def corrupt(cells: list[Any], rng: random.Random, spreadsheet: bool) -> None:
    how = rng.randrange(6)
    if how == 0:
        cells[5] = 20261345 if spreadsheet else "20261345"
    elif how == 1:
        cells[4] = "五百 GPU时"
    elif how == 2:
        cells[4] = "500 桶"
    elif how == 3:
        cells[0] = ""
    elif how == 4:
        cells[7] = "面议"  # "price on request"
    else:
        del cells[3]  # a row short of one cell


def build_file(options: SimOptions, file_format: str) -> bytes:
    if file_format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for i in range(options.offers):
            writer.writerow(row(options, i))
        return out.getvalue().encode("utf-8")
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("资源目录")
    sheet.append(list(COLUMNS))
    for i in range(options.offers):
        sheet.append(row(options, i, spreadsheet=True))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def access(cells: list[Any], kind: str, order_no: str) -> dict[str, Any]:
    """An order's access block, as unicom answers it: the login password beside the rest."""
    console = f"https://console.cucloud.example/order/{order_no}"
    if kind == "tokens":
        return {"endpoint": "https://maas.cucloud.example/openapi/v1", "model": str(cells[3]).partition("模型=")[2],
                "console": console, "note": "调用凭证（AK/SK）在联通云控制台“访问控制”中创建。"}
    if kind == "data_line":
        return {"circuit_no": f"CU-L-{order_no[-6:]}", "handover": "上海长宁 联通机房 1F 配线架 A-07 端口 3",
                "console": console}
    return {"host": f"{order_no.lower()}.cucloud.example", "user": "cuuser", "password": "sim-" + order_no[::-1],
            "pool": str(cells[2]), "console": console}


def answer(data: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False, default=str), status=status,
                    content_type="application/json; charset=utf-8")


def failure(code: str, message: str, status: int) -> Response:
    return answer({"result": "FAIL", "err_code": code, "err_msg": message}, status)


def create_app(**options: Any) -> Flask:
    """The simulator app; options are SimOptions fields plus `username` and `password`."""
    sim = SimOptions.build(options, {"username", "password"})
    username = sim.extra.get("username", DEFAULT_USER)
    password = sim.extra.get("password", DEFAULT_PASSWORD)
    app = Flask(__name__)
    orders = OrderBook("CU-ORD-")
    install(app, sim, orders, data_prefix="/cu/")
    files: dict[str, bytes] = {}
    files_lock = threading.Lock()

    def catalog(file_format: str) -> bytes:
        with files_lock:
            if file_format not in files:
                files[file_format] = build_file(sim, file_format)
            return files[file_format]

    @app.before_request
    def _authenticate() -> Response | None:
        auth = request.authorization
        if request.path.startswith("/cu/") and (
            auth is None or auth.username != username or auth.password != password
        ):
            response = failure("AUTH_FAILED", "用户名或密码错误", 401)
            response.headers["WWW-Authenticate"] = 'Basic realm="unicom"'
            return response
        return None

    @app.get("/cu/catalog/latest")
    def latest() -> Response:
        file_format = request.args.get("format", "csv")
        if file_format not in CONTENT_TYPES:
            return failure("BAD_FORMAT", "format 须为 csv 或 xlsx", 400)
        content = catalog(file_format)
        return answer({"result": "SUCCESS", "file_id": FILE_ID, "format": file_format, "rows": sim.offers,
                       "sha256": hashlib.sha256(content).hexdigest(),
                       # Adapters must not follow this: only the configured base URL is trusted.
                       "download_url": f"https://cdn.unicom.invalid/{FILE_ID}.{file_format}"})

    @app.get("/cu/catalog/files/<filename>")
    def download(filename: str) -> Response:
        name, _, file_format = filename.rpartition(".")
        if name != FILE_ID or file_format not in CONTENT_TYPES:
            return failure("NOT_FOUND", "文件不存在", 404)
        return Response(catalog(file_format), content_type=CONTENT_TYPES[file_format])

    @app.post("/cu/orders")
    def place_order() -> Response:
        body = request.get_json(silent=True) or {}
        key = body.get("out_order_no")
        if not key:
            return failure("MISSING_OUT_ORDER_NO", "out_order_no 必填", 400)
        try:
            index = int(str(body["resource_no"]).removeprefix("CU"))
            number, unit = str(body["quantity"]).split(" ", 1)
            amount = Decimal(number)
        except (KeyError, ValueError, ArithmeticError):
            return failure("BAD_REQUEST", "resource_no 与 quantity 必填", 400)
        if not 0 <= index < sim.offers:
            return failure("NOT_FOUND", "资源不存在", 404)
        cells = row(sim, index)
        kind = {"GPU算力": "gpu", "通用算力": "cpu", "专线": "data_line", "云主机": "cloud_vm",
                "对象存储": "storage", "大模型Tokens": "tokens"}.get(cells[1])
        if kind is None or unit != ORDER_UNITS[kind] or amount <= 0:
            return failure("BAD_QUANTITY", "quantity 单位或数值错误", 400)
        try:
            order, created = orders.place(key, body, lambda order_no: {
                "order_no": order_no, "order_id": order_no, "state": "OPEN", "amount": amount, "unit": unit,
                "access": access_answer(sim, access(cells, kind, order_no), url_key="console", text_key="note")})
        except ValueError:
            return failure("CONFLICT", "out_order_no 已用于不同的订单", 409)
        return answer({"result": "SUCCESS", "order_no": order["order_no"], "state": order["state"],
                       "access": order["access"]}, 201 if created else 200)

    @app.post("/cu/orders/<order_no>/close")
    def close(order_no: str) -> Response:
        if orders.release(order_no) is None:
            return failure("NOT_FOUND", "订单不存在", 404)
        return answer({"result": "SUCCESS", "order_no": order_no, "state": "CLOSED"})

    @app.get("/cu/usage")
    def usage() -> Response:
        try:
            since = datetime.strptime(request.args.get("since", "20000101000000"), "%Y%m%d%H%M%S")
        except ValueError:
            return failure("BAD_SINCE", "since 格式须为 YYYYMMDDHHMMSS", 400)
        items = [
            {"id": f"U-{o['order_no']}", "order_no": o["order_no"], "out_order_no": o["_key"],
             "used": f"{o['amount'] / 10} {o['unit']}", "time": o["_created"].strftime("%Y%m%d%H%M%S")}
            for o in orders.since(since.replace(tzinfo=SHANGHAI))
        ]
        return answer({"result": "SUCCESS", "items": items})

    return app
