"""Evidence per award: the contracts, invoices, proofs of payment and usage statements a program
may require before redemptions are paid out, and the staff review of each piece.

The bytes live in the evidence store (broker.storage), addressed by their SHA-256; a row says what
they are, for which award, from whom, and what staff made of them. A piece is reviewed once: a
rejected piece stays as it was, and the same type uploaded again is a new row.
"""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broker.db import Base, utcnow
from broker.errors import Conflict
from broker.models.audit import Audited
from broker.models.enums import enum_column_type
from broker.models.ledger import EvidenceType


class EvidenceStatus(enum.StrEnum):
    pending = "pending"
    verified = "verified"
    rejected = "rejected"


class EvidenceSide(enum.StrEnum):
    """Whose side uploaded a piece: the award's startup or the carrier that supplied it."""

    startup = "startup"
    carrier = "carrier"


MAX_FILE_NAME = 255


class Evidence(Audited, Base):
    __tablename__ = "subsidy_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    award_id: Mapped[int] = mapped_column(sa.ForeignKey("subsidy_awards.id"), index=True)
    type: Mapped[EvidenceType] = mapped_column(enum_column_type(EvidenceType))
    storage_key: Mapped[str] = mapped_column(sa.String(128))  # sha256/ab/cd/<hex>, see broker.storage
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    content_type: Mapped[str] = mapped_column(sa.String(100))  # sniffed from the bytes, never as declared
    file_name: Mapped[str] = mapped_column(sa.String(MAX_FILE_NAME))  # as the uploader named it; shown, never a path
    uploaded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    side: Mapped[EvidenceSide] = mapped_column(enum_column_type(EvidenceSide))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[EvidenceStatus] = mapped_column(enum_column_type(EvidenceStatus), default=EvidenceStatus.pending)
    reason: Mapped[str | None] = mapped_column(sa.Text)  # why it was rejected
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    reviewed_at: Mapped[dt.datetime | None]

    award = relationship("Award", lazy="joined", innerjoin=True)

    __table_args__ = (
        sa.CheckConstraint("size > 0", name="size_positive"),
        sa.CheckConstraint(
            "(status = 'pending' AND reviewed_by_id IS NULL AND reviewed_at IS NULL AND reason IS NULL)"
            " OR (status = 'verified' AND reviewed_by_id IS NOT NULL AND reviewed_at IS NOT NULL AND reason IS NULL)"
            " OR (status = 'rejected' AND reviewed_by_id IS NOT NULL AND reviewed_at IS NOT NULL AND reason IS NOT NULL)",
            name="review_complete",
        ),
        sa.Index("ix_subsidy_evidence_award_type", "award_id", "type"),
    )

    def verify(self, reviewer_id: int, now: dt.datetime) -> None:
        self._review(EvidenceStatus.verified, reviewer_id, now, None)

    def reject(self, reviewer_id: int, now: dt.datetime, reason: str) -> None:
        self._review(EvidenceStatus.rejected, reviewer_id, now, reason)

    def _review(self, status: EvidenceStatus, reviewer_id: int, now: dt.datetime, reason: str | None) -> None:
        if self.status is not EvidenceStatus.pending:
            raise Conflict(f"Evidence {self.id} was already {self.status.value}; upload a new piece instead.")
        self.audit_as("verify" if status is EvidenceStatus.verified else "reject")
        self.status, self.reviewed_by_id, self.reviewed_at, self.reason = status, reviewer_id, now, reason
