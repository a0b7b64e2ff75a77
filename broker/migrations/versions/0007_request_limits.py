"""request limits: the policy's maximum quantity per request of each kind, and the encoding an
uploaded CSV catalog was read in

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Saved policies name no maximum: every kind keeps its default until staff set one.
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_request_quantity", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table("carrier_syncs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("encoding", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("carrier_syncs", schema=None) as batch_op:
        batch_op.drop_column("encoding")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_column("max_request_quantity")
