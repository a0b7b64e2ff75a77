"""offer channel and who withdrew it, push receipts, one open appeal per allocation

Each offer remembers the channel that last published it (a full pull withdraws only the pull's
own offers) and, while withdrawn, who withdrew it (a carrier's withdrawal outlives the next
pull). Applied pushes are remembered while their signature is fresh, so a replay is refused.

Existing offers get their channel from the audit log: the latest publication it records
(an API upsert, or a sync whose source it names), else the sync of that carrier that ran when
the offer was created (bulk inserts are not audited one by one), else pull.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CHANNELS = "channel IN ('pull', 'webhook', 'api', 'upload')"
_WITHDRAWERS = "withdrawn_by IN ('carrier', 'sync')"


def upgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=7), nullable=False, server_default="pull"))
        batch_op.add_column(sa.Column("withdrawn_by", sa.String(length=7), nullable=True))

    _backfill_offers()

    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.alter_column("channel", existing_type=sa.String(length=7), server_default=None)
        batch_op.create_check_constraint(batch_op.f("ck_offers_offerchannel"), _CHANNELS)
        batch_op.create_check_constraint(batch_op.f("ck_offers_withdrawnby"), _WITHDRAWERS)
        batch_op.create_check_constraint(
            batch_op.f("ck_offers_withdrawn_by_when_withdrawn"), "(status = 'withdrawn') = (withdrawn_by IS NOT NULL)"
        )

    op.create_table(
        "push_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("push_id", sa.String(length=128), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=False),
        sa.Column("valid_until", sa.DateTime(), nullable=False),
        sa.CheckConstraint("valid_until > signed_at", name=op.f("ck_push_receipts_valid_after_signing")),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_push_receipts_carrier_id_carriers")),
        sa.ForeignKeyConstraint(
            ["sync_id"], ["carrier_syncs.id"], name=op.f("fk_push_receipts_sync_id_carrier_syncs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_receipts")),
        sa.UniqueConstraint("carrier_id", "push_id", name=op.f("uq_push_receipts_carrier_id_push_id")),
    )
    with op.batch_alter_table("push_receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_receipts_sync_id"), ["sync_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_push_receipts_valid_until"), ["valid_until"], unique=False)

    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.create_index(
            "uq_appeals_one_open",
            ["allocation_id"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )


def _backfill_offers() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    sync_id = "a.after ->> 'sync_id'" if postgres else "json_extract(a.after, '$.sync_id')"
    sync_id = f"CAST({sync_id} AS INTEGER)"
    latest_publication = (
        "SELECT max(b.id) FROM audit_log b WHERE b.entity_type = 'offers' AND b.entity_id = offers.id "
        "AND b.action IN ('create', 'update', 'republish', 'sync_update', 'sync_republish')"
    )
    op.execute(
        "UPDATE offers SET channel = COALESCE("
        "(SELECT CASE WHEN a.action IN ('sync_update', 'sync_republish') "
        f"THEN (SELECT s.source FROM carrier_syncs s WHERE s.id = {sync_id}) ELSE 'api' END "
        f"FROM audit_log a WHERE a.id = ({latest_publication})), "
        "(SELECT s.source FROM carrier_syncs s WHERE s.carrier_id = offers.carrier_id AND s.status = 'succeeded' "
        "AND s.started_at <= offers.created_at ORDER BY s.started_at DESC, s.id DESC LIMIT 1), "
        "'pull')"
    )
    latest_withdrawal = (
        "SELECT max(b.id) FROM audit_log b WHERE b.entity_type = 'offers' AND b.entity_id = offers.id "
        "AND b.action IN ('withdraw', 'sync_withdraw')"
    )
    # A withdrawal the log does not explain is taken as the sync's: a pull may put it back, as before.
    op.execute(
        "UPDATE offers SET withdrawn_by = COALESCE("
        "(SELECT CASE WHEN a.action = 'withdraw' THEN 'carrier' ELSE 'sync' END "
        f"FROM audit_log a WHERE a.id = ({latest_withdrawal})), 'sync') "
        "WHERE status = 'withdrawn'"
    )


def downgrade() -> None:
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_appeals_one_open",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    with op.batch_alter_table("push_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_receipts_valid_until"))
        batch_op.drop_index(batch_op.f("ix_push_receipts_sync_id"))
    op.drop_table("push_receipts")

    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_offers_withdrawn_by_when_withdrawn"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_offers_withdrawnby"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_offers_offerchannel"), type_="check")
        batch_op.drop_column("withdrawn_by")
        batch_op.drop_column("channel")
