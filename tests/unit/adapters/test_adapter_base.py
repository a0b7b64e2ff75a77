"""The interface's data, the feed builder, the breaker, webhook signatures and the registry."""

from __future__ import annotations

import importlib.metadata
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from adapters.base import (
    CarrierConfig,
    ConfigurationError,
    OfferRecord,
    RecordError,
    Secret,
    WebhookSignatureError,
)
from adapters.breaker import CircuitBreaker
from adapters.feed import FeedBuilder
from adapters.mobile import MobileAdapter
from adapters.registry import AdapterRegistry, AdapterRegistryError
from adapters.signing import verify_webhook, webhook_signature
from adapters.telecom import TelecomAdapter
from adapters.unicom import UnicomAdapter
from adapters.units import add_months, parse_date, price, quantity, window_hours

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=8)))


def offer(**overrides) -> OfferRecord:
    fields = dict(
        external_id="X1", kind="gpu", region="sh", attributes={"gpu_model": "H100", "gpu_memory_gb": 80},
        quantity=Decimal("100.5"), window_start=date(2026, 12, 1), window_end=date(2026, 12, 31),
        list_price=Decimal("12.5"), unit_price=Decimal("0"),
    )
    return OfferRecord(**{**fields, **overrides})


def test_offer_defaults_divisibility_from_its_kind() -> None:
    assert offer().divisible is True
    line = offer(kind="data_line", attributes={"a_end": "a", "z_end": "z", "cross_border": "yes"})
    assert line.divisible is False
    assert offer(divisible=False).divisible is False


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"external_id": " "}, "missing external id"),
        ({"kind": "quantum"}, "unknown kind 'quantum'; valid kinds: gpu, cpu"),
        ({"region": ""}, "missing region"),
        ({"attributes": {"flavor": "x"}}, "attribute 'flavor': Unknown attribute for kind 'gpu'"),
        ({"attributes": {"gpu_memory_gb": "80"}}, "attribute 'gpu_memory_gb': Must be an integer"),
        ({"quantity": Decimal("1.0001")}, "quantity 1.0001 has more than 3 decimal places"),
        ({"quantity": Decimal(0)}, "quantity is zero"),
        ({"quantity": Decimal(-1)}, "outside"),
        ({"list_price": Decimal("1.00001")}, "more than 4 decimal places"),
        ({"unit_price": Decimal("13")}, "above list price"),
        ({"quantity": 5}, "quantity must be a finite Decimal"),
        ({"window_end": date(2026, 12, 1)}, "is not before end"),
        ({"kind": "data_line", "attributes": {}, "divisible": True}, "indivisible"),
    ],
)
def test_offer_refuses_malformed_values(overrides, reason) -> None:
    with pytest.raises(RecordError, match=reason.replace("(", r"\(")):
        offer(**overrides)


def test_feed_keeps_first_duplicate_and_quarantines_the_rest() -> None:
    feed = FeedBuilder("c")
    feed.add({"n": 1}, "row 1", "A", lambda: offer(external_id="A"))
    feed.add({"n": 2}, "row 2", "A", lambda: offer(external_id="A", quantity=Decimal(7)))
    feed.add({"n": 3}, "row 3", "B", lambda: offer(external_id="B", kind="nope"))
    feed.add({"n": 4}, "row 4", None, lambda: {}["资源编号"])
    feed.add({"n": 5, "when": date(2026, 1, 1), "price": Decimal("1.5")}, "row 5", "C", lambda: offer(external_id="C"))
    result = feed.finish()
    assert [o.external_id for o in result.offers] == ["A", "C"]
    assert result.offers[0].quantity == Decimal("100.5")
    assert [(r.external_id, r.location) for r in result.rejected] == [("A", "row 2"), ("B", "row 3"), (None, "row 4")]
    assert result.rejected[0].reason == "duplicate external id 'A'; kept the first, at row 1"
    assert result.rejected[2].reason == "missing field '资源编号'"
    assert result.seen_external_ids == {"A", "B", "C"}


