"""The scheduled jobs. Each is thin: open a session, call one service, close it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from adapters.base import AdapterError, CarrierAdapter
from broker.db import get_db
from broker.models import Carrier
from scheduler.schedule import SCHEDULED_JOBS, SYNC_PREFIX

log = logging.getLogger(__name__)


@contextmanager
def _session(app: Flask) -> Iterator[Session]:
    session = get_db(app).sessionmaker()
    try:
        yield session
    finally:
        session.close()


def _adapter_for(app: Flask) -> Callable[[Carrier], CarrierAdapter]:
    adapters = app.extensions["broker.carrier_adapters"]
    return lambda carrier: adapters.get(carrier.code, carrier.adapter)


def _active_carriers(session: Session) -> list[tuple[str, str]]:
    carriers = [(c.code, c.adapter) for c in session.scalars(sa.select(Carrier).where(Carrier.active).order_by(Carrier.code))]
    session.rollback()  # end the read: carriers are called with no transaction open
    return carriers


def sync_carrier(app: Flask, at: dt.datetime, code: str) -> None:
    """Pull one carrier's catalogue; a failure is recorded as a failed sync by the service."""
    from broker.services.sync import adapter_for
    from broker.services.sync import sync_carrier as sync

    with _session(app) as session:
        adapter = adapter_for(session, code, app.extensions["broker.carrier_adapters"])
        sync(session, code, adapter, at)


def run_cycle(app: Flask, at: dt.datetime) -> None:
    from broker.services.cycles import run_cycle as run

    with _session(app) as session:
        run(session, at, time_limit=app.config["MATCHING_TIME_LIMIT"])


def close_approvals(app: Flask, at: dt.datetime) -> None:
    from broker.services.cycles import close_approval_windows

    with _session(app) as session:
        close_approval_windows(session, at)


def provision(app: Flask, at: dt.datetime) -> None:
    from broker.services.provisioning import provision_due

    with _session(app) as session:
        provision_due(session, _adapter_for(app), at)


def expire(app: Flask, at: dt.datetime) -> None:
    from broker.services.provisioning import expire_finished

    with _session(app) as session:
        expire_finished(session, _adapter_for(app), at)


def warn_expiring(app: Flask, at: dt.datetime) -> None:
    """Tell startups of allocations whose window ends within 7 days (once each)."""
    from broker.services.provisioning import warn_expiring as warn

    with _session(app) as session:
        warn(session, at)


def pull_usage(app: Flask, at: dt.datetime) -> None:
    from broker.services.provisioning import pull_usage as pull

    adapters = app.extensions["broker.carrier_adapters"]
    with _session(app) as session:
        for code, adapter_name in _active_carriers(session):
            carrier = session.scalar(sa.select(Carrier).where(Carrier.code == code))
            try:
                pull(session, carrier, adapters.get(code, adapter_name), at)
            except AdapterError as error:
                session.rollback()
                log.warning("usage of %s not pulled: %s", code, error)


def release_unused(app: Flask, at: dt.datetime) -> None:
    from broker.services.settlement import release_after_programs_end

    with _session(app) as session:
        for done in release_after_programs_end(session, at):
            if done.award_ids:
                log.info("program %s released %d awards, %s back to the budget", done.program_code,
                         len(done.award_ids), done.returned)


def deliver_webhooks(app: Flask, at: dt.datetime) -> None:
    from broker.netguard import DestinationGuard
    from broker.services.events import deliver_due

    with _session(app) as session, requests.Session() as http:
        deliver_due(session, http, at, guard=DestinationGuard.from_config(app.config))


def deliver_email(app: Flask, at: dt.datetime) -> None:
    """Send the email outbox's due rows (SMTP, or .eml files in development)."""
    from broker.outbox import MailSettings, deliver_pending

    with _session(app) as session:
        deliver_pending(session, MailSettings.from_config(app.config, app.instance_path), at)


def remind_surveys(app: Flask, at: dt.datetime) -> None:
    """Remind startups of demand surveys closing soon (each person once per survey)."""
    from broker.services.surveys import send_reminders

    with _session(app) as session:
        send_reminders(session, at, days_before=app.config["SURVEY_REMINDER_DAYS"])


def monthly_report(app: Flask, at: dt.datetime) -> None:
    """Email district staff last month's headline figures with the reports' XLSX (each person once a month)."""
    from broker.services.monthly_report import send_monthly_report
    from broker.services.report_utilisation import refresh

    # In the app's context: the reports read the app clock, and the workbook translates its headers.
    # The utilisation figures come from its rollup: rebuilt first, so the email has the month whole.
    with app.app_context(), _session(app) as session:
        refresh(session, at)
        send_monthly_report(session, at, app.extensions["broker.monthly_workbook"])


def refresh_rollups(app: Flask, at: dt.datetime) -> None:
    """Rebuild the rollups the district reports read (the utilisation report's)."""
    from broker.services.report_utilisation import refresh

    with _session(app) as session:
        rows = refresh(session, at)
    log.info("refresh_rollups: %s allocations rolled up", rows)


def finalise_notices(app: Flask, at: dt.datetime) -> None:
    from broker.services.notices import finalise_due

    with _session(app) as session:
        finalised = finalise_due(session, at)
    if finalised:
        log.info("public notices finalised: %s", finalised)


def run_exports(app: Flask, at: dt.datetime) -> None:
    """Write the queued background report exports; delete the expired ones' files."""
    from broker.services.exports import run_exports as run

    with _session(app) as session:
        run(session, app.extensions["broker.export_writer"], app.instance_path, at,
            keep=dt.timedelta(days=app.config["EXPORT_KEEP_DAYS"]))


# Each job of the table (scheduler/schedule.py) by name, to the function here that it names.
JOBS: dict[str, Callable[[Flask, dt.datetime], None]] = {job.name: globals()[job.function] for job in SCHEDULED_JOBS}


def job_function(job: str) -> Callable[[Flask, dt.datetime], None]:
    if job.startswith(SYNC_PREFIX):
        code = job[len(SYNC_PREFIX):]
        return lambda app, at: sync_carrier(app, at, code)
    return JOBS[job]
