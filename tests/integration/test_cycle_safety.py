"""A cycle killed halfway leaves nothing; concurrent decisions never oversell or overspend."""

import multiprocessing
import os
import random
import subprocess
import sys
from collections import Counter
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.clock import now
from broker.db import Quantity
from broker.models import (
    Account,
    Allocation,
    AllocationStatus,
    Award,
    MatchingCycle,
    Offer,
    RequestStatus,
    ResourceRequest,
    Role,
    SubsidyProgram,
)
from broker.schemas.policy import ProgramInSchema
from broker.services import cycles, ledger, policy
from tests.world import build_district, committed_app, count, decide_worker, session_of

pytestmark = pytest.mark.committing


@pytest.fixture
def district_app(databases, tmp_path):
    url = databases.create()
    app = committed_app(url, str(tmp_path))
    session = session_of(app)
    build_district(session, offers=5, offer_quantity=100, startups=30, ask=50)
    session.close()
    yield url, app
    from broker.db import get_db

    get_db(app).engine.dispose()


def _cli(url, tmp_path, *args, **env):
    (tmp_path / "carriers.json").write_text('{"carriers": {}}')
    environment = {**os.environ, "BROKER_DATABASE_URL": url, "BROKER_INSTANCE_PATH": str(tmp_path),
                   "BROKER_CARRIERS_FILE": str(tmp_path / "carriers.json"), **env}
    return subprocess.run([sys.executable, "-m", "broker", *args], env=environment, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["cycle.after_holding_capacity", "cycle.before_commit"])
def test_a_cycle_killed_midway_leaves_no_trace_and_a_rerun_works(district_app, tmp_path, point):
    url, app = district_app
    killed = _cli(url, tmp_path, "cycle", "run", BROKER_FAULT_INJECT=point)
    assert killed.returncode == -9, killed.stderr  # SIGKILL with capacity held, or with everything written

    session = session_of(app)
    assert count(session, MatchingCycle) == 0
    assert count(session, Allocation) == 0
    assert session.scalar(sa.select(sa.func.sum(Offer.promised))) == 0
    assert {r.status for r in session.scalars(sa.select(ResourceRequest))} == {RequestStatus.submitted}
    assert {r.cycles_waited for r in session.scalars(sa.select(ResourceRequest))} == {0}
    session.close()

    rerun = _cli(url, tmp_path, "cycle", "run")
    assert rerun.returncode == 0, rerun.stderr
    assert "proposed" in rerun.stdout
    session = session_of(app)
    assert count(session, MatchingCycle) == 1 and count(session, Allocation) > 0
    held = session.scalar(sa.select(sa.func.sum(Allocation.quantity)))
    assert session.scalar(sa.select(sa.func.sum(Offer.promised))) == held
    session.close()


@pytest.mark.slow
def test_dry_run_from_the_cli_holds_nothing(district_app, tmp_path):
    url, app = district_app
    preview = _cli(url, tmp_path, "cycle", "run", "--dry-run")
    assert preview.returncode == 0 and "Dry run" in preview.stdout and '"offer_id"' in preview.stdout
    session = session_of(app)
    assert count(session, MatchingCycle) == 0 and session.scalar(sa.select(sa.func.sum(Offer.promised))) == 0
    session.close()


@pytest.mark.slow
def test_concurrent_approvals_from_several_processes_never_oversell_or_overspend(district_app, tmp_path):
    url, app = district_app
    if not url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is a PostgreSQL one")
    session = session_of(app)
    staff = session.scalar(sa.select(Account).where(Account.role == Role.staff))
    year = session.scalar(sa.select(sa.func.min(ResourceRequest.window_start))).year  # the allocations start then
    policy.create_program(session, staff, ProgramInSchema().load({
        "code": "voucher", "name": "算力券", "kinds": ["gpu"], "rate": "0.5", "cap_per_startup": "700",
        "budget": "700", "funding_document": "沪经信智〔2025〕489号", "starts_on": f"{year}-01-01",
        "ends_on": f"{year + 1}-01-01"}), now(app))
    outcome = cycles.run_cycle(session, now(app))
    proposals = [a.id for a in session.scalars(sa.select(Allocation).where(Allocation.cycle_id == outcome.cycle.id))]
    offers = [o.id for o in session.scalars(sa.select(Offer))]
    session.close()
    assert len(proposals) >= 8

    rng = random.Random(7)
    attempts = [(rng.choice(proposals), rng.choice(["approve", "approve", "reject"])) for _ in range(100)]
    plans = [attempts[i::4] for i in range(4)]
    withdrawals = [[], [], [], offers[:2]]
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(decide_worker, [(url, str(tmp_path), plan, w) for plan, w in zip(plans, withdrawals)])
    outcomes = [o for result in results for o in result]
    assert len(outcomes) == 100

    session = session_of(app)
    wins = Counter(allocation_id for allocation_id, _, result in outcomes if result == "ok")
    for allocation in session.scalars(sa.select(Allocation)):
        attempted = any(a == allocation.id for a, _ in attempts)
        # Exactly one decision won for every allocation someone decided, and it is the final state.
        assert wins[allocation.id] == (1 if attempted else 0), allocation.id
        expected = {AllocationStatus.approved, AllocationStatus.rejected} if attempted else {AllocationStatus.proposed}
        assert allocation.status in expected
    for offer in session.scalars(sa.select(Offer)):
        holding = session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Allocation.quantity), Decimal(0), type_=Quantity())).where(
                Allocation.offer_id == offer.id,
                Allocation.status.in_([AllocationStatus.proposed, AllocationStatus.approved]),
            )
        )
        assert offer.promised == holding
        assert offer.promised <= offer.quantity
    program = session.scalar(sa.select(SubsidyProgram))
    awards = session.scalars(sa.select(Award)).all()
    assert program.committed == sum((a.amount for a in awards), Decimal(0)) <= program.budget
    assert program.committed == sum((a.committed for a in awards), Decimal(0))
    assert program.committed == program.budget  # the budget was scarce, and fully used
    reconciliation = ledger.reconcile(session)
    assert reconciliation.ok, reconciliation.differences
    approved = {a.id for a in session.scalars(sa.select(Allocation).where(Allocation.status == AllocationStatus.approved))}
    assert {a.allocation_id for a in awards} <= approved
    session.close()
