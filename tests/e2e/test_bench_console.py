"""`broker bench district` and `broker bench console` through the real CLI, at a tiny size: the
district reconciles and oversells nothing, a non-empty database is refused, and the bench prints
a row for every staff GET page the app has."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

from broker.bench_console import staff_pages
from broker.cli import main
from broker.db import create_engine
from broker.migrations import upgrade
from broker.models import Allocation, Offer, RequestStatus, ResourceRequest, Startup
from broker.services.ledger import reconcile

TINY = ["--startups", "30", "--requests", "100", "--allocations", "300"]
HELD = ("proposed", "approved", "provisioning", "active")


@pytest.fixture(scope="module")
def district(databases) -> str:
    url = databases.create()
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    result = CliRunner().invoke(main, ["bench", "district", "--database-url", url, *TINY])
    assert result.exit_code == 0, result.output
    assert "Staff person: bench.staff@" in result.stdout
    return url


@pytest.fixture
def reading(district):
    engine = create_engine(district)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_the_district_reconciles_and_no_offer_is_oversold(reading):
    assert reconcile(reading).ok
    assert reading.scalar(sa.select(sa.func.count(Startup.id))) == 30
    assert reading.scalar(sa.select(sa.func.count(ResourceRequest.id))) == 100
    assert 270 <= reading.scalar(sa.select(sa.func.count(Allocation.id))) <= 330
    held = dict(reading.execute(
        sa.select(Allocation.offer_id, sa.func.sum(Allocation.quantity, type_=Offer.quantity.type))
        .where(Allocation.status.in_(HELD)).group_by(Allocation.offer_id)
    ).all())
    for offer in reading.scalars(sa.select(Offer)):
        assert offer.promised == held.get(offer.id, 0), offer.id  # promised is exactly what is held
        assert offer.promised <= offer.quantity
    assert set(reading.scalars(sa.select(ResourceRequest.status).distinct())) == set(RequestStatus)
    # Every appeal is a thread that starts with the startup's message.
    from broker.models.workflow import Appeal, AppealMessage

    appeals = reading.scalar(sa.select(sa.func.count(Appeal.id)))
    assert appeals >= 5
    assert reading.scalar(sa.select(sa.func.count(sa.distinct(AppealMessage.appeal_id)))) == appeals


def test_a_database_with_rows_is_refused(district):
    result = CliRunner().invoke(main, ["bench", "district", "--database-url", district, *TINY])
    assert result.exit_code != 0
    assert "already has rows" in result.output


def test_sqlite_is_refused_at_the_full_size(tmp_path):
    result = CliRunner().invoke(main, ["bench", "district", "--database-url", f"sqlite:///{tmp_path}/big.sqlite3"])
    assert result.exit_code != 0
    assert "PostgreSQL" in result.output


def test_the_bench_prints_a_row_for_every_staff_page(district, app):
    result = CliRunner().invoke(main, ["bench", "console", "--database-url", district, "--repeat", "1", "--json"])
    rows = json.loads(result.stdout)
    assert {row["endpoint"] for row in rows} == {endpoint for endpoint, _names in staff_pages(app)}
    measured = [row for row in rows if not row["verdict"].startswith("skipped")]
    assert measured and all(row["status"] == 200 and row["statements"] > 0 for row in measured)
    assert any("?page=2" in row["url"] for row in rows) and any(row["url"] == "/staff/review" for row in rows)
    assert result.exit_code == (1 if any(row["verdict"] == "FAIL" for row in rows) else 0)
    table = CliRunner().invoke(main, ["bench", "console", "--database-url", district, "--repeat", "1"]).stdout
    assert table.startswith("| page (endpoint) | URL | status | median ms |")
    assert all(endpoint in table for endpoint, _names in staff_pages(app))
