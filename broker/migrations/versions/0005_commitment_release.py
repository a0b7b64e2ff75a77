"""commitment release: an allocation ended before use gives its unused subsidy back

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_STATUSES = ["proposed", "approved", "provisioning", "active", "released", "rejected", "lapsed"]


def _status_check(statuses: list[str]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    with op.batch_alter_table("subsidy_commitments", schema=None) as batch_op:
        # Existing commitments released nothing; the default only fills them in.
        batch_op.add_column(sa.Column("released", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("released_at", sa.DateTime(), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_subsidy_commitments_released_within_amount"), "released >= 0 AND redeemed + released <= amount"
        )
    with op.batch_alter_table("subsidy_commitments", schema=None) as batch_op:
        batch_op.alter_column("released", server_default=None, existing_type=sa.BigInteger(), existing_nullable=False)

    # An approved allocation that ends before use is now `cancelled`, not `released`.
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_allocations_allocationstatus"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_allocations_allocationstatus"), _status_check([*_STATUSES, "cancelled"])
        )


def downgrade() -> None:
    op.execute("UPDATE allocations SET status = 'released' WHERE status = 'cancelled'")
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_allocations_allocationstatus"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_allocations_allocationstatus"), _status_check(_STATUSES))
    with op.batch_alter_table("subsidy_commitments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_subsidy_commitments_released_within_amount"), type_="check")
        batch_op.drop_column("released_at")
        batch_op.drop_column("released")
