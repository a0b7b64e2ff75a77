"""Rollups the district reports read instead of millions of rows (docs/reports.md, "Speed").

A rollup is rebuilt whole by the scheduler's `refresh_rollups` job, in one transaction, from the
rows it summarises; `report_rollups` says when each was last rebuilt, and the report's page shows
it (数据截至 …). Nothing else writes them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from broker.db import Base, Quantity
from broker.models.enums import AllocationStatus, enum_column_type


class Rollup(Base):
    """When a rollup was last rebuilt, how many rows it has and how long it took."""

    __tablename__ = "report_rollups"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    refreshed_at: Mapped[dt.datetime]
    rows: Mapped[int]
    seconds: Mapped[float] = mapped_column(sa.Float())


class UseRollup(Base):
    """The utilisation report's rollup: one row per granted allocation (approved, provisioning, active
    or released when it was rebuilt), with what it was granted and what the carrier reported used, in
    the kind's unit (line-days for a data line), in all and before the middle day of its window."""

    __tablename__ = "allocation_use"

    allocation_id: Mapped[int] = mapped_column(sa.ForeignKey("allocations.id"), primary_key=True)
    status: Mapped[AllocationStatus] = mapped_column(enum_column_type(AllocationStatus))
    kind: Mapped[str] = mapped_column(sa.String(32))
    model: Mapped[str | None] = mapped_column(sa.String(64))  # tokens: the offer's model
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    startup_id: Mapped[int] = mapped_column(sa.ForeignKey("startups.id"))
    window_start: Mapped[dt.date]
    window_end: Mapped[dt.date]  # inclusive, Asia/Shanghai
    middle_day: Mapped[dt.date]
    allocated: Mapped[Decimal] = mapped_column(Quantity())
    used: Mapped[Decimal] = mapped_column(Quantity())
    used_by_middle: Mapped[Decimal] = mapped_column(Quantity())

    __table_args__ = (sa.Index("ix_allocation_use_window", "window_start", "window_end"),)