def test_secrets_never_show() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in f"{secret} {secret!r}"
    assert secret.reveal() == "hunter2"


def test_credentials_come_from_named_environment_variables() -> None:
    config = CarrierConfig("https://ctc.example", {"token": "CTC_TOKEN"})
    adapter = TelecomAdapter(config, environ={"CTC_TOKEN": "s3cret-token"})
    assert "s3cret" not in repr(adapter) and "s3cret" not in repr(vars(adapter))
    with pytest.raises(ConfigurationError, match="environment variable CTC_TOKEN"):
        TelecomAdapter(config, environ={})
    with pytest.raises(ConfigurationError, match="lacks token"):
        TelecomAdapter(CarrierConfig("https://ctc.example"), environ={})


def test_config_from_mapping_names_unknown_settings() -> None:
    config = CarrierConfig.from_mapping({"base_url": "https://x.example", "read_timeout": 5})
    assert config.timeout == (3.05, 5)
    with pytest.raises(ValueError, match="Unknown carrier settings: timeout; valid: backoff_factor"):
        CarrierConfig.from_mapping({"base_url": "https://x.example", "timeout": 5})
    with pytest.raises(ValueError, match="http"):
        CarrierConfig("ftp://x.example")


def test_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(fail_max=2, reset_timeout=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.allow() and breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10
    assert breaker.state == "half-open"
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()  # the trial failed: open for another full timeout
    now[0] = 15
    assert not breaker.allow()
    now[0] = 20
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()


def signed(body: bytes, secret: str = "whsec", at: datetime = NOW) -> dict[str, str]:
    stamp = int(at.timestamp())
    return {"x-ts": str(stamp), "X-Sig": webhook_signature(secret, stamp, body)}


def check(headers, body=b'{"a":1}', secret="whsec", now=NOW) -> None:
    verify_webhook(headers, body, secret, now, carrier="c", timestamp_header="X-TS", signature_header="x-sig")


def test_webhook_signature_accepts_a_fresh_valid_push() -> None:
    check(signed(b'{"a":1}'))
    check(signed(b'{"a":1}', at=NOW - timedelta(seconds=299)))


@pytest.mark.parametrize(
    ("headers", "body", "secret", "message"),
    [
        (signed(b'{"a":1}', secret="other"), b'{"a":1}', "whsec", "bad webhook signature"),
        (signed(b'{"a":2}'), b'{"a":1}', "whsec", "bad webhook signature"),
        (signed(b'{"a":1}', at=NOW - timedelta(seconds=301)), b'{"a":1}', "whsec", "stale"),
        (signed(b'{"a":1}', at=NOW + timedelta(minutes=6)), b'{"a":1}', "whsec", "stale"),
        ({"X-Sig": "abc"}, b'{"a":1}', "whsec", "missing X-TS"),
        ({"X-TS": "soon", "X-Sig": "abc"}, b'{"a":1}', "whsec", "not a unix time"),
        (signed(b'{"a":1}', secret=""), b'{"a":1}', "", "no webhook secret"),
    ],
)
def test_webhook_signature_refuses(headers, body, secret, message) -> None:
    with pytest.raises(WebhookSignatureError, match=message):
        check(headers, body, secret)


def test_a_verified_push_is_named_by_what_its_signature_covers() -> None:
    body = b'{"a":1}'
    headers = signed(body)
    push = verify_webhook(headers, body, "whsec", NOW, carrier="c", timestamp_header="X-TS", signature_header="x-sig")
    assert push.signed_at == NOW.replace(microsecond=0) and push.valid_until == push.signed_at + timedelta(seconds=300)
    # The same push with its headers written otherwise (they all verify) is the same push ...
    for variant in ({**headers, "x-ts": "+" + headers["x-ts"]}, {**headers, "x-ts": "00" + headers["x-ts"]},
                    {**headers, "X-Sig": headers["X-Sig"].upper()}, {**headers, "X-Sig": f" {headers['X-Sig']} "}):
        assert verify_webhook(variant, body, "whsec", NOW, carrier="c", timestamp_header="X-TS",
                              signature_header="x-sig") == push
    # ... while another body or another second is another push.
    later = NOW + timedelta(seconds=1)
    assert verify_webhook(signed(body, at=later), body, "whsec", NOW, carrier="c", timestamp_header="X-TS",
                          signature_header="x-sig").id != push.id
    assert verify_webhook(signed(b'{"a":2}'), b'{"a":2}', "whsec", NOW, carrier="c", timestamp_header="X-TS",
                          signature_header="x-sig").id != push.id


def test_units_round_quantities_down_and_prices_half_up() -> None:
    assert quantity(Decimal("1.23499")) == Decimal("1.234")
    assert price(Decimal("0.00005")) == Decimal("0.0001")
    assert window_hours(date(2026, 12, 1), date(2026, 12, 31)) == 744
    assert add_months(date(2027, 1, 1), 2) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 1), 1) == date(2026, 12, 31)
    assert parse_date(20261201.0, "d", fmt="compact") == date(2026, 12, 1)
    with pytest.raises(RecordError, match="YYYYMMDD"):
        parse_date("20261345", "d", fmt="compact")


