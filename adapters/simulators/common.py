"""What every carrier simulator shares: options, seeded misbehaviour, idempotent orders.

Records are generated on demand from (seed, index), so a simulator serves 100,000 offers
without holding them, and the same seed always gives the same catalogue. Misbehaviour is
seeded too: given the same sequence of requests, the same requests fail.

Every simulator also serves GET /_sim/stats (request counts, orders placed) for tests; the
/_sim routes never misbehave.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any, Callable

from flask import Flask, Response, g, jsonify, request

from broker.clock import SHANGHAI


@dataclass
class SimOptions:
    """Knobs every simulator takes as `create_app(**options)`."""

    seed: int = 0
    offers: int = 200
    page_size: int = 100  # default when the client doesn't ask
    # misbehaviour
    error_rate: float = 0.0  # share of API requests answered with error_status
    fail_first: int = 0  # the first N API requests fail with error_status
    lose_first_posts: int = 0  # the first N POSTs take effect, but answer 502 (answer lost)
    error_status: int = 503
    retry_after: int | None = None  # Retry-After header on error answers
    latency: float = 0.0  # seconds added to every API request
    malformed_rate: float = 0.0  # share of records corrupted
    duplicate_rate: float = 0.0  # share of records re-using the previous record's id
    truncate: bool = False  # cut data bodies in half
    wrong_content_type: bool = False  # answer data requests with an HTML maintenance page
    bad_access: bool = False  # orders' access details carry a script URL, an oversized text, an unknown field
    # The month the catalogue's windows start from (default: next month), so the demo's
    # simulators offer capacity for the coming months whatever today is.
    first_month: date | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # carrier-specific options

    def __post_init__(self) -> None:
        if self.first_month is None:
            today = date.today()
            self.first_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)

    @classmethod
    def build(cls, options: dict[str, Any], carrier_keys: set[str]) -> SimOptions:
        known = {f.name for f in fields(cls)} - {"extra"}
        unknown = set(options) - known - carrier_keys
        if unknown:
            valid = ", ".join(sorted(known | carrier_keys))
            raise TypeError(f"unknown simulator options: {', '.join(sorted(unknown))}; valid: {valid}")
        return cls(
            **{k: v for k, v in options.items() if k in known},
            extra={k: v for k, v in options.items() if k in carrier_keys},
        )


def record_rng(carrier: str, seed: int, index: int) -> random.Random:
    """The random source of one record: depends on nothing but (carrier, seed, index)."""
    return random.Random(f"{carrier}:{seed}:{index}")


def window_for(rng: random.Random, first_month: date) -> tuple[date, date]:
    """A whole-month window starting in one of the six months from `first_month`, 1–3 months long."""
    month = first_month.month + rng.randrange(0, 6)
    start = date(first_month.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
    months = rng.randint(1, 3)
    year, m = divmod(start.month - 1 + months, 12)
    end = date(start.year + year, m + 1, 1) - timedelta(days=1)
    return start, end


class Faults:
    """Seeded, per-request misbehaviour for the data endpoints."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self._rng = random.Random(options.seed)
        self._lock = threading.Lock()
        self.requests = 0
        self.posts = 0
        self.failed = 0

    def before(self) -> Response | None:
        with self._lock:
            self.requests += 1
            count = self.requests
            unlucky = self._rng.random() < self.options.error_rate
            if request.method == "POST":
                self.posts += 1
                g.lose_answer = self.posts <= self.options.lose_first_posts
        if self.options.latency:
            time.sleep(self.options.latency)
        if count <= self.options.fail_first or unlucky:
            with self._lock:
                self.failed += 1
            response = jsonify(error="simulated carrier failure", code=self.options.error_status)
            response.status_code = self.options.error_status
            if self.options.retry_after is not None:
                response.headers["Retry-After"] = str(self.options.retry_after)
            return response
        return None

    def after(self, response: Response) -> Response:
        if response.status_code >= 400 or response.direct_passthrough:
            return response
        if g.get("lose_answer"):
            # The carrier did the work, but the answer is lost on the way back.
            return Response("Bad Gateway", status=502, content_type="text/plain")
        if self.options.wrong_content_type:
            return Response(
                "<html><body><h1>系统维护中</h1>Service under maintenance</body></html>",
                status=200,
                content_type="text/html; charset=utf-8",
            )
        if self.options.truncate:
            body = response.get_data()
            response.set_data(body[: len(body) // 2])
        return response


class OrderBook:
    """Provisioning orders keyed by the client's idempotency key: a retry never orders twice.

    The same key with a different body is refused (409), as Stripe does.
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._lock = threading.Lock()
        self._by_key: dict[str, tuple[str, dict[str, Any]]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.usage: list[dict[str, Any]] = []

    def place(self, key: str, body: dict[str, Any], make: Callable[[str], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """The order for `key`: (order, created). Raises ValueError on a key re-used with another body."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        with self._lock:
            if key in self._by_key:
                known_digest, order = self._by_key[key]
                if known_digest != digest:
                    raise ValueError("idempotency key re-used with a different request")
                return order, False
            order_id = f"{self._prefix}{len(self.orders) + 1:08d}"
            order = make(order_id)
            order["_key"] = key
            order["_created"] = datetime.now(SHANGHAI)
            self._by_key[key] = (digest, order)
            self.orders[order_id] = order
            return order, True

    def release(self, order_id: str) -> dict[str, Any] | None:
        with self._lock:
            order = self.orders.get(order_id)
            if order is not None:
                order["_released"] = True
            return order

    def since(self, moment: datetime) -> list[dict[str, Any]]:
        with self._lock:
            return [o for o in self.orders.values() if o["_created"] >= moment]


def access_answer(options: SimOptions, details: dict[str, Any], *, url_key: str, text_key: str) -> dict[str, Any]:
    """The access details an order's answer carries; with `bad_access`, broken the ways a carrier's
    might be (the broker must drop those fields and keep the rest)."""
    if options.bad_access:
        return dict(details, **{url_key: "javascript:alert(document.cookie)", text_key: "长" * 5000,
                                "internal_ticket": "OPS-1234"})
    return details


def install(app: Flask, options: SimOptions, orders: OrderBook, *, data_prefix: str) -> Faults:
    """Attach the misbehaviour hooks (to paths under data_prefix) and the /_sim routes."""
    faults = Faults(options)

    def is_data() -> bool:
        return request.path.startswith(data_prefix)

    @app.before_request
    def _misbehave() -> Response | None:
        return faults.before() if is_data() else None

    @app.after_request
    def _misbehave_after(response: Response) -> Response:
        return faults.after(response) if is_data() else response

    @app.get("/_sim/stats")
    def _stats() -> Response:
        return jsonify(
            requests=faults.requests,
            posts=faults.posts,
            failed=faults.failed,
            orders=len(orders.orders),
            released=sum(1 for o in orders.orders.values() if o.get("_released")),
        )

    app.extensions["simulator"] = {"options": options, "faults": faults, "orders": orders}
    return faults


def parse_since(value: str | None) -> datetime:
    if not value:
        return datetime.min.replace(tzinfo=SHANGHAI)
    moment = datetime.fromisoformat(value.replace(" ", "+"))
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)
