"""subsidy evidence: one row per uploaded piece (award, type, the stored file's key, SHA-256, size,
sniffed content type and name, who uploaded it for which side) and its staff review

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=max(map(len, values)))


def upgrade() -> None:
    op.create_table(
        "subsidy_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("award_id", sa.Integer(), nullable=False),
        sa.Column("type", _enum("evidencetype", "contract", "invoice", "payment", "usage_statement"), nullable=False),
        sa.Column("storage_key", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=False),
        sa.Column("side", _enum("evidenceside", "startup", "carrier"), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("status", _enum("evidencestatus", "pending", "verified", "rejected"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("size > 0", name=op.f("ck_subsidy_evidence_size_positive")),
        sa.CheckConstraint(
            "(status = 'pending' AND reviewed_by_id IS NULL AND reviewed_at IS NULL AND reason IS NULL)"
            " OR (status = 'verified' AND reviewed_by_id IS NOT NULL AND reviewed_at IS NOT NULL AND reason IS NULL)"
            " OR (status = 'rejected' AND reviewed_by_id IS NOT NULL AND reviewed_at IS NOT NULL AND reason IS NOT NULL)",
            name=op.f("ck_subsidy_evidence_review_complete"),
        ),
        sa.ForeignKeyConstraint(["award_id"], ["subsidy_awards.id"], name=op.f("fk_subsidy_evidence_award_id_subsidy_awards")),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["accounts.id"], name=op.f("fk_subsidy_evidence_uploaded_by_id_accounts")),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["accounts.id"], name=op.f("fk_subsidy_evidence_reviewed_by_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_evidence")),
    )
    op.create_index(op.f("ix_subsidy_evidence_award_id"), "subsidy_evidence", ["award_id"], unique=False)
    op.create_index(op.f("ix_subsidy_evidence_sha256"), "subsidy_evidence", ["sha256"], unique=False)
    op.create_index("ix_subsidy_evidence_award_type", "subsidy_evidence", ["award_id", "type"], unique=False)


def downgrade() -> None:
    # The rows go; the stored files stay in the evidence store (content-addressed, shared by rows).
    op.drop_index("ix_subsidy_evidence_award_type", table_name="subsidy_evidence")
    op.drop_index(op.f("ix_subsidy_evidence_sha256"), table_name="subsidy_evidence")
    op.drop_index(op.f("ix_subsidy_evidence_award_id"), table_name="subsidy_evidence")
    op.drop_table("subsidy_evidence")
