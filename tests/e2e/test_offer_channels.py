"""Which channel owns an offer: each channel a carrier publishes through, then a full pull.

A pull withdraws only what came from the pull; an offer published through the API, an upload
or a push stays on the market; a carrier's own withdrawal is undone by neither a pull nor a
push, only by the carrier publishing the offer again through the API or an upload.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
import sqlalchemy as sa

from adapters.simulators import telecom as telecom_sim
from adapters.simulators import unicom as unicom_sim
from adapters.simulators.common import SimOptions
from broker.models import Carrier, CarrierSync, Offer, OfferStatus
from broker.services import feed_writer
from broker.services import sync as sync_service
from tests.e2e.test_webhooks import SECRETS, carriers  # noqa: F401  (the fixture)
from tests.integration.test_sync import simulate  # noqa: F401  (the fixture)

SEED = 11


def _offers(session, code: str) -> dict[str, Offer]:
    session.expire_all()
    return {o.external_id: o for o in session.scalars(sa.select(Offer).join(Offer.carrier).where(Carrier.code == code))}


def _state(session, code: str) -> dict[str, tuple[str, str, str | None]]:
    return {k: (o.status.value, o.channel.value, o.withdrawn_by and o.withdrawn_by.value)
            for k, o in _offers(session, code).items()}


@pytest.fixture
def pull(session, simulate):  # noqa: F811
    """pull(code, n): a full pull of the first n lots of the carrier's catalogue, over HTTP."""

    def run(code: str, n: int, **options) -> CarrierSync:
        adapter, _ = simulate(code, offers=n, seed=SEED, **options)
        done = sync_service.sync_carrier(session, code, adapter, dt.datetime.now(dt.UTC))
        assert done.status.value == "succeeded", done.error
        return done

    return run


def _push(client, indices: list[int]):
    headers, body = telecom_sim.build_webhook(SECRETS["telecom"], dt.datetime.now(dt.UTC), indices, seed=SEED)
    pushed = client.post("/api/v1/webhooks/telecom", data=body, headers=headers)
    assert pushed.status_code == 200, pushed.json
    return pushed.json


def _upload(client, carrier, n: int):
    content = unicom_sim.build_file(SimOptions.build({"offers": n, "seed": SEED}, set()), "csv")
    uploaded = client.post("/api/v1/carriers/unicom/catalog", headers=carrier.headers,
                           data={"file": (io.BytesIO(content), "目录.csv")}, content_type="multipart/form-data")
    assert uploaded.status_code == 200, uploaded.json
    return uploaded.json


def _as_published(offer: dict, **changes) -> dict:
    fields = ("external_id", "kind", "region", "attributes", "quantity", "window_start", "window_end",
              "list_price", "unit_price", "divisible")
    return {**{name: offer[name] for name in fields}, **changes}


def test_a_pull_withdraws_what_it_no_longer_lists_and_puts_it_back_when_it_does(session, carriers, pull):
    pull("telecom", 5)
    assert set(_state(session, "telecom").values()) == {("active", "pull", None)}
    shorter = pull("telecom", 3)
    assert shorter.withdrawn == 2
    state = _state(session, "telecom")
    assert [state[telecom_sim.resource_id(i)] for i in (3, 4)] == [("withdrawn", "pull", "sync")] * 2
    back = pull("telecom", 5)
    assert back.changed == 2 and set(_state(session, "telecom").values()) == {("active", "pull", None)}


def test_an_offer_published_through_the_api_survives_a_pull(client, session, carriers, pull):
    carrier = carriers["telecom"]
    lot = {"external_id": "api-lot", "kind": "gpu", "region": "sh", "attributes": {"gpu_model": "H100"},
           "quantity": "24", "window_start": "2027-01-01", "window_end": "2027-02-01", "list_price": "20",
           "unit_price": "10"}
    assert client.post("/api/v1/offers", json={"offers": [lot]}, headers=carrier.headers).status_code == 200
    pull("telecom", 3)
    # A pulled lot the carrier then publishes through the API becomes the API's too.
    pulled = _offers(session, "telecom")[telecom_sim.resource_id(0)]
    again = client.get(f"/api/v1/offers/{pulled.id}", headers=carrier.headers).json
    republished = client.post("/api/v1/offers", json={"offers": [_as_published(again)]}, headers=carrier.headers)
    assert republished.json["updated"] == 1 and republished.json["offers"][0]["channel"] == "api"

    later = pull("telecom", 0)  # the carrier's catalogue API now lists nothing
    state = _state(session, "telecom")
    assert state["api-lot"] == ("active", "api", None) and state[telecom_sim.resource_id(0)] == ("active", "api", None)
    assert later.withdrawn == 2 and state[telecom_sim.resource_id(1)] == ("withdrawn", "pull", "sync")
    assert _offers(session, "telecom")["api-lot"].quantity == 24


