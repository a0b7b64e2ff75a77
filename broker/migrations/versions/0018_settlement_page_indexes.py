"""settlement page indexes: a statement of thousands of lines is read a page at a time

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

Measured with `broker bench console` on the district `broker bench district` builds (its
statements have up to 30,000 lines, one per award of a program; its programs ~80,000 ledger
rows each):

- ix_settlement_lines_statement_id_id (statement_id, id) replaces ix_settlement_lines_statement_id:
  one page of a statement's lines is read in id order straight off the index; on the single
  column PostgreSQL sorted all 30,362 lines of the statement (on disk) to return 100 of them.
- ix_ledger_entries_deposits (program_id, id) where kind = 'deposit': a program's funding
  documents, shown on every statement page; without it PostgreSQL read the whole ledger
  (a parallel sequential scan of 240,000 rows, 55 ms) for a program's two deposits.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

DEPOSITS = "kind = 'deposit'"


def upgrade() -> None:
    op.create_index("ix_settlement_lines_statement_id_id", "settlement_lines", ["statement_id", "id"])
    op.drop_index("ix_settlement_lines_statement_id", table_name="settlement_lines")
    op.create_index("ix_ledger_entries_deposits", "ledger_entries", ["program_id", "id"],
                    sqlite_where=sa.text(DEPOSITS), postgresql_where=sa.text(DEPOSITS))


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_deposits", table_name="ledger_entries")
    op.create_index("ix_settlement_lines_statement_id", "settlement_lines", ["statement_id"])
    op.drop_index("ix_settlement_lines_statement_id_id", table_name="settlement_lines")
