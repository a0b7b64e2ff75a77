"""Slots, exactly-once firing, catch-up after downtime, and the SQLite single-process rule."""

import datetime as dt
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from broker.clock import SHANGHAI, FrozenClock, install_clock
from broker.models import JobRun
from scheduler import jobs
from scheduler.runner import Runner, catch_up, latest_slot, parse_cron, slots_between

MONDAY = dt.datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI)


def test_slots_are_cron_times_in_shanghai():
    weekly = parse_cron("0 9 * * mon")
    assert latest_slot(weekly, MONDAY + dt.timedelta(minutes=30), dt.timedelta(hours=1)) == MONDAY
    assert latest_slot(weekly, MONDAY + dt.timedelta(hours=2), dt.timedelta(hours=1)) is None  # beyond grace
    assert latest_slot(weekly, MONDAY, dt.timedelta(seconds=1)) == MONDAY
    week = list(slots_between(parse_cron("*/30 * * * *"), MONDAY, MONDAY + dt.timedelta(days=1)))
    assert len(week) == 48 and week[0] == MONDAY + dt.timedelta(minutes=30)
    seconds = list(slots_between(parse_cron("*/2 * * * * *"), MONDAY, MONDAY + dt.timedelta(seconds=10)))
    assert len(seconds) == 5
    with pytest.raises(ValueError):
        parse_cron("every monday")


@pytest.fixture
def counted(monkeypatch):
    """Replace one job by a counter, so the test sees each real execution."""
    calls = []
    monkeypatch.setitem(jobs.JOBS, "deliver_webhooks", lambda app, at: calls.append(at))
    return calls


def _runs(session, job):
    session.expire_all()
    return session.scalars(sa.select(JobRun).where(JobRun.job == job).order_by(JobRun.slot)).all()


def test_a_slot_runs_once_however_often_it_fires(app, session, counted):
    runner, other = Runner(app, "one"), Runner(app, "two")
    assert runner.fire("deliver_webhooks", MONDAY) == "ran"
    assert other.fire("deliver_webhooks", MONDAY) == "done_elsewhere"
    assert runner.fire("deliver_webhooks", MONDAY) == "done_elsewhere"
    assert counted == [MONDAY]
    [run] = _runs(session, "deliver_webhooks")
    assert (run.runner, run.outcome) == ("one", "ok") and run.finished_at is not None


def test_an_interrupted_run_is_run_again_once(app, session, counted):
    session.add(JobRun(job="deliver_webhooks", slot=MONDAY, runner="died:1", started_at=MONDAY))
    session.commit()
    assert Runner(app, "heir").fire("deliver_webhooks", MONDAY) == "ran"
    assert Runner(app, "late").fire("deliver_webhooks", MONDAY) == "done_elsewhere"
    assert counted == [MONDAY]
    [run] = _runs(session, "deliver_webhooks")
    assert run.runner == "heir" and "interrupted" in run.detail


def test_a_failing_job_is_recorded_and_the_scheduler_goes_on(app, session, monkeypatch):
    def broken(app, at):
        raise RuntimeError("carrier on fire")

    monkeypatch.setitem(jobs.JOBS, "deliver_webhooks", broken)
    assert Runner(app).fire("deliver_webhooks", MONDAY) == "failed"
    [run] = _runs(session, "deliver_webhooks")
    assert run.outcome == "failed" and "carrier on fire" in run.detail


def test_missed_firings_run_once_on_start_up_within_grace(app, session, counted):
    clock = FrozenClock((MONDAY + dt.timedelta(minutes=47)).astimezone(dt.timezone.utc))
    install_clock(app, clock)
    try:
        every_ten = {"deliver_webhooks": parse_cron("*/10 * * * *")}
        # Down from 09:00 to 09:47: five slots were missed; only the newest runs, once.
        outcomes = catch_up(Runner(app), every_ten, clock(), dt.timedelta(hours=1))
        assert outcomes == {"deliver_webhooks": "ran"}
        assert counted == [MONDAY + dt.timedelta(minutes=40)]
        assert catch_up(Runner(app), every_ten, clock(), dt.timedelta(hours=1)) == {"deliver_webhooks": "done_elsewhere"}
        # Too late: nothing within a five-minute grace.
        clock.advance(dt.timedelta(minutes=9))  # 09:56: the 09:50 slot is six minutes old
        assert catch_up(Runner(app), every_ten, clock(), dt.timedelta(minutes=5)) == {}
        assert len(counted) == 1
    finally:
        install_clock(app, None)


