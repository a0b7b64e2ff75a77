"""config.VARIABLES and the README's configuration table are kept together by hand: this keeps them."""

import re
from pathlib import Path

import config
from scheduler.schedule import SCHEDULED_JOBS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readme_names_every_variable_the_broker_reads():
    assert [name for name in config.VARIABLES if f"`{name}`" not in README] == []


def test_the_readme_names_every_scheduled_job_and_its_default():
    row = next(line for line in README.splitlines() if line.startswith("| `BROKER_SCHEDULE_<JOB>`"))
    said = {job.name for job in SCHEDULED_JOBS
            if re.search(rf"`{job.name.upper()}` \((default )?`{re.escape(job.default_cron)}`", row)}
    assert said == {job.name for job in SCHEDULED_JOBS}
