"""`broker bench district` and `broker bench console` through the real CLI, at a tiny size: the
district reconciles and oversells nothing, its notices and statements agree with the awards and
the ledger, a non-empty database is refused, and the bench prints a row for every staff GET page
the app has (the notice and statement pages measured, not skipped)."""

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
from broker.models import (
    Allocation,
    Award,
    LedgerEntry,
    LedgerKind,
    Notice,
    NoticeItem,
    NoticeState,
    NoticeStatus,
    Objection,
    ObjectionStatus,
    Offer,
    RequestStatus,
    ResourceRequest,
    SettlementLine,
    SettlementStatement,
    Startup,
    StatementStatus,
)
from broker.services.ledger import reconcile

TINY = ["--startups", "30", "--requests", "100", "--allocations", "300", "--ledger-rows", "2000"]
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


def test_redemptions_pay_usage_reports_of_their_own_allocation_to_the_ledger_size_asked(reading):
    from broker.models import UsageReport
    from broker.models.pledges import Pledge
    from broker.models.ratings import AllocationRating
    from broker.models.surveys import SurveyCampaign, SurveyDeclaration

    rows = reading.scalar(sa.select(sa.func.count(LedgerEntry.id)))
    statements = reading.scalar(sa.select(sa.func.count(LedgerEntry.id)).where(~LedgerEntry.idempotency_key.like("bench:%")))
    # About --ledger-rows (an award's use is split in whole fen, never past it), and the statements' write-offs.
    assert 1900 <= rows - statements <= 2000, (rows, statements)
    redeems = reading.execute(
        sa.select(LedgerEntry.allocation_id, UsageReport.allocation_id, LedgerEntry.created_at, UsageReport.recorded_at)
        .join(UsageReport, UsageReport.id == LedgerEntry.usage_report_id).where(LedgerEntry.kind == LedgerKind.redeem)
    ).all()
    assert len(redeems) == reading.scalar(sa.select(sa.func.count(LedgerEntry.id)).where(LedgerEntry.kind == LedgerKind.redeem))
    assert len(redeems) > 1000
    assert all(paid == used and at == recorded for paid, used, at, recorded in redeems)
    # Allocations without an award reported use too; survey lines, pledges and ratings are there.
    assert reading.scalar(sa.select(sa.func.count(UsageReport.id))) > len(redeems)
    assert reading.scalar(sa.select(sa.func.count(SurveyCampaign.id))) == 5
    assert reading.scalar(sa.select(sa.func.count(SurveyDeclaration.id))) > 0
    assert reading.scalar(sa.select(sa.func.count(Pledge.id))) == 5 * 3 * 6
    assert reading.scalar(sa.select(sa.func.count(AllocationRating.id))) > 0


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


def test_the_notices_hold_the_noticed_awards_and_the_statements_agree_with_the_ledger(reading):
    notices = {n.id: n for n in reading.scalars(sa.select(Notice))}
    assert notices and {n.status for n in notices.values()} == {NoticeStatus.open, NoticeStatus.final}
    items = reading.execute(sa.select(NoticeItem.notice_id, Award.notice_state, NoticeItem.amount, Award.amount)
                            .join(Award, Award.id == NoticeItem.award_id)).all()
    for notice_id, state, frozen, amount in items:  # final notices hold final awards, open ones awards in notice
        final = notices[notice_id].status is NoticeStatus.final
        assert state is (NoticeState.final if final else NoticeState.in_notice) and frozen == amount
    noticed = reading.scalar(sa.select(sa.func.count(Award.id)).where(
        Award.notice_state.in_((NoticeState.final, NoticeState.in_notice))))
    assert noticed == len(items)  # every award noticed is in exactly one notice (award_id is unique)
    for n in notices.values():
        assert len(n.items) <= 500 and (n.status is NoticeStatus.final) == (n.finalised_at is not None)
    objections = reading.scalars(sa.select(Objection)).all()
    for o in objections:
        assert o.status is ObjectionStatus.dismissed or notices[o.notice_id].status is NoticeStatus.open

    statements = reading.scalars(sa.select(SettlementStatement)).all()
    assert len(statements) == 16  # four programs, four periods each
    assert StatementStatus.draft in {s.status for s in statements}
    assert reading.scalar(sa.select(sa.func.count(SettlementLine.id))) > 0
    for statement in statements:
        assert statement.total_payable == sum((line.payable for line in statement.lines), 0)
        written = reading.scalar(sa.select(sa.func.count(LedgerEntry.id)).where(
            LedgerEntry.kind == LedgerKind.write_off,
            LedgerEntry.idempotency_key.like(f"write_off:statement:{statement.id}:award:%")))
        paid = sum(1 for line in statement.lines if line.payable > 0)
        assert written == (paid if statement.status is StatementStatus.written_off else 0)
    assert reconcile(reading).ok


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
    settled = {row["endpoint"]: row for row in rows if row["endpoint"].startswith("staff_settlement.")}
    for endpoint in ("staff_settlement.notice", "staff_settlement.statement", "staff_settlement.statement_xlsx"):
        assert settled[endpoint]["status"] == 200, settled[endpoint]  # sampled: the biggest notice and statement
    assert settled["staff_settlement.statement_xlsx"]["verdict"] == "download"
    assert result.exit_code == (1 if any(row["verdict"] == "FAIL" for row in rows) else 0)
    table = CliRunner().invoke(main, ["bench", "console", "--database-url", district, "--repeat", "1"]).stdout
    assert table.startswith("| page (endpoint) | URL | status | median ms |")
    assert all(endpoint in table for endpoint, _names in staff_pages(app))


def test_the_reports_bench_times_every_report_page_and_api_and_reads_the_exports_back(district):
    from broker.bench_reports import VARIANTS

    result = CliRunner().invoke(main, ["bench", "reports", "--database-url", district, "--repeat", "1", "--json"])
    measured = json.loads(result.stdout)
    rows, exports = measured["urls"], measured["exports"]
    # Each report: the default, then each variant, as a page and through the API, all answering 200.
    assert len(rows) == sum(2 * (1 + len(variants)) for variants in VARIANTS.values())
    assert {row["endpoint"] for row in rows} == {f"{report} {side}" for report in VARIANTS for side in ("page", "API")}
    assert all(row["status"] == 200 and row["statements"] > 0 for row in rows), [r for r in rows if r["status"] != 200]
    assert any("/api/v1/reports/pack?year=" in row["url"] for row in rows)
    # The exports were read back: the CSV's records and the workbook's rows (more than a header each).
    with create_engine(district).connect() as connection:
        granted = connection.execute(sa.text(
            "SELECT COUNT(*) FROM allocations WHERE status IN ('approved', 'provisioning', 'active', 'released')")).scalar()
    # Each asked for from the page's 后台导出 form (303 to 我的导出), then written by the run_exports job.
    assert [row["url"] for row in exports] == ["/staff/reports/utilisation.csv (ready)",
                                               "/staff/reports/utilisation.xlsx (ready)"]
    assert all(row["status"] == 303 and row["peak_mib"] > 0 and row["megabytes"] >= 0 for row in exports)
    assert 0 < exports[0]["rows"] and exports[1]["rows"] > 0
    assert exports[0]["rows"] <= granted + 200  # never more than the granted allocations and the report's other rows
    assert result.exit_code == (1 if any(r["verdict"] == "FAIL" for r in rows + exports) else 0)
