"""appeal threads: messages between the startup and the district, assignment to a staff person,
closing; each appeal's message and answer become its first messages

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _status_check(statuses: list[str]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    op.create_table(
        "appeal_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column(
            "author_side",
            sa.Enum("district", "startup", name="appealside", native_enum=False, create_constraint=True, length=8),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_appeal_messages_appeal_id_appeals")),
        sa.ForeignKeyConstraint(["author_id"], ["accounts.id"], name=op.f("fk_appeal_messages_author_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeal_messages")),
    )
    with op.batch_alter_table("appeal_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appeal_messages_appeal_id"), ["appeal_id"], unique=False)

    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assigned_to_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("closed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("waiting_since", sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_appeals_assigned_to_id_people"), "people", ["assigned_to_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_appeals_closed_by_id_accounts"), "accounts", ["closed_by_id"], ["id"])
        batch_op.drop_constraint(batch_op.f("ck_appeals_appealstatus"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_appeals_appealstatus"), _status_check(["open", "answered", "closed"])
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_appeals_closed_has_time"), "(status = 'closed') = (closed_at IS NOT NULL)"
        )

    _move_messages()

    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.alter_column("waiting_since", existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index(batch_op.f("ix_appeals_assigned_to_id"), ["assigned_to_id"], unique=False)
        batch_op.create_index("ix_appeals_status_waiting_since", ["status", "waiting_since"], unique=False)


def _move_messages() -> None:
    """Each appeal's message becomes the startup's first message (written by the startup's
    earliest account, the one its registration made), and an answer the district's reply."""
    author = (
        "(SELECT MIN(accounts.id) FROM accounts WHERE accounts.startup_id = appeals.startup_id)"
    )
    op.execute(
        "INSERT INTO appeal_messages (appeal_id, author_id, author_side, body, created_at) "
        f"SELECT id, {author}, 'startup', message, created_at FROM appeals ORDER BY id"
    )
    op.execute(
        "INSERT INTO appeal_messages (appeal_id, author_id, author_side, body, created_at) "
        "SELECT id, answered_by_id, 'district', answer, answered_at FROM appeals "
        "WHERE answer IS NOT NULL AND answered_by_id IS NOT NULL AND answered_at IS NOT NULL ORDER BY id"
    )
    op.execute("UPDATE appeals SET waiting_since = COALESCE(answered_at, created_at)")


def downgrade() -> None:
    # Before threads, an appeal no longer waiting was `answered`: a closed one becomes that (not
    # `open`, which another open appeal of its allocation may hold). The messages beyond each
    # appeal's first and its latest answer are lost with the table.
    op.execute("UPDATE appeals SET status = 'answered', closed_at = NULL WHERE status = 'closed'")
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index("ix_appeals_status_waiting_since")
        batch_op.drop_index(batch_op.f("ix_appeals_assigned_to_id"))
        batch_op.drop_constraint(batch_op.f("ck_appeals_closed_has_time"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_appeals_appealstatus"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_appeals_appealstatus"), _status_check(["open", "answered"]))
        batch_op.drop_constraint(batch_op.f("fk_appeals_closed_by_id_accounts"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_appeals_assigned_to_id_people"), type_="foreignkey")
        batch_op.drop_column("waiting_since")
        batch_op.drop_column("closed_by_id")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("assigned_to_id")
    with op.batch_alter_table("appeal_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appeal_messages_appeal_id"))
    op.drop_table("appeal_messages")