def test_registry_from_mapping_and_lookups() -> None:
    registry = AdapterRegistry({"telecom": TelecomAdapter, "mobile": MobileAdapter})
    assert registry.names() == ["mobile", "telecom"]
    assert registry.get("telecom") is TelecomAdapter
    with pytest.raises(AdapterRegistryError, match="Unknown adapter 'unicorn'; valid adapters: mobile, telecom."):
        registry.get("unicorn")
    with pytest.raises(AdapterRegistryError, match="Duplicate adapter name 'mobile'"):
        registry.register("mobile", MobileAdapter)
    with pytest.raises(AdapterRegistryError, match="different name"):
        registry.register("unicom2", UnicomAdapter)
    with pytest.raises(AdapterRegistryError, match="not a CarrierAdapter"):
        AdapterRegistry({"telecom": object})
    adapter = registry.create("telecom", CarrierConfig("https://x.example", {"token": "T"}), environ={"T": "t"})
    assert isinstance(adapter, TelecomAdapter)


def entry_point(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name, value, "broker.adapters")


def test_registry_loads_entry_points() -> None:
    registry = AdapterRegistry.from_entry_points([
        entry_point("telecom", "adapters.telecom:TelecomAdapter"),
        entry_point("mobile", "adapters.mobile:MobileAdapter"),
        entry_point("unicom", "adapters.unicom:UnicomAdapter"),
    ])
    assert registry.names() == ["mobile", "telecom", "unicom"]


def test_registry_rejects_duplicate_and_broken_entry_points() -> None:
    with pytest.raises(AdapterRegistryError, match="Duplicate adapter name 'telecom'"):
        AdapterRegistry.from_entry_points([
            entry_point("telecom", "adapters.telecom:TelecomAdapter"),
            entry_point("telecom", "adapters.telecom:TelecomAdapter"),
        ])
    with pytest.raises(AdapterRegistryError, match=r"'ghost' \(adapters.ghost:Ghost\) failed to load: "
                                                   r"ModuleNotFoundError.*Declared adapters: ghost, telecom"):
        AdapterRegistry.from_entry_points([
            entry_point("telecom", "adapters.telecom:TelecomAdapter"),
            entry_point("ghost", "adapters.ghost:Ghost"),
        ])


def test_installed_entry_points_load() -> None:
    # Once the package is installed with its setup.cfg entry points, they must all load.
    registry = AdapterRegistry.from_entry_points()  # raises if one is broken
    for name in registry.names():
        assert registry.get(name).name == name
