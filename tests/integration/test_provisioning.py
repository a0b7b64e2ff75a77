"""Provisioning through a real carrier simulator: retries with back-off, surfacing to staff, a retry by hand."""

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from adapters.base import CarrierConfig
from adapters.simulators import telecom as telecom_simulator
from adapters.telecom import TelecomAdapter
from broker.models import Allocation, AllocationStatus, MatchingCycle, Offer, ResourceRequest
from broker.models.workflow import Event
from broker.services.provisioning import MAX_PROVISION_ATTEMPTS, provision_due, retry_delay
from broker.services.sync import sync_carrier
from tests.e2e.adapters.conftest import Simulator

NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.timezone.utc)


def test_failures_retry_with_back_off_then_surface_to_staff_who_retry(client, session, make_actor, monkeypatch):
    simulator = Simulator(telecom_simulator.create_app(seed=3, offers=20, first_month=dt.date(2026, 12, 1)))
    try:
        adapter = TelecomAdapter(
            CarrierConfig(simulator.url, {"token": "T"}, retries=0, backoff_factor=0.0, breaker_fail_max=100),
            environ={"T": telecom_simulator.DEFAULT_TOKEN},
        )
        staff, carrier, startup = make_actor("staff"), make_actor("carrier", code="telecom"), make_actor("startup")
        assert sync_carrier(session, "telecom", adapter, NOW).error is None
        offer = session.scalar(sa.select(Offer).where(Offer.divisible).order_by(Offer.id))
        request = ResourceRequest(startup_id=startup.startup_id, kind=offer.kind, quantity=Decimal(1),
                                  window_start=offer.window_start, window_end=offer.window_end)
        cycle = MatchingCycle(scheduled_for=NOW)
        session.add_all([request, cycle])
        session.flush()
        allocation = Allocation(cycle_id=cycle.id, request_id=request.id, offer_id=offer.id, quantity=Decimal(1),
                                unit_price=offer.unit_price, status=AllocationStatus.approved)
        session.add(allocation)
        offer.promised += 1
        session.commit()

        options = simulator.app.extensions["simulator"]["options"]
        options.error_rate = 1.0  # the carrier is down
        now = NOW
        for attempt in range(1, MAX_PROVISION_ATTEMPTS + 1):
            counts = provision_due(session, lambda c: adapter, now)
            session.refresh(allocation)
            assert allocation.provision_attempts == attempt and allocation.status is AllocationStatus.provisioning
            if attempt < MAX_PROVISION_ATTEMPTS:
                assert counts["retrying"] == 1 and allocation.next_attempt_at == now + retry_delay(attempt)
                assert provision_due(session, lambda c: adapter, now)["retrying"] == 0  # not due before its back-off
                now = allocation.next_attempt_at
        assert counts["failed"] == 1 and allocation.next_attempt_at is None and "simulated carrier failure" in allocation.last_error
        assert session.scalar(sa.select(Event.type).where(Event.allocation_id == allocation.id)) == "allocation.provisioning_failed"
        shown = client.get(f"/api/v1/allocations/{allocation.id}", headers=staff.headers).json
        assert shown["status"] == "provisioning" and shown["next_attempt_at"] is None and shown["last_error"]

        options.error_rate = 0.0  # the carrier is back
        assert client.post(f"/api/v1/allocations/{allocation.id}/retry-provisioning", headers=startup.headers).status_code == 403
        retried = client.post(f"/api/v1/allocations/{allocation.id}/retry-provisioning", headers=staff.headers)
        assert retried.status_code == 200
        assert provision_due(session, lambda c: adapter, dt.datetime.now(dt.timezone.utc))["provisioned"] == 1
        session.refresh(allocation)
        assert allocation.status is AllocationStatus.active and allocation.carrier_ref.startswith("CTC-ORD-")
        view = client.get(f"/api/v1/allocations/{allocation.id}", headers=startup.headers).json
        assert view["status"] == "active" and view["carrier_ref"] == allocation.carrier_ref
    finally:
        simulator.close()
