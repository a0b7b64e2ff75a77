"""Scheduled work is declared once, in scheduler/schedule.py; every other place reads that table."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

import config
from scheduler import jobs, schedule
from scheduler.runner import Runner, enabled_jobs, parse_cron
from scheduler.schedule import DEMO_SCHEDULES, SCHEDULED_JOBS, SYNC_PREFIX, run_order

ROOT = Path(__file__).resolve().parents[2]
NAMES = [job.name for job in SCHEDULED_JOBS]
# The places that each kept their own list of the jobs before the table.
READERS = ["scheduler/jobs.py", "scheduler/runner.py", "config/__init__.py", "broker/demo.py", "broker/api/market.py"]


def test_every_job_in_the_table_runs_a_function_of_scheduler_jobs():
    assert len(set(NAMES)) == len(NAMES)
    assert list(jobs.JOBS) == NAMES
    for job in SCHEDULED_JOBS:
        function = jobs.JOBS[job.name]
        assert function is getattr(jobs, job.function) and inspect.getmodule(function) is jobs
        assert list(inspect.signature(function).parameters) == ["app", "at"]
        assert jobs.job_function(job.name) is function


def test_every_job_is_scheduled_by_default_on_its_default_cron():
    settings = config.load_settings({"BROKER_ENV": "test"})
    assert settings["SCHEDULES"] == {job.name: job.default_cron for job in SCHEDULED_JOBS}
    assert config.DEFAULT_SCHEDULES == settings["SCHEDULES"]
    triggers = enabled_jobs(SimpleNamespace(config=settings))
    assert sorted(job for job in triggers if not job.startswith(SYNC_PREFIX)) == sorted(NAMES)
    for job in SCHEDULED_JOBS:
        parse_cron(job.default_cron)
        parse_cron(job.demo_cron)


@pytest.mark.parametrize("job", SCHEDULED_JOBS, ids=NAMES)
def test_each_job_has_a_setting_that_moves_it_or_turns_it_off(job):
    assert job.setting == f"BROKER_SCHEDULE_{job.name.upper()}"
    assert config.load_settings({job.setting: "*/7 * * * *"})["SCHEDULES"][job.name] == "*/7 * * * *"
    settings = config.load_settings({job.setting: "off"})
    assert settings["SCHEDULES"][job.name] == "off"
    assert job.name not in enabled_jobs(SimpleNamespace(config=settings))
    described = config.VARIABLES["BROKER_SCHEDULE_<JOB>"]
    assert f"{job.name.upper()} '{job.default_cron}'" in described


def test_the_demo_runs_the_same_table_on_its_fast_schedule():
    assert DEMO_SCHEDULES == {job.name: job.demo_cron for job in SCHEDULED_JOBS}


def test_jobs_sharing_a_slot_run_syncs_first_then_in_the_tables_order():
    assert sorted(NAMES + ["sync:telecom"], key=run_order) == ["sync:telecom", *NAMES]


@pytest.mark.parametrize("path", READERS)
def test_no_other_place_lists_the_jobs(path):
    """A job's name written as a string in one of the old places means a second list has begun."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    named = sorted(
        node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in NAMES
    )
    assert named == [], f"{path} names jobs itself; read scheduler.schedule.SCHEDULED_JOBS"


def test_the_table_needs_no_flask_or_database():
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(inspect.getsource(schedule)))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [SimpleNamespace(name=node.module or "")])
    }
    assert imported <= {"__future__", "dataclasses"}


def test_a_runner_names_the_process_it_is_made_in(monkeypatch):
    """The default name is asked when the Runner is made, so a forked scheduler names its own pid."""
    monkeypatch.setattr("os.getpid", lambda: 424242)
    assert Runner(None).name.endswith(":424242")  # type: ignore[arg-type]
    assert Runner(None, "given").name == "given"  # type: ignore[arg-type]
