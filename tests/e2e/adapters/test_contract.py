"""One contract, every adapter: each registered adapter against its simulator over real HTTP."""

from __future__ import annotations

import inspect
from decimal import Decimal
from datetime import datetime, timedelta, timezone

import pytest

from adapters.base import (
    AdapterError,
    CarrierAdapter,
    Feature,
    FetchResult,
    OfferRecord,
    ProvisionRequest,
    UnsupportedFeatureError,
)
from broker.resources import KINDS, attribute_problem

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=8)))

FEATURE_METHODS = {
    Feature.PROVISION: ("provision", (ProvisionRequest("a", "o", "gpu", 1, NOW.date(), NOW.date()),)),
    Feature.RELEASE: ("release", ("ref",)),
    Feature.USAGE: ("fetch_usage", (NOW,)),
    Feature.WEBHOOK: ("parse_webhook", ({}, b"", "secret", NOW)),
    Feature.CATALOG_UPLOAD: ("parse_catalog", (b"", "x.csv")),
}


def test_declares_its_interface(adapter_name: str, carriers) -> None:
    adapter_cls = carriers[adapter_name].adapter
    assert issubclass(adapter_cls, CarrierAdapter)
    assert adapter_name.startswith(adapter_cls.name)
    assert not inspect.isabstract(adapter_cls)
    assert isinstance(adapter_cls.unsupported_features, frozenset)
    assert all(isinstance(f, Feature) for f in adapter_cls.unsupported_features)
    assert Feature.FETCH_OFFERS not in adapter_cls.unsupported_features
    # A supported feature is implemented, an unsupported one is left to the base class.
    for feature, (method, _) in FEATURE_METHODS.items():
        overridden = getattr(adapter_cls, method) is not getattr(CarrierAdapter, method)
        assert overridden == (feature not in adapter_cls.unsupported_features), (feature, method)
    for method, _ in FEATURE_METHODS.values():
        doc = getattr(adapter_cls, method).__doc__ or ""
        assert doc.strip() and "\n" not in doc.strip(), f"{method} needs a one-line docstring"


def test_unsupported_features_raise(adapter_name: str, carrier_sim) -> None:
    adapter, _ = carrier_sim(adapter_name, offers=1)
    for feature in adapter.unsupported_features:
        method, args = FEATURE_METHODS[feature]
        assert not adapter.supports(feature)
        with pytest.raises(UnsupportedFeatureError, match=feature.value):
            getattr(adapter, method)(*args)


def assert_well_formed(result: FetchResult, carrier: str) -> None:
    assert result.carrier == carrier
    for offer in result.offers:
        assert isinstance(offer, OfferRecord)
        assert offer.kind in KINDS
        assert all(attribute_problem(offer.kind, k, v) is None for k, v in offer.attributes.items())
        assert offer.window_start < offer.window_end
        assert offer.quantity > 0 and offer.quantity == offer.quantity.quantize(Decimal("0.001"))
        assert offer.unit_price <= offer.list_price
        assert offer.divisible == (offer.kind != "data_line")
    ids = [o.external_id for o in result.offers]
    assert len(ids) == len(set(ids))


def test_fetch_offers(adapter_name: str, carrier_sim) -> None:
    adapter, simulator = carrier_sim(adapter_name, offers=120, seed=7)
    result = adapter.fetch_offers()
    assert_well_formed(result, adapter.name)
    assert result.complete
    assert result.rejected == []
    assert len(result.offers) == 120
    assert len({o.kind for o in result.offers}) >= 4  # each conversion is pinned in tests/unit


def test_fetch_is_deterministic_per_seed(adapter_name: str, carrier_sim) -> None:
    first, _ = carrier_sim(adapter_name, offers=30, seed=3)
    again, _ = carrier_sim(adapter_name, offers=30, seed=3)
    other, _ = carrier_sim(adapter_name, offers=30, seed=4)
    assert first.fetch_offers().offers == again.fetch_offers().offers
    assert first.fetch_offers().offers != other.fetch_offers().offers


