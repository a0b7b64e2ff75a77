"""startup review: rejected and removed registrations, who decided and why; one holder per code

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_STATUSES = ("pending", "verified", "suspended")
NEW_STATUSES = (*OLD_STATUSES, "rejected", "removed")
TURNED_AWAY = "'rejected', 'removed'"


def _status_type(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="startupstatus", native_enum=False, create_constraint=True, length=9)


def upgrade() -> None:
    with op.batch_alter_table("startups", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=_status_type(OLD_STATUSES), type_=_status_type(NEW_STATUSES),
                              existing_nullable=False)
        batch_op.add_column(sa.Column("reviewed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("rejection_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_startups_reviewed_by_id_accounts"), "accounts", ["reviewed_by_id"], ["id"]
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_startups_turned_away_has_reason"),
            f"(status IN ({TURNED_AWAY})) = (rejection_reason IS NOT NULL)",
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_startups_turned_away_has_review_time"), "rejection_reason IS NULL OR reviewed_at IS NOT NULL"
        )
        # A code is held by one registration; rejected and removed ones keep theirs beside it.
        batch_op.drop_constraint(batch_op.f("uq_startups_uscc"), type_="unique")
    op.create_index(
        "uq_startups_uscc_holder", "startups", ["uscc"], unique=True,
        sqlite_where=sa.text(f"status NOT IN ({TURNED_AWAY})"),
        postgresql_where=sa.text(f"status NOT IN ({TURNED_AWAY})"),
    )


def downgrade() -> None:
    # Refuses (unique violation) while a code has a turned-away registration beside its holder.
    op.drop_index("uq_startups_uscc_holder", table_name="startups")
    with op.batch_alter_table("startups", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_startups_uscc"), ["uscc"])
        batch_op.drop_constraint(batch_op.f("ck_startups_turned_away_has_review_time"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_startups_turned_away_has_reason"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_startups_reviewed_by_id_accounts"), type_="foreignkey")
        batch_op.drop_column("rejection_reason")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by_id")
        batch_op.alter_column("status", existing_type=_status_type(NEW_STATUSES), type_=_status_type(OLD_STATUSES),
                              existing_nullable=False)
