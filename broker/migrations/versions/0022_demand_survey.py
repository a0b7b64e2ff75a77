"""demand survey: campaigns staff open for a period, and the startups' declared demand lines

Revision ID: 0022_demand_survey
Revises: 0021_access_details
Create Date: 2026-12-06

`survey_campaigns` (a period, its dates in Asia/Shanghai and the kinds it covers; its status is
derived from the dates) and `survey_declarations` (one line per campaign, startup, kind, region and
month: a revision replaces the line).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022_demand_survey"
down_revision = "0021_access_details"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "survey_campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("opens_on", sa.Date(), nullable=False),
        sa.Column("closes_on", sa.Date(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("allow_unregistered", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("reminded_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("opens_on <= closes_on", name=op.f("ck_survey_campaigns_dates_ordered")),
        sa.ForeignKeyConstraint(["created_by"], ["accounts.id"], name=op.f("fk_survey_campaigns_created_by_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_campaigns")),
    )
    op.create_table(
        "survey_declarations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("startup_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("max_unit_price", sa.BigInteger(), nullable=True),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_survey_declarations_quantity_positive")),
        sa.CheckConstraint("max_unit_price IS NULL OR max_unit_price >= 0",
                           name=op.f("ck_survey_declarations_price_not_negative")),
        sa.ForeignKeyConstraint(["campaign_id"], ["survey_campaigns.id"],
                                name=op.f("fk_survey_declarations_campaign_id_survey_campaigns")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_survey_declarations_startup_id_startups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_declarations")),
        sa.UniqueConstraint("campaign_id", "startup_id", "kind", "region", "month",
                            name=op.f("uq_survey_declarations_campaign_id_startup_id_kind_region_month")),
    )
    op.create_index(op.f("ix_survey_declarations_startup_id"), "survey_declarations", ["startup_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_survey_declarations_startup_id"), table_name="survey_declarations")
    op.drop_table("survey_declarations")
    op.drop_table("survey_campaigns")
