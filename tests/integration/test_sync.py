"""The sync service on a real database: idempotent bulk upsert, quarantine, withdrawal and
shrink down to what is promised, and syncs against misbehaving simulators over real HTTP."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.serving import WSGIRequestHandler, make_server

from adapters.base import CarrierConfig, FetchResult, OfferRecord, RejectedRecord
from adapters.mobile import MobileAdapter
from adapters.simulators import mobile as mobile_sim
from adapters.simulators import telecom as telecom_sim
from adapters.simulators import unicom as unicom_sim
from adapters.telecom import TelecomAdapter
from adapters.unicom import UnicomAdapter
from broker.models import (
    Allocation,
    AuditEntry,
    Carrier,
    CarrierSync,
    MatchingCycle,
    Offer,
    OfferStatus,
    QuarantinedRecord,
    ResourceRequest,
    SyncConflict,
    SyncSource,
    SyncStatus,
)
from broker.services import feed_writer
from broker.services import sync as sync_service

NOW = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)

# Each simulator's default credentials, under the variable names the default settings use.
SIMULATED = {
    "telecom": (TelecomAdapter, telecom_sim.create_app, {"token": "BROKER_CARRIER_TELECOM_TOKEN"},
                {"BROKER_CARRIER_TELECOM_TOKEN": telecom_sim.DEFAULT_TOKEN}),
    "mobile": (MobileAdapter, mobile_sim.create_app,
               {"app_key": "BROKER_CARRIER_MOBILE_APP_KEY", "app_secret": "BROKER_CARRIER_MOBILE_APP_SECRET"},
               {"BROKER_CARRIER_MOBILE_APP_KEY": mobile_sim.DEFAULT_KEY,
                "BROKER_CARRIER_MOBILE_APP_SECRET": mobile_sim.DEFAULT_SECRET}),
    "unicom": (UnicomAdapter, unicom_sim.create_app,
               {"username": "BROKER_CARRIER_UNICOM_USERNAME", "password": "BROKER_CARRIER_UNICOM_PASSWORD"},
               {"BROKER_CARRIER_UNICOM_USERNAME": unicom_sim.DEFAULT_USER,
                "BROKER_CARRIER_UNICOM_PASSWORD": unicom_sim.DEFAULT_PASSWORD}),
}
FAST = dict(connect_timeout=1.0, read_timeout=5.0, retries=3, backoff_factor=0.001, breaker_fail_max=2,
            breaker_reset_timeout=60.0, page_size=50)


class _Quiet(WSGIRequestHandler):
    def log(self, *args: Any) -> None:
        pass


class Served:
    """A WSGI app on 127.0.0.1 in a thread."""

    def __init__(self, app: Any) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def simulate() -> Iterator[Any]:
    """simulate(code, **sim_options) → (adapter, served simulator); fresh adapter each call."""
    running: list[Served] = []

    def start(code: str, *, config: dict[str, Any] | None = None, **options: Any):
        adapter_cls, factory, credentials, environ = SIMULATED[code]
        served = Served(factory(**options))
        running.append(served)
        adapter = adapter_cls(CarrierConfig(served.url, credentials, **{**FAST, **(config or {})}), environ=environ)
        return adapter, served

    yield start
    for served in running:
        served.close()


@pytest.fixture
def carriers(session) -> dict[str, Carrier]:
    rows = {code: Carrier(code=code, name=f"{code} carrier", adapter=code) for code in SIMULATED}
    session.add_all(rows.values())
    session.commit()
    return rows


def record(external_id: str, quantity: str = "100", **overrides: Any) -> OfferRecord:
    values: dict[str, Any] = dict(
        external_id=external_id, kind="gpu", region="sh", attributes={"gpu_model": "H100"},
        quantity=Decimal(quantity), window_start=dt.date(2026, 12, 1), window_end=dt.date(2026, 12, 31),
        list_price=Decimal(10), unit_price=Decimal(5),
    )
    values.update(overrides)
    return OfferRecord(**values)


def feed(*offers: OfferRecord, rejected: tuple[RejectedRecord, ...] = (), complete: bool = True) -> FetchResult:
    return FetchResult("telecom", list(offers), list(rejected), complete)


def apply(session, result: FetchResult, source: SyncSource = SyncSource.pull) -> CarrierSync:
    return sync_service.apply_feed(session, "telecom", source, result, NOW, complete=result.complete)


def offers(session, carrier: str = "telecom") -> dict[str, Offer]:
    session.expire_all()
    query = sa.select(Offer).join(Offer.carrier).where(Carrier.code == carrier)
    return {o.external_id: o for o in session.scalars(query)}


def promise(session, offer: Offer, quantity: str) -> None:
    """Arrange a held allocation on `offer` (the matching cycle makes these in production)."""
    from broker.models import Sector, Startup
    from tests.conftest import make_uscc

    startup = Startup(name="s", uscc=make_uscc(990), sector=Sector.other, founded_on=dt.date(2022, 1, 1),
                      headcount=1, contact_name="x", contact_email="x@example.cn")
    cycle = MatchingCycle(scheduled_for=NOW)
    session.add_all([startup, cycle])
    session.flush()
    request = ResourceRequest(startup_id=startup.id, kind=offer.kind, quantity=Decimal(quantity),
                              window_start=offer.window_start, window_end=offer.window_end)
    session.add(request)
    session.flush()
    session.add(Allocation(cycle_id=cycle.id, request_id=request.id, offer_id=offer.id,
                           quantity=Decimal(quantity), unit_price=offer.unit_price))
    offer.promised += Decimal(quantity)
    session.commit()


def counts(sync: CarrierSync) -> dict[str, int]:
    return sync.counts


# ------------------------------------------------------------------------------ the rules


def test_a_second_run_of_the_same_feed_changes_nothing(session, carriers):
    result = feed(record("a"), record("b", "2.5"), record("c", kind="tokens", attributes={"model": "m"}))
    first = apply(session, result)
    assert first.status is SyncStatus.succeeded
    assert counts(first) == dict(new=3, changed=0, unchanged=0, withdrawn=0, quarantined=0, conflicts=0)
    before = {k: (o.id, o.quantity, o.updated_at) for k, o in offers(session).items()}
    audit_count = session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.entity_type == "offers"))
    assert audit_count == 0  # creations are recorded by the sync itself

    second = apply(session, result)
    assert counts(second) == dict(new=0, changed=0, unchanged=3, withdrawn=0, quarantined=0, conflicts=0)
    assert {k: (o.id, o.quantity, o.updated_at) for k, o in offers(session).items()} == before
    assert session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.entity_type == "offers")) == 0
    assert offers(session)["b"].quantity == Decimal("2.500")


def test_changes_are_applied_and_audited(session, carriers):
    apply(session, feed(record("a"), record("b")))
    changed = apply(session, feed(record("a", "150", region="bj"), record("b")))
    assert counts(changed)["changed"] == 1 and counts(changed)["unchanged"] == 1
    a = offers(session)["a"]
    assert (a.quantity, a.region) == (Decimal("150.000"), "bj")
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "sync_update"))
    assert entry.entity_id == a.id and entry.before["region"] == "sh" and entry.after["region"] == "bj"
    assert entry.before["attributes"] == entry.after["attributes"] == {"gpu_model": "H100"}
    assert (entry.before["quantity"], entry.after["quantity"]) == ("100.000", "150")
    assert entry.before["window_start"] == "2026-12-01" and entry.before["list_price"] == "10.0000"
    assert entry.after["sync_id"] == changed.id


def test_a_malformed_record_is_quarantined_and_never_blocks_the_good_ones(session, carriers):
    bad = RejectedRecord("x-1", {"resource_id": "x-1", "gpu_cards": "many"}, "gpu_cards is not a number", "page 1 item 2")
    done = apply(session, feed(record("a"), record("b"), rejected=(bad,)))
    assert counts(done)["new"] == 2 and counts(done)["quarantined"] == 1
    assert set(offers(session)) == {"a", "b"}
    kept = session.scalar(sa.select(QuarantinedRecord).where(QuarantinedRecord.sync_id == done.id))
    assert (kept.external_id, kept.reason, kept.location) == ("x-1", "gpu_cards is not a number", "page 1 item 2")
    assert kept.raw == {"resource_id": "x-1", "gpu_cards": "many"}


def test_an_identity_change_or_overlong_id_is_quarantined(session, carriers):
    apply(session, feed(record("a")))
    done = apply(session, feed(record("a", kind="cpu", attributes={}), record("z" * 150)))
    assert counts(done)["quarantined"] == 2 and counts(done)["new"] == 0
    assert offers(session)["a"].kind == "gpu" and offers(session)["a"].status is OfferStatus.active
    reasons = session.scalars(sa.select(QuarantinedRecord.reason).where(QuarantinedRecord.sync_id == done.id)).all()
    assert any("cannot change" in r for r in reasons) and any("longer than 128" in r for r in reasons)


def test_missing_offers_are_withdrawn_only_by_a_complete_feed(session, carriers):
    apply(session, feed(record("a"), record("b"), record("c")))
    partial = apply(session, feed(record("a"), complete=False), SyncSource.webhook)
    assert counts(partial)["withdrawn"] == 0
    assert all(o.status is OfferStatus.active for o in offers(session).values())

    # "c" is unreadable this time: a quarantined id counts as seen, so it stays.
    unreadable_c = RejectedRecord("c", {"resource_id": "c"}, "missing field 'hours'")
    complete = apply(session, feed(record("a"), rejected=(unreadable_c,)))
    assert counts(complete)["withdrawn"] == 1
    now = offers(session)
    assert (now["b"].status, now["b"].quantity) == (OfferStatus.withdrawn, Decimal(0))
    assert now["c"].status is OfferStatus.active and now["a"].status is OfferStatus.active

    back = apply(session, feed(record("a"), record("b"), record("c")))
    assert counts(back)["changed"] == 1 and offers(session)["b"].status is OfferStatus.active


def test_promised_capacity_is_never_taken_back_and_the_conflict_is_recorded(session, carriers):
    apply(session, feed(record("a"), record("b")))
    promise(session, offers(session)["a"], "60")

    shrunk = apply(session, feed(record("a", "40"), record("b")))
    a = offers(session)["a"]
    assert (a.quantity, a.promised) == (Decimal("60.000"), Decimal("60.000"))
    assert counts(shrunk)["conflicts"] == 1 and counts(shrunk)["changed"] == 1
    conflict = session.scalar(sa.select(SyncConflict).where(SyncConflict.sync_id == shrunk.id))
    assert (conflict.kind.value, conflict.requested_quantity, conflict.kept_quantity) == ("shrunk", Decimal(40), Decimal(60))

    again = apply(session, feed(record("a", "40"), record("b")))
    assert counts(again) == dict(new=0, changed=0, unchanged=2, withdrawn=0, quarantined=0, conflicts=0)

    gone = apply(session, feed(record("b")))
    a = offers(session)["a"]
    assert (a.status, a.quantity, a.promised) == (OfferStatus.withdrawn, Decimal(60), Decimal(60))
    conflict = session.scalar(sa.select(SyncConflict).where(SyncConflict.sync_id == gone.id))
    assert (conflict.kind.value, conflict.requested_quantity, conflict.kept_quantity) == ("withdrawn", Decimal(0), Decimal(60))


def test_the_shrink_guard_reads_promises_in_sql_not_from_the_earlier_read(session, carriers, monkeypatch):
    apply(session, feed(record("a")))
    offer_id = offers(session)["a"].id
    real_plan = feed_writer._plan

    def plan_then_a_promise_lands(*args: Any) -> Any:
        planned = real_plan(*args)  # planned from promised = 0
        # A concurrent approval commits between the read and the upsert.
        session.execute(sa.update(Offer).where(Offer.id == offer_id).values(promised=Decimal(70)))
        return planned

    monkeypatch.setattr(feed_writer, "_plan", plan_then_a_promise_lands)
    done = apply(session, feed(record("a", "30")))
    a = offers(session)["a"]
    assert (a.quantity, a.promised) == (Decimal(70), Decimal(70))
    assert counts(done)["conflicts"] == 1


def test_an_identity_change_counts_as_seen_while_a_missing_offer_is_withdrawn(session, carriers):
    apply(session, feed(record("a"), record("b"), record("c")))
    done = apply(session, feed(record("a", kind="cpu", attributes={}), record("b")))
    assert counts(done) == dict(new=0, changed=0, unchanged=1, withdrawn=1, quarantined=1, conflicts=0)
    now = offers(session)
    assert (now["a"].kind, now["a"].status) == ("gpu", OfferStatus.active)
    assert (now["c"].status, now["c"].quantity) == (OfferStatus.withdrawn, Decimal(0))
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "sync_withdraw"))
    assert entry.entity_id == now["c"].id and entry.before == {"status": "active", "quantity": "100.000"}


def test_the_same_attributes_in_another_order_are_unchanged(session, carriers):
    apply(session, feed(record("a", attributes={"gpu_model": "H100", "gpu_memory_gb": 80})))
    again = apply(session, feed(record("a", attributes={"gpu_memory_gb": 80, "gpu_model": "H100"})))
    assert counts(again)["unchanged"] == 1 and counts(again)["changed"] == 0
    changed = apply(session, feed(record("a", attributes={"gpu_memory_gb": 40, "gpu_model": "H100"})))
    assert counts(changed)["changed"] == 1
    assert offers(session)["a"].attributes == {"gpu_memory_gb": 40, "gpu_model": "H100"}


def test_values_are_stored_exactly_whatever_characters_they_hold(session, carriers):
    odd = record("a\\b\tc\nd\re", region="上海\\浦东\t", attributes={"gpu_model": "H100 \"SXM\"\\\n"})
    first = apply(session, feed(odd, record("b", "0.001")))
    assert counts(first)["new"] == 2
    stored = offers(session)
    assert set(stored) == {"a\\b\tc\nd\re", "b"}
    assert stored[odd.external_id].region == "上海\\浦东\t"
    assert stored[odd.external_id].attributes == {"gpu_model": "H100 \"SXM\"\\\n"}
    assert stored["b"].quantity == Decimal("0.001")
    assert counts(apply(session, feed(odd, record("b", "0.001"))))["unchanged"] == 2


def test_a_sync_that_fails_halfway_leaves_nothing_behind(session, carriers, monkeypatch):
    apply(session, feed(record("a")))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr(feed_writer, "_upsert", broken)
        with pytest.raises(RuntimeError):
            apply(session, feed(record("a", "50"), record("b")))
    assert set(offers(session)) == {"a"} and offers(session)["a"].quantity == Decimal(100)
    # The staging tables went with the rollback: the next sync stages afresh.
    done = apply(session, feed(record("a", "50"), record("b")))
    assert counts(done) == dict(new=1, changed=1, unchanged=0, withdrawn=0, quarantined=0, conflicts=0)


# ------------------------------------------------------------------------------ over HTTP


def _identity(session, carrier: str) -> dict[str, tuple]:
    return {k: (o.kind, o.quantity, o.unit_price, o.window_start, o.window_end, o.status)
            for k, o in offers(session, carrier).items()}


@pytest.mark.parametrize("code", sorted(SIMULATED))
def test_a_misbehaving_carrier_loses_nothing_and_duplicates_nothing(session, carriers, simulate, code):
    clean, _ = simulate(code, offers=240, seed=7, malformed_rate=0.1, duplicate_rate=0.1)
    expected = clean.fetch_offers()
    if code == "unicom":  # one catalog file per fetch: its faults are a truncated or failed download
        unwell, _ = simulate(code, offers=240, seed=7, malformed_rate=0.1, duplicate_rate=0.1, fail_first=2)
    else:
        unwell, _ = simulate(code, offers=240, seed=7, malformed_rate=0.1, duplicate_rate=0.1, error_rate=0.3)

    first = sync_service.sync_carrier(session, code, unwell, NOW)
    assert first.status is SyncStatus.succeeded, first.error
    assert first.new == len(expected.offers) and first.quarantined == len(expected.rejected) > 0
    assert {k: v[:5] for k, v in _identity(session, code).items()} == {
        o.external_id: (o.kind, o.quantity, o.unit_price, o.window_start, o.window_end) for o in expected.offers
    }
    stored = session.scalars(sa.select(QuarantinedRecord.reason).where(QuarantinedRecord.sync_id == first.id)).all()
    assert any("duplicate external id" in reason for reason in stored)

    second = sync_service.sync_carrier(session, code, unwell, NOW)
    assert counts(second) == dict(new=0, changed=0, unchanged=len(expected.offers), withdrawn=0,
                                  quarantined=len(expected.rejected), conflicts=0)


@pytest.mark.parametrize("code", sorted(SIMULATED))
def test_a_failed_sync_is_recorded_and_changes_no_offer(session, carriers, simulate, code):
    good, _ = simulate(code, offers=30, seed=3)
    sync_service.sync_carrier(session, code, good, NOW)
    before = _identity(session, code)

    truncated, _ = simulate(code, offers=25, seed=3, truncate=True)
    failed = sync_service.sync_carrier(session, code, truncated, NOW)
    assert failed.status is SyncStatus.failed and failed.error
    assert counts(failed) == dict(new=0, changed=0, unchanged=0, withdrawn=0, quarantined=0, conflicts=0)
    assert _identity(session, code) == before  # the 5 missing offers were not withdrawn


def test_an_open_circuit_is_a_failed_sync_and_no_secret_reaches_the_record(session, carriers, simulate):
    down, served = simulate("mobile", offers=10, error_rate=1.0, config={"retries": 0})
    errors = [sync_service.sync_carrier(session, "mobile", down, NOW).error for _ in range(3)]
    assert "simulated carrier failure" in errors[0] and "circuit open" in errors[2]
    assert offers(session, "mobile") == {}
    syncs = session.scalars(sa.select(CarrierSync).where(CarrierSync.carrier_id == carriers["mobile"].id)).all()
    assert [s.status for s in syncs] == [SyncStatus.failed] * 3
    for secret in SIMULATED["mobile"][3].values():
        assert all(secret not in e for e in errors)


def test_wrong_credentials_fail_without_echoing_them(session, carriers, simulate):
    adapter_cls, _, credentials, _ = SIMULATED["unicom"]
    _, served = simulate("unicom", offers=5, password="the-real-password")
    wrong = adapter_cls(CarrierConfig(served.url, credentials, **FAST),
                        environ={"BROKER_CARRIER_UNICOM_USERNAME": "sim-unicom",
                                 "BROKER_CARRIER_UNICOM_PASSWORD": "guessed-pass-123"})
    failed = sync_service.sync_carrier(session, "unicom", wrong, NOW)
    assert failed.status is SyncStatus.failed and "401" in failed.error
    assert "guessed-pass-123" not in failed.error and "the-real-password" not in failed.error


def test_a_sync_is_stamped_with_its_use_cases_now_not_the_system_clock(session, carriers, simulate):
    """A test or simulation clock far from the wall clock: every time a sync records is its `now`."""
    long_ago = dt.datetime(2020, 1, 6, 1, 0, tzinfo=dt.UTC)
    done = sync_service.apply_feed(session, "telecom", SyncSource.pull, feed(record("a")), long_ago, complete=True)
    assert (done.started_at, done.finished_at) == (long_ago, long_ago)
    assert offers(session)["a"].updated_at == long_ago

    down, _ = simulate("mobile", offers=10, error_rate=1.0, config={"retries": 0})
    failed = sync_service.sync_carrier(session, "mobile", down, long_ago)
    assert failed.status is SyncStatus.failed and (failed.started_at, failed.finished_at) == (long_ago, long_ago)
