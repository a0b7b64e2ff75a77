"""Money, amounts in 万元 and times as the district reads them, in the console's language.

Money is always yuan with two decimals (¥1,234.50). Officials count large sums in 万元
(ten thousand yuan): `wan(12345600)` is `1,234.56万元` in Chinese (`¥12,345,600.00` in English,
where 万 means nothing). Times are stored UTC and always shown in Asia/Shanghai.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from broker.clock import SHANGHAI

CENT = Decimal("0.01")
TEN_THOUSAND = Decimal(10000)


def _decimal(amount: Decimal | int | float | str) -> Decimal:
    # A float goes through str so that 0.1 is 0.1, not 0.1000000000000000055511151231257827.
    return amount if isinstance(amount, Decimal) else Decimal(str(amount))


def _grouped(amount: Decimal) -> str:
    return f"{amount.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def money(amount: Decimal | int | float | str) -> str:
    """¥1,234.50 (a negative amount: -¥1,234.50)."""
    value = _decimal(amount)
    sign = "-" if value < 0 else ""
    return f"{sign}¥{_grouped(abs(value))}"


def wan(amount: Decimal | int | float | str, language: str = "zh_CN") -> str:
    """Yuan shown in 万元 with two decimals (1,234.56万元) in Chinese; in English, the yuan amount."""
    value = _decimal(amount)
    if not language.startswith("zh"):
        return money(value)
    return f"{_grouped(value / TEN_THOUSAND)}万元"


def local(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)  # stored UTC, read back naive by SQLite
    return moment.astimezone(SHANGHAI)


def datetime(moment: dt.datetime | None, language: str = "zh_CN") -> str:
    """2026年12月1日 18:00 (Chinese) or 2026-12-01 18:00 (English), Asia/Shanghai."""
    if moment is None:
        return ""
    shown = local(moment)
    if language.startswith("zh"):
        return f"{shown.year}年{shown.month}月{shown.day}日 {shown:%H:%M}"
    return f"{shown:%Y-%m-%d %H:%M}"


def date(day: dt.date | dt.datetime | None, language: str = "zh_CN") -> str:
    """2026年12月1日 or 2026-12-01; a moment is taken as its day in Asia/Shanghai."""
    if day is None:
        return ""
    if isinstance(day, dt.datetime):
        day = local(day).date()
    if language.startswith("zh"):
        return f"{day.year}年{day.month}月{day.day}日"
    return day.isoformat()


def quantity(value: Decimal | int | str) -> str:
    """A quantity as people write it: 1,250 or 2.5, no trailing zeros."""
    exact = _decimal(value).normalize()
    return f"{exact.quantize(Decimal(1)) if exact.as_tuple().exponent > 0 else exact:,}"
