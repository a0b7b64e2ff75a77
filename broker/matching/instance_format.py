"""The file format of a matching instance and of its answer (DESIGN.md, "Matching instance format").

`load_instance` validates as it converts and stops at the first bad field, naming it by its
path (`requests[3].quantity`), so a person fixing a file by hand knows where to look.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from broker.resources import KINDS, MAX_MONEY, MAX_QUANTITY, MAX_UNIT_PRICE, attribute_problem

from .model import Instance, InstanceError, Offer, Policy, Request, Result, Startup

_MAX_QUANTITY = float(MAX_QUANTITY)
_MAX_MONEY = float(MAX_MONEY)
_MAX_UNIT_PRICE = float(MAX_UNIT_PRICE)


def load_instance(data: Any) -> Instance:
    """Validate a decoded instance document and build the Instance; raise InstanceError."""
    if not isinstance(data, dict):
        raise InstanceError("", "the instance must be a JSON object")
    _no_unknown_keys(data, "", {"policy", "startups", "offers", "requests"})
    policy = _policy(data.get("policy"), "policy")
    startups = _list(data, "startups", required=False)
    offers = _list(data, "offers", required=True)
    requests = _list(data, "requests", required=True)

    loaded_startups = [_startup(item, f"startups[{i}]") for i, item in enumerate(startups)]
    _unique_ids(loaded_startups, "startups")
    startup_ids = {s.id for s in loaded_startups}
    loaded_offers = [_offer(item, f"offers[{i}]") for i, item in enumerate(offers)]
    _unique_ids(loaded_offers, "offers")
    offer_ids = {o.id for o in loaded_offers}
    for i, startup in enumerate(loaded_startups):
        unknown = sorted(set(startup.prices) - offer_ids)
        if unknown:
            raise InstanceError(f"startups[{i}].prices.{unknown[0]}", "no offer has this id")
    loaded_requests = [
        _request(item, f"requests[{i}]", startup_ids) for i, item in enumerate(requests)
    ]
    _unique_ids(loaded_requests, "requests")
    return Instance(policy, tuple(loaded_startups), tuple(loaded_offers), tuple(loaded_requests))


def instance_to_json(instance: Instance) -> dict[str, Any]:
    """The instance as a JSON-ready document that `load_instance` reads back unchanged."""
    return {
        "policy": {"share_cap": instance.policy.share_cap},
        # `prices` is optional, and left out when the startup pays the offers' prices: files
        # without it stay as they were.
        "startups": [{"id": s.id, "budget": s.budget, **({"prices": dict(sorted(s.prices.items()))} if s.prices else {})}
                     for s in instance.startups],
        "offers": [
            {
                "id": o.id,
                "carrier": o.carrier,
                "kind": o.kind,
                "region": o.region,
                "attributes": dict(sorted(o.attributes.items())),
                "available": o.available,
                "unit_price": o.unit_price,
                "window": [o.window[0].isoformat(), o.window[1].isoformat()],
                "divisible": o.divisible,
                # Optional, and left out when nothing is held: files without it stay as they were.
                **({"held": o.held} if o.held else {}),
            }
            for o in instance.offers
        ],
        "requests": [
            {
                "id": r.id,
                "startup": r.startup,
                "kind": r.kind,
                "quantity": r.quantity,
                "min_quantity": r.min_quantity,
                "regions": list(r.regions) if r.regions is not None else None,
                "attributes": {k: list(v) for k, v in sorted(r.attributes.items())},
                "max_unit_price": r.max_unit_price,
                "window": [r.window[0].isoformat(), r.window[1].isoformat()],
                "weight": r.weight,
                "submitted_at": r.submitted_at.isoformat(),
            }
            for r in instance.requests
        ],
    }


def result_to_json(result: Result) -> dict[str, Any]:
    """The answer in DESIGN.md's output shape, in a fixed order so equal answers print equal."""
    return {
        "allocations": [
            {"request": a.request, "offer": a.offer, "quantity": a.quantity}
            for a in sorted(result.allocations, key=lambda a: (a.request, a.offer))
        ],
        "objective": result.objective,
        "unfilled": [
            {"request": u.request, "reason": u.reason}
            for u in sorted(result.unfilled, key=lambda u: u.request)
        ],
        "stats": dict(result.stats),
    }


# -- the pieces ------------------------------------------------------------------------------


def _policy(value: Any, path: str) -> Policy:
    if value is None:
        return Policy()
    if not isinstance(value, dict):
        raise InstanceError(path, "must be an object")
    _no_unknown_keys(value, path, {"share_cap"})
    share_cap = value.get("share_cap")
    if share_cap is None:
        return Policy()
    share_cap = _number(share_cap, f"{path}.share_cap")
    if not 0 < share_cap <= 1:
        raise InstanceError(f"{path}.share_cap", "must be > 0 and <= 1")
    return Policy(share_cap=share_cap)


def _startup(item: Any, path: str) -> Startup:
    _object(item, path)
    _no_unknown_keys(item, path, {"id", "budget", "prices"})
    budget = _optional_number(item, "budget", path, minimum=0.0, maximum=_MAX_MONEY)
    prices = item.get("prices")
    if prices is None:
        prices = {}
    if not isinstance(prices, dict):
        raise InstanceError(f"{path}.prices", "must be an object of offer id -> unit price")
    loaded = {offer: _required_number(prices, offer, f"{path}.prices", minimum=0.0, maximum=_MAX_UNIT_PRICE)
              for offer in prices}
    return Startup(id=_id(item, path), budget=budget, prices=loaded)


def _offer(item: Any, path: str) -> Offer:
    _object(item, path)
    _no_unknown_keys(
        item,
        path,
        {"id", "carrier", "kind", "region", "attributes", "available", "unit_price", "window",
         "divisible", "held"},
    )
    offer_id = _id(item, path)
    kind = _kind(item, path)
    attributes = item.get("attributes", {})
    if not isinstance(attributes, dict):
        raise InstanceError(f"{path}.attributes", "must be an object")
    for name in sorted(attributes):
        _attribute_value(kind, name, attributes[name], f"{path}.attributes.{name}")
    divisible = item.get("divisible", True)
    if not isinstance(divisible, bool):
        raise InstanceError(f"{path}.divisible", "must be true or false")
    return Offer(
        id=offer_id,
        carrier=_text(item, "carrier", path),
        kind=kind,
        region=_text(item, "region", path),
        attributes=attributes,
        available=_required_number(item, "available", path, minimum=0.0, maximum=_MAX_QUANTITY),
        unit_price=_required_number(
            item, "unit_price", path, minimum=0.0, maximum=_MAX_UNIT_PRICE
        ),
        window=_window(item, path),
        divisible=divisible,
        held=_optional_number(item, "held", path, minimum=0.0, maximum=_MAX_QUANTITY) or 0.0,
    )


def _request(item: Any, path: str, startup_ids: set[str]) -> Request:
    _object(item, path)
    _no_unknown_keys(
        item,
        path,
        {"id", "startup", "kind", "quantity", "min_quantity", "regions", "attributes",
         "max_unit_price", "window", "weight", "submitted_at"},
    )
    request_id = _id(item, path)
    startup = _text(item, "startup", path)
    if startup not in startup_ids:
        raise InstanceError(f"{path}.startup", f"unknown startup {startup!r}")
    kind = _kind(item, path)
    quantity = _required_number(item, "quantity", path, maximum=_MAX_QUANTITY)
    if quantity <= 0:
        raise InstanceError(f"{path}.quantity", "must be > 0")
    min_quantity = _optional_number(item, "min_quantity", path, maximum=_MAX_QUANTITY)
    if min_quantity is not None:
        if min_quantity <= 0:
            raise InstanceError(f"{path}.min_quantity", "must be > 0")
        if min_quantity > quantity:
            raise InstanceError(f"{path}.min_quantity", "must be <= quantity")
    regions = item.get("regions")
    if regions is not None:
        if not isinstance(regions, list) or not regions:
            raise InstanceError(f"{path}.regions", "must be a non-empty list of region names")
        for j, region in enumerate(regions):
            if not isinstance(region, str) or not region.strip():
                raise InstanceError(f"{path}.regions[{j}]", "must be a non-empty string")
        regions = tuple(regions)
    attributes = item.get("attributes", {})
    if not isinstance(attributes, dict):
        raise InstanceError(f"{path}.attributes", "must be an object")
    for name in sorted(attributes):
        values = attributes[name]
        where = f"{path}.attributes.{name}"
        if name not in KINDS[kind].attributes:
            valid = ", ".join(KINDS[kind].attributes)
            raise InstanceError(where, f"unknown attribute for kind {kind!r}; valid attributes: {valid}")
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise InstanceError(where, "must list at least one acceptable value")
        for j, value in enumerate(values):
            _attribute_value(kind, name, value, f"{where}[{j}]")
    weight = _optional_number(item, "weight", path, maximum=1e6)
    if weight is not None and weight <= 0:
        raise InstanceError(f"{path}.weight", "must be > 0")
    submitted_at = item.get("submitted_at")
    if not isinstance(submitted_at, str):
        raise InstanceError(f"{path}.submitted_at", "must be an ISO 8601 date-time string")
    try:
        submitted = datetime.fromisoformat(submitted_at)
    except ValueError:
        raise InstanceError(
            f"{path}.submitted_at", "must be an ISO 8601 date-time string"
        ) from None
    if submitted.tzinfo is None:
        raise InstanceError(f"{path}.submitted_at", "must include a UTC offset")
    return Request(
        id=request_id,
        startup=startup,
        kind=kind,
        quantity=quantity,
        min_quantity=min_quantity,
        regions=regions,
        attributes={
            name: tuple(v if isinstance(v, list) else [v])
            for name, v in sorted(attributes.items())
        },
        max_unit_price=_optional_number(
            item, "max_unit_price", path, minimum=0.0, maximum=_MAX_UNIT_PRICE
        ),
        window=_window(item, path),
        weight=1.0 if weight is None else weight,
        submitted_at=submitted,
    )


# -- field helpers ---------------------------------------------------------------------------


def _list(data: dict, key: str, *, required: bool) -> list:
    if key not in data or data[key] is None:
        if required:
            raise InstanceError(key, "is required")
        return []
    if not isinstance(data[key], list):
        raise InstanceError(key, "must be a list")
    return data[key]


def _object(item: Any, path: str) -> None:
    if not isinstance(item, dict):
        raise InstanceError(path, "must be an object")


def _no_unknown_keys(item: dict, path: str, known: set[str]) -> None:
    unknown = sorted(k for k in item if k not in known)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise InstanceError(where, f"unknown field; expected one of {', '.join(sorted(known))}")


def _id(item: dict, path: str) -> str:
    return _text(item, "id", path)


def _text(item: dict, key: str, path: str) -> str:
    value = item.get(key)
    if value is None:
        raise InstanceError(f"{path}.{key}", "is required")
    if not isinstance(value, str) or not value.strip():
        raise InstanceError(f"{path}.{key}", "must be a non-empty string")
    return value


def _kind(item: dict, path: str) -> str:
    kind = _text(item, "kind", path)
    if kind not in KINDS:
        raise InstanceError(f"{path}.kind", f"must be one of {', '.join(KINDS)}")
    return kind


def _attribute_value(kind: str, name: str, value: Any, where: str) -> None:
    problem = attribute_problem(kind, name, value)
    if problem is not None:
        raise InstanceError(where, problem[0].lower() + problem[1:].rstrip("."))


def _number(value: Any, where: str) -> float:
    # bool is an int in Python; true/false in a quantity is a mistake, not 1/0.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InstanceError(where, "must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise InstanceError(where, "must be a finite number")
    return number


def _required_number(
    item: dict, key: str, path: str, *, minimum: float | None = None, maximum: float
) -> float:
    if item.get(key) is None:
        raise InstanceError(f"{path}.{key}", "is required")
    return _bounded(_number(item[key], f"{path}.{key}"), f"{path}.{key}", minimum, maximum)


def _optional_number(
    item: dict, key: str, path: str, *, minimum: float | None = None, maximum: float
) -> float | None:
    if item.get(key) is None:
        return None
    return _bounded(_number(item[key], f"{path}.{key}"), f"{path}.{key}", minimum, maximum)


def _bounded(number: float, where: str, minimum: float | None, maximum: float) -> float:
    if minimum is not None and number < minimum:
        raise InstanceError(where, f"must be >= {minimum:g}")
    if number > maximum:
        raise InstanceError(where, f"must be <= {maximum:g}")
    return number


def _window(item: dict, path: str) -> tuple[date, date]:
    where = f"{path}.window"
    value = item.get("window")
    if value is None:
        raise InstanceError(where, "is required")
    if not isinstance(value, list) or len(value) != 2:
        raise InstanceError(where, "must be a list of two ISO dates [start, end]")
    days = []
    for j, day in enumerate(value):
        try:
            if not isinstance(day, str):
                raise ValueError
            days.append(date.fromisoformat(day))
        except ValueError:
            raise InstanceError(f"{where}[{j}]", "must be an ISO date (YYYY-MM-DD)") from None
    if days[0] > days[1]:
        raise InstanceError(where, "start must not be after end")
    return (days[0], days[1])


def _unique_ids(items: list, list_name: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise InstanceError(f"{list_name}[{i}].id", f"duplicate id {item.id!r}")
        seen.add(item.id)
