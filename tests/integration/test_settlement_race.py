"""Approvals and clawbacks at the same moment, from separate processes on PostgreSQL: a statement
over the four-eyes threshold approved by two staff at once is written off exactly once (one of
them is the first approval, the other the final), and an approval racing a clawback of its award
ends in one of the two orders, never in a half of each. The racers are made to meet: each waits
behind a lock held on the programs' table until all of them have read what they need.
"""

import datetime as dt
import multiprocessing
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.clock import utcnow
from broker.models import Account, Allocation, Award, LedgerEntry, LedgerKind, NoticeState, Role, UsageReport
from broker.services import accounts, cycles, ledger, market, policy, settlement, subsidies
from tests.conftest import startup_payload
from tests.world import committed_app, race, session_of

pytestmark = [pytest.mark.slow, pytest.mark.committing]

HOLD = "LOCK TABLE subsidy_programs IN EXCLUSIVE MODE"  # FOR UPDATE on a program waits behind it


def _settled(session, hours):
    """One startup's allocation of `hours` GPU-hours at ¥300 (half paid by the voucher), all used,
    its notice final, and December's statement built. Returns the statement, the award and three staff tokens."""
    now = utcnow()
    builder, _, _ = accounts.create_user(session, Role.staff, "builder")
    tokens = [accounts.create_user(session, Role.staff, f"approver {n}")[2] for n in range(2)]
    carrier, token, _ = accounts.register_carrier(session, "telecom", "Telecom", "telecom", ["telecom"])
    market.upsert_offers(session, session.get(Account, token.account_id), [{
        "external_id": "big", "kind": "gpu", "region": "sh", "attributes": {"gpu_model": "H100"},
        "quantity": Decimal(10000), "window_start": dt.date(2026, 12, 1), "window_end": dt.date(2026, 12, 31),
        "list_price": Decimal(400), "unit_price": Decimal(300), "divisible": True}])
    startup, token, _ = accounts.register_startup(session, startup_payload(7, parse=True))
    accounts.verify_startup(session, builder, startup.id, now)
    market.submit_request(session, session.get(Account, token.account_id), {
        "kind": "gpu", "quantity": Decimal(hours), "attributes": {"gpu_model": ["H100"]},
        "window_start": dt.date(2026, 12, 8), "window_end": dt.date(2026, 12, 10), "purpose": "race"}, now=now)
    policy.create_program(session, builder, {
        "code": "voucher", "name": "算力券", "kinds": ["gpu"], "rate": Decimal("0.5"), "cap_per_startup": Decimal(500000),
        "budget": Decimal(1000000), "funding_document": "沪经信智〔2025〕489号",
        "starts_on": dt.date(2026, 1, 1), "ends_on": dt.date(2027, 7, 1)}, now)
    outcome = cycles.run_cycle(session, now)
    [allocation_id] = session.scalars(sa.select(Allocation.id).where(Allocation.cycle_id == outcome.cycle.id)).all()
    cycles.approve_allocation(session, builder, allocation_id, None, now)
    allocation = session.get(Allocation, allocation_id)
    usage = UsageReport(carrier_id=carrier.id, external_id="u-1", allocation_id=allocation_id, quantity=Decimal(hours),
                        recorded_at=now)
    session.add(usage)
    session.flush()
    subsidies.redeem_usage(session, allocation, usage, now)
    award = session.scalar(sa.select(Award).where(Award.allocation_id == allocation_id))
    award.notice_state = NoticeState.final  # what the public notice's branch sets
    session.commit()
    statement = settlement.build_statement(session, builder, {"program": "voucher", "period": "2026-12"}, now)
    return statement.id, award.id, tokens


def _approve(statement_id, token, reference):
    return ("POST", f"/api/v1/settlements/{statement_id}/approve",
            {"json": {"disbursement_reference": reference}, "headers": {"Authorization": f"Bearer {token}"}})


@pytest.fixture
def postgres(databases, tmp_path):
    url = databases.create()
    if not url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is a PostgreSQL one")
    app = committed_app(url, str(tmp_path))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        yield app, url, str(tmp_path), pool


def test_two_staff_approving_at_once_write_off_once(postgres):
    app, url, instance, pool = postgres
    session = session_of(app)
    statement_id, award_id, tokens = _settled(session, 1000)  # ¥150,000 payable: over ¥100,000, four eyes
    session.close()
    answers = race(pool, url, instance, HOLD, [_approve(statement_id, t, f"ICBC-{n}") for n, t in enumerate(tokens)])
    assert sorted(status for status, _ in answers) == [200, 200], answers
    assert sorted(body["status"] for _, body in answers) == ["draft", "written_off"]
    session = session_of(app)
    rows = session.scalars(sa.select(LedgerEntry).where(LedgerEntry.award_id == award_id,
                                                        LedgerEntry.kind == LedgerKind.write_off)).all()
    assert [r.amount for r in rows] == [Decimal("150000.00")]
    result = ledger.reconcile(session)
    assert result.ok, result.differences
    session.close()


def test_an_approval_racing_a_clawback_ends_in_one_order(postgres):
    app, url, instance, pool = postgres
    session = session_of(app)
    statement_id, award_id, tokens = _settled(session, 100)  # ¥15,000: one approval writes it off
    session.close()
    clawback = ("POST", f"/api/v1/awards/{award_id}/clawback", {
        "json": {"reason": "double_subsidy", "note": "已获市级补贴"}, "headers": {"Authorization": f"Bearer {tokens[1]}"}})
    (approved, approval), (clawed, _) = race(pool, url, instance, HOLD, [_approve(statement_id, tokens[0], "ICBC-1"), clawback])
    assert clawed == 200
    session = session_of(app)
    award = session.get(Award, award_id)
    if approved == 200:  # written off first: the clawback leaves the paid money to recover
        assert (award.written_off, award.payable) == (Decimal("15000.00"), Decimal("-15000.00"))
    else:  # clawed back first: the approval refuses the write-off whole
        assert approved == 409 and "clawed back" in approval["message"], approval
        assert (award.written_off, award.payable) == (0, 0)
    assert award.status.value == "clawed_back"
    result = ledger.reconcile(session)
    assert result.ok, result.differences
    session.close()
