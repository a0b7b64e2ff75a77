"""Money, 万元 and times as the console shows them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from broker.web import formatting


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (Decimal("1234.5"), "¥1,234.50"),
        (0, "¥0.00"),
        ("1234567.895", "¥1,234,567.90"),  # half up, as a cashier rounds
        (0.1, "¥0.10"),
        (Decimal("-20"), "-¥20.00"),
    ],
)
def test_money_is_yuan_with_two_decimals_and_thousands_separators(amount, shown):
    assert formatting.money(amount) == shown


def test_large_amounts_in_wan_yuan_for_chinese_readers_and_in_yuan_in_english():
    assert formatting.wan(Decimal("12345600")) == "1,234.56万元"
    assert formatting.wan("5000") == "0.50万元"
    assert formatting.wan(Decimal("123456789.00")) == "12,345.68万元"
    assert formatting.wan(Decimal("12345600"), "en") == "¥12,345,600.00"


def test_times_are_shown_in_shanghai_whatever_zone_they_come_in():
    utc = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.timezone.utc)
    assert formatting.datetime(utc) == "2026年12月1日 18:00"
    assert formatting.datetime(utc, "en") == "2026-12-01 18:00"
    # Read back naive from SQLite: stored UTC.
    assert formatting.datetime(dt.datetime(2026, 12, 31, 17, 30)) == "2027年1月1日 01:30"
    assert formatting.date(dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.timezone.utc)) == "2027年1月1日"
    assert formatting.date(dt.date(2026, 10, 1), "en") == "2026-10-01"
    assert formatting.datetime(None) == "" and formatting.date(None) == ""
