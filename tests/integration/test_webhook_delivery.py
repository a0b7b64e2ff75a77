"""Events are POSTed to a subscriber signed with HMAC, retried with back-off, then given up."""

import datetime as dt
import hashlib
import hmac
import json

import requests
import sqlalchemy as sa
from werkzeug.wrappers import Request, Response

from broker.models.workflow import DeliveryStatus, WebhookDelivery
from broker.netguard import DestinationGuard
from broker.services import events
from tests.e2e.adapters.conftest import Simulator

NOW = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.timezone.utc)
LOCAL = DestinationGuard.parse(["127.0.0.1"])  # the receivers below listen on 127.0.0.1


class FlakyReceiver:
    def __init__(self, failures):
        self.failures, self.received = failures, []

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.received.append((request.headers.get("X-Broker-Signature"), request.get_data()))
        status = 503 if len(self.received) <= self.failures else 204
        return Response(status=status)(environ, start_response)


def _subscribed_event(client, session, make_actor, url):
    startup = make_actor("startup")
    secret = client.put("/api/v1/me/webhook", json={"url": url}, headers=startup.headers).json["secret"]
    events.record(session, "request.expired", None, startup.startup_id, None, NOW, request_id=7)
    session.commit()
    return startup, secret


def test_delivery_is_signed_and_retried_with_back_off(client, session, make_actor):
    receiver = FlakyReceiver(failures=2)
    server = Simulator(receiver)
    try:
        startup, secret = _subscribed_event(client, session, make_actor, server.url + "/hook")
        with requests.Session() as http:
            assert events.deliver_due(session, http, NOW, guard=LOCAL) == {"delivered": 0, "retrying": 1, "failed": 0}
            assert events.deliver_due(session, http, NOW + dt.timedelta(seconds=29), guard=LOCAL)["retrying"] == 0  # not due yet
            assert events.deliver_due(session, http, NOW + dt.timedelta(seconds=30), guard=LOCAL)["retrying"] == 1
            assert events.deliver_due(session, http, NOW + dt.timedelta(seconds=89), guard=LOCAL) == {"delivered": 0, "retrying": 0, "failed": 0}
            assert events.deliver_due(session, http, NOW + dt.timedelta(seconds=90), guard=LOCAL)["delivered"] == 1
        delivery = session.scalar(sa.select(WebhookDelivery))
        assert delivery.status is DeliveryStatus.delivered and delivery.attempts == 3
        signature, body = receiver.received[-1]
        stamp, digest = (part.split("=", 1)[1] for part in signature.split(","))
        assert hmac.compare_digest(digest, hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest())
        assert json.loads(body)["type"] == "request.expired" and json.loads(body)["data"]["request_id"] == 7
        feed = client.get("/api/v1/events", headers=startup.headers).json
        assert [e["type"] for e in feed] == ["startup.verified", "request.expired"]  # verified before it subscribed
    finally:
        server.close()


def test_delivery_gives_up_after_its_attempts(client, session, make_actor):
    server = Simulator(FlakyReceiver(failures=1000))
    try:
        _subscribed_event(client, session, make_actor, server.url + "/hook")
        moment = NOW
        with requests.Session() as http:
            for _ in range(events.MAX_DELIVERY_ATTEMPTS):
                events.deliver_due(session, http, moment, guard=LOCAL)
                moment += dt.timedelta(days=1)
        delivery = session.scalar(sa.select(WebhookDelivery))
        assert delivery.status is DeliveryStatus.failed and delivery.attempts == events.MAX_DELIVERY_ATTEMPTS
        assert delivery.last_error == "HTTP 503"
    finally:
        server.close()


def test_webhook_url_must_be_http(client, make_actor):
    startup = make_actor("startup")
    refused = client.put("/api/v1/me/webhook", json={"url": "file:///etc/passwd"}, headers=startup.headers)
    assert refused.status_code == 422 and "url" in refused.json["errors"]["json"]
