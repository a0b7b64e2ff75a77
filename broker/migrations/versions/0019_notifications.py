"""notifications: each person's email language and preferences, and a dedupe key and headers on
outbox emails (an event reaches a person by email at most once)

Revision ID: 0019_notifications
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_notifications"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), server_default="zh_CN", nullable=False))
        batch_op.add_column(sa.Column("email_off", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("email_muted", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.create_check_constraint("language_known", "language IN ('zh_CN', 'en')")
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("headers", sa.JSON(), nullable=True))
        batch_op.create_unique_constraint("uq_outbox_emails_dedupe_key", ["dedupe_key"])


def downgrade() -> None:
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.drop_constraint("uq_outbox_emails_dedupe_key", type_="unique")
        batch_op.drop_column("headers")
        batch_op.drop_column("dedupe_key")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_constraint("language_known", type_="check")
        batch_op.drop_column("email_muted")
        batch_op.drop_column("email_off")
        batch_op.drop_column("language")
