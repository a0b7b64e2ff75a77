"""token expiry and acting staff: tokens may expire and record who minted them; the audit log
names the staff member acting through a token minted for another account

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("issued_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_issued_by_id_accounts"), "accounts", ["issued_by_id"], ["id"]
        )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acting_staff_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_audit_log_acting_staff_id_accounts"), "accounts", ["acting_staff_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_audit_log_acting_staff_id"), ["acting_staff_id"], unique=False)
    _restore_append_only_on_sqlite()


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_acting_staff_id"))
        batch_op.drop_constraint(batch_op.f("fk_audit_log_acting_staff_id_accounts"), type_="foreignkey")
        batch_op.drop_column("acting_staff_id")
    _restore_append_only_on_sqlite()
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_tokens_issued_by_id_accounts"), type_="foreignkey")
        batch_op.drop_column("issued_by_id")
        batch_op.drop_column("expires_at")


def _restore_append_only_on_sqlite() -> None:
    # Batch mode rebuilds audit_log on SQLite (a new table, copied, renamed), and the triggers
    # of 0001 that refuse UPDATE and DELETE go with the old table: put them back. PostgreSQL
    # alters the table in place and keeps its trigger.
    if op.get_bind().dialect.name != "sqlite":
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )
