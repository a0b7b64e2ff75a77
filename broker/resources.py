"""The catalogue of resource kinds: units, divisibility and the attributes each kind may carry.

Pure data, shared by the schemas, the models, the adapters and the matching engine, so a
rule about a kind is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

from broker.inputs import text_problem

# Scales of the exact decimals we store (see broker.db.ScaledDecimal): quantities to a
# thousandth of a unit, money to the fen, unit prices to a hundredth of a fen.
QUANTITY_PLACES = 3
MONEY_PLACES = 2
UNIT_PRICE_PLACES = 4

# Upper bounds keep every value inside a signed 64-bit integer once scaled.
MAX_QUANTITY = Decimal("1000000000000")  # 10^12 units
MAX_MONEY = Decimal("100000000000")  # ¥10^11
MAX_UNIT_PRICE = Decimal("100000000")  # ¥10^8 per unit


@dataclass(frozen=True)
class Attribute:
    name: str
    type: type  # str or int
    description: str


@dataclass(frozen=True)
class Kind:
    name: str
    unit: str
    description: str
    divisible: bool
    # The most one request may ask for, in `unit`, until staff set the policy's own figure
    # (PUT /api/v1/policy, max_request_quantity): months of a large startup's use, not billions.
    max_request: Decimal
    attributes: Mapping[str, Attribute] = field(default_factory=dict)


def _attrs(*attributes: Attribute) -> dict[str, Attribute]:
    return {a.name: a for a in attributes}


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "gpu",
            "GPU-hour",
            "GPU compute (智算)",
            divisible=True,
            max_request=Decimal(100_000),
            attributes=_attrs(
                Attribute("gpu_model", str, "accelerator model: A100, H100, 910B, …"),
                Attribute("gpu_memory_gb", int, "memory per card in GB"),
            ),
        ),
        Kind(
            "cpu",
            "core-hour",
            "general compute (通用算力)",
            divisible=True,
            max_request=Decimal(1_000_000),
            attributes=_attrs(Attribute("arch", str, "x86_64, aarch64, …")),
        ),
        Kind(
            "data_line",
            "Mbps",
            "dedicated data line (数据专线), granted whole",
            divisible=False,
            max_request=Decimal(10_000),
            attributes=_attrs(
                Attribute("a_end", str, "A-end site"),
                Attribute("z_end", str, "Z-end site"),
                Attribute("cross_border", str, "'yes' for a cross-border line (数据出海), else 'no'"),
            ),
        ),
        Kind(
            "cloud_vm",
            "vCPU-month",
            "cloud virtual machines (云服务)",
            divisible=True,
            max_request=Decimal(10_000),
            attributes=_attrs(
                Attribute("flavor", str, "instance flavour, e.g. c7.large"),
                Attribute("os", str, "operating system image"),
            ),
        ),
        Kind(
            "storage",
            "TB-month",
            "cloud storage",
            divisible=True,
            max_request=Decimal(10_000),
            attributes=_attrs(Attribute("tier", str, "standard, infrequent, archive, ssd")),
        ),
        Kind(
            "tokens",
            "million tokens",
            "LLM tokens / API calls (Tokens)",
            divisible=True,
            max_request=Decimal(100_000),
            attributes=_attrs(Attribute("model", str, "model name")),
        ),
    )
}

KIND_NAMES: tuple[str, ...] = tuple(KINDS)


def attribute_problem(kind: str, name: str, value: object) -> str | None:
    """Why `value` is not a valid value of attribute `name` of `kind`, or None if it is."""
    spec = KINDS[kind].attributes.get(name)
    if spec is None:
        valid = ", ".join(KINDS[kind].attributes) or "none"
        return f"Unknown attribute for kind {kind!r}; valid attributes: {valid}."
    if spec.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return "Must be an integer."
        if not 0 <= value <= 1_000_000:
            return "Must be between 0 and 1000000."
        return None
    if not isinstance(value, str) or not value.strip():
        return "Must be a non-empty string."
    if len(value) > 100:
        return "Longer than 100 characters."
    return text_problem(value)  # a NUL stored in a JSON attribute breaks every search on PostgreSQL
