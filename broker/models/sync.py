"""Carrier syncs: each pull, push or upload of a carrier's offers, what it quarantined, and
the capacity conflicts it met (a feed that shrank or dropped a lot below what is promised)."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, Quantity, utcnow
from broker.errors import Conflict
from broker.inputs import scrub
from broker.models.audit import Audited
from broker.models.enums import enum_column_type
from broker.models.parties import Carrier


class SyncSource(enum.StrEnum):
    pull = "pull"  # the broker fetched the carrier's whole catalogue
    webhook = "webhook"  # the carrier pushed a delta
    upload = "upload"  # the carrier uploaded a catalog file through the API


class SyncStatus(enum.StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ConflictKind(enum.StrEnum):
    shrunk = "shrunk"  # the feed asked for less than is promised: kept at what is promised
    withdrawn = "withdrawn"  # the lot left the feed while promised: kept at what is promised


SYNC_COUNTS = ("new", "changed", "unchanged", "withdrawn", "quarantined", "conflicts")


class CarrierSync(Audited, Base):
    """One sync of one carrier's offers, with its counts or the error that stopped it."""

    __tablename__ = "carrier_syncs"

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    source: Mapped[SyncSource] = mapped_column(enum_column_type(SyncSource))
    status: Mapped[SyncStatus] = mapped_column(enum_column_type(SyncStatus), default=SyncStatus.running)
    # Whether the feed was the whole catalogue: only then are offers missing from it withdrawn.
    complete: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    new: Mapped[int] = mapped_column(default=0)
    changed: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    withdrawn: Mapped[int] = mapped_column(default=0)
    quarantined: Mapped[int] = mapped_column(default=0)
    conflicts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # The encoding a CSV catalog was read in (utf-8, utf-8-sig or gb18030); None for anything else.
    encoding: Mapped[str | None] = mapped_column(sa.String(16))

    carrier: Mapped[Carrier] = relationship()

    __table_args__ = (
        sa.CheckConstraint(
            "new >= 0 AND changed >= 0 AND unchanged >= 0 AND withdrawn >= 0 AND quarantined >= 0 AND conflicts >= 0",
            name="counts_not_negative",
        ),
        sa.CheckConstraint("finished_at IS NULL OR finished_at >= started_at", name="finished_after_start"),
        sa.CheckConstraint("(status = 'failed') = (error IS NOT NULL)", name="failed_has_error"),
        sa.Index("ix_carrier_syncs_carrier_started", "carrier_id", "started_at"),
    )

    @property
    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SYNC_COUNTS}

    def succeed(self, counts: dict[str, int], finished_at: dt.datetime) -> None:
        """The feed was applied: record what it did."""
        if self.status is not SyncStatus.running:
            raise Conflict(f"Sync {self.id} is already {self.status.value}.")
        self.audit_as("succeed")
        for name in SYNC_COUNTS:
            setattr(self, name, counts.get(name, 0))
        self.status = SyncStatus.succeeded
        self.finished_at = finished_at

    def fail(self, error: str, finished_at: dt.datetime) -> None:
        """The feed could not be had or read: nothing was applied."""
        if self.status is not SyncStatus.running:
            raise Conflict(f"Sync {self.id} is already {self.status.value}.")
        self.audit_as("fail")
        self.status = SyncStatus.failed
        self.error = scrub(error)[:2000] or "failed"  # a carrier's message may hold a NUL
        self.finished_at = finished_at


class QuarantinedRecord(Base):
    """A carrier record a sync could not import, kept as sent with the reason."""

    __tablename__ = "quarantined_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    sync_id: Mapped[int] = mapped_column(sa.ForeignKey("carrier_syncs.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    location: Mapped[str] = mapped_column(sa.String(200), default="")
    reason: Mapped[str] = mapped_column(sa.Text)
    raw: Mapped[dict | list | str | None] = mapped_column(sa.JSON)


class PushReceipt(Base):
    """A carrier push that was applied, kept while its signature would still verify, so that the
    same signed push sent again is refused. Written in the transaction that applies the push."""

    __tablename__ = "push_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    # The adapter's id for the push: the carrier's own, or a digest of the signed timestamp and body.
    push_id: Mapped[str] = mapped_column(sa.String(128))
    sync_id: Mapped[int] = mapped_column(sa.ForeignKey("carrier_syncs.id", ondelete="CASCADE"), index=True)
    signed_at: Mapped[dt.datetime]
    valid_until: Mapped[dt.datetime] = mapped_column(index=True)  # after this a replay is stale anyway

    __table_args__ = (
        sa.UniqueConstraint("carrier_id", "push_id"),
        sa.CheckConstraint("valid_until > signed_at", name="valid_after_signing"),
    )


class SyncConflict(Base):
    """A feed asked to take back capacity that is already promised; staff see these."""

    __tablename__ = "sync_conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    sync_id: Mapped[int] = mapped_column(sa.ForeignKey("carrier_syncs.id", ondelete="CASCADE"), index=True)
    offer_id: Mapped[int] = mapped_column(sa.ForeignKey("offers.id"), index=True)
    external_id: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[ConflictKind] = mapped_column(enum_column_type(ConflictKind))
    requested_quantity: Mapped[Decimal] = mapped_column(Quantity())  # what the feed asked for (0: gone)
    kept_quantity: Mapped[Decimal] = mapped_column(Quantity())  # what the offer keeps: its promises

    __table_args__ = (
        sa.CheckConstraint("requested_quantity >= 0", name="requested_not_negative"),
        sa.CheckConstraint("kept_quantity > requested_quantity", name="kept_above_requested"),
    )
