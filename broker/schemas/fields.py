"""Field types shared by the schemas: exact decimals, local times, strict integers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import ValidationError, fields

from broker.clock import SHANGHAI
from broker.db import MAX_ID


class Exact(fields.Field):
    """A decimal with at most `places` places in [minimum, maximum]; a JSON number or string in, a string out.

    Strings out keep the value exact for every client; floats in are read from their
    shortest representation, so 0.1 means 0.1.
    """

    def __init__(self, places: int, minimum: Decimal, maximum: Decimal, *, exclusive_minimum: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.places = places
        self.minimum = minimum
        self.maximum = maximum
        self.exclusive_minimum = exclusive_minimum
        # OpenAPI: a string holding a decimal number.
        self.metadata.setdefault("type", "string")
        self.metadata.setdefault("format", "decimal")
        self.metadata.setdefault("example", "100.5")

    def _serialize(self, value: Decimal | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(Decimal(value).quantize(Decimal(1).scaleb(-self.places)))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("Must be a number.")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError("Must be a number.") from None
        if not number.is_finite():
            raise ValidationError("Must be a finite number.")
        too_small = number <= self.minimum if self.exclusive_minimum else number < self.minimum
        if too_small:
            word = "greater than" if self.exclusive_minimum else "at least"
            raise ValidationError(f"Must be {word} {self.minimum}.")
        if number > self.maximum:
            raise ValidationError(f"Must be at most {self.maximum}.")
        if number != number.quantize(Decimal(1).scaleb(-self.places), rounding="ROUND_DOWN"):
            raise ValidationError(f"At most {self.places} decimal places.")
        return number.quantize(Decimal(1).scaleb(-self.places))


class LocalDateTime(fields.DateTime):
    """A UTC datetime from storage shown in Asia/Shanghai with its offset."""

    def _serialize(self, value: dt.datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.astimezone(SHANGHAI).isoformat()


def StrictInt(minimum: int, maximum: int, **kwargs: Any) -> fields.Integer:
    from marshmallow.validate import Range

    return fields.Integer(strict=True, validate=Range(minimum, maximum), **kwargs)


def QueryInt(minimum: int, maximum: int, **kwargs: Any) -> fields.Integer:
    """An integer from a query string, where every value arrives as text."""
    from marshmallow.validate import Range

    return fields.Integer(validate=Range(minimum, maximum), **kwargs)


def QueryId(**kwargs: Any) -> fields.Integer:
    """A row id in a query string."""
    return QueryInt(1, MAX_ID, **kwargs)


def Id(**kwargs: Any) -> fields.Integer:
    """A row id in a JSON body."""
    return StrictInt(1, MAX_ID, **kwargs)
