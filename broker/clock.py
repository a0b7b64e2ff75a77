"""The app's clock. Production reads the system clock; tests install one they control."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from flask import Flask, current_app

from broker.db import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the district's time, at every edge

Clock = Callable[[], dt.datetime]


def install_clock(app: Flask, clock: Clock | None) -> None:
    """Use `clock` for every 'now' the app needs (None: the system clock)."""
    app.extensions["broker.clock"] = clock or utcnow


def now(app: Flask | None = None) -> dt.datetime:
    """The current time (UTC, aware) by the app's clock."""
    return (app or current_app).extensions.get("broker.clock", utcnow)()


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
