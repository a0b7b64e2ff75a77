"""public notice (公示): batches of awards on notice over working days, their frozen public list,
and the objections lodged against them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=max(map(len, values)))


def upgrade() -> None:
    op.create_table(
        "subsidy_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=True),
        sa.Column("fiscal_year", sa.Integer(), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("working_days", sa.Integer(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("status", _enum("noticestatus", "open", "final"), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finalised_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("working_days BETWEEN 1 AND 60", name=op.f("ck_subsidy_notices_working_days_range")),
        sa.CheckConstraint("starts_on <= ends_on", name=op.f("ck_subsidy_notices_period_ordered")),
        sa.CheckConstraint("(status = 'final') = (finalised_at IS NOT NULL)", name=op.f("ck_subsidy_notices_final_has_time")),
        sa.ForeignKeyConstraint(["created_by"], ["accounts.id"], name=op.f("fk_subsidy_notices_created_by_accounts")),
        sa.ForeignKeyConstraint(["program_id"], ["subsidy_programs.id"], name=op.f("fk_subsidy_notices_program_id_subsidy_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_notices")),
    )
    op.create_index(op.f("ix_subsidy_notices_program_id"), "subsidy_notices", ["program_id"], unique=False)
    op.create_table(
        "subsidy_notice_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("award_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("startup_name", sa.String(length=200), nullable=False),
        sa.Column("program_name", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_subsidy_notice_items_amount_positive")),
        sa.ForeignKeyConstraint(["award_id"], ["subsidy_awards.id"], name=op.f("fk_subsidy_notice_items_award_id_subsidy_awards")),
        sa.ForeignKeyConstraint(["notice_id"], ["subsidy_notices.id"], name=op.f("fk_subsidy_notice_items_notice_id_subsidy_notices")),
        sa.ForeignKeyConstraint(["program_id"], ["subsidy_programs.id"],
                                name=op.f("fk_subsidy_notice_items_program_id_subsidy_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_notice_items")),
        sa.UniqueConstraint("award_id", name=op.f("uq_subsidy_notice_items_award_id")),
    )
    op.create_index(op.f("ix_subsidy_notice_items_notice_id"), "subsidy_notice_items", ["notice_id"], unique=False)
    op.create_table(
        "subsidy_objections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("lodged_at", sa.DateTime(), nullable=False),
        sa.Column("status", _enum("objectionstatus", "open", "upheld", "dismissed"), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("(status = 'open') = (answer IS NULL AND answered_by IS NULL AND answered_at IS NULL)",
                           name=op.f("ck_subsidy_objections_answered_when_decided")),
        sa.CheckConstraint("status <> 'upheld' OR item_id IS NOT NULL", name=op.f("ck_subsidy_objections_upheld_names_item")),
        sa.CheckConstraint("length(text) BETWEEN 1 AND 2000", name=op.f("ck_subsidy_objections_text_length")),
        sa.ForeignKeyConstraint(["answered_by"], ["accounts.id"], name=op.f("fk_subsidy_objections_answered_by_accounts")),
        sa.ForeignKeyConstraint(["item_id"], ["subsidy_notice_items.id"],
                                name=op.f("fk_subsidy_objections_item_id_subsidy_notice_items")),
        sa.ForeignKeyConstraint(["notice_id"], ["subsidy_notices.id"], name=op.f("fk_subsidy_objections_notice_id_subsidy_notices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_objections")),
    )
    op.create_index(op.f("ix_subsidy_objections_notice_id"), "subsidy_objections", ["notice_id"], unique=False)
    op.create_index(op.f("ix_subsidy_objections_item_id"), "subsidy_objections", ["item_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_subsidy_objections_item_id"), table_name="subsidy_objections")
    op.drop_index(op.f("ix_subsidy_objections_notice_id"), table_name="subsidy_objections")
    op.drop_table("subsidy_objections")
    op.drop_index(op.f("ix_subsidy_notice_items_notice_id"), table_name="subsidy_notice_items")
    op.drop_table("subsidy_notice_items")
    op.drop_index(op.f("ix_subsidy_notices_program_id"), table_name="subsidy_notices")
    op.drop_table("subsidy_notices")
