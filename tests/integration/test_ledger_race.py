"""100 approvals at once from four processes on PostgreSQL: no program goes past its budget, no
startup past its cap for the year, no award is written twice, and the ledger reconciles.

Without the programs' row lock in `subsidies.award_for` the caps are summed on stale rows and
this fails (startups over their cap, or a CHECK violation as a 500); the budget guard in
`SubsidyProgram.move` and the CHECK behind it keep the budget even then.
"""

import datetime as dt
import multiprocessing
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.clock import now
from broker.models import Account, Allocation, AllocationStatus, Award, LedgerEntry, LedgerKind, ResourceRequest, Role
from broker.services import cycles, ledger, market, policy
from tests.world import build_district, committed_app, decide_worker, session_of

pytestmark = [pytest.mark.slow, pytest.mark.committing]

WINDOW = (dt.date(2026, 12, 8), dt.date(2026, 12, 10))
CAP, BUDGET = Decimal("600.00"), Decimal("9000.00")


def test_concurrent_approvals_keep_budget_cap_and_uniqueness(databases, tmp_path):
    url = databases.create()
    if not url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is a PostgreSQL one")
    app = committed_app(url, str(tmp_path))
    session = session_of(app)
    build_district(session, offers=10, offer_quantity=1000, startups=20, ask=50, window=WINDOW)
    at = dt.datetime.combine(WINDOW[0], dt.time(), dt.timezone.utc)
    for account in session.scalars(sa.select(Account).where(Account.role == Role.startup)).all():
        for _ in range(4):  # five requests per startup: its cap binds after two and a bit
            market.submit_request(session, account, {
                "kind": "gpu", "quantity": Decimal(50), "min_quantity": Decimal(50), "attributes": {"gpu_model": ["H100"]},
                "window_start": WINDOW[0], "window_end": WINDOW[1], "purpose": "race"}, now=at)
    staff = session.scalar(sa.select(Account).where(Account.role == Role.staff))
    policy.create_program(session, staff, {
        "code": "voucher", "name": "算力券", "kinds": ["gpu"], "rate": Decimal("0.5"), "cap_per_startup": CAP,
        "budget": BUDGET, "funding_document": "沪经信智〔2025〕489号",
        "starts_on": dt.date(2026, 1, 1), "ends_on": dt.date(2027, 1, 1)}, now(app))
    outcome = cycles.run_cycle(session, now(app))
    proposals = [a.id for a in session.scalars(sa.select(Allocation).where(Allocation.cycle_id == outcome.cycle.id))]
    session.close()
    assert len(proposals) == 100  # each 50 GPU-hours at ¥10: ¥250 at 50%

    plans = [proposals[i::4] for i in range(4)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(decide_worker, [(url, str(tmp_path), [(a, "approve") for a in plan], []) for plan in plans])
    outcomes = [o for result in results for o in result]
    assert Counter(result for _, _, result in outcomes) == {"ok": 100}

    session = session_of(app)
    approved = set(session.scalars(sa.select(Allocation.id).where(Allocation.status == AllocationStatus.approved)))
    assert approved == set(proposals)
    awards = session.scalars(sa.select(Award)).all()
    assert len({a.allocation_id for a in awards}) == len(awards)  # never two awards for one allocation
    per_startup: dict[int, Decimal] = defaultdict(Decimal)
    for award in awards:
        per_startup[award.startup_id] += award.committed
    assert max(per_startup.values()) <= CAP
    assert sorted(per_startup.values())[-1] == CAP  # the caps bound...
    total = sum(per_startup.values(), Decimal(0))
    assert total == BUDGET  # ...and so did the budget: 20 startups × ¥600 would be ¥12,000
    commits = session.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == LedgerKind.commit)).all()
    assert len(commits) == len(awards) and len({c.idempotency_key for c in commits}) == len(commits)
    assert sum((c.amount for c in commits), Decimal(0)) == total
    result = ledger.reconcile(session)
    assert result.ok, result.differences
    program = result.programs[0][0]
    assert (program.committed, program.budget) == (BUDGET, BUDGET)
    requests = session.scalar(sa.select(sa.func.count(ResourceRequest.id)))
    assert requests == 100
    session.close()
