"""The email outbox: a use case that sends email writes a row here in its own transaction."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, deferred, mapped_column

from broker.db import Base, utcnow
from broker.models.enums import enum_column_type


class EmailStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"  # gave up after the last retry


class OutboxEmail(Base):
    __tablename__ = "outbox_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    # Holds a link's secret until it is delivered, then is cleared (the link's hash stays elsewhere).
    body: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[EmailStatus] = mapped_column(enum_column_type(EmailStatus), default=EmailStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # "event:<id>:person:<id>" for a notification, so an event reaches a person at most once
    # whoever writes it (unique; None for other emails).
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    # Extra headers of the message (a notification's List-Unsubscribe and List-Unsubscribe-Post).
    headers: Mapped[dict | None] = mapped_column(sa.JSON)
    # One file sent with the message (the monthly report's XLSX): its name, MIME type and bytes, written
    # with the row and never changed. Deferred: the delivery log lists rows without loading files.
    attachment_name: Mapped[str | None] = mapped_column(sa.String(200))
    attachment_type: Mapped[str | None] = mapped_column(sa.String(100))
    attachment: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))

    __table_args__ = (
        sa.Index("ix_outbox_emails_due", "status", "next_attempt_at"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.CheckConstraint("(attachment IS NULL) = (attachment_name IS NULL) AND (attachment IS NULL) = (attachment_type IS NULL)",
                           name="attachment_whole"),
    )

    def sent(self, now: dt.datetime) -> None:
        """Delivered: the body is cleared, since it may hold a link's secret."""
        self.attempts += 1
        self.status = EmailStatus.sent
        self.sent_at = now
        self.body = None

    def attempt_failed(self, error: str, retry_at: dt.datetime | None) -> None:
        """Not delivered: try again at `retry_at`, or (None) give up."""
        self.attempts += 1
        self.last_error = error[:2000]
        if retry_at is None:
            self.status = EmailStatus.failed
        else:
            self.next_attempt_at = retry_at