def _scheduler_env(database_url, instance, **extra):
    env = {
        **os.environ,
        "BROKER_DATABASE_URL": database_url,
        "BROKER_INSTANCE_PATH": str(instance),
        "BROKER_CARRIERS_FILE": str(instance / "carriers.json"),
        "BROKER_LOG_LEVEL": "INFO",
    }
    for job in ("RUN_CYCLE", "CLOSE_APPROVALS", "PROVISION", "EXPIRE", "PULL_USAGE", "DELIVER_WEBHOOKS"):
        env[f"BROKER_SCHEDULE_{job}"] = "off"
    env.update(extra)
    (instance / "carriers.json").write_text('{"carriers": {}}')
    return env


def _start(env):
    return subprocess.Popen(
        [sys.executable, "-m", "broker", "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture
def migrated_database(databases):
    from broker.db import create_engine
    from broker.migrations import upgrade

    url = databases.create()
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.mark.slow
def test_a_second_scheduler_on_sqlite_refuses_to_start(migrated_database, tmp_path):
    if not migrated_database.startswith("sqlite"):
        pytest.skip("the single-process rule is SQLite's; PostgreSQL runs many (next test)")
    env = _scheduler_env(migrated_database, tmp_path, BROKER_SCHEDULE_DELIVER_WEBHOOKS="0 0 1 1 *")
    first = _start(env)
    try:
        time.sleep(3)
        assert first.poll() is None
        second = subprocess.run([sys.executable, "-m", "broker", "scheduler"], env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "Another scheduler is already running" in second.stderr and "PostgreSQL" in second.stderr
    finally:
        first.terminate()
        first.wait(timeout=10)


@pytest.mark.slow
def test_two_schedulers_on_postgresql_run_each_firing_once(migrated_database, tmp_path):
    if not migrated_database.startswith("postgresql"):
        pytest.skip("several scheduler processes are a PostgreSQL deployment")
    env = _scheduler_env(migrated_database, tmp_path, BROKER_SCHEDULE_DELIVER_WEBHOOKS="*/2 * * * * *")
    started = dt.datetime.now(dt.timezone.utc)
    processes = [_start(env), _start(env)]
    time.sleep(12)
    for process in processes:
        process.terminate()
    logs = [process.communicate(timeout=20)[0] for process in processes]
    stopped = dt.datetime.now(dt.timezone.utc)

    ran: dict[str, int] = {}
    for log in logs:
        for line in log.splitlines():
            if "job deliver_webhooks slot" in line and line.rstrip().endswith(": ran"):
                slot = line.split("slot ")[1].rsplit(":", 1)[0]
                ran[slot] = ran.get(slot, 0) + 1
    assert ran, logs
    assert set(ran.values()) == {1}, ran  # no firing ran twice across the two processes
    engine = sa.create_engine(migrated_database)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT slot, outcome FROM job_runs WHERE job = 'deliver_webhooks'")).all()
    engine.dispose()
    assert len(rows) == len(ran) and {outcome for _, outcome in rows} == {"ok"}
    expected = len(list(slots_between(parse_cron("*/2 * * * * *"), started + dt.timedelta(seconds=4), stopped - dt.timedelta(seconds=1))))
    assert len(rows) >= expected  # and none was skipped while both were up


def test_building_the_app_starts_no_scheduler(tmp_path):
    """gunicorn workers build the app with create_app: they must never schedule."""
    import threading

    from broker import create_app

    before = {t.ident for t in threading.enumerate()}
    create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "INSTANCE_PATH": str(tmp_path)})
    started = [t.name for t in threading.enumerate() if t.ident not in before]
    assert started == []
    assert not (tmp_path / "scheduler.lock").exists()
