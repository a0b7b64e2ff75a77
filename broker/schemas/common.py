"""Schema building blocks: the base schema and rules shared by offers and requests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from broker.inputs import text_problems
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
    """Unknown fields are an error (marshmallow's default, stated here on purpose), and so is text
    that can't be stored: a NUL or an unpaired surrogate in any string, a field name included."""

    class Meta:
        unknown = "raise"
        ordered = True

    @pre_load
    def _refuse_unstorable_text(self, data: Any, **kwargs: Any) -> Any:
        # Before any field: every string of the body or query string, however deep, whatever
        # the field (a Dict's values have no field of their own), under one rule.
        problems = text_problems(data)
        if problems:
            raise ValidationError(problems)
        return data


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
