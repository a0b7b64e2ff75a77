"""settlement: statements per program and period with their frozen lines (four-eyes approval, the
disbursement reference), and the bans a clawback imposes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=max(map(len, values)))


_STATEMENT_STATUSES = ("draft", "approved", "written_off")
_CLAIMANTS = ("startup", "carrier")
_NOTICE_STATES = ("not_noticed", "in_notice", "final", "removed")
_CLAWBACK_REASONS = ("false_evidence", "related_party", "non_use", "double_subsidy")


def upgrade() -> None:
    op.create_table(
        "settlement_statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("status", _enum("statementstatus", *_STATEMENT_STATUSES), nullable=False),
        sa.Column("total_payable", sa.BigInteger(), nullable=False),
        sa.Column("approvals_needed", sa.Integer(), nullable=False),
        sa.Column("built_by_id", sa.Integer(), nullable=True),
        sa.Column("built_at", sa.DateTime(), nullable=False),
        sa.Column("first_approved_by_id", sa.Integer(), nullable=True),
        sa.Column("first_approved_at", sa.DateTime(), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", sa.DateTime(), nullable=True),
        sa.Column("disbursement_reference", sa.String(length=100), nullable=True),
        sa.CheckConstraint("total_payable >= 0", name=op.f("ck_settlement_statements_total_not_negative")),
        sa.CheckConstraint("approvals_needed IN (1, 2)", name=op.f("ck_settlement_statements_approvals_one_or_two")),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_settlement_statements_period_ordered")),
        sa.CheckConstraint("status = 'draft' OR (approved_by_id IS NOT NULL AND disbursement_reference IS NOT NULL)",
                           name=op.f("ck_settlement_statements_approved_documented")),
        sa.ForeignKeyConstraint(["program_id"], ["subsidy_programs.id"],
                                name=op.f("fk_settlement_statements_program_id_subsidy_programs")),
        sa.ForeignKeyConstraint(["built_by_id"], ["accounts.id"], name=op.f("fk_settlement_statements_built_by_id_accounts")),
        sa.ForeignKeyConstraint(["first_approved_by_id"], ["accounts.id"],
                                name=op.f("fk_settlement_statements_first_approved_by_id_accounts")),
        sa.ForeignKeyConstraint(["approved_by_id"], ["accounts.id"], name=op.f("fk_settlement_statements_approved_by_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_statements")),
        sa.UniqueConstraint("program_id", "period", name=op.f("uq_settlement_statements_program_id_period")),
    )
    op.create_index(op.f("ix_settlement_statements_program_id"), "settlement_statements", ["program_id"], unique=False)

    op.create_table(
        "settlement_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("award_id", sa.Integer(), nullable=False),
        sa.Column("payee_kind", _enum("claimant", *_CLAIMANTS), nullable=False),
        sa.Column("payee_startup_id", sa.Integer(), nullable=True),
        sa.Column("payee_carrier_id", sa.Integer(), nullable=True),
        sa.Column("payee_name", sa.String(length=200), nullable=False),
        sa.Column("committed", sa.BigInteger(), nullable=False),
        sa.Column("redeemed_before", sa.BigInteger(), nullable=False),
        sa.Column("redeemed_in_period", sa.BigInteger(), nullable=False),
        sa.Column("written_off_before", sa.BigInteger(), nullable=False),
        sa.Column("outstanding", sa.BigInteger(), nullable=False),
        sa.Column("evidence", sa.String(length=16), nullable=False),
        sa.Column("notice_state", _enum("noticestate", *_NOTICE_STATES), nullable=False),
        sa.Column("payable", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.String(length=300), nullable=True),
        sa.CheckConstraint("payable >= 0", name=op.f("ck_settlement_lines_payable_not_negative")),
        sa.CheckConstraint("(payee_kind = 'startup' AND payee_startup_id IS NOT NULL) OR "
                           "(payee_kind = 'carrier' AND payee_carrier_id IS NOT NULL)",
                           name=op.f("ck_settlement_lines_payee_named")),
        sa.ForeignKeyConstraint(["statement_id"], ["settlement_statements.id"],
                                name=op.f("fk_settlement_lines_statement_id_settlement_statements")),
        sa.ForeignKeyConstraint(["award_id"], ["subsidy_awards.id"], name=op.f("fk_settlement_lines_award_id_subsidy_awards")),
        sa.ForeignKeyConstraint(["payee_startup_id"], ["startups.id"], name=op.f("fk_settlement_lines_payee_startup_id_startups")),
        sa.ForeignKeyConstraint(["payee_carrier_id"], ["carriers.id"], name=op.f("fk_settlement_lines_payee_carrier_id_carriers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_lines")),
        sa.UniqueConstraint("statement_id", "award_id", name=op.f("uq_settlement_lines_statement_id_award_id")),
    )
    for column in ("statement_id", "award_id", "payee_startup_id", "payee_carrier_id"):
        op.create_index(op.f(f"ix_settlement_lines_{column}"), "settlement_lines", [column], unique=False)

    op.create_table(
        "subsidy_bans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("startup_id", sa.Integer(), nullable=False),
        sa.Column("award_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("reason", _enum("clawbackreason", *_CLAWBACK_REASONS), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["subsidy_programs.id"], name=op.f("fk_subsidy_bans_program_id_subsidy_programs")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_subsidy_bans_startup_id_startups")),
        sa.ForeignKeyConstraint(["award_id"], ["subsidy_awards.id"], name=op.f("fk_subsidy_bans_award_id_subsidy_awards")),
        sa.ForeignKeyConstraint(["actor_id"], ["accounts.id"], name=op.f("fk_subsidy_bans_actor_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_bans")),
        sa.UniqueConstraint("award_id", name=op.f("uq_subsidy_bans_award_id")),
    )
    for column in ("program_id", "startup_id"):
        op.create_index(op.f(f"ix_subsidy_bans_{column}"), "subsidy_bans", [column], unique=False)


def downgrade() -> None:
    for column in ("program_id", "startup_id"):
        op.drop_index(op.f(f"ix_subsidy_bans_{column}"), table_name="subsidy_bans")
    op.drop_table("subsidy_bans")
    for column in ("statement_id", "award_id", "payee_startup_id", "payee_carrier_id"):
        op.drop_index(op.f(f"ix_settlement_lines_{column}"), table_name="settlement_lines")
    op.drop_table("settlement_lines")
    op.drop_index(op.f("ix_settlement_statements_program_id"), table_name="settlement_statements")
    op.drop_table("settlement_statements")
