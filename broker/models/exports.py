"""A report export run in the background (后台导出): asked for by one staff person, written by the
`run_exports` job to a file under the instance folder, downloaded by that person until it expires."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from broker.db import Base, utcnow
from broker.models.enums import enum_column_type

EXPORT_FORMATS = ("csv", "xlsx")
MAX_EXPORT_ERROR = 500


class ExportStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    ready = "ready"
    failed = "failed"
    expired = "expired"  # was ready; its file is deleted


class ExportJob(Base):
    __tablename__ = "export_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id"))
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))  # the report is computed as this account
    report: Mapped[str] = mapped_column(sa.String(40))  # a key of the console's registry of report exports
    args: Mapped[dict] = mapped_column(sa.JSON)  # the report's filters, as the query string gave them
    format: Mapped[str] = mapped_column(sa.String(8))  # one of EXPORT_FORMATS
    locale: Mapped[str] = mapped_column(sa.String(10))  # the language of the headers, as the page was shown
    status: Mapped[ExportStatus] = mapped_column(enum_column_type(ExportStatus), default=ExportStatus.queued)
    rows: Mapped[int | None]
    size: Mapped[int | None]  # bytes
    # Relative to the instance folder, "exports/<random>.xlsx"; chosen by the broker, never by the person.
    path: Mapped[str | None] = mapped_column(sa.String(200))
    filename: Mapped[str | None] = mapped_column(sa.String(200))  # the download's name, as the inline export names it
    error: Mapped[str | None] = mapped_column(sa.String(MAX_EXPORT_ERROR))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]

    __table_args__ = (
        sa.Index("ix_export_jobs_person_id_created_at", "person_id", "created_at"),
        sa.Index("ix_export_jobs_status", "status"),
        sa.CheckConstraint("format IN ('csv', 'xlsx')", name="known_format"),
        sa.CheckConstraint("(status = 'ready') = (path IS NOT NULL)", name="ready_has_file"),
    )

    def start(self, now: dt.datetime) -> None:
        self.status = ExportStatus.running
        self.started_at = now

    def finish(self, path: str, filename: str, rows: int, size: int, now: dt.datetime, keep: dt.timedelta) -> None:
        self.status, self.path, self.filename, self.rows, self.size = ExportStatus.ready, path, filename, rows, size
        self.finished_at, self.expires_at = now, now + keep

    def fail(self, error: str, now: dt.datetime) -> None:
        self.status, self.path, self.error, self.finished_at = ExportStatus.failed, None, error[:MAX_EXPORT_ERROR], now

    def expire(self) -> None:
        """Its file is gone: the row stays, so the person sees that it expired."""
        self.status, self.path = ExportStatus.expired, None
