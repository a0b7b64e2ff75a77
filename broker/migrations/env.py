"""Alembic environment: runs on the connection handed over by broker.migrations."""

from __future__ import annotations

from alembic import context

import broker.models  # noqa: F401  (registers every table)
from broker.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through `broker db upgrade` (broker.migrations.upgrade).")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
