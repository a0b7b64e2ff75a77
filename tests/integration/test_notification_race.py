"""The same event's notifications written by several workers at the same moment: one email per
person, and no worker fails (the unique dedupe key with ON CONFLICT DO NOTHING)."""

import threading

import pytest
import sqlalchemy as sa

from broker.clock import utcnow
from broker.db import get_db
from broker.models.outbox import OutboxEmail
from broker.models.people import Side
from broker.models.workflow import Event
from broker.services import accounts, events, notifications, people
from tests.conftest import startup_payload
from tests.world import committed_app, session_of

pytestmark = [pytest.mark.committing, pytest.mark.slow]

WORKERS = 6


def test_racing_workers_write_each_persons_email_once(databases, tmp_path):
    url = databases.create()
    if not url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is a PostgreSQL one")
    app = committed_app(url, str(tmp_path))
    session = session_of(app)
    startup, _, _ = accounts.register_startup(session, startup_payload(900, parse=True))
    for n in range(3):
        people._new_person(session, email=f"p{n}@race.test", name=f"p{n}", password_hash=None, side=Side.startup,
                           startup_id=startup.id, company_role=people.CompanyRole.administrator)
    session.commit()
    event = events.record(session, "startup.rejected", None, startup.id, None, utcnow(), reason="重复注册")
    session.commit()
    event_id = event.id
    # Its emails were written with it; take them away, so the workers race to write them again.
    session.execute(sa.delete(OutboxEmail).where(OutboxEmail.dedupe_key.like(f"event:{event_id}:%")))
    session.commit()
    session.close()

    barrier, errors, written = threading.Barrier(WORKERS), [], []

    def worker() -> None:
        mine = session_of(app)
        try:
            again = mine.get(Event, event_id)
            barrier.wait(timeout=30)
            written.append(notifications.notify(mine, [again]))
            mine.commit()
        except Exception as error:  # noqa: BLE001 - any failure fails the test below
            errors.append(error)
        finally:
            mine.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    session = session_of(app)
    addresses = session.scalars(sa.select(OutboxEmail.to_address).where(OutboxEmail.dedupe_key.like(f"event:{event_id}:%"))
                                .order_by(OutboxEmail.to_address)).all()
    assert addresses == ["p0@race.test", "p1@race.test", "p2@race.test"]  # once each
    assert sum(written) == 3  # the workers together wrote each once
    session.close()
    get_db(app).engine.dispose()
