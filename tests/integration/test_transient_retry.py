"""A deadlock or a locked database is retried in a fresh transaction; if it persists, 503, never 500.

The failures are real: a deadlock between two PostgreSQL connections, and a SQLite database
whose write lock another connection holds.
"""

import datetime as dt
import logging
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from broker.clock import SHANGHAI, now
from broker.db import create_engine, get_db
from broker.models import Account, Allocation, AllocationStatus, JobRun
from broker.services import accounts, cycles
from scheduler.runner import Runner
from tests.world import build_district, committed_app, session_of

pytestmark = pytest.mark.committing


def _proposal(app):
    """A district with one cycle run; returns (staff token, one proposal's id and offer id)."""
    session = session_of(app)
    district = build_district(session, offers=2, offer_quantity=100, startups=2, ask=50)
    cycle = cycles.run_cycle(session, now(app)).cycle
    staff = session.get(Account, district.staff_id)
    token = accounts.issue_token(session, staff, staff.id, now(app))[1]
    allocation = session.scalar(sa.select(Allocation).where(Allocation.cycle_id == cycle.id).order_by(Allocation.id))
    found = (token, allocation.id, allocation.offer_id)
    session.close()
    return found


def _status(app, allocation_id):
    session = session_of(app)
    try:
        return session.get(Allocation, allocation_id).status
    finally:
        session.close()


def test_a_real_deadlock_is_retried_and_the_approval_goes_through(databases, tmp_path, caplog):
    url = databases.create()
    if not url.startswith("postgresql"):
        pytest.skip("a deadlock between two connections is a PostgreSQL one")
    app = committed_app(url, str(tmp_path))
    token, allocation_id, offer_id = _proposal(app)
    other = create_engine(url)
    ready, done = threading.Event(), threading.Event()

    def lock_in_the_wrong_order():
        # Offer first, then the allocation: the opposite of the approval. This connection
        # waits longer before checking for deadlock, so PostgreSQL aborts the approval's side.
        with other.connect() as connection:
            connection.exec_driver_sql("SET deadlock_timeout = '20s'")
            connection.execute(sa.text("SELECT id FROM offers WHERE id = :id FOR UPDATE"), {"id": offer_id})
            ready.set()
            _wait_until_another_backend_waits_for_a_lock(connection)  # the approval, holding the allocation
            connection.execute(sa.text("SELECT id FROM allocations WHERE id = :id FOR UPDATE"), {"id": allocation_id})
            connection.rollback()
        done.set()

    locker = threading.Thread(target=lock_in_the_wrong_order)
    locker.start()
    try:
        assert ready.wait(10)
        with caplog.at_level(logging.WARNING, logger="broker"):
            response = app.test_client().post(
                f"/api/v1/allocations/{allocation_id}/approve", json={}, headers={"Authorization": f"Bearer {token}"}
            )
    finally:
        locker.join(30)
        other.dispose()
    assert done.is_set()
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "approved"
    assert any("deadlock" in r.getMessage() and "retry" in r.getMessage() for r in caplog.records), caplog.text
    assert _status(app, allocation_id) is AllocationStatus.approved
    get_db(app).engine.dispose()


def _wait_until_another_backend_waits_for_a_lock(connection, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # pg_stat_activity is read once per transaction and kept; this connection holds its
        # transaction open (it holds the lock), so drop the copy before each look.
        connection.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        waiting = connection.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ))
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the approval never waited for the offer's lock")


@pytest.fixture
def locked_sqlite(tmp_path):
    """An app on its own SQLite file with a short busy timeout, and a way to hold its write lock."""
    path = tmp_path / "locked.sqlite3"
    app = committed_app(f"sqlite:///{path}", str(tmp_path), SQLITE_BUSY_TIMEOUT=0.2)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def hold(seconds=None):
        holder.execute("BEGIN IMMEDIATE")
        if seconds is not None:
            threading.Timer(seconds, lambda: holder.execute("ROLLBACK")).start()

    yield app, hold, holder
    holder.close()
    get_db(app).engine.dispose()


def test_a_locked_sqlite_database_is_waited_out_by_a_retry(locked_sqlite):
    app, hold, _ = locked_sqlite
    token, allocation_id, _ = _proposal(app)
    hold(0.5)  # longer than one attempt's busy timeout, shorter than all of them
    response = app.test_client().post(
        f"/api/v1/allocations/{allocation_id}/approve", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.get_json()
    assert _status(app, allocation_id) is AllocationStatus.approved


def test_a_database_that_stays_locked_answers_503_with_retry_after_and_changes_nothing(locked_sqlite):
    app, hold, holder = locked_sqlite
    token, allocation_id, _ = _proposal(app)
    hold()
    try:
        response = app.test_client().post(
            f"/api/v1/allocations/{allocation_id}/approve", json={}, headers={"Authorization": f"Bearer {token}"}
        )
    finally:
        holder.execute("ROLLBACK")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    body = response.get_json()
    assert body["code"] == 503 and body["status"] == "Service Unavailable" and "try again" in body["message"]
    assert _status(app, allocation_id) is AllocationStatus.proposed


def test_a_scheduled_job_is_retried_after_a_transient_failure(locked_sqlite):
    app, hold, _ = locked_sqlite
    slot = dt.datetime(2026, 12, 7, 9, 5, tzinfo=SHANGHAI)
    hold(0.5)
    assert Runner(app, "retrying").fire("close_approvals", slot) == "ran"
    session = session_of(app)
    [run] = session.scalars(sa.select(JobRun)).all()
    assert run.outcome == "ok"
    session.close()
