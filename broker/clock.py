"""The app's clock and the district's time zone: the one place that reads the system clock.

Production reads the system clock; tests install one they control. Everything else takes its
"now" from `now()` (the app clock) or from a `now` parameter. No Flask or SQLAlchemy here, so
the solver, the adapters and the config can use the zone and `local_date` too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from flask import Flask

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the district's time, at every edge

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """The system clock (UTC, aware): the production app clock, and the storage stamps
    (`created_at`, `updated_at`, the audit log's `at`) that record when a row was written."""
    return dt.datetime.now(dt.UTC)


def install_clock(app: Flask, clock: Clock | None) -> None:
    """Use `clock` for every 'now' the app needs (None: the system clock)."""
    app.extensions["broker.clock"] = clock or utcnow


def now(app: Flask | None = None) -> dt.datetime:
    """The current time (UTC, aware) by the app's clock."""
    if app is None:
        from flask import current_app

        app = current_app
    return app.extensions.get("broker.clock", utcnow)()


class FrozenClock:
    """A clock that moves only when told to, for tests and simulations."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self.current += delta
        return self.current

    def set(self, moment: dt.datetime) -> None:
        self.current = moment


def local_date(moment: dt.datetime) -> dt.date:
    """The district's calendar date at `moment`."""
    return moment.astimezone(SHANGHAI).date()
