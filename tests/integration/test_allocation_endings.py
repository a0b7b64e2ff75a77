"""Every way an allocation ends before use gives its capacity and its unused subsidy back.

A real cycle proposes, staff approve through the API (which commits subsidy), and the grant
then ends by each path: the startup withdraws it (before or after the carrier set it up),
staff cancel it after approval, or staff give up on its provisioning. Through a real
carrier simulator on 127.0.0.1, on a clock the test controls.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa

from adapters.telecom import TelecomAdapter
from broker.clock import FrozenClock, install_clock
from broker.models import (
    Allocation,
    AllocationStatus,
    AuditEntry,
    Award,
    AwardStatus,
    Carrier,
    LedgerEntry,
    LedgerKind,
    Offer,
    SubsidyProgram,
)
from broker.services import ledger
from broker.services.provisioning import MAX_PROVISION_ATTEMPTS, expire_finished, provision_due, pull_usage
from tests.e2e.adapters.conftest import Simulator
from tests.world import synced_telecom

MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Shanghai


@dataclass
class World:
    client: object
    session: object
    clock: FrozenClock
    simulator: Simulator
    adapter: TelecomAdapter
    staff: object
    startup: object
    offer: Offer
    program_id: int

    def adapter_for(self, _carrier):
        return self.adapter

    def program(self) -> SubsidyProgram:
        self.session.expire_all()
        return self.session.get(SubsidyProgram, self.program_id)

    def promised(self) -> Decimal:
        self.session.expire_all()
        return self.session.scalar(sa.select(sa.func.sum(Offer.promised)))

    def award(self, allocation_id: int) -> Award:
        self.session.expire_all()
        return self.session.scalar(sa.select(Award).where(Award.allocation_id == allocation_id))

    def propose(self, quantity="10") -> dict:
        """The startup asks for `quantity` of the chosen lot's kind; a cycle proposes one allocation."""
        body = {"kind": self.offer.kind, "quantity": quantity, "regions": [self.offer.region],
                "window_start": self.offer.window_start.isoformat(), "window_end": self.offer.window_end.isoformat()}
        asked = self.client.post("/api/v1/requests", json=body, headers=self.startup.headers)
        assert asked.status_code == 201, asked.json
        cycle = self.client.post("/api/v1/cycles", json={}, headers=self.staff.headers)
        assert cycle.status_code == 201, cycle.json
        mine = self.client.get(f"/api/v1/allocations?request_id={asked.json['id']}", headers=self.staff.headers).json
        assert len(mine) == 1, mine
        return mine[0]

    def approve(self, allocation: dict) -> Award:
        approved = self.client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=self.staff.headers)
        assert approved.status_code == 200, approved.json
        award = self.award(allocation["id"])
        assert award is not None and award.amount > 0 and award.committed == award.amount
        assert award.status is AwardStatus.committed
        return award

    def withdraw(self, request_id: int):
        response = self.client.post(f"/api/v1/requests/{request_id}/withdraw", headers=self.startup.headers)
        assert response.status_code == 200, response.json
        return response

    def status(self, allocation_id: int) -> AllocationStatus:
        self.session.expire_all()
        return self.session.get(Allocation, allocation_id).status


@pytest.fixture
def world(app, client, session, make_actor):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)
    staff, startup = make_actor("staff"), make_actor("startup")
    simulator, adapter = synced_telecom(session, make_actor, MONDAY_0900)
    offer = session.scalar(
        sa.select(Offer).where(Offer.divisible, Offer.unit_price > 0, Offer.quantity >= 100).order_by(Offer.id)
    )
    program = client.post(
        "/api/v1/subsidy-programs",
        json={"code": "voucher", "name": "算力券", "kinds": [offer.kind], "rate": "0.5", "cap_per_startup": "100000",
              "budget": "100000", "funding_document": "沪经信智〔2025〕489号",
              # the program's period covers the allocations' start (the lot's window), which is what it checks
              "starts_on": f"{offer.window_start.year}-01-01", "ends_on": f"{offer.window_start.year + 1}-01-01"},
        headers=staff.headers,
    )
    assert program.status_code == 201, program.json
    yield World(client, session, clock, simulator, adapter, staff, startup, offer, program.json["id"])
    simulator.close()
    install_clock(app, None)


