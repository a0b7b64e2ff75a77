"""use rollup: the utilisation report's per-allocation rollup, rebuilt by the scheduler

Revision ID: 0026_use_rollup
Revises: 0025_email_attachments
Create Date: 2026-12-06

Report 4 (utilisation) summed every usage report of every granted allocation on each request:
5.7 million usage rows at district scale, seconds per page. `allocation_use` holds one row per
granted allocation with its allocated, used and used-by-mid-window quantities, rebuilt whole by the
`refresh_rollups` job; `report_rollups` records when, so the page shows how fresh it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026_use_rollup"
down_revision = "0025_email_attachments"
branch_labels = None
depends_on = None

STATUSES = ("proposed", "approved", "provisioning", "active", "rejected", "lapsed", "released", "cancelled")


def upgrade() -> None:
    op.create_table(
        "report_rollups",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_report_rollups")),
    )
    op.create_table(
        "allocation_use",
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Enum(*STATUSES, name="allocationstatus", native_enum=False, create_constraint=True,
                                    length=12), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("startup_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("middle_day", sa.Date(), nullable=False),
        sa.Column("allocated", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("used_by_middle", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["allocation_id"], ["allocations.id"], name=op.f("fk_allocation_use_allocation_id_allocations")),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_allocation_use_carrier_id_carriers")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_allocation_use_startup_id_startups")),
        sa.PrimaryKeyConstraint("allocation_id", name=op.f("pk_allocation_use")),
    )
    op.create_index("ix_allocation_use_window", "allocation_use", ["window_start", "window_end"])


def downgrade() -> None:
    op.drop_index("ix_allocation_use_window", table_name="allocation_use")
    op.drop_table("allocation_use")
    op.drop_table("report_rollups")
