"""access details: how the startup uses an allocation, as the carrier's adapter returned it

Revision ID: 0021_access_details
Revises: 0020_inbox_seen
Create Date: 2026-12-06

`allocations.access_details` (JSON, NULL when the carrier said nothing): display-safe fields only
(adapters.base.AccessDetails: endpoint, console URL, region, host, user name, circuit, handover
point, the carrier's instructions); a secret the carrier returns is never stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_access_details"
down_revision = "0020_inbox_seen"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_column("access_details")