def _assert_given_back(world: World, allocation_id: int, *, redeemed=Decimal(0)):
    """Nothing of the ended allocation stays promised: no capacity, no unused subsidy."""
    assert world.promised() == 0
    award = world.award(allocation_id)
    assert award.redeemed == redeemed
    released = award.amount - award.committed
    assert released == award.amount - redeemed
    assert award.status is AwardStatus.released and award.closed_at is not None
    program = world.program()
    assert program.committed == redeemed
    back = world.session.scalars(
        sa.select(LedgerEntry).where(LedgerEntry.idempotency_key == f"release:award:{award.id}")
    ).all()
    if released:
        [row] = back
        assert row.kind is LedgerKind.reverse and row.amount == released and row.reason == "ended_before_use"
        assert row.reverses_id == ledger.commit_row(world.session, award).id
    else:
        assert back == []
    assert ledger.reconcile(world.session).ok, ledger.reconcile(world.session).differences
    audit = world.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.entity_type == "subsidy_awards", AuditEntry.entity_id == award.id)
        .order_by(AuditEntry.id)
    ).all()
    assert audit[-1].action == "released" and audit[-1].after["status"] == "released"
    if released:
        assert audit[-2].action == "reverse" and audit[-2].after["committed"] == str(award.committed)


def test_withdrawing_an_approved_grant_gives_its_subsidy_and_capacity_back(world):
    allocation = world.propose()
    award = world.approve(allocation)
    assert world.program().committed == award.amount

    withdrawn = world.withdraw(allocation["request_id"])
    assert withdrawn.json["allocations"][0]["status"] == "cancelled"
    assert withdrawn.json["pending_releases"] == []  # nothing was set up at the carrier
    _assert_given_back(world, allocation["id"])
    feed = [e["type"] for e in world.client.get("/api/v1/events", headers=world.startup.headers).json]
    assert feed == ["startup.verified", "allocation.proposed", "allocation.approved", "subsidy.committed",
                    "allocation.cancelled"]
    assert provision_due(world.session, world.adapter_for, world.clock())["provisioned"] == 0
    assert world.simulator.stats()["orders"] == 0


def test_the_approve_withdraw_loop_no_longer_drains_a_program(world):
    # The per-startup cap is exactly one round's share: had a withdrawn grant kept its
    # award, the second round would get nothing and the program would run dry.
    first = None
    for _ in range(4):
        allocation = world.propose()
        award = world.approve(allocation)
        first = first or award.amount
        assert award.amount == first
        world.withdraw(allocation["request_id"])
        program = world.program()
        assert program.committed == 0
        assert ledger.reconcile(world.session).ok
        assert world.client.get(f"/api/v1/subsidy-programs/{world.program_id}", headers=world.staff.headers).json[
            "remaining"] == "100000.00"
        world.session.execute(sa.update(SubsidyProgram).values(cap_per_startup=first))
        world.session.commit()
    assert world.promised() == 0


def test_staff_cancel_an_approved_grant_before_it_is_sent(world):
    allocation = world.propose()
    path = f"/api/v1/allocations/{allocation['id']}/cancel"
    proposed = world.client.post(path, json={"reason": "not yet approved"}, headers=world.staff.headers)
    assert proposed.status_code == 409 and "proposed" in proposed.json["message"]
    world.approve(allocation)  # asserts an award was made

    assert world.client.post(path, json={"reason": "x"}, headers=world.startup.headers).status_code == 403
    missing = world.client.post(path, json={}, headers=world.staff.headers)
    assert missing.status_code == 422 and "reason" in missing.json["errors"]["json"]
    assert world.status(allocation["id"]) is AllocationStatus.approved  # a refusal changes nothing

    cancelled = world.client.post(path, json={"reason": "企业已注销"}, headers=world.staff.headers)
    assert cancelled.status_code == 200, cancelled.json
    assert cancelled.json["status"] == "cancelled" and cancelled.json["decision_reason"] == "企业已注销"
    _assert_given_back(world, allocation["id"])
    request = world.client.get(f"/api/v1/requests/{allocation['request_id']}", headers=world.startup.headers).json
    assert request["status"] == "submitted"  # nothing was granted: back in the queue
    again = world.client.post(path, json={"reason": "twice"}, headers=world.staff.headers)
    assert again.status_code == 409


