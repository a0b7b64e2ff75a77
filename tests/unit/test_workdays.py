"""Public-notice periods on the Chinese working-day calendar, checked on the 2026 schedule as
chinese-calendar 1.11.0 has it (read from its tables, not from memory): National Day and Mid-autumn 9/25–9/27 and
10/1–10/7 off with Sunday 9/20 and Saturday 10/10 worked; Spring Festival 2/15–2/23 off with
Saturdays 2/14 and 2/28 worked."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import InvalidInput
from broker.workdays import (
    CalendarUnknown,
    add_working_days,
    is_working_day,
    known_years,
    working_days_between,
)

D = dt.date


def test_national_day_2026_is_off_and_its_adjusted_weekends_are_worked():
    assert [is_working_day(D(2026, 10, day)) for day in range(1, 8)] == [False] * 7
    assert is_working_day(D(2026, 9, 20))  # a Sunday, worked for the holiday
    assert is_working_day(D(2026, 10, 10))  # a Saturday, worked for the holiday
    assert not is_working_day(D(2026, 10, 11))  # the Sunday after is an ordinary weekend
    assert is_working_day(D(2026, 10, 8))
    assert not is_working_day(D(2026, 9, 25))  # Mid-autumn, a Friday


def test_a_five_day_notice_starting_just_before_national_day_ends_on_the_worked_saturday():
    # 9/29 and 9/30 are days 1 and 2; the holiday counts nothing; 10/8, 10/9 and Saturday 10/10 are 3–5.
    assert add_working_days(D(2026, 9, 29), 5) == D(2026, 10, 10)
    assert working_days_between(D(2026, 9, 29), D(2026, 10, 10)) == 5


def test_a_notice_across_mid_autumn_skips_its_long_weekend():
    # 9/23, 9/24, then Fri 9/25 – Sun 9/27 off, then 9/28, 9/29, 9/30.
    assert add_working_days(D(2026, 9, 23), 5) == D(2026, 9, 30)


def test_spring_festival_2026():
    assert [is_working_day(D(2026, 2, day)) for day in range(15, 24)] == [False] * 9
    assert is_working_day(D(2026, 2, 14)) and is_working_day(D(2026, 2, 28))  # both Saturdays
    # Thu 2/12, Fri 2/13, Sat 2/14 (worked), then the festival, then Tue 2/24, Wed 2/25.
    assert add_working_days(D(2026, 2, 12), 5) == D(2026, 2, 25)
    assert working_days_between(D(2026, 2, 14), D(2026, 2, 28)) == 6  # 2/14, 2/24–2/27, 2/28


def test_a_plain_week():
    monday = D(2026, 3, 9)
    assert add_working_days(monday, 1) == monday  # the start day counts
    assert add_working_days(monday, 5) == D(2026, 3, 13)
    assert add_working_days(monday, 6) == D(2026, 3, 16)  # over the weekend
    assert working_days_between(monday, D(2026, 3, 15)) == 5
    assert not is_working_day(D(2026, 3, 14)) and not is_working_day(D(2026, 3, 15))


def test_a_notice_starting_on_a_day_off_counts_from_the_next_working_day():
    assert add_working_days(D(2026, 3, 7), 5) == D(2026, 3, 13)  # a Saturday: Monday is day 1
    assert add_working_days(D(2026, 10, 1), 1) == D(2026, 10, 8)


def test_working_days_between_a_holiday_or_backwards_is_zero():
    assert working_days_between(D(2026, 10, 1), D(2026, 10, 7)) == 0
    assert working_days_between(D(2026, 10, 9), D(2026, 10, 8)) == 0
    assert working_days_between(D(2026, 9, 28), D(2026, 10, 11)) == 6


@given(st.dates(min_value=D(2025, 1, 1), max_value=D(2026, 11, 30)), st.integers(min_value=1, max_value=20))
def test_counting_back_the_days_of_a_notice_gives_its_length(start, n):
    end = add_working_days(start, n)
    assert is_working_day(end)
    first = add_working_days(start, 1)
    assert working_days_between(start, end) == n == working_days_between(first, end)


def test_a_date_the_calendar_does_not_know_is_refused_by_name():
    first, last = known_years()
    assert (first, last) == (2004, 2026)
    with pytest.raises(CalendarUnknown) as raised:
        is_working_day(D(2027, 1, 4))
    assert isinstance(raised.value, InvalidInput)
    assert "2027-01-04" in raised.value.message and raised.value.errors == {"date": [raised.value.errors["date"][0]]}
    assert raised.value.day == D(2027, 1, 4)
    with pytest.raises(CalendarUnknown, match="2003-12-31"):
        working_days_between(D(2003, 12, 31), D(2004, 1, 5))


def test_a_notice_running_past_the_known_years_names_the_first_unknown_day():
    # 12/28–12/31 are four working days; the fifth would be in 2027, whose schedule is not in the data.
    assert add_working_days(D(2026, 12, 28), 4) == D(2026, 12, 31)
    with pytest.raises(CalendarUnknown, match="2027-01-01"):
        add_working_days(D(2026, 12, 28), 5)
    with pytest.raises(CalendarUnknown, match="2027-01-01"):
        working_days_between(D(2026, 12, 28), D(2027, 1, 1))


def test_a_datetime_or_a_notice_of_no_days_is_a_programming_error():
    with pytest.raises(TypeError, match="Asia/Shanghai"):
        is_working_day(dt.datetime(2026, 3, 9, 12, 0))
    for n in (0, -1, True, 2.0):
        with pytest.raises(ValueError):
            add_working_days(D(2026, 3, 9), n)
