"""First webhook subscriptions made at the same moment from several processes: one row, no 500."""

import multiprocessing

import pytest
import sqlalchemy as sa

from broker.db import get_db
from broker.models.workflow import WebhookSubscription
from broker.services import accounts
from tests.conftest import startup_payload
from tests.world import committed_app, session_of

pytestmark = [pytest.mark.committing, pytest.mark.slow]

PROCESSES = 6
ROUNDS = 15  # one fresh account per round, subscribed by every process at once


def subscribe_worker(url, instance, tokens, barrier, results):
    """One process: for each account, wait for the others, then PUT its first webhook."""
    app = committed_app(url, instance)
    client = app.test_client()
    outcomes = []
    for n, token in enumerate(tokens):
        barrier.wait(timeout=60)
        response = client.put("/api/v1/me/webhook", json={"url": f"http://127.0.0.1:9/hook/{n}"},
                              headers={"Authorization": f"Bearer {token}"})
        outcomes.append((n, response.status_code, (response.get_json() or {}).get("secret")))
    get_db(app).engine.dispose()
    results.put(outcomes)


def test_concurrent_first_subscriptions_make_one_row_and_no_500(databases, tmp_path):
    url = databases.create()
    if not url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is a PostgreSQL one")
    app = committed_app(url, str(tmp_path))
    session = session_of(app)
    tokens, account_ids = [], []
    for n in range(ROUNDS):
        _, token, secret = accounts.register_startup(session, startup_payload(500 + n, parse=True))
        tokens.append(secret)
        account_ids.append(token.account_id)
    session.close()
    get_db(app).engine.dispose()

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [context.Process(target=subscribe_worker, args=(url, str(tmp_path), tokens, barrier, results))
               for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [entry for _ in workers for entry in results.get(timeout=300)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    statuses = sorted({status for _, status, _ in outcomes})
    assert statuses == [200], [o for o in outcomes if o[1] != 200]
    session = session_of(app)
    rows = session.scalars(sa.select(WebhookSubscription).order_by(WebhookSubscription.account_id)).all()
    assert [r.account_id for r in rows] == account_ids  # one row per account
    for n, row in enumerate(rows):
        assert row.url == f"http://127.0.0.1:9/hook/{n}"
        assert row.secret in {secret for m, _, secret in outcomes if m == n}  # the last writer's secret
    session.close()
    get_db(app).engine.dispose()
