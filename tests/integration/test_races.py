"""Check-then-insert and check-then-change races, made to happen from several processes on PostgreSQL.

Every racer passes the service's friendly pre-check before any of them writes (a lock held by
the test until all of them wait behind it); the database's constraint or a row lock must then
decide, and every loser must get a 409 that says what already exists, never a 500.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import sqlalchemy as sa

from broker.clock import now
from broker.db import get_db
from broker.models import (
    Account,
    Allocation,
    ApiToken,
    AuditEntry,
    Offer,
    Role,
    Startup,
    LedgerEntry,
    LedgerKind,
    StartupStatus,
    SubsidyProgram,
)
from broker.models.workflow import Appeal
from broker.services import accounts, cycles, ledger
from tests.conftest import startup_payload
from tests.world import racer_pool, build_district, committed_app, count, race, session_of

pytestmark = [pytest.mark.committing, pytest.mark.slow]

RACERS = 8


@pytest.fixture(scope="module")
def pool(databases):
    yield from racer_pool(databases, RACERS)


@pytest.fixture
def world(databases, tmp_path):
    url = databases.create()
    app = committed_app(url, str(tmp_path))
    yield url, str(tmp_path), app
    get_db(app).engine.dispose()


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _statuses(results) -> Counter:
    return Counter(status for status, _ in results)


def _refusals(results) -> list[dict]:
    return [body for status, body in results if status == 409]


def test_concurrent_registrations_of_one_credit_code_make_one_startup(pool, world):
    url, instance, app = world
    payload = startup_payload(42)
    results = race(pool, url, instance, "LOCK TABLE startups IN SHARE ROW EXCLUSIVE MODE",
                   [("POST", "/api/v1/startups", {"json": {**payload, "name": f"上海抢注{i}有限公司"}}) for i in range(RACERS)])
    assert _statuses(results) == {201: 1, 409: RACERS - 1}, results
    for body in _refusals(results):
        assert body["code"] == 409 and body["status"] == "Conflict"
        assert "unified social credit code" in body["message"] and "uscc" in body["errors"]["json"]
    session = session_of(app)
    assert count(session, Startup) == 1 and count(session, Account, Account.role == Role.startup) == 1
    session.close()


def test_concurrent_first_publications_of_an_offer_make_one_offer(pool, world):
    url, instance, app = world
    session = session_of(app)
    _, _, secret = accounts.register_carrier(session, "telecom", "China Telecom", "telecom", ["telecom"])
    session.close()
    offer = {"external_id": "lot-1", "kind": "gpu", "region": "sh", "attributes": {"gpu_model": "H100"},
             "window_start": "2026-12-01", "window_end": "2026-12-31", "list_price": "20", "unit_price": "10"}
    results = race(pool, url, instance, "LOCK TABLE offers IN SHARE ROW EXCLUSIVE MODE",
                   [("POST", "/api/v1/offers", {"json": {"offers": [{**offer, "quantity": str(10 + i)}]},
                                                "headers": _bearer(secret)}) for i in range(RACERS)])
    assert _statuses(results) == {200: 1, 409: RACERS - 1}, results
    for body in _refusals(results):
        assert "external id" in body["message"] and "external_id" in body["errors"]["json"]
    session = session_of(app)
    assert count(session, Offer) == 1
    session.close()


def test_concurrent_programs_with_one_code_make_one_program(pool, world):
    url, instance, app = world
    session = session_of(app)
    _, _, secret = accounts.create_user(session, Role.staff, "staff")
    session.close()
    program = {"code": "voucher-2027", "name": "算力券", "kinds": ["gpu"], "rate": "0.5", "cap_per_startup": "1000",
               "budget": "100000", "funding_document": "沪经信智〔2025〕489号", "starts_on": "2027-01-01",
               "ends_on": "2028-01-01"}
    results = race(pool, url, instance, "LOCK TABLE subsidy_programs IN SHARE ROW EXCLUSIVE MODE",
                   [("POST", "/api/v1/subsidy-programs", {"json": program, "headers": _bearer(secret)})] * RACERS)
    assert _statuses(results) == {201: 1, 409: RACERS - 1}, results
    for body in _refusals(results):
        assert "subsidy program with this code" in body["message"] and "code" in body["errors"]["json"]
    session = session_of(app)
    assert count(session, SubsidyProgram) == 1
    assert count(session, LedgerEntry, LedgerEntry.kind == LedgerKind.deposit) == 1  # one opening budget, not eight
    assert ledger.reconcile(session).ok
    session.close()


def test_concurrent_verifications_of_one_startup_verify_it_once(pool, world):
    url, instance, app = world
    session = session_of(app)
    _, _, secret = accounts.create_user(session, Role.staff, "staff")
    startup, _, _ = accounts.register_startup(session, startup_payload(7, parse=True))
    startup_id = startup.id
    session.close()
    # A writer on startups waits behind the held lock: every racer has read the startup as pending.
    results = race(pool, url, instance, "LOCK TABLE startups IN SHARE ROW EXCLUSIVE MODE",
                   [("POST", f"/api/v1/startups/{startup_id}/verify", {"headers": _bearer(secret)})] * RACERS)
    assert _statuses(results) == {200: 1, 409: RACERS - 1}, results
    assert all("already verified" in body["message"] for body in _refusals(results))
    session = session_of(app)
    assert session.get(Startup, startup_id).status is StartupStatus.verified
    assert count(session, AuditEntry, AuditEntry.entity_type == "startups", AuditEntry.action == "verify") == 1
    session.close()


def test_concurrent_revocations_of_one_token_revoke_it_once(pool, world):
    url, instance, app = world
    session = session_of(app)
    _, _, secret = accounts.create_user(session, Role.staff, "staff")
    _, token, _ = accounts.register_startup(session, startup_payload(8, parse=True))
    token_id = token.id
    session.close()
    results = race(pool, url, instance, "LOCK TABLE api_tokens IN SHARE ROW EXCLUSIVE MODE",
                   [("POST", f"/api/v1/tokens/{token_id}/revoke", {"headers": _bearer(secret)})] * RACERS)
    assert _statuses(results) == {200: 1, 409: RACERS - 1}, results
    assert all("already revoked" in body["message"] for body in _refusals(results))
    session = session_of(app)
    assert count(session, AuditEntry, AuditEntry.entity_type == "api_tokens", AuditEntry.action == "revoke") == 1
    session.close()


def test_concurrent_appeals_of_one_allocation_open_one_appeal(pool, world):
    url, instance, app = world
    session = session_of(app)
    district = build_district(session, offers=1, offer_quantity=100, startups=1, ask=50)
    outcome = cycles.run_cycle(session, now(app))
    allocation = session.scalar(sa.select(Allocation).where(Allocation.cycle_id == outcome.cycle.id))
    staff = session.get(Account, district.staff_id)
    cycles.reject_allocation(session, staff, allocation.id, "not this time", now(app))
    token, secret = ApiToken.issue(session.get(Account, district.startup_accounts[0]))
    session.add(token)
    session.commit()
    allocation_id = allocation.id
    session.close()
    results = race(pool, url, instance, "LOCK TABLE appeals IN SHARE ROW EXCLUSIVE MODE",
                   [("POST", f"/api/v1/allocations/{allocation_id}/appeals",
                     {"json": {"message": f"为何? {i}"}, "headers": _bearer(secret)}) for i in range(RACERS)])
    assert _statuses(results) == {201: 1, 409: RACERS - 1}, results
    assert all("still waiting for an answer" in body["message"] for body in _refusals(results))
    session = session_of(app)
    assert count(session, Appeal, Appeal.allocation_id == allocation_id) == 1
    session.close()


def test_concurrent_replays_of_one_signed_push_apply_it_once(pool, world):
    from adapters.simulators import telecom as telecom_sim
    from broker.models import CarrierSync, SyncSource

    url, instance, app = world
    session = session_of(app)
    accounts.register_carrier(session, "telecom", "China Telecom", "telecom", ["telecom"])
    session.close()
    secret = "whsec-race-0123456789"
    environ = {"BROKER_CARRIER_TELECOM_WEBHOOK_SECRET": secret, "BROKER_CARRIER_TELECOM_TOKEN": "sim-telecom-token"}
    headers, body = telecom_sim.build_webhook(secret, dt.datetime.now(dt.UTC), [0, 1])
    # A push takes its carrier's row lock first: every replay has verified the signature by then.
    results = race(pool, url, instance, "LOCK TABLE carriers IN EXCLUSIVE MODE",
                   [("POST", "/api/v1/webhooks/telecom", {"data": body, "headers": headers})] * RACERS, environ)
    assert _statuses(results) == {200: 1, 409: RACERS - 1}, results
    assert all("already received" in body["message"] for body in _refusals(results))
    session = session_of(app)
    assert count(session, CarrierSync, CarrierSync.source == SyncSource.webhook) == 1
    assert count(session, Offer) == 2
    session.close()
