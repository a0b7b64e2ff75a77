"""Running scheduled jobs exactly once, however many scheduler processes there are.

Each firing of a job has a slot: the cron time it was due. A firing runs only inside a
PostgreSQL *session* advisory lock for that job, held on one connection for the whole run,
and only if the slot has no finished run recorded (`job_runs`, unique per job and slot). A
run whose process died leaves an unfinished row; the next holder of the lock sees it and
runs the slot again, so a slot is completed once. On SQLite one scheduler process is allowed,
enforced by a lock file. A firing missed while no scheduler was up is run once on start-up
if it is younger than the grace time, never once per missed slot.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import socket
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TypeVar

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from flask import Flask

from broker.clock import SHANGHAI
from broker.clock import now as clock_now
from broker.db import TransientFailure, get_db, retry_transient
from broker.models.workflow import JobRun
from scheduler.jobs import job_function
from scheduler.schedule import SYNC_PREFIX, run_order

log = logging.getLogger(__name__)

JobFunction = Callable[[Flask, dt.datetime], object]
T = TypeVar("T")


class SchedulerRefused(RuntimeError):
    """This scheduler process must not start; the message says why."""


def parse_cron(expression: str) -> CronTrigger:
    """A 5-field crontab (or 6 fields with seconds first) in Asia/Shanghai."""
    fields = expression.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone=SHANGHAI)
    if len(fields) == 6:
        second, minute, hour, day, month, day_of_week = fields
        return CronTrigger(
            second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, timezone=SHANGHAI
        )
    raise ValueError(f"{expression!r} is not a 5- or 6-field cron expression")


def latest_slot(trigger: CronTrigger, at: dt.datetime, lookback: dt.timedelta) -> dt.datetime | None:
    """The newest time the trigger fired at or before `at`, if within `lookback`."""
    # Widen the window from a second up to `lookback`: the first window that holds a fire
    # time holds the newest one, so a frequent job is not walked through a whole hour.
    window = dt.timedelta(seconds=1)
    while True:
        window = min(window, lookback)
        slot = None
        candidate = trigger.get_next_fire_time(None, at - window)
        while candidate is not None and candidate <= at:
            slot = candidate
            candidate = trigger.get_next_fire_time(candidate, candidate + dt.timedelta(microseconds=1))
        if slot is not None or window >= lookback:
            return slot
        window *= 8


def slots_between(trigger: CronTrigger, start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    """Every time the trigger fires in (start, end]."""
    candidate = trigger.get_next_fire_time(None, start + dt.timedelta(microseconds=1))
    while candidate is not None and candidate <= end:
        yield candidate
        candidate = trigger.get_next_fire_time(candidate, candidate + dt.timedelta(microseconds=1))


def next_firing(app: Flask, job: str, after: dt.datetime) -> dt.datetime | None:
    """When `job` is next due, strictly after `after`, by its configured schedule; None if it is off."""
    expression = app.config["SCHEDULES"].get(job, "off")
    if expression == "off":
        return None
    return parse_cron(expression).get_next_fire_time(None, after + dt.timedelta(microseconds=1))


def _lock_key(job: str) -> int:
    return zlib.crc32(f"broker.job.{job}".encode())


@dataclass
class Runner:
    """Runs one job's firing for a slot at most once to completion across every process."""

    app: Flask
    # Asked when each Runner is made, not once at import: a forked worker names its own pid.
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def fire(self, job: str, slot: dt.datetime) -> str:
        """Run `job` for `slot` unless another process has it or has done it; returns what happened."""
        outcome = self._fire(job, slot)
        log.info("job %s slot %s: %s", job, slot.isoformat(), outcome)
        return outcome

    def _fire(self, job: str, slot: dt.datetime) -> str:
        engine = get_db(self.app).engine
        with self._job_lock(engine, job) as acquired:
            if not acquired:
                return "busy"
            try:
                if not self._retrying(lambda: self._claim(job, slot)):
                    return "done_elsewhere"
            except TransientFailure:
                log.exception("job %s for %s not claimed", job, slot.isoformat())
                return "failed"  # nothing ran; the slot has no finished row, so a later holder can run it
            try:
                # A job is safe to run again after a partial run (that is how an interrupted slot
                # is completed), so a deadlock or a locked database anywhere in it reruns it whole.
                self._retrying(lambda: job_function(job)(self.app, slot))
            except Exception as error:  # a job's failure is recorded and must not stop the scheduler
                log.exception("job %s for %s failed", job, slot.isoformat())
                reason = f"{type(error).__name__}: {error}"
                self._retrying(lambda: self._finish(job, slot, "failed", reason))
                return "failed"
            self._retrying(lambda: self._finish(job, slot, "ok", None))
            return "ran"

    def _retrying(self, work: Callable[[], T]) -> T:
        return retry_transient(work, attempts=int(self.app.config["TRANSIENT_RETRIES"]))

    @contextmanager
    def _job_lock(self, engine: sa.Engine, job: str) -> Iterator[bool]:
        if engine.dialect.name != "postgresql":
            yield True  # one scheduler process per SQLite database (see single_process_lock)
            return
        # A session lock on its own connection, held for the whole run: a transaction-level lock
        # on a pooled connection would be released at the first commit inside the job.
        with engine.connect() as connection:
            acquired = connection.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_key(job)})
            connection.commit()
            try:
                yield bool(acquired)
            finally:
                if acquired:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(job)})
                    connection.commit()

    def _claim(self, job: str, slot: dt.datetime) -> bool:
        session = get_db(self.app).sessionmaker()
        try:
            run = session.scalar(sa.select(JobRun).where(JobRun.job == job, JobRun.slot == slot))
            if run is not None and run.finished_at is not None:
                return False
            if run is None:
                session.add(JobRun(job=job, slot=slot, runner=self.name, started_at=clock_now(self.app)))
            else:
                # Its process died mid-run (we hold the lock, so nobody else is running it).
                run.claim(self.name, clock_now(self.app))
            session.commit()
            return True
        finally:
            session.close()

    def _finish(self, job: str, slot: dt.datetime, outcome: str, detail: str | None) -> None:
        session = get_db(self.app).sessionmaker()
        try:
            run = session.scalar(sa.select(JobRun).where(JobRun.job == job, JobRun.slot == slot))
            run.finish(outcome, detail, clock_now(self.app))
            session.commit()
        finally:
            session.close()


