"""Staff approve while startups withdraw, from several processes on PostgreSQL, pair by pair.

Each step starts one approval and the withdrawal of the same allocation's request at the same
moment (a barrier across the processes). Whatever the interleaving: never a 500, never an
approval overwritten by a withdrawal, the committed subsidy is what the live awards say (and the ledger agrees),
and every offer's promised capacity is what its live allocations hold.
"""

import multiprocessing
from collections import defaultdict
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.db import Quantity, get_db
from broker.models import (
    Account,
    Allocation,
    AllocationStatus,
    AuditEntry,
    Award,
    Offer,
    ResourceRequest,
    SubsidyProgram,
)
from broker.schemas.policy import ProgramInSchema
from broker.services import accounts, cycles, ledger, policy
from broker.clock import now
from tests.races import post_in_lockstep
from tests.world import build_district, committed_app, session_of

pytestmark = [pytest.mark.committing, pytest.mark.slow]

LIVE = [AllocationStatus.proposed, AllocationStatus.approved, AllocationStatus.provisioning, AllocationStatus.active]
PAIRS_PER_STEP = 2  # two approvers and two withdrawers: four processes


@pytest.fixture
def race(databases, tmp_path):
    url = databases.create()
    if not url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is a PostgreSQL one")
    app = committed_app(url, str(tmp_path))
    session = session_of(app)
    district = build_district(session, offers=12, offer_quantity=100, startups=24, ask=50)
    year = session.scalar(sa.select(sa.func.min(ResourceRequest.window_start))).year  # the allocations start then
    policy.create_program(session, session.get(Account, district.staff_id), ProgramInSchema().load({
        "code": "voucher", "name": "算力券", "kinds": ["gpu"], "rate": "0.5", "cap_per_startup": "100000",
        "budget": "1000000", "funding_document": "沪经信智〔2025〕489号", "starts_on": f"{year}-01-01",
        "ends_on": f"{year + 1}-01-01"}), now(app))
    cycle = cycles.run_cycle(session, now(app)).cycle
    staff = session.get(Account, district.staff_id)
    staff_token = accounts.issue_token(session, staff, staff.id, now(app))[1]
    pairs = []
    for account_id in district.startup_accounts:
        account = session.get(Account, account_id)
        request = session.scalar(sa.select(ResourceRequest).where(ResourceRequest.startup_id == account.startup_id))
        allocation = session.scalar(
            sa.select(Allocation).where(Allocation.cycle_id == cycle.id, Allocation.request_id == request.id)
            .order_by(Allocation.id)
        )
        if allocation is not None:
            pairs.append((allocation.id, request.id, accounts.issue_token(session, staff, account_id, now(app))[1]))
    session.close()
    assert len(pairs) >= 16
    yield url, app, tmp_path, staff_token, pairs
    get_db(app).engine.dispose()


def test_approve_and_withdraw_raced_never_lose_an_update_a_subsidy_or_a_unit(race):
    url, app, tmp_path, staff_token, pairs = race
    steps = [pairs[i:i + PAIRS_PER_STEP] for i in range(0, len(pairs) - len(pairs) % PAIRS_PER_STEP, PAIRS_PER_STEP)]
    approvers = [[(f"/api/v1/allocations/{step[k][0]}/approve", staff_token) for step in steps] for k in range(PAIRS_PER_STEP)]
    withdrawers = [[(f"/api/v1/requests/{step[k][1]}/withdraw", step[k][2]) for step in steps] for k in range(PAIRS_PER_STEP)]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(2 * PAIRS_PER_STEP)
        with context.Pool(2 * PAIRS_PER_STEP) as pool:
            results = pool.starmap(post_in_lockstep, [(url, str(tmp_path), calls, barrier) for calls in approvers + withdrawers])
    answers = [answer for result in results for answer in result]
    assert len(answers) == 2 * PAIRS_PER_STEP * len(steps)
    approved_ok = {int(path.split("/")[4]) for path, status, _ in answers if "approve" in path and status == 200}
    raced = {allocation_id for step in steps for allocation_id, _, _ in step}

    # Every kind of damage is listed, so that a failure shows all of them at once.
    damage = [f"{path} answered {status}: {message}" for path, status, message in answers if status not in (200, 409)]
    damage += [f"{path} refused: {message}" for path, status, message in answers if "withdraw" in path and status != 200]
    session = session_of(app)
    actions = defaultdict(list)
    for entry in session.scalars(
        sa.select(AuditEntry).where(AuditEntry.entity_type == "allocations", AuditEntry.entity_id.in_(raced)).order_by(AuditEntry.id)
    ):
        actions[entry.entity_id].append(entry.action)
    for allocation_id in sorted(raced):
        status = session.get(Allocation, allocation_id).status.value
        trail = actions[allocation_id]
        if "approve" in trail and status != "cancelled":
            # Approved first, the withdrawal must cancel the grant: never "rejected" over an approval.
            damage.append(f"allocation {allocation_id} approved, then {status} (audit: {trail})")
        if "approve" not in trail and status != "rejected":
            damage.append(f"allocation {allocation_id} never approved but {status} (audit: {trail})")
        if (allocation_id in approved_ok) != ("approve" in trail):
            damage.append(f"allocation {allocation_id}: the API said {'approved' if allocation_id in approved_ok else 'refused'}, the audit log {trail}")

    program = session.scalar(sa.select(SubsidyProgram))
    awards = session.scalars(sa.select(Award)).all()
    live = sum((a.committed for a in awards), Decimal(0))
    if program.committed != live:
        damage.append(f"program committed {program.committed}, live awards {live}")
    if approved_ok and not awards:
        damage.append("approvals succeeded but no award was made")
    damage += [f"award {a.id} is {a.status.value} with {a.committed} committed" for a in awards
               if a.status.value != "released" or a.committed != a.redeemed]
    damage += [f"ledger: {d}" for d in ledger.reconcile(session).differences]
    if live != 0:  # every request was withdrawn in the end
        damage.append(f"{live} still committed to allocations of withdrawn requests")
    for offer in session.scalars(sa.select(Offer)):
        held = session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Allocation.quantity), Decimal(0), type_=Quantity())).where(
                Allocation.offer_id == offer.id, Allocation.status.in_(LIVE)
            )
        )
        if offer.promised != held:
            damage.append(f"offer {offer.id} promises {offer.promised}, its live allocations hold {held}")
    session.close()
    assert damage == [], "\n".join(damage)
