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
    open = "open"  # waiting for the district
    answered = "answered"  # the district replied: waiting for the startup, or to be closed
    closed = "closed"  # staff closed the thread: it takes no more messages


APPEAL_CLOSED = "This appeal is closed: it takes no more messages."


class AppealSide(enum.StrEnum):
    """Who wrote a message of an appeal's thread."""

    district = "district"
    startup = "startup"


def _filed_time(context: sa.engine.DefaultExecutionContext) -> dt.datetime:
    # An appeal made without saying since when it waits has waited since it was filed
    # (`created_at`, declared before it, has its value or its default by now).
    return context.get_current_parameters()["created_at"]


class Appeal(Audited, Base):
    """A startup's appeal (诉求) against a decision on one of its allocations: a thread of
    messages between the startup and the district, assigned to a staff person, until closed.

    `message` is the startup's first message and `answer` the district's latest reply, kept as
    the API has always shown them; the whole thread is `messages`."""

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
    # The staff person the thread is assigned to (people.id), if anyone.
    assigned_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("people.id"), index=True)
    closed_at: Mapped[dt.datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    # Since when the thread waits for its next turn: for the district while open (the startup's
    # message that it has not answered yet), for the startup while answered (the district's reply).
    waiting_since: Mapped[dt.datetime] = mapped_column(default=_filed_time)

    messages: Mapped[list[AppealMessage]] = relationship(
        back_populates="appeal", order_by="AppealMessage.id", lazy="raise_on_sql"
    )

    __table_args__ = (
        # One open appeal per allocation, whatever two concurrent requests checked.
        sa.Index(
            "uq_appeals_one_open",
            "allocation_id",
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        ),
        # The inbox: by status, oldest waiting first, and what is overdue (a range on the time).
        sa.Index("ix_appeals_status_waiting_since", "status", "waiting_since"),
        sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_has_time"),
    )

    def _refuse_if_closed(self) -> None:
        if self.status is AppealStatus.closed:
            raise Conflict(APPEAL_CLOSED)

    def _add(self, side: AppealSide, author_id: int, body: str, now: dt.datetime) -> AppealMessage:
        return AppealMessage(appeal_id=self.id, author_id=author_id, author_side=side, body=body, created_at=now)

    def _turn_to(self, status: AppealStatus, now: dt.datetime) -> None:
        # A second message on the same side does not restart the other side's wait.
        if self.status is not status:
            self.status = status
            self.waiting_since = now

    def start(self, author_id: int) -> AppealMessage:
        """The thread's first message: the startup's appeal itself."""
        return self._add(AppealSide.startup, author_id, self.message, self.created_at)

    def respond(self, answer: str, by_id: int, now: dt.datetime) -> AppealMessage:
        """The district replies; the thread waits for the startup (or to be closed)."""
        self._refuse_if_closed()
        self.audit_as("answer")
        self._turn_to(AppealStatus.answered, now)
        self.answer = answer
        self.answered_by_id = by_id
        self.answered_at = now
        return self._add(AppealSide.district, by_id, answer, now)

    def follow_up(self, body: str, by_id: int, now: dt.datetime) -> AppealMessage:
        """The startup adds a message; the thread waits for the district again."""
        self._refuse_if_closed()
        self.audit_as("follow_up")
        self._turn_to(AppealStatus.open, now)
        return self._add(AppealSide.startup, by_id, body, now)

    def assign(self, person_id: int) -> None:
        """Give the thread to a staff person (or take it back with None)."""
        self._refuse_if_closed()
        self.audit_as("assign")
        self.assigned_to_id = person_id

    def close(self, by_id: int, note: str | None, now: dt.datetime) -> AppealMessage | None:
        """Staff close the thread, with a last word to the startup if they give one."""
        self._refuse_if_closed()
        message = self._add(AppealSide.district, by_id, note, now) if note else None
        self.audit_as("close")
        self._turn_to(AppealStatus.closed, now)
        self.closed_at = now
        self.closed_by_id = by_id
        return message


class AppealMessage(Base):
    """One message of an appeal's thread, by the startup or the district, in the order written."""

    __tablename__ = "appeal_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(sa.ForeignKey("appeals.id"), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))  # the author's account
    author_side: Mapped[AppealSide] = mapped_column(enum_column_type(AppealSide))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    appeal: Mapped[Appeal] = relationship(back_populates="messages")


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
