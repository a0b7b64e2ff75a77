"""The Chinese working-day calendar that public notices (公示) are counted in.

Weekends are off, statutory holidays are off, and the adjusted working weekends (调休) that the
State Council's yearly schedule moves to make up a holiday are ON. The tables come from the
`chinese-calendar` package (it follows the General Office's yearly notice); it knows only the
years it has data for, and a date outside them raises CalendarUnknown instead of being guessed:
next year's schedule is published each autumn, and until the package has it a weekday there may
yet turn out to be a holiday.

Convention: a notice that starts on day D and runs N working days ends at the end of the Nth
working day counted from D inclusive. D itself is day 1 when it is a working day; a notice that
starts on a holiday or a weekend begins counting on the next working day.
`working_days_between(start, end)` counts the same way (both ends included), so
`working_days_between(d, add_working_days(d, n)) == n` whenever d is a working day.

Pure functions on `datetime.date`: which day it is in the district is for the caller to decide
(broker.clock's Asia/Shanghai), so a datetime is refused rather than silently cut to its date.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import chinese_calendar

from broker.errors import InvalidInput


class CalendarUnknown(InvalidInput):
    """A date in a year whose holidays and adjusted working days the calendar does not know."""

    def __init__(self, day: dt.date) -> None:
        first, last = known_years()
        problem = (
            f"{day.isoformat()} is outside the working-day calendar the broker knows ({first}–{last}): "
            "its holidays and adjusted working days are not known yet"
        )
        super().__init__(f"Working days can't be counted: {problem}.", {"date": [problem]})
        self.day = day


@cache
def known_years() -> tuple[int, int]:
    """The first and last year the holiday tables cover (chinese-calendar 1.11: 2004–2026)."""
    years = {day.year for day in chinese_calendar.holidays} | {day.year for day in chinese_calendar.workdays}
    return min(years), max(years)


def _checked(day: dt.date) -> dt.date:
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise TypeError(f"a date is needed, not {type(day).__name__}: take the day in Asia/Shanghai first")
    first, last = known_years()
    if not first <= day.year <= last:
        raise CalendarUnknown(day)
    return day


def is_working_day(day: dt.date) -> bool:
    """True on a weekday that is not a holiday, and on an adjusted working weekend (调休)."""
    day = _checked(day)
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # the package's own "no data for this year"; known_years() should have caught it
        raise CalendarUnknown(day) from None


def add_working_days(start: dt.date, n: int) -> dt.date:
    """The last day of a notice that starts on `start` and runs `n` working days (start counts if it is one)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"a notice runs at least one working day, not {n!r}")
    day = _checked(start)
    counted = 0
    while True:
        if is_working_day(day):
            counted += 1
            if counted == n:
                return day
        day += dt.timedelta(days=1)


def working_days_between(start: dt.date, end: dt.date) -> int:
    """How many working days lie from `start` to `end`, both included (0 when end is before start)."""
    _checked(start)
    _checked(end)
    count = 0
    day = start
    while day <= end:
        count += is_working_day(day)
        day += dt.timedelta(days=1)
    return count