@contextmanager
def single_process_lock(app: Flask) -> Iterator[IO[str] | None]:
    """On SQLite, refuse a second scheduler process; PostgreSQL needs no such lock."""
    if get_db(app).engine.dialect.name == "postgresql":
        yield None
        return
    path = os.path.join(app.instance_path, "scheduler.lock")
    os.makedirs(app.instance_path, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SchedulerRefused(
            f"Another scheduler is already running on this SQLite database (lock {path}). SQLite allows one "
            "scheduler process; run several only on PostgreSQL, where an advisory lock keeps each job to one run."
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def enabled_jobs(app: Flask) -> dict[str, CronTrigger]:
    """The jobs whose schedule is not 'off', with their triggers, each carrier's sync included."""
    jobs = {job: parse_cron(expr) for job, expr in app.config["SCHEDULES"].items() if expr != "off"}
    for code, settings in app.config["CARRIERS"].items():
        if settings.sync_schedule and settings.sync_schedule != "off":
            jobs[SYNC_PREFIX + code] = parse_cron(settings.sync_schedule)
    return jobs


def catch_up(runner: Runner, triggers: dict[str, CronTrigger], at: dt.datetime, grace: dt.timedelta) -> dict[str, str]:
    """Run, once, each job's newest slot that was missed while no scheduler ran, if within grace."""
    outcomes = {}
    for job, trigger in sorted(triggers.items()):
        slot = latest_slot(trigger, at, grace)
        if slot is not None:
            outcomes[job] = runner.fire(job, slot)
    return outcomes


def run_due(runner: Runner, triggers: dict[str, CronTrigger], start: dt.datetime, end: dt.datetime,
            set_clock: Callable[[dt.datetime], None]) -> list[tuple[dt.datetime, str, str]]:
    """Fire every slot in (start, end] in time order, moving the clock to each: a simulated schedule."""
    firings = sorted(
        (slot, run_order(job), job) for job, trigger in triggers.items() for slot in slots_between(trigger, start, end)
    )
    log_ = []
    for slot, _, job in firings:
        set_clock(slot)
        log_.append((slot, job, runner.fire(job, slot)))
    return log_


def build_scheduler(app: Flask, runner: Runner, *, background: bool):
    """An APScheduler 3 scheduler firing each enabled job through `runner` in Asia/Shanghai."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    grace = int(app.config["MISFIRE_GRACE_SECONDS"])
    scheduler = (BackgroundScheduler if background else BlockingScheduler)(timezone=SHANGHAI)
    for job, trigger in enabled_jobs(app).items():
        scheduler.add_job(
            _fire_current_slot,
            trigger,
            args=(runner, job, trigger, grace),
            id=job,
            name=job,
            coalesce=True,  # many missed runs of one job become one
            max_instances=1,
            misfire_grace_time=grace,  # APScheduler's default of 1 s would silently skip late runs
        )
    return scheduler


def _fire_current_slot(runner: Runner, job: str, trigger: CronTrigger, grace: int) -> None:
    # APScheduler does not hand the job its scheduled time; the slot is the newest fire time
    # of the trigger, so a late firing still claims the slot it was due for.
    at = clock_now(runner.app)
    slot = latest_slot(trigger, at, dt.timedelta(seconds=grace) + dt.timedelta(seconds=1))
    if slot is not None:
        runner.fire(job, slot)


def serve(app: Flask) -> None:
    """The `broker scheduler` process: catch up on a missed firing, then fire jobs until stopped."""
    logging.basicConfig(level=str(app.config["LOG_LEVEL"]), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with single_process_lock(app):
        runner = Runner(app)
        triggers = enabled_jobs(app)
        grace = dt.timedelta(seconds=int(app.config["MISFIRE_GRACE_SECONDS"]))
        catch_up(runner, triggers, clock_now(app), grace)
        log.info("scheduler %s running %s", runner.name, ", ".join(sorted(triggers)))
        build_scheduler(app, runner, background=False).start()
