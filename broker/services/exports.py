"""Background report exports (后台导出): a staff person queues one, the `run_exports` job writes it to a
file under the instance folder, the person downloads it until it expires and the job deletes it.

What an export holds is the console's business (its registry of report exports, the words in the
person's language): the job hands `run_exports` a `write(session, job, out)` that writes the file and
says its name and rows. Here: the queue, claiming each export once, and the files' lifetime.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import transaction, unit_of_work
from broker.errors import InvalidInput, NotFound
from broker.models import ExportJob, ExportStatus
from broker.models.exports import EXPORT_FORMATS
from broker.models.people import Person
from broker.services.accounts import STAFF_ROLES, require_role

log = logging.getLogger(__name__)

EXPORTS_FOLDER = "exports"  # under the instance folder
BATCH = 20
# A running export not finished after this is taken as lost with its process (a scheduler killed mid-write).
STALE_AFTER = dt.timedelta(hours=1)
MAX_ARGS, MAX_ARG_LENGTH = 20, 200

# Writes one export to `out`: (the download's file name, the rows written). Raises on any failure.
ExportWrite = Callable[[Session, ExportJob, IO[bytes]], tuple[str, int]]


@dataclass
class ExportRun:
    ready: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)


@transaction
def queue_export(session: Session, person: Person, report: str, args: Mapping[str, str], format: str, locale: str,
                 reports: Collection[str], now: dt.datetime) -> ExportJob:
    """Staff: ask for a report's export in the background, with the report's filters as the page had them."""
    require_role(person.account, *STAFF_ROLES)
    if report not in reports:
        raise InvalidInput("Unknown report.", {"report": [f"One of: {', '.join(sorted(reports))}."]})
    if format not in EXPORT_FORMATS:
        raise InvalidInput("Unknown format.", {"format": [f"One of: {', '.join(EXPORT_FORMATS)}."]})
    kept = {name: value for name, value in args.items() if value.strip()}
    if len(kept) > MAX_ARGS or any(len(name) > MAX_ARG_LENGTH or len(value) > MAX_ARG_LENGTH for name, value in kept.items()):
        raise InvalidInput("Too many or too long filters.", {"args": ["Too many or too long."]})
    job = ExportJob(person_id=person.id, account_id=person.account_id, report=report, args=kept, format=format,
                    locale=locale, created_at=now)
    session.add(job)
    session.flush()
    return job


def own_exports(session: Session, person: Person, page: int, per_page: int) -> tuple[list[ExportJob], int]:
    """The person's own exports, newest first: one page of them and how many there are."""
    mine = ExportJob.person_id == person.id
    total = session.scalar(sa.select(sa.func.count()).select_from(ExportJob).where(mine)) or 0
    jobs = session.scalars(sa.select(ExportJob).where(mine).order_by(ExportJob.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return list(jobs), total


def ready_export(session: Session, person: Person, export_id: int, instance_path: str) -> tuple[ExportJob, Path]:
    """The person's own ready export and its file; anyone else's, or one not ready, is not found."""
    job = session.get(ExportJob, export_id)
    path = None if job is None or job.path is None else Path(instance_path) / job.path
    if job is None or job.person_id != person.id or job.status != ExportStatus.ready or path is None or not path.is_file():
        raise NotFound("No such export.")
    return job, path


def run_exports(session: Session, write: ExportWrite, instance_path: str, now: dt.datetime, *,
                keep: dt.timedelta) -> ExportRun:
    """Delete the expired exports' files, give up on lost ones, then write each queued export, one at a time.

    Each export is claimed in a transaction of its own (its row locked, SKIP LOCKED on PostgreSQL; SQLite
    serialises writers) and marked running before it is written, so two schedulers never write one twice.
    It is written to a `.part` file renamed once complete: a failure leaves it failed, with no file.
    """
    run = ExportRun()
    folder = Path(instance_path) / EXPORTS_FOLDER
    _expire(session, folder.parent, now, run)
    _give_up_lost(session, now, run)
    queued = sa.select(ExportJob.id).where(ExportJob.status == ExportStatus.queued).order_by(ExportJob.id).limit(BATCH)
    ids = list(session.scalars(queued))
    session.rollback()
    for export_id in ids:
        with unit_of_work(session):
            job = session.scalar(
                sa.select(ExportJob).where(ExportJob.id == export_id, ExportJob.status == ExportStatus.queued)
                .with_for_update(skip_locked=True).execution_options(populate_existing=True))
            if job is None:  # claimed by another scheduler meanwhile
                continue
            job.start(now)
        _write_one(session, write, folder, export_id, now, keep, run)
    return run


def _write_one(session: Session, write: ExportWrite, folder: Path, export_id: int, now: dt.datetime,
               keep: dt.timedelta, run: ExportRun) -> None:
    job = session.get(ExportJob, export_id)
    assert job is not None
    folder.mkdir(parents=True, exist_ok=True)
    relative = f"{EXPORTS_FOLDER}/{secrets.token_urlsafe(18)}.{job.format}"
    target = folder.parent / relative
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as out:
            filename, rows = write(session, job, out)
        os.replace(partial, target)
        session.rollback()  # end the report's reads
        with unit_of_work(session):
            job = session.get(ExportJob, export_id)
            job.finish(relative, filename, rows, target.stat().st_size, now, keep)
    except Exception as error:  # noqa: BLE001 - any failure of any report is the export's, said on its row
        session.rollback()
        partial.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        with unit_of_work(session):
            job = session.get(ExportJob, export_id)
            job.fail(f"{type(error).__name__}: {error}", now)
        run.failed.append(export_id)
        log.warning("export %d (%s) failed: %s", export_id, job.report, job.error)
    else:
        run.ready.append(export_id)


def _expire(session: Session, root: Path, now: dt.datetime, run: ExportRun) -> None:
    with unit_of_work(session):
        for job in session.scalars(sa.select(ExportJob).where(ExportJob.status == ExportStatus.ready,
                                                               ExportJob.expires_at <= now).with_for_update()):
            (root / job.path).unlink(missing_ok=True)
            job.expire()
            run.expired.append(job.id)


def _give_up_lost(session: Session, now: dt.datetime, run: ExportRun) -> None:
    with unit_of_work(session):
        for job in session.scalars(sa.select(ExportJob).where(ExportJob.status == ExportStatus.running,
                                                               ExportJob.started_at <= now - STALE_AFTER).with_for_update()):
            job.fail("interrupted: not finished within an hour (the scheduler stopped while writing it)", now)
            run.failed.append(job.id)
