"""A carrier's feed with text the database can't hold is quarantined, never stored (issue 9).

On PostgreSQL an offer whose attribute held a NUL was stored (the json type keeps \\u0000), and
every filtered search afterwards failed with a 500 for every tenant; a NUL in an external id
failed the whole sync.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from adapters.telecom import parse_webhook_body
from broker.models import Offer, QuarantinedRecord
from broker.services import market
from tests.integration.test_sync import apply, carriers  # noqa: F401  (the fixture)

GOOD = {"resource_type": "GPU", "region_code": "cn-sh1", "start_date": "2026-12-01", "end_date": "2026-12-31",
        "gpu_cards": 8, "hours": 100, "list_price_fen": 1000, "startup_price_fen": 500}


def _push(*items):
    return json.dumps({"event": "resources.updated", "resources": list(items)}).encode()


def test_nul_and_lone_surrogates_in_a_feed_are_quarantined_and_search_keeps_working(session, carriers):  # noqa: F811
    body = _push(
        {**GOOD, "resource_id": "ok", "spec": {"gpu_model": "H100"}},
        {**GOOD, "resource_id": "nul-attribute", "spec": {"gpu_model": "H1\u000000"}},
        {**GOOD, "resource_id": "surrogate-attribute", "spec": {"gpu_model": "\ud800"}},
        {**GOOD, "resource_id": "nul\u0000id", "spec": {"gpu_model": "H100"}},
        {**GOOD, "resource_id": "region", "region_code": "cn\u0000sh", "spec": {"gpu_model": "H100"}},
    )
    result = parse_webhook_body(body)
    assert [o.external_id for o in result.offers] == ["ok"]
    sync = apply(session, result)
    assert (sync.new, sync.quarantined) == (1, 4)
    stored = session.scalars(sa.select(QuarantinedRecord).order_by(QuarantinedRecord.id)).all()
    assert [q.external_id for q in stored] == ["nul-attribute", "surrogate-attribute", "nul\\u0000id", "region"]
    assert stored[0].raw["spec"]["gpu_model"] == "H1\\u000000" and "NUL" in stored[0].reason
    assert session.scalars(sa.select(Offer.external_id)).all() == ["ok"]
    query = market.list_offers(session, {"status": "active", "kind": "gpu", "attributes": {"gpu_model": "H100"}})
    assert [o.external_id for o in session.scalars(query)] == ["ok"]


def test_migration_0009_heals_offers_already_stored_with_nul_in_an_attribute(databases):
    import datetime as dt
    from decimal import Decimal

    from sqlalchemy.orm import Session

    from broker.db import create_engine
    from broker.migrations import upgrade
    from broker.models import Carrier

    engine = create_engine(databases.create())
    try:
        upgrade(engine, "0008")  # the revision before the fix: what a carrier could publish then
        with Session(engine) as session:
            # A Core insert of the columns 0008 had: the model's later columns are not there yet.
            carrier_id = session.execute(sa.insert(Carrier.__table__).values(
                code="ctc", name="China Telecom", adapter="telecom")).inserted_primary_key[0]
            lot = dict(carrier_id=carrier_id, kind="gpu", region="sh", quantity=Decimal(10), promised=Decimal(0),
                       window_start=dt.date(2026, 12, 1), window_end=dt.date(2026, 12, 31), list_price=Decimal(2),
                       unit_price=Decimal(1), divisible=True)
            session.add_all([
                Offer(external_id="nul", attributes={"gpu_model": "H1\u000000"}, **lot),
                Offer(external_id="surrogate", attributes={"gpu_model": "\ud800"}, **lot),
                Offer(external_id="fine", attributes={"gpu_model": "H100", "gpu_memory_gb": 80}, **lot),
                Offer(external_id="chinese", attributes={"gpu_model": "昇腾910B"}, **lot),
            ])
            session.commit()
        upgrade(engine)
        with Session(engine) as session:
            attributes = dict(session.execute(sa.select(Offer.external_id, Offer.attributes)).all())
            assert attributes == {"nul": {"gpu_model": "H1\\u000000"}, "surrogate": {"gpu_model": "\\ud800"},
                                  "fine": {"gpu_model": "H100", "gpu_memory_gb": 80}, "chinese": {"gpu_model": "昇腾910B"}}
            query = market.list_offers(session, {"status": "active", "kind": "gpu", "attributes": {"gpu_model": "H100"}})
            assert [o.external_id for o in session.scalars(query)] == ["fine"]
    finally:
        engine.dispose()
