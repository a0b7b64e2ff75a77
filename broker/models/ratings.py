"""A startup's satisfaction with one completed allocation (满意度): one question, a score 1–5 and an
optional comment, given once. The performance-evaluation pack (绩效自评) reports them."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from broker.db import Base, utcnow

MAX_RATING_COMMENT = 300
RATING_SCORES = (1, 2, 3, 4, 5)


class AllocationRating(Base):
    """The owning startup's rating of an allocation after it was released; one per allocation, never revised."""

    __tablename__ = "allocation_ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id"), unique=True)
    startup_id: Mapped[int] = mapped_column(sa.ForeignKey("startups.id"), index=True)
    score: Mapped[int] = mapped_column(sa.SmallInteger)
    comment: Mapped[str | None] = mapped_column(sa.String(MAX_RATING_COMMENT))
    rated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (sa.CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),)
