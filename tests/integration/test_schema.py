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
    startup.verify()
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


def test_the_audit_log_stays_append_only_across_0008_up_and_down(databases):
    """0008 adds audit_log.acting_staff_id; SQLite's batch mode rebuilds the table, which drops triggers."""
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
        upgrade(engine, "0008")
        assert refuses_changes()
        downgrade(engine, "0004")
        assert refuses_changes()
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM audit_log")) == 1
    finally:
        engine.dispose()
