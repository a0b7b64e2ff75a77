"""satisfaction: a startup's one rating of each completed allocation (满意度)

Revision ID: 0024_satisfaction
Revises: 0023_pledges
Create Date: 2026-12-06

One row per allocation, given by its startup after it was released: a score 1–5 and an optional
comment of at most 300 characters. The performance-evaluation pack (绩效自评) reports them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_satisfaction"
down_revision = "0023_pledges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "allocation_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("startup_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.String(length=300), nullable=True),
        sa.Column("rated_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name=op.f("ck_allocation_ratings_score_range")),
        sa.ForeignKeyConstraint(["allocation_id"], ["allocations.id"],
                                name=op.f("fk_allocation_ratings_allocation_id_allocations")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_allocation_ratings_startup_id_startups")),
        sa.ForeignKeyConstraint(["rated_by_id"], ["accounts.id"], name=op.f("fk_allocation_ratings_rated_by_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_ratings")),
        sa.UniqueConstraint("allocation_id", name=op.f("uq_allocation_ratings_allocation_id")),
    )
    with op.batch_alter_table("allocation_ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allocation_ratings_startup_id"), ["startup_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_allocation_ratings_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("allocation_ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allocation_ratings_created_at"))
        batch_op.drop_index(batch_op.f("ix_allocation_ratings_startup_id"))
    op.drop_table("allocation_ratings")
