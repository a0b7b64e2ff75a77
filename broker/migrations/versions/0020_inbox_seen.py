"""inbox seen: how far each person has read their company's in-app inbox

Revision ID: 0020_inbox_seen
Revises: 0019_notifications

`people.inbox_seen_event_id` is the newest event id the person has seen in the inbox (/inbox);
a company's event with a higher id is unread for them. NULL: nothing read yet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_inbox_seen"
down_revision = "0019_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inbox_seen_event_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("inbox_seen_event_id")