def test_provisioning_given_up_is_cancelled_by_staff_and_gives_everything_back(world):
    allocation = world.propose()
    world.approve(allocation)  # asserts an award was made
    world.simulator.app.extensions["simulator"]["options"].error_rate = 1.0  # the carrier is down
    path = f"/api/v1/allocations/{allocation['id']}/cancel"
    now = world.clock()
    for attempt in range(1, MAX_PROVISION_ATTEMPTS + 1):
        provision_due(world.session, world.adapter_for, now)
        if attempt == 1:
            retrying = world.client.post(path, json={"reason": "too early"}, headers=world.staff.headers)
            assert retrying.status_code == 409 and "retr" in retrying.json["message"]
        world.session.expire_all()
        now = world.session.get(Allocation, allocation["id"]).next_attempt_at or now
    shown = world.client.get(f"/api/v1/allocations/{allocation['id']}", headers=world.staff.headers).json
    assert shown["status"] == "provisioning" and shown["next_attempt_at"] is None  # given up: staff must look

    cancelled = world.client.post(path, json={"reason": "运营商无法开通"}, headers=world.staff.headers)
    assert cancelled.status_code == 200, cancelled.json
    assert cancelled.json["status"] == "cancelled"
    _assert_given_back(world, allocation["id"])
    feed = [e["type"] for e in world.client.get("/api/v1/events", headers=world.startup.headers).json]
    assert feed[-2:] == ["allocation.provisioning_failed", "allocation.cancelled"]
    world.simulator.app.extensions["simulator"]["options"].error_rate = 0.0
    assert provision_due(world.session, world.adapter_for, now + dt.timedelta(days=1))["provisioned"] == 0


def test_withdrawing_an_active_grant_says_when_it_is_released_and_gives_the_unused_subsidy_back(world):
    allocation = world.propose()
    award = world.approve(allocation)
    assert provision_due(world.session, world.adapter_for, world.clock())["provisioned"] == 1
    carrier = world.session.scalar(sa.select(Carrier).where(Carrier.code == "telecom"))
    assert pull_usage(world.session, carrier, world.adapter, world.clock())["recorded"] == 1
    redeemed = world.award(allocation["id"]).redeemed
    assert 0 < redeemed < award.amount  # the simulator reports a tenth as used

    world.clock.set(dt.datetime(2026, 11, 30, 1, 3, tzinfo=dt.timezone.utc))  # 09:03 in Shanghai
    withdrawn = world.withdraw(allocation["request_id"])
    assert withdrawn.json["status"] == "withdrawn"
    assert withdrawn.json["allocations"][0]["status"] == "active"
    # The default release run (BROKER_SCHEDULE_EXPIRE) is every ten minutes: next at 09:10.
    [pending] = withdrawn.json["pending_releases"]
    assert pending["allocation_id"] == allocation["id"] and pending["status"] == "active"
    assert pending["release_due_at"] == "2026-11-30T09:10:00+08:00"
    assert "carrier" in pending["message"]
    assert world.program().committed == award.amount  # still the carrier's until released

    world.clock.set(dt.datetime(2026, 11, 30, 1, 10, tzinfo=dt.timezone.utc))
    assert expire_finished(world.session, world.adapter_for, world.clock())["released"] == 1
    assert world.status(allocation["id"]) is AllocationStatus.released
    assert world.simulator.stats()["released"] == 1
    _assert_given_back(world, allocation["id"], redeemed=redeemed)


def test_rejected_and_lapsed_proposals_commit_nothing_and_give_capacity_back(world):
    from broker.services.cycles import close_approval_windows

    rejected = world.propose()
    response = world.client.post(f"/api/v1/allocations/{rejected['id']}/reject", json={"reason": "材料不全"},
                                 headers=world.staff.headers)
    assert response.status_code == 200
    world.propose()  # the rejected request is back in the queue: this cycle proposes it again, beside the new one
    world.clock.advance(dt.timedelta(hours=58))
    assert close_approval_windows(world.session, world.clock()) == 2
    assert world.promised() == 0
    assert world.program().committed == 0
    assert world.session.scalar(sa.select(sa.func.count(Award.id))) == 0
    assert world.session.scalar(sa.select(sa.func.count(LedgerEntry.id)).where(LedgerEntry.kind != LedgerKind.deposit)) == 0
    assert ledger.reconcile(world.session).ok
