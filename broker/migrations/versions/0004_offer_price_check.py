"""offer price check: the startup never pays more than the list price

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The schemas and the adapters already refuse it; the database now backs the rule too.
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_check_constraint(batch_op.f("ck_offers_unit_price_within_list_price"), "unit_price <= list_price")


def downgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_offers_unit_price_within_list_price"), type_="check")
