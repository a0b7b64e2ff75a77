"""page speed indexes: the review queue pages through a cycle of tens of thousands of proposals

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

Measured with `broker bench console` on the district `broker bench district` builds (10,000
startups, 100,000 requests, 1,000,000 allocations, ~18,000 proposals in the latest cycle):

- ix_allocations_cycle_status (cycle_id, status, id): one page of a cycle's proposals is read in
  id order straight off the index, and the cycle's counts by status come from the index alone.
- ix_allocations_offer_cycle (offer_id, cycle_id): the kinds and carriers a cycle used (the
  queue's filter choices) are found by probing each of the district's few hundred offers,
  instead of reading every allocation of the cycle.
- ix_allocations_provisioning_given_up (id) where status = 'provisioning' and next_attempt_at is
  null: the allocations whose provisioning retries ran out, which a carrier's page lists newest
  first; without it the planner walked the whole primary key backwards looking for a few rows.
- On PostgreSQL, statistics on (cycle_id, status) together: each cycle's allocations are decided
  together, so the two columns are far from independent; without them the planner guessed 326
  rows for a cycle's 18,278 proposals and chose a nested loop over all of them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

GIVEN_UP = "status = 'provisioning' AND next_attempt_at IS NULL"


def upgrade() -> None:
    op.create_index("ix_allocations_cycle_status", "allocations", ["cycle_id", "status", "id"])
    op.create_index("ix_allocations_offer_cycle", "allocations", ["offer_id", "cycle_id"])
    op.create_index("ix_allocations_provisioning_given_up", "allocations", ["id"],
                    sqlite_where=sa.text(GIVEN_UP), postgresql_where=sa.text(GIVEN_UP))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE STATISTICS st_allocations_cycle_status (dependencies, mcv) ON cycle_id, status FROM allocations")
        op.execute("ANALYZE allocations")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_allocations_cycle_status")
    op.drop_index("ix_allocations_provisioning_given_up", table_name="allocations")
    op.drop_index("ix_allocations_offer_cycle", table_name="allocations")
    op.drop_index("ix_allocations_cycle_status", table_name="allocations")
