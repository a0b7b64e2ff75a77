"""Alembic migrations, shipped inside the package so `broker db upgrade` works when installed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

HERE = os.path.dirname(os.path.abspath(__file__))


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", HERE)
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database behind `engine` to `revision` (a SQLite file and its folder are made here)."""
    path = sqlite_path(engine)
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with _migrating(engine) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    with _migrating(engine) as connection:
        command.downgrade(alembic_config(connection), revision)


@contextlib.contextmanager
def _migrating(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One transaction for the whole migration. On SQLite, foreign keys are off while it runs:
    batch mode rebuilds a table (a copy, the old one dropped, the copy renamed), and dropping a
    table other rows point at fails while they are on. SQLite ignores the switch inside a
    transaction, so it is flipped on the raw connection before BEGIN, and every reference is
    checked before the migration commits."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                yield connection
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def sqlite_path(engine: sa.Engine) -> str | None:
    """The file of a SQLite database (None for PostgreSQL or an in-memory SQLite)."""
    if engine.url.get_backend_name() != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(engine.url.database)


def database_location(engine: sa.Engine) -> str:
    """Where the database is, for people: a SQLite file's path, or the URL without its password."""
    return sqlite_path(engine) or engine.url.render_as_string(hide_password=True)


def revision_if_any(engine: sa.Engine, connect: Callable[[], sa.Connection]) -> str | None:
    """The database's revision, None if it is empty; a SQLite file that does not exist is empty,
    and is not created by asking (connecting to SQLite creates the file)."""
    path = sqlite_path(engine)
    if path is not None and not os.path.exists(path):
        return None
    return current_revision(connect())


def schema_problem(engine: sa.Engine, connect: Callable[[], sa.Connection]) -> str | None:
    """Why the database can't be used yet, in one line; None when it is migrated to head."""
    where = database_location(engine)
    try:
        current = revision_if_any(engine, connect)
    except sa.exc.OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        return f"the database at {where} cannot be reached ({reason})"
    head = head_revision()
    if current is None:
        return f"the database at {where} is not migrated: run `broker db upgrade`"
    if current != head:
        return f"the database at {where} is at revision {current}, not {head}: run `broker db upgrade`"
    return None