def test_quarantines_malformed_and_duplicate_records(adapter_name: str, carrier_sim) -> None:
    adapter, _ = carrier_sim(adapter_name, offers=300, seed=1, malformed_rate=0.1, duplicate_rate=0.05)
    result = adapter.fetch_offers()
    assert_well_formed(result, adapter.name)
    reasons = [r.reason for r in result.rejected]
    assert any(r.startswith("duplicate external id") for r in reasons)
    assert any(not r.startswith("duplicate") for r in reasons)
    # Nothing lost: every record is either an offer or quarantined with its raw form.
    assert len(result.offers) + len(result.rejected) == 300
    assert len(result.offers) > 200
    assert all(r.raw and r.location for r in result.rejected)
    duplicated = {r.external_id for r in result.rejected if r.reason.startswith("duplicate")}
    assert duplicated <= result.seen_external_ids


def test_provisioning_is_idempotent(adapter_name: str, carrier_sim) -> None:
    adapter, simulator = carrier_sim(adapter_name, offers=20)
    if not adapter.supports(Feature.PROVISION):
        pytest.skip("adapter does not provision")
    offer = adapter.fetch_offers().offers[0]
    request = ProvisionRequest("alloc-42", offer.external_id, offer.kind, offer.quantity,
                               offer.window_start, offer.window_end)
    first = adapter.provision(request)
    again = adapter.provision(request)
    assert first == again
    assert first.status in ("active", "pending")
    assert simulator.stats()["orders"] == 1
    other = adapter.provision(ProvisionRequest("alloc-43", offer.external_id, offer.kind, offer.quantity,
                                               offer.window_start, offer.window_end))
    assert other.carrier_reference != first.carrier_reference
    assert simulator.stats()["orders"] == 2


def test_reusing_an_allocation_id_for_another_order_is_refused(adapter_name: str, carrier_sim) -> None:
    adapter, simulator = carrier_sim(adapter_name, offers=20)
    offer = adapter.fetch_offers().offers[0]
    adapter.provision(ProvisionRequest("alloc-1", offer.external_id, offer.kind, offer.quantity,
                                       offer.window_start, offer.window_end))
    with pytest.raises(AdapterError) as caught:
        adapter.provision(ProvisionRequest("alloc-1", offer.external_id, offer.kind, offer.quantity / 2,
                                           offer.window_start, offer.window_end))
    assert caught.value.status == 409 and not caught.value.carrier_fault
    assert simulator.stats()["orders"] == 1


def test_release_and_usage(adapter_name: str, carrier_sim) -> None:
    adapter, simulator = carrier_sim(adapter_name, offers=20)
    offer = adapter.fetch_offers().offers[1]
    before = datetime.now(timezone.utc) - timedelta(seconds=2)
    provisioned = adapter.provision(ProvisionRequest("alloc-7", offer.external_id, offer.kind, offer.quantity,
                                                     offer.window_start, offer.window_end))
    usage = adapter.fetch_usage(before)
    assert usage.rejected == []
    [line] = usage.records
    assert (line.allocation_id, line.carrier_reference, line.kind) == ("alloc-7", provisioned.carrier_reference, offer.kind)
    # The simulator reports a tenth of the order as used: units round-trip through the carrier's.
    assert line.quantity == (offer.quantity / 10).quantize(Decimal("0.001"))
    assert line.recorded_at.tzinfo is not None
    assert adapter.fetch_usage(datetime.now(timezone.utc) + timedelta(minutes=1)).records == []
    adapter.release(provisioned.carrier_reference)
    adapter.release(provisioned.carrier_reference)  # twice is harmless
    assert simulator.stats()["released"] == 1
    with pytest.raises(AdapterError) as caught:
        adapter.release("NO-SUCH-ORDER")
    assert caught.value.status == 404


def test_wrong_credentials_fail_without_showing_them(adapter_name: str, carrier_sim, carriers) -> None:
    adapter, _ = carrier_sim(adapter_name, offers=5)
    carrier = carriers[adapter_name]
    wrong = {variable: "wrong-" + value for variable, value in carrier.environ.items()}
    bad = type(adapter)(adapter.config, environ=wrong)
    with pytest.raises(AdapterError) as caught:
        bad.fetch_offers()
    assert caught.value.status == 401
    assert not caught.value.carrier_fault
    text = f"{caught.value} {caught.value!r} {bad!r} {vars(bad)}"
    for value in list(wrong.values()) + list(carrier.environ.values()):
        assert value not in text
