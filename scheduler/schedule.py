"""Every scheduled job, declared once: the settings, the scheduler and `broker demo` read this table.

No Flask, SQLAlchemy or broker imports, so `config` reads it at import. Each carrier's sync is
not here: it is one job per carrier ("sync:telecom"), on that carrier's own `sync_schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduledJob:
    name: str  # its id in job_runs, its advisory lock, and the key of the SCHEDULES setting
    function: str  # the function in scheduler.jobs that runs it, as (app, slot)
    default_cron: str  # Asia/Shanghai; 5 fields, or 6 with seconds first
    demo_cron: str  # `broker demo`'s fast schedule, so the week happens while you watch
    note: str = ""  # what the default means, said beside it in the setting's description

    @property
    def setting(self) -> str:
        """The environment variable that overrides its cron (or turns it 'off')."""
        return f"BROKER_SCHEDULE_{self.name.upper()}"


# In the order a week flows, which is the order jobs sharing a slot run in: take in capacity
# (the carriers' syncs, first), close the old window, match, provision, expire, account for
# usage, give back what ended unused, roll up for the reports, tell people.
SCHEDULED_JOBS: tuple[ScheduledJob, ...] = (
    ScheduledJob("close_approvals", "close_approvals", "*/5 * * * *", "* * * * *"),
    ScheduledJob("run_cycle", "run_cycle", "0 9 * * mon", "*/10 * * * *",
                 "Monday 09:00; the policy's approval window ends Wednesday 18:00"),
    ScheduledJob("provision", "provision", "* * * * *", "*/20 * * * * *"),
    ScheduledJob("expire", "expire", "*/10 * * * *", "*/10 * * * *",
                 "windows that ended, and grants of withdrawn requests"),
    ScheduledJob("warn_expiring", "warn_expiring", "0 9 * * *", "*/10 * * * *",
                 "daily 09:00: allocations whose window ends within 7 days, each told once"),
    ScheduledJob("pull_usage", "pull_usage", "0 * * * *", "*/5 * * * *"),
    ScheduledJob("release_unused", "release_unused", "30 2 * * *", "*/15 * * * *",
                 "daily 02:30: programs past their ends_on give back what ended windows left unused"),
    ScheduledJob("deliver_webhooks", "deliver_webhooks", "* * * * *", "*/20 * * * * *"),
    ScheduledJob("finalise_notices", "finalise_notices", "30 0 * * *", "*/10 * * * *",
                 "daily 00:30: public notices past their last working day with every objection answered"),
    ScheduledJob("remind_surveys", "remind_surveys", "0 9 * * *", "*/10 * * * *",
                 "daily 09:00: demand surveys closing within SURVEY_REMINDER_DAYS, each person told once"),
    ScheduledJob("refresh_rollups", "refresh_rollups", "*/15 * * * *", "* * * * *",
                 "every 15 minutes: the utilisation report's rollup, rebuilt whole (its page says when)"),
    ScheduledJob("monthly_report", "monthly_report", "0 8 1 * *", "*/10 * * * *",
                 "08:00 on the 1st: last month's report emailed to district staff, the XLSX attached, each person once"),
    ScheduledJob("deliver_email", "deliver_email", "* * * * *", "*/20 * * * * *", "the email outbox"),
    ScheduledJob("run_exports", "run_exports", "* * * * *", "*/20 * * * * *",
                 "background report exports (后台导出), and deleting those older than BROKER_EXPORT_KEEP_DAYS"),
)

RELEASE_JOB = "expire"  # the run that releases at the carrier what a withdrawn request still holds
SYNC_PREFIX = "sync:"  # one sync job per carrier, "sync:telecom", on the carrier's own schedule
DEMO_SYNC_CRON = "*/10 * * * *"  # `broker demo` syncs every carrier this often

DEFAULT_SCHEDULES: dict[str, str] = {job.name: job.default_cron for job in SCHEDULED_JOBS}
DEMO_SCHEDULES: dict[str, str] = {job.name: job.demo_cron for job in SCHEDULED_JOBS}


def run_order(job: str) -> int:
    """Where `job` runs among jobs due in the same slot: syncs first, then the table's order."""
    if job.startswith(SYNC_PREFIX):
        return 0
    return 1 + [scheduled.name for scheduled in SCHEDULED_JOBS].index(job)
