"""What happens around allocations: appeals, the event feed, webhook deliveries, usage, job runs."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, Quantity, utcnow
from broker.errors import Conflict
from broker.models.audit import Audited
from broker.models.enums import enum_column_type


class AppealStatus(enum.StrEnum):
    open = "open"
    answered = "answered"


class Appeal(Audited, Base):
    """A startup's appeal (诉求) against a decision on one of its allocations, and staff's answer."""

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(primary_key=True)
    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id"), index=True)
    startup_id: Mapped[int] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    message: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[AppealStatus] = mapped_column(enum_column_type(AppealStatus), default=AppealStatus.open)
    answer: Mapped[str | None] = mapped_column(sa.Text)
    answered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    answered_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # One open appeal per allocation, whatever two concurrent requests checked.
        sa.Index(
            "uq_appeals_one_open",
            "allocation_id",
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        ),
    )

    def respond(self, answer: str, by_id: int, now: dt.datetime) -> None:
        """Staff answer the appeal; a startup may appeal again if it still disagrees."""
        if self.status is AppealStatus.answered:
            raise Conflict("This appeal is already answered.")
        self.audit_as("answer")
        self.status = AppealStatus.answered
        self.answer = answer
        self.answered_by_id = by_id
        self.answered_at = now


class Event(Base):
    """One thing a startup or carrier cares about, in its feed (and pushed to its webhook)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(48))
    startup_id: Mapped[int | None] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    allocation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("allocations.id"))
    payload: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("startup_id IS NOT NULL OR carrier_id IS NOT NULL", name="has_recipient"),
    )


class WebhookSubscription(Audited, Base):
    """Where an account wants its events POSTed, and the secret they are signed with."""

    __tablename__ = "webhook_subscriptions"
    __audit_exclude__ = frozenset({"secret"})

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), unique=True)
    url: Mapped[str] = mapped_column(sa.String(500))
    # Kept in clear: the broker must sign with it. It is shown to the account once.
    secret: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id"), index=True)
    subscription_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_subscriptions.id"), index=True)
    status: Mapped[DeliveryStatus] = mapped_column(enum_column_type(DeliveryStatus), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at: Mapped[dt.datetime | None]

    event: Mapped[Event] = relationship()
    subscription: Mapped[WebhookSubscription] = relationship()

    __table_args__ = (sa.UniqueConstraint("event_id", "subscription_id"),)

    def delivered(self, now: dt.datetime) -> None:
        """The receiver took it."""
        self.status, self.delivered_at, self.last_error = DeliveryStatus.delivered, now, None

    def failed(self, error: str) -> None:
        """Given up: refused destination or out of attempts. Never tried again."""
        self.status, self.last_error = DeliveryStatus.failed, error

    def retry(self, error: str, at: dt.datetime) -> None:
        """This attempt failed; it stays pending and is due again at `at`."""
        self.last_error = error
        self.next_attempt_at = at


class UsageReport(Base):
    """Usage a carrier reported against an allocation; unique per carrier record, so pulled once."""

    __tablename__ = "usage_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    external_id: Mapped[str] = mapped_column(sa.String(128))
    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    recorded_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("carrier_id", "external_id"),
        sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )


class JobRun(Base):
    """One firing of a scheduled job. Unique per (job, slot): a second scheduler cannot run it again."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(sa.String(64))
    slot: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    runner: Mapped[str] = mapped_column(sa.String(128))
    outcome: Mapped[str | None] = mapped_column(sa.String(16))
    detail: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.UniqueConstraint("job", "slot"),)

    def claim(self, runner: str, now: dt.datetime) -> None:
        """Run again a firing whose process died mid-run (the caller holds the job's lock)."""
        self.runner, self.started_at, self.detail = runner, now, "rerun after an interrupted run"

    def finish(self, outcome: str, detail: str | None, now: dt.datetime) -> None:
        self.finished_at, self.outcome = now, outcome
        if detail:
            self.detail = detail[:2000]
