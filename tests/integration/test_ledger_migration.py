"""0010 moves today's commitments and program totals into the ledger without losing a fen.

A database at 0009 holds two programs and three commitments (one partly redeemed, one given back
after partial use, one untouched); after the upgrade every program's and award's totals are
what they were, the rows say so (reconciliation is clean), and the next award gets a fresh id.
"""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import create_engine
from broker.migrations import downgrade, upgrade
from broker.models import Award, AwardStatus, LedgerEntry, LedgerKind, SubsidyProgram
from broker.services import ledger

pytestmark = pytest.mark.slow

AT = dt.datetime(2026, 3, 2, 2, 0)  # naive UTC, as stored


def _table(name, *columns):
    return sa.table(name, *(sa.column(c, sa.JSON) if c in ("attributes", "kinds", "stats") else sa.column(c) for c in columns))


def _fill_0009(connection) -> None:
    rows = {
        "carriers": [{"id": 1, "code": "ctc", "name": "电信", "adapter": "telecom", "active": True, "created_at": AT}],
        "startups": [{"id": n, "name": f"公司{n}", "uscc": f"91310000MA1K{n:06d}", "sector": "ai_models",
                      "founded_on": dt.date(2023, 1, 1), "headcount": 10, "contact_name": "张伟",
                      "contact_email": f"a{n}@example.cn", "registered_in_district": True, "key_enterprise": False,
                      "status": "verified", "created_at": AT} for n in (1, 2)],
        "offers": [{"id": 1, "carrier_id": 1, "external_id": "gpu-1", "kind": "gpu", "region": "sh", "attributes": {},
                    "quantity": 1_000_000, "promised": 300_000, "window_start": dt.date(2026, 3, 1),
                    "window_end": dt.date(2026, 6, 1), "list_price": 200_000, "unit_price": 100_000, "divisible": True,
                    "status": "active", "created_at": AT, "updated_at": AT, "channel": "api"}],
        "resource_requests": [{"id": n, "startup_id": 1 + n % 2, "kind": "gpu", "quantity": 100_000, "attributes": {},
                               "window_start": dt.date(2026, 3, 9), "window_end": dt.date(2026, 3, 20), "purpose": "训练",
                               "status": "approved", "cycles_waited": 0, "submitted_at": AT, "updated_at": AT}
                              for n in (1, 2, 3)],
        "matching_cycles": [{"id": 1, "status": "closed", "scheduled_for": AT, "stats": {}}],
        # 100 GPU-hours at ¥10 each: ¥1,000 of cost per allocation
        "allocations": [{"id": n, "cycle_id": 1, "request_id": n, "offer_id": 1, "quantity": 100_000, "unit_price": 100_000,
                         "status": "active", "created_at": AT, "updated_at": AT, "provision_attempts": 0} for n in (1, 2, 3)],
        # in fen: budgets ¥50,000 and ¥20,000; committed = amounts less what was given back
        "subsidy_programs": [
            {"id": 1, "code": "voucher", "name": "算力券", "kinds": ["gpu"], "rate": 3000, "cap_per_startup": 1_000_000,
             "cap_period_months": 12, "budget": 5_000_000, "committed": 30_000 + 12_000, "redeemed": 10_000 + 12_000,
             "require_in_district": True, "exclude_carrier_affiliates": True, "starts_on": dt.date(2026, 1, 1),
             "ends_on": dt.date(2027, 1, 1), "status": "open", "created_at": AT},
            {"id": 2, "code": "tokens", "name": "模型券", "kinds": ["gpu"], "rate": 5000, "cap_per_startup": 1_000_000,
             "cap_period_months": 12, "budget": 2_000_000, "committed": 50_000, "redeemed": 0,
             "require_in_district": True, "exclude_carrier_affiliates": True, "starts_on": dt.date(2026, 1, 1),
             "ends_on": dt.date(2027, 1, 1), "status": "open", "created_at": AT},
        ],
        "subsidy_commitments": [
            {"id": 1, "program_id": 1, "allocation_id": 1, "startup_id": 2, "amount": 30_000, "redeemed": 10_000,
             "released": 0, "released_at": None, "created_at": AT},
            {"id": 2, "program_id": 1, "allocation_id": 2, "startup_id": 1, "amount": 30_000, "redeemed": 12_000,
             "released": 18_000, "released_at": AT + dt.timedelta(days=3), "created_at": AT},
            {"id": 3, "program_id": 2, "allocation_id": 3, "startup_id": 2, "amount": 50_000, "redeemed": 0,
             "released": 0, "released_at": None, "created_at": AT},
        ],
    }
    for name, values in rows.items():
        connection.execute(sa.insert(_table(name, *values[0])), values)


