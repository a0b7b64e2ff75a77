"""The declarative base, exact column types, the engine and the per-request session."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from broker.clock import utcnow  # noqa: F401  (the storage stamps of the models' column defaults)
from broker.resources import MONEY_PLACES, QUANTITY_PLACES, UNIT_PRICE_PLACES

log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")

# Primary keys are INTEGER: 32-bit on PostgreSQL. Ids from outside are checked against this
# so that an absurd id is "not found", not a database overflow.
MAX_ID = 2**31 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ScaledDecimal(sa.types.TypeDecorator[Decimal]):
    """A Decimal stored as an integer count of 10^-places units.

    SQLite has no exact decimal type (SQLAlchemy's Numeric falls back to REAL there), so
    every quantity and amount is an integer in the database on both backends; guarded
    updates such as `promised + :q <= quantity` compare integers.
    """

    impl = sa.BigInteger
    cache_ok = True

    def __init__(self, places: int) -> None:
        super().__init__()
        self.places = places
        self._unit = Decimal(1).scaleb(-places)

    def process_bind_param(self, value: Decimal | int | None, dialect: Any) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value).scaleb(self.places)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.places} decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(value) * self._unit).quantize(self._unit)


def Quantity() -> ScaledDecimal:
    return ScaledDecimal(QUANTITY_PLACES)


def Money() -> ScaledDecimal:
    return ScaledDecimal(MONEY_PLACES)


def Ratio() -> ScaledDecimal:
    """A share or weight, to four places (0.3 is 3000 in storage)."""
    return ScaledDecimal(4)


def UnitPrice() -> ScaledDecimal:
    return ScaledDecimal(UNIT_PRICE_PLACES)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """An aware datetime stored as naive UTC; naive input is refused rather than guessed."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: attach a time zone before storing")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


def create_engine(url: str, *, sqlite_busy_timeout: float = 30.0) -> Engine:
    """An engine for `url`, with SQLite set up for foreign keys, WAL and write transactions.

    `sqlite_busy_timeout` is how long (seconds) SQLite waits for another writer before it
    answers "database is locked", which `retry_transient` then retries.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": sqlite_busy_timeout})
        _configure_sqlite(engine, int(sqlite_busy_timeout * 1000))
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over
    # (SQLAlchemy's documented recipe) and begin with IMMEDIATE so a read that turns into
    # a write never fails with "database is locked" halfway through a use case.
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# PostgreSQL's deadlock_detected and serialization_failure: the transaction was chosen to be
# undone and would succeed if run again. SQLite says "database is locked" (or "busy") when
# another writer held the database for longer than the busy timeout.
_TRANSIENT_SQLSTATES = {"40P01": "deadlock detected", "40001": "serialization failure"}
_TRANSIENT_SQLITE_MESSAGES = ("database is locked", "database is busy", "database table is locked")


def is_transient(error: BaseException) -> bool:
    """Whether `error` is a database failure that running the same use case again may not meet."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    original = error.orig
    if getattr(original, "sqlstate", None) in _TRANSIENT_SQLSTATES:  # psycopg 3
        return True
    return type(original).__name__ == "OperationalError" and any(
        message in str(original).lower() for message in _TRANSIENT_SQLITE_MESSAGES
    )


class TransientFailure(Exception):
    """A transient database failure outlasted every retry; the caller may try again later."""

    def __init__(self, attempts: int, cause: BaseException) -> None:
        super().__init__(f"still failing after {attempts} attempts: {describe_transient(cause)}")
        self.attempts = attempts


def describe_transient(error: BaseException) -> str:
    original = getattr(error, "orig", error)
    sqlstate = getattr(original, "sqlstate", None)
    return _TRANSIENT_SQLSTATES.get(sqlstate, str(original).splitlines()[0] if str(original) else type(original).__name__)


def retry_transient(
    work: Callable[[], T],
    *,
    attempts: int = 4,
    before_retry: Callable[[], None] | None = None,
    may_retry: Callable[[], bool] | None = None,
    pause: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `work` (a whole use case, in a transaction of its own) again when it fails transiently.

    Between tries `before_retry` rolls the failed transaction back, and the pause doubles
    with full jitter (0..pause, 0..2*pause, ...) so that the transactions that collided do
    not collide again in step. `may_retry` can forbid a retry (e.g. once the use case has
    committed something). After the last try, TransientFailure.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except sa.exc.DBAPIError as error:
            if not is_transient(error):
                raise
            if before_retry is not None:
                before_retry()
            if attempt == attempts or (may_retry is not None and not may_retry()):
                log.warning("transient database error, giving up after %d attempts: %s", attempt, describe_transient(error))
                raise TransientFailure(attempt, error) from error
            log.warning("transient database error (%s), retry %d of %d", describe_transient(error), attempt, attempts - 1)
            sleep(random.uniform(0, pause * 2 ** (attempt - 1)))
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """One use case's transaction: commit once when the block ends; on any error (the commit's
    own included) roll back and re-raise, so no path leaves half a use case written.

    It composes with `retry_transient` rather than repeating it: the retry wraps the whole use
    case from outside, a transient failure leaves this block already rolled back, and the
    retry's next try runs the use case, and so a fresh unit of work, again.
    """
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def transaction(use_case: Callable[Concatenate[Session, P], T]) -> Callable[Concatenate[Session, P], T]:
    """Run a use case `use_case(session, ...)` as one `unit_of_work` (Superset's `@transaction`)."""

    @functools.wraps(use_case)
    def run(session: Session, *args: P.args, **kwargs: P.kwargs) -> T:
        with unit_of_work(session):
            return use_case(session, *args, **kwargs)

    return run


def commits_made(session: Session) -> int:
    """How many times `session` has committed: a use case that committed must not be run again."""
    return session.info.get("commits", 0)


def _count_commit(session: Session) -> None:
    session.info["commits"] = commits_made(session) + 1


# Every locking read in the services adds execution_options(populate_existing=True): a row
# locked FOR UPDATE must be read as it is now, not taken from the session's identity map as
# it was when an earlier query loaded it.


class Database:
    """The app's engine and session factory, kept in `app.extensions`."""

    def __init__(self, engine: Engine, config: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        # The app's settings, in every session's info ("config"): what a use case needs of them
        # without a request (the notifications' console URL and signing key) reaches it there.
        self.config = config or {}
        self.bind_sessions(sessionmaker(bind=engine, expire_on_commit=False))

    def bind_sessions(self, factory: sessionmaker[Session]) -> None:
        """Hand out sessions from `factory` (tests bind them to one rolled-back connection)."""
        from broker.models.audit import install_audit

        install_audit(factory)
        factory.configure(info={**(factory.kw.get("info") or {}), "config": self.config})
        if not factory.__dict__.get("_broker_commits_counted"):
            sa.event.listen(factory, "after_commit", _count_commit)
            factory._broker_commits_counted = True
        self.sessionmaker = factory


def init_app(app: Flask) -> Database:
    database = Database(create_engine(app.config["DATABASE_URL"], sqlite_busy_timeout=float(app.config["SQLITE_BUSY_TIMEOUT"])),
                        app.config)
    app.extensions["broker.db"] = database
    app.teardown_appcontext(_close_session)
    return database


def get_db(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["broker.db"]


def get_session() -> Session:
    """The session of the current app context, opened on first use."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
