"""pledges: what each carrier pledges to the district per period and kind (运营商承诺资源)

Revision ID: 0023_pledges
Revises: 0022_demand_survey
Create Date: 2026-12-06

One row per (carrier, period label, kind): quantity in the kind's unit (thousandths), terms free or
discounted at a unit price (fen) or a discount rate (ten-thousandths), a note, who recorded it.
Revising replaces the figures in place; the audit log keeps the old ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_pledges"
down_revision = "0022_demand_survey"
branch_labels = None
depends_on = None

KINDS = ("gpu", "cpu", "data_line", "cloud_vm", "storage", "tokens")


def upgrade() -> None:
    op.create_table(
        "pledges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("kind", sa.Enum(*KINDS, name="kind", native_enum=False, create_constraint=True, length=16),
                  nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("terms", sa.Enum("free", "discounted", name="pledgeterms", native_enum=False, create_constraint=True),
                  nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=True),
        sa.Column("discount_rate", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "(terms = 'free' AND unit_price IS NULL AND discount_rate IS NULL) OR "
            "(terms = 'discounted' AND (unit_price IS NULL) <> (discount_rate IS NULL))",
            name=op.f("ck_pledges_terms_priced"),
        ),
        sa.CheckConstraint("discount_rate IS NULL OR (discount_rate > 0 AND discount_rate < 10000)",
                           name=op.f("ck_pledges_discount_rate_in_range")),
        sa.CheckConstraint("first_day <= last_day", name=op.f("ck_pledges_days_ordered")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_pledges_quantity_positive")),
        sa.CheckConstraint("unit_price IS NULL OR unit_price >= 0", name=op.f("ck_pledges_unit_price_not_negative")),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_pledges_carrier_id_carriers")),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["accounts.id"], name=op.f("fk_pledges_recorded_by_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pledges")),
        sa.UniqueConstraint("carrier_id", "period", "kind", name=op.f("uq_pledges_carrier_id_period_kind")),
    )
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.create_index("ix_pledges_period_kind", ["period", "kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.drop_index("ix_pledges_period_kind")
    op.drop_table("pledges")
