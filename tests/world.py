"""A small district built through the services, for tests that need committed data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from broker import create_app
from broker.db import create_engine, get_db
from broker.migrations import upgrade
from broker.models import Account, Role, Sector
from broker.services import accounts, market
from tests.conftest import startup_payload


def committed_app(url: str, instance: str, **config) -> Flask:
    """An app on a migrated database whose sessions commit for real."""
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    return create_app(
        {"BROKER_ENV": "test", "DATABASE_URL": url, "SECRET_KEY": "test", "INSTANCE_PATH": instance,
         "WEBHOOK_ALLOWED_HOSTS": ("127.0.0.1",), **config}  # the tests' webhook receivers listen there
    )


@dataclass
class District:
    staff_id: int
    carrier_accounts: dict[str, int] = field(default_factory=dict)
    startup_accounts: list[int] = field(default_factory=list)


def build_district(
    session: Session,
    *,
    carriers: tuple[str, ...] = ("telecom",),
    offers: int = 5,
    offer_quantity: int = 100,
    startups: int = 10,
    ask: int = 50,
    window: tuple[dt.date, dt.date] = (dt.date(2026, 12, 8), dt.date(2026, 12, 10)),
) -> District:
    staff, _, _ = accounts.create_user(session, Role.staff, "staff")
    district = District(staff.id)
    for code in carriers:
        carrier, token, _ = accounts.register_carrier(session, code, f"{code} carrier", code, [code])
        account = session.get(Account, token.account_id)
        district.carrier_accounts[code] = account.id
        market.upsert_offers(
            session,
            account,
            [
                {
                    "external_id": f"{code}-gpu-{i}",
                    "kind": "gpu",
                    "region": "sh",
                    "attributes": {"gpu_model": "H100"},
                    "quantity": Decimal(offer_quantity),
                    "window_start": dt.date(2026, 12, 1),
                    "window_end": dt.date(2026, 12, 31),
                    "list_price": Decimal(20),
                    "unit_price": Decimal(10),
                    "divisible": True,
                }
                for i in range(offers)
            ],
        )
    sectors = [Sector.smart_driving, Sector.ai_models, Sector.smart_healthcare, Sector.fintech]
    for n in range(startups):
        startup, token, _ = accounts.register_startup(
            session, startup_payload(1000 + n, sector=sectors[n % len(sectors)].value, parse=True)
        )
        accounts.verify_startup(
            session, session.get(Account, staff.id), startup.id, dt.datetime.combine(window[0], dt.time(), dt.UTC)
        )
        account = session.get(Account, token.account_id)
        district.startup_accounts.append(account.id)
        market.submit_request(
            session,
            account,
            {
                "kind": "gpu",
                "quantity": Decimal(ask),
                "min_quantity": Decimal(10),
                "attributes": {"gpu_model": ["H100"]},
                "window_start": window[0],
                "window_end": window[1],
                "purpose": "test",
            },
            now=dt.datetime.combine(window[0], dt.time(), dt.timezone.utc),
        )
    return district


def session_of(app: Flask) -> Session:
    return get_db(app).sessionmaker()


def count(session: Session, model: type, *where) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def decide_worker(url: str, instance: str, plan: list[tuple[int, str]], offers_to_withdraw: list[int]) -> list[tuple[int, str, str]]:
    """One process of a concurrency test: make each decision in `plan`, report what happened."""
    from broker.db import utcnow
    from broker.errors import DomainError
    from broker.services import cycles

    app = committed_app(url, instance)
    outcomes = []
    for allocation_id, decision in plan:
        session = session_of(app)
        try:
            staff = session.scalar(sa.select(Account).where(Account.role == Role.staff))
            if decision == "approve":
                cycles.approve_allocation(session, staff, allocation_id, None, utcnow())
            else:
                cycles.reject_allocation(session, staff, allocation_id, "race", utcnow())
            outcomes.append((allocation_id, decision, "ok"))
        except DomainError as error:
            session.rollback()
            outcomes.append((allocation_id, decision, type(error).__name__))
        finally:
            session.close()
    for offer_id in offers_to_withdraw:
        session = session_of(app)
        try:
            carrier = session.scalar(sa.select(Account).where(Account.role == Role.carrier))
            market.withdraw_offer(session, carrier, offer_id)
        except DomainError:
            session.rollback()
        finally:
            session.close()
    get_db(app).engine.dispose()
    return outcomes


# ------------------------------------------------------------------------------ HTTP races

_APPS: dict[str, Flask] = {}


def http_call(
    url: str, instance: str, environ: dict[str, str], method: str, path: str, options: dict
) -> tuple[int, dict | None]:
    """One racer of a race test, in its own process: one request through the whole app (its error
    handlers included) on a committed database; returns the status and the JSON answer."""
    import os

    os.environ.update(environ)
    app = _APPS.get(url)
    if app is None:
        app = _APPS[url] = committed_app(url, instance)
    try:
        response = app.test_client().open(path, method=method, **options)
        return response.status_code, response.get_json(silent=True)
    finally:
        get_db(app).engine.dispose()  # the next race is on another database


def racer_pool(databases, racers: int):
    """A module's pool of `racers` spawned processes for PostgreSQL races (skipped on SQLite, which
    serialises writers)."""
    import multiprocessing

    import pytest

    if databases.server_url is None:
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE); these races are PostgreSQL ones")
    with multiprocessing.get_context("spawn").Pool(racers) as pool:
        yield pool


def race(pool, url: str, instance: str, hold: str, calls: list[tuple[str, str, dict]],
         environ: dict[str, str] | None = None) -> list[tuple[int, dict | None]]:
    """Send `calls` at once, one per process of `pool` (spawned), on PostgreSQL.

    `hold` is a lock statement (e.g. `LOCK TABLE startups IN SHARE ROW EXCLUSIVE MODE`) taken
    first and held until every racer is waiting behind it, so they all pass their reads before
    any of them writes: the race is made to happen, not hoped for.
    """
    import time

    engine = sa.create_engine(url)
    try:
        with engine.connect() as holder:
            holder.exec_driver_sql(hold)
            pending = pool.starmap_async(
                http_call, [(url, instance, environ or {}, method, path, options) for method, path, options in calls],
                chunksize=1,
            )
            deadline = time.monotonic() + 180
            waiting = 0
            while waiting < len(calls) and not pending.ready() and time.monotonic() < deadline:
                time.sleep(0.05)
                # pg_stat_activity is a snapshot per transaction: clear it to see the racers arrive.
                holder.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
                waiting = holder.scalar(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                ))
            assert waiting == len(calls), f"only {waiting} of {len(calls)} racers reached the held lock"
            holder.rollback()
        return pending.get(timeout=300)
    finally:
        engine.dispose()


def synced_telecom(session: Session, make_actor, at: dt.datetime):
    """The telecom simulator (20 lots from 2026-12) synced into the broker through the real adapter.

    Returns the simulator (close it when done) and the adapter that speaks to it; the carrier
    account `telecom` exists.
    """
    from adapters.base import CarrierConfig
    from adapters.simulators import telecom as telecom_simulator
    from adapters.telecom import TelecomAdapter
    from broker.services.sync import sync_carrier
    from tests.e2e.adapters.conftest import Simulator

    simulator = Simulator(telecom_simulator.create_app(seed=3, offers=20, first_month=dt.date(2026, 12, 1)))
    adapter = TelecomAdapter(
        CarrierConfig(simulator.url, {"token": "T"}, retries=0, backoff_factor=0.0, breaker_fail_max=100),
        environ={"T": telecom_simulator.DEFAULT_TOKEN},
    )
    make_actor("carrier", code="telecom")
    assert sync_carrier(session, "telecom", adapter, at).error is None
    return simulator, adapter


def approved_allocation(session: Session, startup_id: int, offer, at: dt.datetime):
    """One unit of `offer` for the startup, approved as staff's approval leaves it (flushed, not committed)."""
    from broker.models import Allocation, AllocationStatus, MatchingCycle, RequestStatus, ResourceRequest

    request = ResourceRequest(startup_id=startup_id, kind=offer.kind, quantity=Decimal(1),
                              window_start=offer.window_start, window_end=offer.window_end, status=RequestStatus.approved)
    cycle = MatchingCycle(scheduled_for=at)
    session.add_all([request, cycle])
    session.flush()
    allocation = Allocation(cycle_id=cycle.id, request_id=request.id, offer_id=offer.id, quantity=Decimal(1),
                            unit_price=offer.unit_price, status=AllocationStatus.approved)
    session.add(allocation)
    offer.promised += 1
    session.flush()
    return allocation
