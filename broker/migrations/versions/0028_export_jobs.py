"""export jobs: report exports run in the background (后台导出)

Revision ID: 0028_export_jobs
Revises: 0027_survey_open
Create Date: 2026-12-06

One row per export a staff person asked for: the report's key and filters, the format, its status
(queued → running → ready or failed; ready → expired when the `run_exports` job deletes its file),
the file under the instance folder, its rows and size.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028_export_jobs"
down_revision = "0027_survey_open"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("report", sa.String(length=40), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("status", sa.Enum("queued", "running", "ready", "failed", "expired", name="exportstatus",
                                    native_enum=False, create_constraint=True, length=7), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=200), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("format IN ('csv', 'xlsx')", name=op.f("ck_export_jobs_known_format")),
        sa.CheckConstraint("(status = 'ready') = (path IS NOT NULL)", name=op.f("ck_export_jobs_ready_has_file")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_export_jobs_person_id_people")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_export_jobs_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_jobs")),
    )
    op.create_index("ix_export_jobs_person_id_created_at", "export_jobs", ["person_id", "created_at"], unique=False)
    op.create_index("ix_export_jobs_status", "export_jobs", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_export_jobs_status", table_name="export_jobs")
    op.drop_index("ix_export_jobs_person_id_created_at", table_name="export_jobs")
    op.drop_table("export_jobs")
