"""A use case that fails halfway leaves nothing written: broker.db.unit_of_work rolls it back
(STYLE.md example 5b), and it composes with retry_transient instead of repeating it."""

import datetime as dt
import sqlite3
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.db import commits_made, retry_transient, unit_of_work
from broker.errors import InvalidInput
from broker.models import Account, Offer
from broker.services import market


def gpu_lot(external_id: str, **overrides) -> dict:
    return {
        "external_id": external_id,
        "kind": "gpu",
        "region": "sh",
        "attributes": {"gpu_model": "H100"},
        "quantity": Decimal(100),
        "window_start": dt.date(2026, 12, 1),
        "window_end": dt.date(2026, 12, 31),
        "list_price": Decimal(20),
        "unit_price": Decimal(10),
        "divisible": True,
        **overrides,
    }


def offer_ids(session) -> set[str]:
    return set(session.scalars(sa.select(Offer.external_id)))


def test_a_failing_block_writes_nothing_and_a_finished_one_commits_once(app, session, make_actor):
    carrier = session.get(Account, make_actor("carrier").account_id)
    with pytest.raises(RuntimeError), unit_of_work(session):
        session.add(Offer(carrier_id=carrier.carrier_id, **gpu_lot("half")))
        session.flush()  # written to the database, inside the transaction
        raise RuntimeError("the use case fails halfway")
    assert offer_ids(session) == set()

    before = commits_made(session)
    with unit_of_work(session):
        session.add(Offer(carrier_id=carrier.carrier_id, **gpu_lot("whole")))
    assert offer_ids(session) == {"whole"} and commits_made(session) == before + 1


def test_a_refused_batch_of_offers_leaves_nothing_behind_even_if_the_caller_commits(app, session, make_actor):
    carrier = session.get(Account, make_actor("carrier").account_id)
    market.upsert_offers(session, carrier, [gpu_lot("kept")])
    with pytest.raises(InvalidInput):
        # The new lot is added before the second record is refused (its kind cannot change).
        market.upsert_offers(session, carrier, [gpu_lot("new"), gpu_lot("kept", kind="tokens", attributes={})])
    session.commit()  # a careless caller: nothing of the refused use case may still be pending
    assert offer_ids(session) == {"kept"}


def test_a_transient_failure_is_rolled_back_by_the_unit_of_work_and_retried_whole(app, session, make_actor):
    carrier = session.get(Account, make_actor("carrier").account_id)
    tries = []

    def use_case():
        with unit_of_work(session):
            tries.append(len(tries) + 1)
            session.add(Offer(carrier_id=carrier.carrier_id, **gpu_lot(f"try-{len(tries)}")))
            session.flush()
            if len(tries) == 1:
                raise sa.exc.OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))

    retry_transient(use_case, sleep=lambda _: None)  # no before_retry: the unit of work rolled back already
    assert tries == [1, 2] and offer_ids(session) == {"try-2"}
