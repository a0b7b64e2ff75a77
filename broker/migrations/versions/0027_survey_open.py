"""survey open to unregistered firms: respondents by credit code, their confirmed lines

Revision ID: 0027_survey_open
Revises: 0026_use_rollup
Create Date: 2026-12-06

`survey_respondents`: a firm not registered on the broker answering one campaign by its unified
social credit code (one per campaign and code), its lines waiting in `pending_lines` until the
emailed link confirms them. `survey_declarations` gains `respondent_id`: a line is a startup's or
a respondent's, exactly one of the two.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_survey_open"
down_revision = "0026_use_rollup"
branch_labels = None
depends_on = None

SECTORS = ("smart_driving", "energy_management", "smart_healthcare", "ai_models", "industrial_software", "fintech",
           "digital_culture", "ecommerce", "life_sciences", "other")


def upgrade() -> None:
    op.create_table(
        "survey_respondents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("firm_name", sa.String(length=200), nullable=False),
        sa.Column("contact_name", sa.String(length=64), nullable=False),
        sa.Column("contact_email", sa.String(length=254), nullable=False),
        sa.Column("sector", sa.Enum(*SECTORS, name="sector", native_enum=False, create_constraint=True, length=19),
                  nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("pending_lines", sa.JSON(), nullable=True),
        sa.Column("pending_since", sa.DateTime(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("startup_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("length(uscc) = 18", name=op.f("ck_survey_respondents_uscc_length")),
        sa.CheckConstraint("(pending_lines IS NULL) = (pending_since IS NULL)",
                           name=op.f("ck_survey_respondents_pending_has_time")),
        sa.ForeignKeyConstraint(["campaign_id"], ["survey_campaigns.id"],
                                name=op.f("fk_survey_respondents_campaign_id_survey_campaigns")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_survey_respondents_startup_id_startups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_respondents")),
        sa.UniqueConstraint("campaign_id", "uscc", name=op.f("uq_survey_respondents_campaign_id_uscc")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_survey_respondents_token_hash")),
    )
    with op.batch_alter_table("survey_declarations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("respondent_id", sa.Integer(), nullable=True))
        batch_op.alter_column("startup_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(batch_op.f("fk_survey_declarations_respondent_id_survey_respondents"),
                                    "survey_respondents", ["respondent_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_survey_declarations_respondent_id"), ["respondent_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_survey_declarations_campaign_id_respondent_id_kind_region_month"),
            ["campaign_id", "respondent_id", "kind", "region", "month"])
        batch_op.create_check_constraint(batch_op.f("ck_survey_declarations_one_declarant"),
                                         "(startup_id IS NULL) <> (respondent_id IS NULL)")


def downgrade() -> None:
    # A respondent's lines have no startup to keep them: they go with the respondents.
    op.execute("DELETE FROM survey_declarations WHERE respondent_id IS NOT NULL")
    with op.batch_alter_table("survey_declarations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_survey_declarations_one_declarant"), type_="check")
        batch_op.drop_constraint(batch_op.f("uq_survey_declarations_campaign_id_respondent_id_kind_region_month"),
                                 type_="unique")
        batch_op.drop_index(batch_op.f("ix_survey_declarations_respondent_id"))
        batch_op.drop_constraint(batch_op.f("fk_survey_declarations_respondent_id_survey_respondents"),
                                 type_="foreignkey")
        batch_op.alter_column("startup_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("respondent_id")
    op.drop_table("survey_respondents")
