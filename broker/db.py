"""The declarative base, exact column types, the engine and the per-request session."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from broker.resources import MONEY_PLACES, QUANTITY_PLACES, UNIT_PRICE_PLACES

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


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


def create_engine(url: str) -> Engine:
    """An engine for `url`, with SQLite set up for foreign keys, WAL and write transactions."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over
    # (SQLAlchemy's documented recipe) and begin with IMMEDIATE so a read that turns into
    # a write never fails with "database is locked" halfway through a use case.
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# Every locking read in the services adds execution_options(populate_existing=True): a row
# locked FOR UPDATE must be read as it is now, not taken from the session's identity map as
# it was when an earlier query loaded it.


class Database:
    """The app's engine and session factory, kept in `app.extensions`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.bind_sessions(sessionmaker(bind=engine, expire_on_commit=False))

    def bind_sessions(self, factory: sessionmaker[Session]) -> None:
        """Hand out sessions from `factory` (tests bind them to one rolled-back connection)."""
        from broker.models.audit import install_audit

        install_audit(factory)
        self.sessionmaker = factory


def init_app(app: Flask) -> Database:
    database = Database(create_engine(app.config["DATABASE_URL"]))
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
