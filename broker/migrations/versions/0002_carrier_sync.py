"""carrier syncs, quarantined records and sync conflicts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carrier_syncs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column(
            "source",
            sa.Enum("pull", "webhook", "upload", name="syncsource", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("running", "succeeded", "failed", name="syncstatus", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("withdrawn", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("(status = 'failed') = (error IS NOT NULL)", name=op.f("ck_carrier_syncs_failed_has_error")),
        sa.CheckConstraint(
            "finished_at IS NULL OR finished_at >= started_at", name=op.f("ck_carrier_syncs_finished_after_start")
        ),
        sa.CheckConstraint(
            "new >= 0 AND changed >= 0 AND unchanged >= 0 AND withdrawn >= 0 AND quarantined >= 0 AND conflicts >= 0",
            name=op.f("ck_carrier_syncs_counts_not_negative"),
        ),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_carrier_syncs_carrier_id_carriers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carrier_syncs")),
    )
    with op.batch_alter_table("carrier_syncs", schema=None) as batch_op:
        batch_op.create_index("ix_carrier_syncs_carrier_started", ["carrier_id", "started_at"], unique=False)

    op.create_table(
        "quarantined_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sync_id"],
            ["carrier_syncs.id"],
            name=op.f("fk_quarantined_records_sync_id_carrier_syncs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_records")),
    )
    with op.batch_alter_table("quarantined_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quarantined_records_sync_id"), ["sync_id"], unique=False)

    op.create_table(
        "sync_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("shrunk", "withdrawn", name="conflictkind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("requested_quantity", sa.BigInteger(), nullable=False),
        sa.Column("kept_quantity", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kept_quantity > requested_quantity", name=op.f("ck_sync_conflicts_kept_above_requested")),
        sa.CheckConstraint("requested_quantity >= 0", name=op.f("ck_sync_conflicts_requested_not_negative")),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"], name=op.f("fk_sync_conflicts_offer_id_offers")),
        sa.ForeignKeyConstraint(
            ["sync_id"], ["carrier_syncs.id"], name=op.f("fk_sync_conflicts_sync_id_carrier_syncs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_conflicts")),
    )
    with op.batch_alter_table("sync_conflicts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_conflicts_offer_id"), ["offer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sync_conflicts_sync_id"), ["sync_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_conflicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_conflicts_sync_id"))
        batch_op.drop_index(batch_op.f("ix_sync_conflicts_offer_id"))

    op.drop_table("sync_conflicts")
    with op.batch_alter_table("quarantined_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantined_records_sync_id"))

    op.drop_table("quarantined_records")
    with op.batch_alter_table("carrier_syncs", schema=None) as batch_op:
        batch_op.drop_index("ix_carrier_syncs_carrier_started")

    op.drop_table("carrier_syncs")
