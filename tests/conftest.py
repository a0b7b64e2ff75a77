"""The app is built once per test session on a throwaway database; each test is rolled back.

SQLite by default. With BROKER_TEST_DATABASE_URL (a PostgreSQL server URL) the suite creates
its own database on that server, runs there and drops it. An unreachable server is an error,
never a skip: a suite that silently skipped PostgreSQL would prove nothing about it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from broker import create_app
from broker.clock import now
from broker.db import get_db
from broker.migrations import upgrade
from broker.models import Role
from broker.services import accounts


@dataclass
class ThrowawayDatabases:
    """Makes databases for the suite on the configured backend and drops them at the end."""

    server_url: str | None
    base_dir: str
    made: list[str]

    def create(self) -> str:
        if self.server_url is None:
            path = os.path.join(self.base_dir, f"broker-{secrets.token_hex(4)}.sqlite3")
            return f"sqlite:///{path}"
        name = f"broker_test_{os.getpid()}_{secrets.token_hex(4)}"
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            admin.dispose()
        self.made.append(name)
        return sa.make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self.server_url is None:
            return
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self.made:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayDatabases]:
    server = os.environ.get("BROKER_TEST_DATABASE_URL") or None
    made = ThrowawayDatabases(server, str(tmp_path_factory.mktemp("databases")), [])
    yield made
    made.drop_all()


@pytest.fixture(scope="session")
def app(databases: ThrowawayDatabases, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    url = databases.create()
    app = create_app(
        {
            "BROKER_ENV": "test",
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret",
            "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
            "TESTING": True,
            # The tests' webhook receivers listen on 127.0.0.1, as the demo's would.
            "WEBHOOK_ALLOWED_HOSTS": ("127.0.0.1",),
        }
    )
    upgrade(get_db(app).engine)
    return app


@pytest.fixture(autouse=True)
def _rolled_back(request: pytest.FixtureRequest) -> Iterator[None]:
    """Bind every session the app makes to one connection whose transaction is rolled back."""
    if "app" not in request.fixturenames or request.node.get_closest_marker("committing"):
        yield
        return
    app: Flask = request.getfixturevalue("app")
    database = get_db(app)
    original = database.sessionmaker
    connection = database.engine.connect()
    transaction = connection.begin()
    database.bind_sessions(
        sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    )
    try:
        yield
    finally:
        database.bind_sessions(original)
        transaction.rollback()
        connection.close()


@pytest.fixture
def frozen_clock(app: Flask):
    """Install a FrozenClock starting at the given moment as the app's clock; the system clock again after the test."""
    from broker.clock import FrozenClock, install_clock

    def install(start):
        clock = FrozenClock(start)
        install_clock(app, clock)
        return clock

    yield install
    install_clock(app, None)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session on the test's rolled-back connection, for arranging and checking state."""
    # No app context is pushed here: the test client's requests must each get their own.
    s = get_db(app).sessionmaker()
    yield s
    s.close()


@dataclass
class Actor:
    account_id: int
    token: str
    startup_id: int | None = None
    carrier_id: int | None = None
    carrier_code: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_uscc(n: int) -> str:
    from broker.uscc import check_character

    body = f"91310105{n:09d}"
    return body + check_character(body)


@pytest.fixture
def make_actor(app: Flask, session: Session):
    """Build an account of any role through the services, with its token."""
    counter = {"n": 0}

    def make(role: Role | str, *, verified: bool = True, sector: str = "ai_models", code: str | None = None) -> Actor:
        role = Role(role)
        counter["n"] += 1
        n = counter["n"]
        if role in (Role.staff, Role.admin):
            account, _, secret = accounts.create_user(session, role, f"{role.value} {n}")
            return Actor(account.id, secret)
        if role is Role.carrier:
            code = code or f"carrier{n}"
            carrier, token, secret = accounts.register_carrier(session, code, f"Carrier {n}", "telecom", ["telecom"])
            return Actor(token.account_id, secret, carrier_id=carrier.id, carrier_code=code)
        startup, token, secret = accounts.register_startup(session, startup_payload(n, sector=sector, parse=True))
        if verified:
            verifier, _, _ = accounts.create_user(session, Role.staff, f"verifier {n}")
            accounts.verify_startup(session, verifier, startup.id, now(app))
        return Actor(token.account_id, secret, startup_id=startup.id)

    return make


def startup_payload(n: int, *, sector: str = "ai_models", parse: bool = False) -> dict:
    import datetime as dt

    from broker.models import Sector

    payload = {
        "name": f"上海测试科技{n}有限公司",
        "uscc": make_uscc(n),
        "sector": sector,
        "founded_on": "2022-03-01",
        "headcount": 25,
        "contact_name": "张伟",
        "contact_email": f"ceo{n}@example.cn",
    }
    if parse:
        payload = {**payload, "sector": Sector(sector), "founded_on": dt.date(2022, 3, 1)}
    return payload


def statements_sent(app: Flask, client: FlaskClient, path: str) -> list[str]:
    """Every SQL statement one GET of `path` sends (an N+1 makes their number grow with the rows),
    seen by an event listener on the app's engine."""
    seen: list[str] = []

    def record(_connection, _cursor, statement, *_args) -> None:
        seen.append(statement)

    engine = get_db(app).engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen
