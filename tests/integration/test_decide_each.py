"""`cycles.decide_each` against a decision made meanwhile, on PostgreSQL, without timing luck: a
second session holds the first proposal's locks while the batch waits for them (seen in
pg_stat_activity, not guessed with a sleep), approves it and commits; the batch then reads the row
as it is now, refuses that one item and approves the others, all in one commit."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from broker.db import get_db, utcnow
from broker.models import Account, Allocation, AllocationStatus, Role
from broker.services import allocations, cycles
from tests.world import build_district, committed_app, session_of

pytestmark = pytest.mark.committing


def test_an_item_decided_meanwhile_is_refused_and_the_rest_approved(databases, tmp_path):
    url = databases.create()
    if not url.startswith("postgresql"):
        pytest.skip("row locks and pg_stat_activity: PostgreSQL only")
    app = committed_app(url, str(tmp_path))
    try:
        setup = session_of(app)
        build_district(setup, offers=2, offer_quantity=100, startups=4, ask=50)
        staff = setup.scalar(sa.select(Account).where(Account.role == Role.staff))
        cycle = cycles.run_cycle(setup, utcnow(), staff).cycle
        cycle_id, staff_id = cycle.id, staff.id
        ids = list(setup.scalars(sa.select(Allocation.id).where(Allocation.cycle_id == cycle_id).order_by(Allocation.id)))
        setup.close()
        assert len(ids) >= 3

        blocker = session_of(app)
        first = allocations.lock_one(blocker, ids[0])  # its request, itself and its offer, held
        results: list[cycles.ItemResult] = []

        def batch() -> None:
            session = session_of(app)
            try:
                actor = session.get(Account, staff_id)
                results.extend(cycles.decide_each(session, actor, cycle_id,
                                                  [{"allocation_id": i, "decision": "approve"} for i in reversed(ids)],
                                                  utcnow()))
            finally:
                session.close()

        worker = threading.Thread(target=batch)
        worker.start()
        watcher = sa.create_engine(url)
        try:
            for _ in range(200):  # until the batch waits on a row lock the blocker holds
                with watcher.connect() as connection:
                    waiting = connection.scalar(sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"))
                if waiting:
                    break
                time.sleep(0.05)
            assert waiting == 1
            assert not results
            allocations.approve(blocker, blocker.get(Account, staff_id), first, None, utcnow())
            blocker.commit()
        finally:
            watcher.dispose()
            blocker.close()
        worker.join(timeout=30)
        assert not worker.is_alive()

        assert [r.allocation_id for r in results] == list(reversed(ids))  # in the order asked
        by_id = {r.allocation_id: r for r in results}
        assert by_id[ids[0]].decided is False and by_id[ids[0]].code == "already_approved"
        assert all(by_id[i].decided for i in ids[1:])
        check = session_of(app)
        statuses = dict(check.execute(sa.select(Allocation.id, Allocation.status).where(Allocation.cycle_id == cycle_id)).all())
        check.close()
        assert all(statuses[i] is AllocationStatus.approved for i in ids)
    finally:
        get_db(app).engine.dispose()
