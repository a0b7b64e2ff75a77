"""Carriers publish offers (upsert by their own ids) and withdraw them; everyone browses."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.models import Allocation, MatchingCycle, Offer


def gpu_offer(external_id="lot-1", **overrides):
    offer = {
        "external_id": external_id,
        "kind": "gpu",
        "region": "sh-changning",
        "attributes": {"gpu_model": "H100", "gpu_memory_gb": 80},
        "quantity": "1000",
        "window_start": "2026-12-01",
        "window_end": "2027-03-01",
        "list_price": "28.00",
        "unit_price": "12.5",
    }
    offer.update(overrides)
    return offer


def publish(client, carrier, *offers):
    return client.post("/api/v1/offers", json={"offers": list(offers)}, headers=carrier.headers)


def test_upsert_creates_updates_and_is_idempotent(client, make_actor):
    carrier = make_actor("carrier")
    first = publish(client, carrier, gpu_offer("a"), gpu_offer("b", kind="tokens", attributes={"model": "telechat-2"}))
    assert first.status_code == 200, first.json
    assert (first.json["created"], first.json["updated"], first.json["unchanged"]) == (2, 0, 0)
    again = publish(client, carrier, gpu_offer("a"), gpu_offer("b", kind="tokens", attributes={"model": "telechat-2"}))
    assert (again.json["created"], again.json["updated"], again.json["unchanged"]) == (0, 0, 2)
    changed = publish(client, carrier, gpu_offer("a", quantity="1500.5"))
    assert changed.json["updated"] == 1
    offer = changed.json["offers"][0]
    assert offer["quantity"] == "1500.500" and offer["available"] == "1500.500" and offer["unit"] == "GPU-hour"
    assert offer["carrier"] == carrier.carrier_code


def test_data_lines_are_indivisible_by_default_and_cannot_be_made_divisible(client, make_actor):
    carrier = make_actor("carrier")
    line = gpu_offer("line", kind="data_line", attributes={"a_end": "sh", "z_end": "hk", "cross_border": "yes"})
    created = publish(client, carrier, line)
    assert created.json["offers"][0]["divisible"] is False
    refused = publish(client, carrier, {**line, "external_id": "line2", "divisible": True})
    assert refused.status_code == 422
    assert "divisible" in refused.json["errors"]["json"]["offers"]["0"]


@pytest.mark.parametrize(
    ("overrides", "field", "phrase"),
    [
        ({"quantity": 0}, "quantity", "greater than 0"),
        ({"quantity": "-3"}, "quantity", "greater than 0"),
        ({"quantity": "1.0001"}, "quantity", "decimal places"),
        ({"quantity": "abc"}, "quantity", "number"),
        ({"window_end": "2026-11-01"}, "window_end", "after window_start"),
        ({"kind": "quantum"}, "kind", "Unknown kind"),
        ({"attributes": {"colour": "red"}}, "attributes", "Unknown attribute"),
        ({"attributes": {"gpu_memory_gb": "eighty"}}, "attributes", "integer"),
        ({"unit_price": "30"}, "unit_price", "list_price"),
        ({"region": ""}, "region", "Length"),
        ({"surprise": 1}, "surprise", "Unknown field"),
    ],
)
def test_bad_offers_are_refused_naming_the_field_and_nothing_is_written(client, session, make_actor, overrides, field, phrase):
    carrier = make_actor("carrier")
    response = publish(client, carrier, gpu_offer("good"), gpu_offer("bad", **overrides))
    assert response.status_code == 422, response.json
    problems = response.json["errors"]["json"]["offers"]["1"]
    assert field in problems and phrase.lower() in str(problems[field]).lower()
    assert session.scalar(sa.select(sa.func.count(Offer.id))) == 0


def test_an_offer_cannot_shrink_below_what_is_promised_and_the_batch_is_all_or_nothing(client, session, make_actor):
    carrier, startup = make_actor("carrier"), make_actor("startup")
    publish(client, carrier, gpu_offer("a"), gpu_offer("b"))
    _promise(session, startup, "a", Decimal(600))

    response = publish(client, carrier, gpu_offer("b", quantity="10"), gpu_offer("a", quantity="500"))
    assert response.status_code == 422
    assert "600.000 is already promised" in response.json["errors"]["json"]["offers"]["1"]["quantity"][0]
    quantities = dict(session.execute(sa.select(Offer.external_id, Offer.quantity)).all())
    assert quantities == {"a": Decimal("1000.000"), "b": Decimal("1000.000")}


def test_an_upsert_cannot_change_a_lots_kind_or_divisibility(client, make_actor):
    carrier = make_actor("carrier")
    publish(client, carrier, gpu_offer("a"))
    kind = publish(client, carrier, gpu_offer("a", kind="tokens", attributes={"model": "telechat-2"}))
    assert kind.status_code == 422
    assert kind.json["errors"]["json"]["offers"]["0"] == {"kind": ["Offer a is a gpu lot; its kind cannot change."]}
    whole = publish(client, carrier, gpu_offer("a", divisible=False))
    assert whole.status_code == 422
    assert whole.json["errors"]["json"]["offers"]["0"] == {"divisible": ["Divisibility of an existing lot cannot change."]}


def test_withdrawing_keeps_what_is_promised(client, session, make_actor):
    carrier, startup = make_actor("carrier"), make_actor("startup")
    offer_id = publish(client, carrier, gpu_offer("a")).json["offers"][0]["id"]
    _promise(session, startup, "a", Decimal(250))
    response = client.post(f"/api/v1/offers/{offer_id}/withdraw", headers=carrier.headers)
    assert response.status_code == 200
    assert (response.json["status"], response.json["quantity"], response.json["available"]) == ("withdrawn", "250.000", "0.000")
    assert client.post(f"/api/v1/offers/{offer_id}/withdraw", headers=carrier.headers).status_code == 409
    browse = client.get("/api/v1/offers", headers=startup.headers).json
    assert offer_id not in [o["id"] for o in browse]


def test_browse_filters_and_pages(client, make_actor):
    ctc, cmcc, startup = make_actor("carrier"), make_actor("carrier"), make_actor("startup")
    publish(client, ctc, *[gpu_offer(f"h{i}") for i in range(12)], gpu_offer("a100", attributes={"gpu_model": "A100"}))
    publish(
        client,
        cmcc,
        gpu_offer("tok", kind="tokens", attributes={"model": "jiutian"}, region="sh-minhang"),
        gpu_offer("late", window_start="2027-01-01"),
    )
    get = lambda q: client.get(f"/api/v1/offers?{q}", headers=startup.headers)  # noqa: E731

    page = get("kind=gpu&page_size=5&page=3")
    assert page.status_code == 200 and len(page.json) == 4
    assert '"total": 14' in page.headers["X-Pagination"]
    assert {o["external_id"] for o in get("kind=gpu&attribute=gpu_model:A100").json} == {"a100"}
    assert len(get("kind=gpu&attribute=gpu_memory_gb:80&page_size=100").json) == 13  # a100 names no memory
    assert [o["external_id"] for o in get("region=sh-minhang").json] == ["tok"]
    assert {o["external_id"] for o in get(f"carrier={cmcc.carrier_code}").json} == {"tok", "late"}
    covering = get("available_from=2026-12-15&available_until=2027-02-01&page_size=100").json
    assert "late" not in {o["external_id"] for o in covering} and len(covering) == 14
    assert get("attribute=gpu_model:A100").status_code == 422
    assert get("kind=gpu&attribute=colour:red").status_code == 422
    assert get("page_size=1000").status_code == 422


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("available_from=2026-12-15", {"dec", "long"}),
        ("available_from=2026-12-31", {"dec", "long"}),  # both days of a window are in it
        ("available_from=2027-01-01", {"late", "long"}),
        ("available_until=2027-02-01", {"late", "long"}),
        ("available_until=2026-12-01", {"dec", "long"}),
        ("available_from=2026-12-15&available_until=2027-02-01", {"long"}),
        ("available_from=2026-12-01&available_until=2026-12-31", {"dec", "long"}),
        ("available_from=2025-06-01", set()),
    ],
)
def test_available_from_and_until_each_mean_the_window_includes_that_day(client, make_actor, query, expected):
    carrier, startup = make_actor("carrier"), make_actor("startup")
    windows = {
        "old": ("2026-01-01", "2026-03-01"),  # ended long before
        "dec": ("2026-12-01", "2026-12-31"),
        "late": ("2027-01-01", "2027-03-01"),
        "future": ("2027-05-01", "2027-08-01"),  # begins after every date asked about
        "long": ("2026-11-01", "2027-06-30"),
    }
    publish(client, carrier, *[gpu_offer(name, window_start=start, window_end=end) for name, (start, end) in windows.items()])
    found = client.get(f"/api/v1/offers?{query}", headers=startup.headers)
    assert found.status_code == 200 and {o["external_id"] for o in found.json} == expected


def _promise(session, startup, external_id, quantity):
    """Arrange a held allocation (the matching cycle that makes these arrives with issue 5)."""
    from broker.models import ResourceRequest

    offer = session.scalar(sa.select(Offer).where(Offer.external_id == external_id))
    cycle = MatchingCycle(scheduled_for=dt.datetime.now(dt.timezone.utc))
    request = ResourceRequest(
        startup_id=startup.startup_id, kind=offer.kind, quantity=quantity,
        window_start=offer.window_start, window_end=offer.window_end,
    )
    session.add_all([cycle, request])
    session.flush()
    session.add(Allocation(cycle_id=cycle.id, request_id=request.id, offer_id=offer.id, quantity=quantity, unit_price=offer.unit_price))
    offer.promised += quantity
    session.commit()
    return request