def test_an_uploaded_offer_survives_a_pull(client, session, carriers, pull):
    _upload(client, carriers["unicom"], 6)
    uploaded = _state(session, "unicom")
    assert uploaded and set(uploaded.values()) == {("active", "upload", None)}
    done = pull("unicom", 2)
    assert done.withdrawn == 0
    state = _state(session, "unicom")
    assert set(state) == set(uploaded)
    assert all(status == "active" for status, _, _ in state.values())
    # What the pull listed is now the pull's; the rest is still the upload's.
    assert {k for k, (_, channel, _) in state.items() if channel == "pull"} == {k for k in state if k < "CU00000002"}


def test_a_pushed_offer_survives_a_pull_until_a_pull_lists_it(client, session, carriers, pull):
    pull("telecom", 2)
    _push(client, [5])
    pushed = telecom_sim.resource_id(5)
    assert _state(session, "telecom")[pushed] == ("active", "webhook", None)
    assert pull("telecom", 2).withdrawn == 0
    assert _state(session, "telecom")[pushed] == ("active", "webhook", None)
    pull("telecom", 6)  # the catalogue now lists it: the pull owns it
    assert _state(session, "telecom")[pushed] == ("active", "pull", None)
    assert pull("telecom", 2).withdrawn == 4
    assert _state(session, "telecom")[pushed] == ("withdrawn", "pull", "sync")


def test_a_carriers_withdrawal_outlives_pulls_and_pushes_until_it_publishes_again(client, session, carriers, pull):
    carrier = carriers["telecom"]
    pull("telecom", 3)
    lot = _offers(session, "telecom")[telecom_sim.resource_id(0)]
    withdrawn = client.post(f"/api/v1/offers/{lot.id}/withdraw", headers=carrier.headers)
    assert withdrawn.status_code == 200 and withdrawn.json["withdrawn_by"] == "carrier"

    # The pull still lists it and no longer lists the third lot: that one leaves, the carrier's stays out.
    again = pull("telecom", 2)
    assert (again.changed, again.unchanged, again.withdrawn) == (0, 2, 1)
    _push(client, [0])
    state = _state(session, "telecom")
    assert state[lot.external_id] == ("withdrawn", "pull", "carrier")
    assert state[telecom_sim.resource_id(2)] == ("withdrawn", "pull", "sync")
    assert client.get(f"/api/v1/offers/{lot.id}", headers=carrier.headers).json["status"] == "withdrawn"

    offer = client.get(f"/api/v1/offers/{lot.id}", headers=carrier.headers).json
    published = client.post("/api/v1/offers", json={"offers": [_as_published(offer, quantity="8")]},
                            headers=carrier.headers)
    assert published.status_code == 200 and published.json["updated"] == 1
    assert _state(session, "telecom")[lot.external_id] == ("active", "api", None)


def test_an_upload_puts_back_what_the_carrier_withdrew(client, session, carriers):
    carrier = carriers["unicom"]
    _upload(client, carrier, 3)
    lot = _offers(session, "unicom")["CU00000001"]
    assert client.post(f"/api/v1/offers/{lot.id}/withdraw", headers=carrier.headers).status_code == 200
    again = _upload(client, carrier, 3)
    assert again["counts"]["changed"] == 1
    assert _state(session, "unicom")["CU00000001"] == ("active", "upload", None)


def test_a_withdrawal_that_lands_while_a_pull_applies_is_kept(session, carriers, pull, monkeypatch):
    pull("telecom", 2)
    lot_id = _offers(session, "telecom")[telecom_sim.resource_id(0)].id
    real_plan = feed_writer._plan

    def plan_then_the_carrier_withdraws(*args):
        planned = real_plan(*args)
        session.execute(sa.update(Offer).where(Offer.id == lot_id)
                        .values(status=OfferStatus.withdrawn, withdrawn_by="carrier", quantity=Offer.promised))
        return planned

    monkeypatch.setattr(feed_writer, "_plan", plan_then_the_carrier_withdraws)
    # Both lots move to later months in the catalogue, so the plan means to update both.
    done = pull("telecom", 2, first_month=dt.date(2027, 9, 1))
    assert _state(session, "telecom")[telecom_sim.resource_id(0)][0::2] == ("withdrawn", "carrier")
    assert _offers(session, "telecom")[telecom_sim.resource_id(1)].window_start >= dt.date(2027, 9, 1)
    assert (done.changed, done.unchanged) == (1, 1)
