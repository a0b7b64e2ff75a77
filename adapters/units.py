"""Number handling shared by the adapters: exact decimals, rounding rules, JSON-safe raw rows.

Rounding policy, the same for every carrier:
- quantities are rounded *down* to the broker's 3 places: we never promise a startup capacity
  the carrier didn't publish;
- prices are rounded half-up to 4 places (a hundredth of a fen per unit).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from broker.inputs import scrub
from broker.resources import QUANTITY_PLACES, UNIT_PRICE_PLACES

from adapters.base import RecordError

_QUANTUM = Decimal(1).scaleb(-QUANTITY_PLACES)
_PRICE_QUANTUM = Decimal(1).scaleb(-UNIT_PRICE_PLACES)


def to_decimal(value: Any, what: str) -> Decimal:
    """An exact Decimal from a JSON number/string or a spreadsheet cell; RecordError if not one."""
    kind = type(value)
    # Fast paths for what JSON decoding yields (parse_float=Decimal): the same results as the
    # general path below, without a round trip through str.
    if kind is int:
        if value < 0:
            raise RecordError(f"{what} is negative: {value!r}")
        return Decimal(value)
    if kind is Decimal:
        if not value.is_finite():
            raise RecordError(f"{what} is not a finite number: {value!r}")
        if value < 0:
            raise RecordError(f"{what} is negative: {value!r}")
        return value  # Decimal(str(d)) is d, exponent and all
    if isinstance(value, bool) or value is None:
        raise RecordError(f"{what} is missing or not a number: {value!r}")
    if isinstance(value, float):
        value = repr(value)  # spreadsheet cells arrive as floats; their repr is the short form
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise RecordError(f"{what} is not a number: {value!r}") from None
    if not number.is_finite():
        raise RecordError(f"{what} is not a finite number: {value!r}")
    if number < 0:
        raise RecordError(f"{what} is negative: {value!r}")
    return number


def parse_date(value: Any, what: str, *, fmt: str = "iso") -> date:
    """A date from "YYYY-MM-DD" (fmt="iso") or "YYYYMMDD" / 20261201 (fmt="compact")."""
    text = str(value).strip() if value is not None else ""
    try:
        if fmt == "compact":
            if isinstance(value, float) and value.is_integer():
                text = str(int(value))  # a spreadsheet turned 20261201 into a float
            if len(text) != 8 or not text.isdigit():
                raise ValueError
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return date.fromisoformat(text)
    except ValueError:
        shape = "YYYYMMDD" if fmt == "compact" else "YYYY-MM-DD"
        raise RecordError(f"{what} {value!r} is not a date {shape}") from None


def quantity(value: Decimal) -> Decimal:
    """Round a quantity in broker units down to the stored places."""
    return value.quantize(_QUANTUM, rounding=ROUND_DOWN)


def price(value: Decimal) -> Decimal:
    """Round a price per broker unit half-up to the stored places."""
    return value.quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP)


def window_hours(start: date, end: date) -> int:
    """Hours in a window whose both end days are included."""
    return ((end - start).days + 1) * 24


def add_months(start: date, months: int) -> date:
    """The last day of a window of `months` whole months beginning on `start` (a 1st)."""
    year, month = divmod(start.month - 1 + months, 12)
    first_after = date(start.year + year, month + 1, 1)
    return date.fromordinal(first_after.toordinal() - 1)


def month_days(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def json_safe(value: Any) -> Any:
    """A copy of a raw record that json.dumps accepts and the database stores, for the quarantine
    table: a NUL or a lone surrogate in its text is written as its \\uXXXX escape."""
    if isinstance(value, dict):
        return {scrub(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return scrub(str(value))
