"""The migrated schema is the models' schema, and the database itself backs the rules."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from broker.db import Base, create_engine
from broker.migrations import downgrade, head_revision, upgrade
from broker.models import AuditEntry, Carrier, Offer, ResourceRequest, Startup


def _diff(connection):
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def test_migrated_schema_matches_the_models(session):
    assert _diff(session.connection()) == []


@pytest.mark.slow
def test_migrations_go_down_to_nothing_and_up_again(databases):
    engine = create_engine(databases.create())
    try:
        upgrade(engine)
        downgrade(engine, "base")
        with engine.connect() as connection:
            assert set(sa.inspect(connection).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        with engine.connect() as connection:
            assert _diff(connection) == []
            assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == head_revision()
    finally:
        engine.dispose()


@pytest.fixture
def carrier(session):
    carrier = Carrier(code="ctc", name="China Telecom", adapter="telecom")
    session.add(carrier)
    session.commit()
    return carrier


def _offer(carrier, **overrides):
    values = dict(
        carrier_id=carrier.id,
        external_id="lot-1",
        kind="gpu",
        region="sh-changning",
        attributes={"gpu_model": "H100"},
        quantity=Decimal(100),
        promised=Decimal(0),
        window_start=dt.date(2026, 12, 1),
        window_end=dt.date(2026, 12, 31),
        list_price=Decimal(10),
        unit_price=Decimal(5),
        divisible=True,
    )
    values.update(overrides)
    return Offer(**values)


@pytest.mark.parametrize(
    "overrides",
    [
        {"quantity": Decimal(0)},
        {"quantity": Decimal(-5)},
        {"promised": Decimal(101)},
        {"promised": Decimal(-1)},
        {"window_end": dt.date(2026, 12, 1)},
        {"unit_price": Decimal(-1)},
        {"unit_price": Decimal(11)},
        {"kind": "data_line", "divisible": True},
    ],
    ids=["zero", "negative", "oversold", "negative-promise", "empty-window", "negative-price", "above-list-price",
         "divisible-line"],
)
def test_database_refuses_a_broken_offer(session, carrier, overrides):
    session.add(_offer(carrier, **overrides))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()
    session.rollback()


def test_database_refuses_a_duplicate_external_id(session, carrier):
    session.add(_offer(carrier))
    session.commit()
    session.add(_offer(carrier))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()
    session.rollback()


def test_guarded_promise_cannot_oversell_even_if_the_code_forgets(session, carrier):
    session.add(_offer(carrier))
    session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        session.execute(sa.update(Offer).values(promised=Offer.quantity + 1))
    session.rollback()


@pytest.mark.parametrize(
    "overrides",
    [
        {"quantity": Decimal(0)},
        {"min_quantity": Decimal(11)},
        {"min_quantity": Decimal(0)},
        {"window_start": dt.date(2027, 1, 1)},
    ],
    ids=["zero", "min-above-quantity", "zero-min", "reversed-window"],
)
def test_database_refuses_a_broken_request(session, make_actor, overrides):
    startup = make_actor("startup")
    values = dict(
        startup_id=startup.startup_id,
        kind="gpu",
        quantity=Decimal(10),
        window_start=dt.date(2026, 12, 1),
        window_end=dt.date(2026, 12, 31),
    )
    values.update(overrides)
    session.add(ResourceRequest(**values))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()
    session.rollback()


def test_quantities_are_integers_in_storage(session, carrier):
    session.add(_offer(carrier, quantity=Decimal("12.345")))
    session.commit()
    raw = session.execute(sa.text("SELECT quantity FROM offers")).scalar_one()
    assert raw == 12345 and isinstance(raw, int)
    assert session.scalar(sa.select(Offer.quantity)) == Decimal("12.345")


def test_every_change_is_audited_and_the_log_is_append_only(session, carrier):
    startup = Startup(
        name="上海测试", uscc="91350100M000100Y43", sector="ai_models", founded_on=dt.date(2022, 1, 1),
        headcount=3, contact_name="张伟", contact_email="a@example.cn",
    )
    session.add(startup)
    session.commit()
    startup.verify(None, dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.UTC))
    session.commit()
    entries = session.scalars(
        sa.select(AuditEntry).where(AuditEntry.entity_type == "startups", AuditEntry.entity_id == startup.id)
        .order_by(AuditEntry.id)
    ).all()
    assert [e.action for e in entries] == ["create", "verify"]
    assert entries[1].before["status"] == "pending" and entries[1].after["status"] == "verified"
    with pytest.raises(sa.exc.DatabaseError):
        session.execute(sa.text("UPDATE audit_log SET action = 'forged'"))
    session.rollback()
    with pytest.raises(sa.exc.DatabaseError):
        session.execute(sa.text("DELETE FROM audit_log"))
    session.rollback()


@pytest.mark.slow
def test_existing_offers_get_their_channel_and_withdrawer_from_the_audit_log(databases):
    """0006 backfills: the latest publication the audit log records, else the sync that ran when
    the offer was created (bulk inserts are not audited one by one), else pull."""
    engine = create_engine(databases.create())
    at = dt.datetime(2026, 11, 1, 10, 0)
    syncs = sa.table("carrier_syncs", *[sa.column(c) for c in (
        "id", "carrier_id", "source", "status", "complete", "started_at", "finished_at", "new", "changed", "unchanged",
        "withdrawn", "quarantined", "conflicts")])
    offers = sa.table("offers", *[sa.column(c) for c in (
        "id", "carrier_id", "external_id", "kind", "region", "quantity", "promised", "window_start",
        "window_end", "list_price", "unit_price", "divisible", "status", "created_at", "updated_at")],
        sa.column("attributes", sa.JSON))
    audit = sa.table("audit_log", sa.column("at"), sa.column("action"), sa.column("entity_type"),
                     sa.column("entity_id"), sa.column("before", sa.JSON), sa.column("after", sa.JSON))
    # (external id, created minutes after 10:00, status, audit actions (action, sync id)) -> (channel, withdrawn by)
    cases = {
        "posted": (0, "active", [("create", None)], ("api", None)),
        "pulled": (1, "active", [], ("pull", None)),
        "uploaded": (61, "active", [], ("upload", None)),
        "pushed-later": (1, "active", [("sync_update", 3)], ("webhook", None)),
        "posted-then-pulled": (0, "active", [("create", None), ("sync_republish", 1)], ("pull", None)),
        "withdrawn-by-carrier": (0, "withdrawn", [("create", None), ("withdraw", None)], ("api", "carrier")),
        "withdrawn-by-pull": (1, "withdrawn", [("withdraw", None), ("sync_republish", 1), ("sync_withdraw", 1)],
                              ("pull", "sync")),
        "withdrawn-unexplained": (1, "withdrawn", [], ("pull", "sync")),
    }
    try:
        upgrade(engine, "0004")
        with engine.begin() as connection:
            carriers = sa.table("carriers", *[sa.column(c) for c in ("id", "code", "name", "adapter", "active",
                                                                     "created_at")])
            connection.execute(sa.insert(carriers), [
                {"id": 1, "code": "ctc", "name": "Telecom", "adapter": "telecom", "active": True, "created_at": at}])
            connection.execute(sa.insert(syncs), [
                {"id": n, "carrier_id": 1, "source": source, "status": "succeeded", "complete": source == "pull",
                 "started_at": at + dt.timedelta(hours=n - 1), "finished_at": at + dt.timedelta(hours=n - 1, minutes=5),
                 "new": 0, "changed": 0, "unchanged": 0, "withdrawn": 0, "quarantined": 0, "conflicts": 0}
                for n, source in ((1, "pull"), (2, "upload"), (3, "webhook"))
            ])
            for n, (external_id, (minutes, status, actions, _)) in enumerate(cases.items(), start=1):
                created = at + dt.timedelta(minutes=minutes)
                connection.execute(sa.insert(offers), [{
                    "id": n, "carrier_id": 1, "external_id": external_id, "kind": "gpu", "region": "sh",
                    "attributes": {},
                    "quantity": 1000 if status == "active" else 0, "promised": 0, "window_start": dt.date(2026, 12, 1),
                    "window_end": dt.date(2026, 12, 31), "list_price": 10, "unit_price": 5, "divisible": True,
                    "status": status, "created_at": created, "updated_at": created}])
                for action, sync_id in actions:
                    connection.execute(sa.insert(audit), [{
                        "at": created, "action": action, "entity_type": "offers", "entity_id": n, "before": {},
                        "after": {"status": status} if sync_id is None else {"status": status, "sync_id": sync_id}}])
        upgrade(engine)
        with engine.connect() as connection:
            found = {row.external_id: (row.channel, row.withdrawn_by)
                     for row in connection.execute(sa.text("SELECT external_id, channel, withdrawn_by FROM offers"))}
        assert found == {external_id: expected for external_id, (_, _, _, expected) in cases.items()}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_the_audit_log_stays_append_only_across_0007_up_and_down(databases):
    """0007 adds audit_log.acting_staff_id; SQLite's batch mode rebuilds the table, which drops triggers."""
    engine = create_engine(databases.create())

    def refuses_changes() -> bool:
        refused = 0
        for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
            with engine.connect() as connection:
                try:
                    connection.execute(sa.text(statement))
                except sa.exc.DatabaseError:
                    refused += 1
        return refused == 2

    try:
        upgrade(engine, "0004")
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO audit_log (at, action, entity_type, entity_id) VALUES (CURRENT_TIMESTAMP, 'create', 'x', 1)"))
        upgrade(engine, "0007")
        assert refuses_changes()
        downgrade(engine, "0004")
        assert refuses_changes()
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM audit_log")) == 1
    finally:
        engine.dispose()