def test_commitments_and_program_totals_move_into_the_ledger(databases):
    engine = create_engine(databases.create())
    try:
        upgrade(engine, "0009")
        with engine.begin() as connection:
            _fill_0009(connection)
        upgrade(engine)
        with Session(engine) as session:
            programs = {p.code: p for p in session.scalars(sa.select(SubsidyProgram))}
            totals = {code: (p.budget, p.committed, p.redeemed, p.written_off) for code, p in programs.items()}
            assert totals == {
                "voucher": (Decimal("50000.00"), Decimal("420.00"), Decimal("220.00"), Decimal("0.00")),
                "tokens": (Decimal("20000.00"), Decimal("500.00"), Decimal("0.00"), Decimal("0.00")),
            }
            awards = {a.id: a for a in session.scalars(sa.select(Award))}
            assert {i: (a.amount, a.committed, a.redeemed, a.status) for i, a in awards.items()} == {
                1: (Decimal("300.00"), Decimal("300.00"), Decimal("100.00"), AwardStatus.committed),
                2: (Decimal("300.00"), Decimal("120.00"), Decimal("120.00"), AwardStatus.released),
                3: (Decimal("500.00"), Decimal("500.00"), Decimal("0.00"), AwardStatus.committed),
            }
            assert awards[1].gross == Decimal("1000.00") and awards[1].fiscal_year == 2026 and awards[1].carrier_id == 1
            kinds = [(e.kind, e.award_id, e.amount) for e in session.scalars(sa.select(LedgerEntry).order_by(LedgerEntry.id))]
            assert kinds == [
                (LedgerKind.deposit, None, Decimal("50000.00")), (LedgerKind.deposit, None, Decimal("20000.00")),
                (LedgerKind.commit, 1, Decimal("300.00")), (LedgerKind.redeem, 1, Decimal("100.00")),
                (LedgerKind.commit, 2, Decimal("300.00")), (LedgerKind.redeem, 2, Decimal("120.00")),
                (LedgerKind.reverse, 2, Decimal("180.00")),
                (LedgerKind.commit, 3, Decimal("500.00")),
            ]
            result = ledger.reconcile(session)
            assert result.ok, result.differences
            assert (result.rows, result.awards_checked) == (8, 3)
            # The next award's id comes after the moved ones (PostgreSQL's sequence was set).
            session.add(Award(program_id=1, allocation_id=3, startup_id=2, carrier_id=1, fiscal_year=2026, mode="after",
                              claimant="startup", rate=Decimal("0.3"), quantity=Decimal(1), gross=Decimal(1),
                              amount=Decimal(1), created_at=dt.datetime.now(dt.timezone.utc)))
            session.flush()
            assert max(a.id for a in session.scalars(sa.select(Award))) == 4
            session.rollback()
        downgrade(engine, "0009")  # and back down: the commitments are what they were
        with engine.connect() as connection:
            back = connection.execute(sa.text("SELECT id, amount, redeemed, released FROM subsidy_commitments ORDER BY id")).all()
            assert [tuple(r) for r in back] == [(1, 30_000, 10_000, 0), (2, 30_000, 12_000, 18_000), (3, 50_000, 0, 0)]
    finally:
        engine.dispose()
