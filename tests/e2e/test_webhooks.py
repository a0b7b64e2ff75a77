"""Pushed webhooks (HMAC-signed, five-minute window) and catalog uploads through the API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from adapters.base import CarrierConfig
from adapters.simulators import mobile as mobile_sim
from adapters.simulators import telecom as telecom_sim
from adapters.simulators import unicom as unicom_sim
from adapters.simulators.common import SimOptions
from broker.models import Carrier, CarrierSync, Offer, OfferStatus
from config import CarrierSettings
from tests.integration.test_sync import FAST, SIMULATED

SECRETS = {"telecom": "whsec-telecom-0123456789", "mobile": "whsec-mobile-9876543210"}
PUSHES = {"telecom": telecom_sim.build_webhook, "mobile": mobile_sim.build_webhook}


@pytest.fixture
def carriers(app, session, make_actor, monkeypatch):
    """The three carriers, registered with their adapters and configured, each with its actor."""
    actors = {}
    for code in SIMULATED:
        actors[code] = make_actor("carrier", code=code)
        session.execute(sa.update(Carrier).where(Carrier.code == code).values(adapter=code))
        _, _, credentials, environ = SIMULATED[code]
        for variable, value in environ.items():
            monkeypatch.setenv(variable, value)
        secret_variable = f"BROKER_CARRIER_{code.upper()}_WEBHOOK_SECRET"
        if code in SECRETS:
            monkeypatch.setenv(secret_variable, SECRETS[code])
        settings = CarrierSettings(code, CarrierConfig("http://127.0.0.1:9", credentials, **FAST),
                                   webhook_secret_variable=secret_variable)
        monkeypatch.setitem(app.config["CARRIERS"], code, settings)
    session.commit()
    return actors


def _syncs(session) -> int:
    return session.scalar(sa.select(sa.func.count(CarrierSync.id)))


def _offers(session, code: str) -> dict[str, Offer]:
    session.expire_all()
    return {o.external_id: o for o in session.scalars(sa.select(Offer).join(Offer.carrier).where(Carrier.code == code))}


@pytest.mark.parametrize("code", sorted(PUSHES))
def test_a_signed_push_is_applied_as_a_delta(client, session, carriers, code):
    now = dt.datetime.now(dt.UTC)
    headers, body = PUSHES[code](SECRETS[code], now, [0, 1, 2])
    pushed = client.post(f"/api/v1/webhooks/{code}", data=body, headers=headers)
    assert pushed.status_code == 200, pushed.json
    assert pushed.json["source"] == "webhook" and pushed.json["complete"] is False
    assert pushed.json["counts"]["new"] >= 3
    known = set(_offers(session, code))

    headers, body = PUSHES[code](SECRETS[code], now, [2])
    again = client.post(f"/api/v1/webhooks/{code}", data=body, headers=headers)
    assert again.status_code == 200 and again.json["counts"]["new"] == 0 and again.json["counts"]["withdrawn"] == 0
    # A push is partial: what it did not mention stays on the market.
    assert set(_offers(session, code)) == known
    assert all(o.status is OfferStatus.active for o in _offers(session, code).values())
    assert SECRETS[code] not in pushed.get_data(as_text=True)


@pytest.mark.parametrize("code", sorted(PUSHES))
def test_a_bad_or_stale_signature_gets_401_and_stores_nothing(client, session, carriers, code, monkeypatch):
    now = dt.datetime.now(dt.UTC)
    before = _syncs(session)
    headers, body = PUSHES[code]("not-the-secret", now, [0])
    wrong = client.post(f"/api/v1/webhooks/{code}", data=body, headers=headers)
    stale_headers, stale_body = PUSHES[code](SECRETS[code], now - dt.timedelta(minutes=6), [0])
    stale = client.post(f"/api/v1/webhooks/{code}", data=stale_body, headers=stale_headers)
    good_headers, _ = PUSHES[code](SECRETS[code], now, [0])
    tampered = client.post(f"/api/v1/webhooks/{code}", data=body.replace(b"0", b"9", 1), headers=good_headers)
    unsigned = client.post(f"/api/v1/webhooks/{code}", data=body, headers={"Content-Type": "application/json"})
    for answer in (wrong, stale, tampered, unsigned):
        assert answer.status_code == 401, answer.json
        assert answer.json["code"] == 401 and SECRETS[code] not in answer.get_data(as_text=True)
    assert "stale" in stale.json["message"]
    # Without a configured secret nothing verifies, whatever the payload claims.
    monkeypatch.delenv(f"BROKER_CARRIER_{code.upper()}_WEBHOOK_SECRET")
    headers, body = PUSHES[code]("", now, [0])
    assert client.post(f"/api/v1/webhooks/{code}", data=body, headers=headers).status_code == 401
    assert _syncs(session) == before and _offers(session, code) == {}


def test_webhooks_only_for_carriers_that_push(client, carriers):
    assert client.post("/api/v1/webhooks/unicom", data=b"{}").status_code == 404
    assert client.post("/api/v1/webhooks/nosuch", data=b"{}").status_code == 404


def test_a_signed_but_unreadable_push_is_a_recorded_failure(client, session, carriers):
    now = dt.datetime.now(dt.UTC)
    body = b'{"event": "resources.updated"}'
    timestamp = int(now.timestamp())
    from adapters.signing import webhook_signature

    headers = {"X-CTC-Timestamp": str(timestamp),
               "X-CTC-Signature": "sha256=" + webhook_signature(SECRETS["telecom"], timestamp, body)}
    answer = client.post("/api/v1/webhooks/telecom", data=body, headers=headers)
    assert answer.status_code == 422 and "body" in answer.json["errors"]["json"]
    failed = session.scalar(sa.select(CarrierSync).order_by(CarrierSync.id.desc()))
    assert failed.status.value == "failed" and failed.source.value == "webhook"


def _catalog(file_format: str = "csv", **options) -> bytes:
    return unicom_sim.build_file(SimOptions.build({"offers": 60, "seed": 4, **options}, set()), file_format)


def test_a_carrier_uploads_its_catalog_and_bad_rows_are_quarantined(client, session, carriers):
    unicom = carriers["unicom"]
    content = _catalog(malformed_rate=0.2)
    uploaded = client.post("/api/v1/carriers/unicom/catalog", headers=unicom.headers,
                           data={"file": (__import__("io").BytesIO(content), "目录.csv")},
                           content_type="multipart/form-data")
    assert uploaded.status_code == 200, uploaded.json
    counts = uploaded.json["counts"]
    assert uploaded.json["source"] == "upload" and uploaded.json["complete"] is False
    assert counts["new"] > 0 and counts["quarantined"] > 0 and counts["new"] + counts["quarantined"] >= 60
    assert len(_offers(session, "unicom")) == counts["new"]

    # The same catalog as the raw body: nothing new; a smaller one withdraws nothing.
    again = client.post("/api/v1/carriers/unicom/catalog", data=content,
                        headers={**unicom.headers, "Content-Type": "text/csv"})
    assert again.status_code == 200 and again.json["counts"]["new"] == 0 and again.json["counts"]["changed"] == 0
    smaller = unicom_sim.build_file(SimOptions.build({"offers": 10, "seed": 4}, set()), "xlsx")
    xlsx = client.post("/api/v1/carriers/unicom/catalog", data=smaller, headers={
        **unicom.headers, "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    assert xlsx.status_code == 200 and xlsx.json["counts"]["withdrawn"] == 0
    assert all(o.status is OfferStatus.active for o in _offers(session, "unicom").values())


def test_uploads_are_refused_with_the_field_named(client, session, carriers, make_actor):
    content = _catalog()
    assert client.post("/api/v1/carriers/unicom/catalog", data=content, headers={
        **carriers["telecom"].headers, "Content-Type": "text/csv"}).status_code == 403
    assert client.post("/api/v1/carriers/unicom/catalog", data=content, headers={
        **make_actor("startup").headers, "Content-Type": "text/csv"}).status_code == 403
    telecom = client.post("/api/v1/carriers/telecom/catalog", data=content, headers={
        **carriers["telecom"].headers, "Content-Type": "text/csv"})
    assert telecom.status_code == 422 and "file" in telecom.json["errors"]["json"]
    empty = client.post("/api/v1/carriers/unicom/catalog", headers=carriers["unicom"].headers)
    assert empty.status_code == 422 and "file" in empty.json["errors"]["json"]
    garbage = client.post("/api/v1/carriers/unicom/catalog", data=b"\xff\xfe\x00garbage", headers={
        **carriers["unicom"].headers, "Content-Type": "text/csv"})
    assert garbage.status_code == 422 and "file" in garbage.json["errors"]["json"]
    assert _offers(session, "unicom") == {}
    assert json.dumps(garbage.json).find("sim-unicom-password") == -1


def _signed_variants(code: str, headers: dict[str, str]) -> list[dict[str, str]]:
    """The same signed push with its headers written differently; every one still verifies."""
    prefix = "X-CTC" if code == "telecom" else "X-CMCC"
    stamp, signature = f"{prefix}-Timestamp", f"{prefix}-Signature"
    return [
        headers,
        {**headers, stamp: "+" + headers[stamp]},
        {**headers, stamp: "0" + headers[stamp]},
        {**headers, signature: headers[signature].upper().replace("SHA256=", "sha256=")},
        {k.lower(): v for k, v in headers.items()},
    ]


@pytest.mark.parametrize("code", sorted(PUSHES))
def test_a_replayed_push_is_refused_and_changes_nothing(client, session, carriers, code):
    now = dt.datetime.now(dt.UTC)
    first_headers, first_body = PUSHES[code](SECRETS[code], now, [0])
    assert client.post(f"/api/v1/webhooks/{code}", data=first_body, headers=first_headers).status_code == 200
    # The carrier's next push moves the lot (its window, and so its quantity): the newer state.
    later_headers, later_body = PUSHES[code](SECRETS[code], now + dt.timedelta(seconds=20), [0],
                                             first_month=dt.date(2027, 9, 1))
    assert client.post(f"/api/v1/webhooks/{code}", data=later_body, headers=later_headers).status_code == 200
    after_later = {k: (o.quantity, o.window_start, o.window_end) for k, o in _offers(session, code).items()}
    syncs = _syncs(session)

    for headers in _signed_variants(code, first_headers):
        replay = client.post(f"/api/v1/webhooks/{code}", data=first_body, headers=headers)
        assert replay.status_code == 409, (headers, replay.json)
        assert replay.json["code"] == 409 and "already received" in replay.json["message"]
    assert {k: (o.quantity, o.window_start, o.window_end) for k, o in _offers(session, code).items()} == after_later
    assert _syncs(session) == syncs  # a refused replay stores nothing
    # The same lot pushed again in a new push (a new timestamp) is a new push, and is applied.
    again_headers, again_body = PUSHES[code](SECRETS[code], now + dt.timedelta(seconds=40), [0])
    assert client.post(f"/api/v1/webhooks/{code}", data=again_body, headers=again_headers).status_code == 200


def test_receipts_outlive_the_signature_window_only(app, session, carriers):
    from adapters.signing import REPLAY_WINDOW_SECONDS
    from broker.models import PushReceipt
    from broker.services import sync as sync_service

    adapters = app.extensions["broker.carrier_adapters"]
    signed_at = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
    headers, body = telecom_sim.build_webhook(SECRETS["telecom"], signed_at, [0])
    sync_service.receive_webhook(session, "telecom", adapters, headers, body, signed_at)
    receipt = session.scalar(sa.select(PushReceipt))
    assert receipt.valid_until == signed_at + dt.timedelta(seconds=REPLAY_WINDOW_SECONDS)

    # Still inside the window: a replay is refused by its receipt.
    with pytest.raises(Exception, match="already received"):
        sync_service.receive_webhook(session, "telecom", adapters, headers, body,
                                     signed_at + dt.timedelta(seconds=REPLAY_WINDOW_SECONDS))
    session.rollback()
    # Past the window the signature is stale anyway, and the next push prunes the receipt.
    later = signed_at + dt.timedelta(seconds=REPLAY_WINDOW_SECONDS + 1)
    next_headers, next_body = telecom_sim.build_webhook(SECRETS["telecom"], later, [1])
    sync_service.receive_webhook(session, "telecom", adapters, next_headers, next_body, later)
    assert [r.signed_at for r in session.scalars(sa.select(PushReceipt))] == [later.replace(microsecond=0)]


def test_a_push_from_an_adapter_that_names_none_is_still_applied_once(session, carriers):
    """An adapter that verifies a push but gives it no identity: its body's digest stands in."""
    from adapters.registry import AdapterRegistry, CarrierAdapters
    from adapters.telecom import TelecomAdapter
    from broker.errors import Conflict
    from broker.services import sync as sync_service

    class Unnamed(TelecomAdapter):
        def parse_webhook(self, headers, body, secret, now):
            result = super().parse_webhook(headers, body, secret, now)
            result.push = None
            return result

    configured = CarrierAdapters(
        AdapterRegistry({"telecom": Unnamed}),
        {"telecom": CarrierSettings("telecom", CarrierConfig("http://127.0.0.1:9", {"token": "T"}, **FAST),
                                    webhook_secret_variable="S")},
        environ={"T": "t", "S": SECRETS["telecom"]},
    )
    now = dt.datetime.now(dt.UTC)
    headers, body = telecom_sim.build_webhook(SECRETS["telecom"], now, [0])
    assert sync_service.receive_webhook(session, "telecom", configured, headers, body, now).status.value == "succeeded"
    with pytest.raises(Conflict, match="already received"):
        sync_service.receive_webhook(session, "telecom", configured, headers, body, now + dt.timedelta(seconds=5))
