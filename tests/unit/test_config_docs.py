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


def test_the_four_eyes_threshold_is_read_in_yuan_and_refused_when_it_is_not():
    import pytest

    assert config.load_settings({})["SETTLEMENT_FOUR_EYES_ABOVE"] == "100000"
    assert config.load_settings({"BROKER_SETTLEMENT_FOUR_EYES_ABOVE": " 5000.5 "})["SETTLEMENT_FOUR_EYES_ABOVE"] == "5000.5"
    for bad in ("-1", "lots", "1.005", "inf"):
        with pytest.raises(config.ConfigurationError, match="BROKER_SETTLEMENT_FOUR_EYES_ABOVE"):
            config.load_settings({"BROKER_SETTLEMENT_FOUR_EYES_ABOVE": bad})
