"""Provisioning through a real carrier simulator: retries with back-off, surfacing to staff, a retry by hand."""

import datetime as dt

import pytest
import sqlalchemy as sa

from broker.db import get_db
from broker.models import AllocationStatus, Offer
from broker.models.workflow import Event
from broker.services.provisioning import MAX_PROVISION_ATTEMPTS, expire_finished, provision_due, retry_delay
from tests.world import approved_allocation, synced_telecom

NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def granted(session, make_actor):
    """A telecom simulator synced into the broker, and one approved allocation on one of its lots."""
    staff, startup = make_actor("staff"), make_actor("startup")
    simulator, adapter = synced_telecom(session, make_actor, NOW)
    offer = session.scalar(sa.select(Offer).where(Offer.divisible).order_by(Offer.id))
    allocation = approved_allocation(session, startup.startup_id, offer, NOW)
    session.commit()
    yield simulator, adapter, staff, startup, allocation
    simulator.close()


def test_failures_retry_with_back_off_then_surface_to_staff_who_retry(client, session, granted):
    simulator, adapter, staff, startup, allocation = granted
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


def test_withdrawing_releases_at_the_carrier_and_gives_capacity_back(app, client, session, granted):
    simulator, adapter, staff, startup, allocation = granted
    assert provision_due(session, lambda c: adapter, NOW)["provisioned"] == 1
    withdrawn = client.post(f"/api/v1/requests/{allocation.request_id}/withdraw", headers=startup.headers)
    assert withdrawn.status_code == 200 and withdrawn.json["status"] == "withdrawn"
    job_session = get_db(app).sessionmaker()  # as the scheduled job has: its own session
    assert expire_finished(job_session, lambda c: adapter, NOW)["released"] == 1
    job_session.close()
    session.expire_all()
    assert allocation.status is AllocationStatus.released
    assert simulator.stats()["released"] == 1
    assert session.get(Offer, allocation.offer_id).promised == 0
    feed = [e["type"] for e in client.get("/api/v1/events", headers=startup.headers).json]
    assert feed == ["startup.verified", "allocation.provisioned", "allocation.released"]
    assert client.get(f"/api/v1/requests/{allocation.request_id}", headers=startup.headers).json["status"] == "withdrawn"


def test_withdrawing_before_provisioning_cancels_without_calling_the_carrier(client, session, granted):
    simulator, adapter, staff, startup, allocation = granted
    assert client.post(f"/api/v1/requests/{allocation.request_id}/withdraw", headers=startup.headers).status_code == 200
    session.expire_all()
    assert allocation.status is AllocationStatus.cancelled and "before provisioning" in allocation.decision_reason
    assert session.get(Offer, allocation.offer_id).promised == 0
    assert provision_due(session, lambda c: adapter, NOW)["provisioned"] == 0
    assert simulator.stats()["orders"] == 0
