"""related parties and other public subsidies: what startups and carriers declare (shareholders
and affiliates by unified social credit code, other subsidies held for a contract), a carrier's
own code, and a program's exclusion rule for other subsidies (e.g. 未获得其他市级算力补贴)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("carriers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uscc", sa.String(length=18), nullable=True))
        batch_op.create_check_constraint(batch_op.f("ck_carriers_uscc_length"), "uscc IS NULL OR length(uscc) = 18")
    with op.batch_alter_table("subsidy_programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("excludes_subsidy_levels", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("excludes_subsidy_kinds", sa.JSON(), nullable=True))

    op.create_table(
        "related_parties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("startup_id", sa.Integer(), nullable=True),
        sa.Column("carrier_id", sa.Integer(), nullable=True),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("relation", sa.Enum("shareholder", "affiliate", name="relation", native_enum=False,
                                      create_constraint=True, length=11), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("(startup_id IS NULL) <> (carrier_id IS NULL)", name=op.f("ck_related_parties_one_declarant")),
        sa.CheckConstraint("length(uscc) = 18", name=op.f("ck_related_parties_uscc_length")),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_related_parties_carrier_id_carriers")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_related_parties_startup_id_startups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_related_parties")),
    )
    op.create_index(op.f("ix_related_parties_startup_id"), "related_parties", ["startup_id"])
    op.create_index(op.f("ix_related_parties_carrier_id"), "related_parties", ["carrier_id"])
    op.create_index(op.f("ix_related_parties_uscc"), "related_parties", ["uscc"])
    op.create_index("uq_related_parties_startup_uscc", "related_parties", ["startup_id", "uscc"], unique=True,
                    sqlite_where=sa.text("startup_id IS NOT NULL"), postgresql_where=sa.text("startup_id IS NOT NULL"))
    op.create_index("uq_related_parties_carrier_uscc", "related_parties", ["carrier_id", "uscc"], unique=True,
                    sqlite_where=sa.text("carrier_id IS NOT NULL"), postgresql_where=sa.text("carrier_id IS NOT NULL"))

    op.create_table(
        "other_subsidies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("startup_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Enum("national", "city", "district", name="subsidylevel", native_enum=False,
                                   create_constraint=True, length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("granting_body", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=True),
        sa.Column("carrier_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_other_subsidies_amount_positive")),
        sa.CheckConstraint(
            "(allocation_id IS NOT NULL AND carrier_id IS NULL AND kind IS NULL) OR "
            "(allocation_id IS NULL AND carrier_id IS NOT NULL AND kind IS NOT NULL)",
            name=op.f("ck_other_subsidies_one_contract"),
        ),
        sa.ForeignKeyConstraint(["allocation_id"], ["allocations.id"], name=op.f("fk_other_subsidies_allocation_id_allocations")),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_other_subsidies_carrier_id_carriers")),
        sa.ForeignKeyConstraint(["startup_id"], ["startups.id"], name=op.f("fk_other_subsidies_startup_id_startups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_other_subsidies")),
    )
    op.create_index(op.f("ix_other_subsidies_startup_id"), "other_subsidies", ["startup_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_other_subsidies_startup_id"), table_name="other_subsidies")
    op.drop_table("other_subsidies")
    for name in ("uq_related_parties_carrier_uscc", "uq_related_parties_startup_uscc", "ix_related_parties_uscc",
                 "ix_related_parties_carrier_id", "ix_related_parties_startup_id"):
        op.drop_index(name, table_name="related_parties")
    op.drop_table("related_parties")
    with op.batch_alter_table("subsidy_programs", schema=None) as batch_op:
        batch_op.drop_column("excludes_subsidy_kinds")
        batch_op.drop_column("excludes_subsidy_levels")
    with op.batch_alter_table("carriers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_carriers_uscc_length"), type_="check")
        batch_op.drop_column("uscc")
