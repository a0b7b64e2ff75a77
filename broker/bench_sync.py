"""`broker bench sync`: how fast a 100,000-offer feed syncs into SQLite and PostgreSQL.

A benchmark, not a test: it serves a carrier simulator on 127.0.0.1 in a thread and, per
database, runs two whole syncs: each fetches the catalogue through the real adapter over HTTP
and applies it with the sync service (the first inserts every offer, the second changes
nothing). It prints a table with the fetch, the apply and their total for each sync: the
total is what a scheduled sync takes. By default it uses a temporary SQLite file and, if the server answers, a throwaway
database on the local PostgreSQL server that it creates and drops.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import click
import sqlalchemy as sa

DEFAULT_POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_TOKEN_VARIABLE = "BROKER_BENCH_TELECOM_TOKEN"


@dataclass
class Measurement:
    database: str
    offers: int
    quarantined: int
    fetch: float  # first sync: fetch over HTTP
    first: float  # first sync: apply (inserts every offer)
    second_fetch: float  # second sync: fetch over HTTP
    second: float  # second sync: apply (changes nothing)
    second_unchanged: int

    @property
    def first_total(self) -> float:
        return self.fetch + self.first

    @property
    def second_total(self) -> float:
        return self.second_fetch + self.second

    @property
    def rows_per_second(self) -> float:
        """Offers per second of the whole first sync, fetch included."""
        return self.offers / self.first_total if self.first_total else 0.0


def _serve(app: Any) -> tuple[Any, threading.Thread, str]:
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}"


def _postgres_reachable(server_url: str) -> bool:
    engine = sa.create_engine(server_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except Exception:  # any failure to connect means "not here": the bench skips it and says so
        return False
    finally:
        engine.dispose()


def _measure(label: str, url: str, base_url: str, offers: int) -> Measurement:
    from adapters.base import CarrierConfig
    from adapters.simulators.telecom import DEFAULT_TOKEN
    from adapters.telecom import TelecomAdapter
    from broker import create_app
    from broker.db import get_db, get_session
    from broker.migrations import upgrade
    from broker.models import Carrier, SyncSource
    from broker.services.sync import apply_feed

    app = create_app({"BROKER_ENV": "test", "DATABASE_URL": url, "SECRET_KEY": "bench",
                      "INSTANCE_PATH": tempfile.mkdtemp(prefix="broker-bench-")})
    upgrade(get_db(app).engine)
    adapter = TelecomAdapter(
        CarrierConfig(base_url, {"token": _TOKEN_VARIABLE}, read_timeout=120.0, page_size=1000),
        environ={_TOKEN_VARIABLE: DEFAULT_TOKEN},
    )
    code = f"bench_{secrets.token_hex(3)}"
    try:
        with app.app_context():
            session = get_session()
            session.add(Carrier(code=code, name="Benchmark carrier", adapter="telecom"))
            session.commit()
            started = time.perf_counter()
            result = adapter.fetch_offers()
            fetched = time.perf_counter()
            first = apply_feed(session, code, SyncSource.pull, result, _now(), complete=True)
            applied = time.perf_counter()
            result = adapter.fetch_offers()  # a second sync fetches again, as a scheduled one does
            fetched_again = time.perf_counter()
            second = apply_feed(session, code, SyncSource.pull, result, _now(), complete=True)
            again = time.perf_counter()
            if first.new != len(result.offers) or second.unchanged != len(result.offers) or second.new:
                raise click.ClickException(f"{label}: unexpected counts {first.counts} then {second.counts}")
            return Measurement(label, first.new, first.quarantined, fetched - started, applied - fetched,
                               fetched_again - applied, again - fetched_again, second.unchanged)
    finally:
        get_db(app).engine.dispose()


def _now() -> Any:
    from broker.clock import now

    return now()  # the app clock: called inside the app context


@click.command("sync")
@click.option("--offers", default=100_000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="size of the simulated telecom catalogue")
@click.option("--database-url", "database_urls", multiple=True,
              help="run on this database (repeatable; used as is, with a fresh carrier); "
                   "default: a temporary SQLite file and a throwaway database on " + DEFAULT_POSTGRES_SERVER)
def bench_sync(offers: int, database_urls: tuple[str, ...]) -> None:
    """Sync a simulated 100,000-offer feed into SQLite and PostgreSQL and print the timings."""
    from adapters.simulators.telecom import create_app as telecom_simulator

    server, thread, base_url = _serve(telecom_simulator(offers=offers, seed=1))
    made: list[tuple[str, str]] = []  # (server URL, database name) to drop
    targets: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as workdir:
        if database_urls:
            targets = [(sa.make_url(u).get_backend_name(), u) for u in database_urls]
        else:
            targets.append(("sqlite", f"sqlite:///{workdir}/bench.sqlite3"))
            if _postgres_reachable(DEFAULT_POSTGRES_SERVER):
                name = f"broker_bench_{secrets.token_hex(4)}"
                _admin(DEFAULT_POSTGRES_SERVER, f'CREATE DATABASE "{name}"')
                made.append((DEFAULT_POSTGRES_SERVER, name))
                url = sa.make_url(DEFAULT_POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
                targets.append(("postgresql", url))
            else:
                click.echo(f"PostgreSQL at {DEFAULT_POSTGRES_SERVER} is unreachable: measuring SQLite only.", err=True)
        try:
            results = []
            for label, url in targets:
                click.echo(f"Measuring {label} ({offers} offers)…", err=True)
                results.append(_measure(label, url, base_url, offers))
        finally:
            for server_url, name in made:
                _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
    click.echo(_table(results))


def _admin(server_url: str, statement: str) -> None:
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _table(results: list[Measurement]) -> str:
    lines = [
        ("| database | offers | first sync (inserts all): fetch + apply = total | rows/s, total "
         "| second sync (unchanged): fetch + apply = total |"),
        "|---|---:|---:|---:|---:|",
    ]
    for m in results:
        lines.append(
            f"| {m.database} | {m.offers:,} (+{m.quarantined} quarantined) "
            f"| {m.fetch:.1f} s + {m.first:.1f} s = **{m.first_total:.1f} s** | {m.rows_per_second:,.0f} "
            f"| {m.second_fetch:.1f} s + {m.second:.1f} s = **{m.second_total:.1f} s** ({m.second_unchanged:,} unchanged) |"
        )
    return "\n".join(lines)
