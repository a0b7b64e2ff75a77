"""Schema building blocks: the base schema and rules shared by offers and requests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from broker.resources import (
    KIND_NAMES,
    KINDS,
    MAX_QUANTITY,
    MAX_UNIT_PRICE,
    QUANTITY_PLACES,
    UNIT_PRICE_PLACES,
    attribute_problem,
)
from broker.schemas.fields import Exact


class BaseSchema(Schema):
    """Unknown fields are an error (marshmallow's default, stated here on purpose)."""

    class Meta:
        unknown = "raise"
        ordered = True


def KindField(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(KIND_NAMES, error="Unknown kind; valid kinds: {choices}."), **kwargs)


def QuantityField(**kwargs: Any) -> Exact:
    return Exact(QUANTITY_PLACES, Decimal(0), MAX_QUANTITY, exclusive_minimum=True, **kwargs)


def UnitPriceField(**kwargs: Any) -> Exact:
    return Exact(UNIT_PRICE_PLACES, Decimal(0), MAX_UNIT_PRICE, **kwargs)


def Region(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(1, 64), **kwargs)


def check_window(data: dict[str, Any]) -> None:
    start, end = data.get("window_start"), data.get("window_end")
    if start is not None and end is not None and not start < end:
        raise ValidationError("Must be after window_start.", field_name="window_end")


def check_attributes(kind: str | None, attributes: dict[str, Any], *, any_of: bool) -> None:
    """Every attribute must be one the kind has, with values of its type (lists when `any_of`)."""
    if kind not in KINDS:
        return  # the kind field reports its own error
    problems: dict[str, list[str]] = {}
    for name, value in attributes.items():
        values = value if any_of and isinstance(value, list) else [value]
        if any_of and not values:
            problems[name] = ["Must list at least one acceptable value."]
            continue
        if any_of and len(values) > 50:
            problems[name] = ["At most 50 acceptable values."]
            continue
        for v in values:
            problem = attribute_problem(kind, name, v)
            if problem:
                problems[name] = [problem]
                break
    if problems:
        raise ValidationError({"attributes": problems})
