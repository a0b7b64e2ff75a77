"""email attachments: an outbox email may carry one file (the monthly report's XLSX)

Revision ID: 0025_email_attachments
Revises: 0024_satisfaction
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025_email_attachments"
down_revision = "0024_satisfaction"
branch_labels = None
depends_on = None

WHOLE = ("(attachment IS NULL) = (attachment_name IS NULL) AND (attachment IS NULL) = (attachment_type IS NULL)")


def upgrade() -> None:
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attachment_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("attachment_type", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("attachment", sa.LargeBinary(), nullable=True))
        batch_op.create_check_constraint("attachment_whole", WHOLE)


def downgrade() -> None:
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.drop_constraint("attachment_whole", type_="check")
        batch_op.drop_column("attachment")
        batch_op.drop_column("attachment_type")
        batch_op.drop_column("attachment_name")
