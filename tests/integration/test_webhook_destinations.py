"""Webhooks never reach inside: refused at registration, checked again and pinned at delivery."""

import datetime as dt
import ssl
import subprocess

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from broker.models.workflow import DeliveryStatus, WebhookDelivery, WebhookSubscription
from broker.netguard import DestinationGuard
from broker.services import events
from scheduler import jobs
from tests.e2e.adapters.conftest import Simulator

NOW = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.timezone.utc)

# What the issue found accepted, and the other spellings of the same places.
INTERNAL = [
    "http://127.0.0.1:2375/containers/json",  # the Docker API
    "http://localhost:5432/",
    "http://LOCALHOST./",
    "http://[::1]/",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/",  # ... in hex
    "http://017700000001/",  # ... in octal
    "http://0177.0.0.1/",  # octal dotted
    "http://0x7f.0.0.1/",
    "http://127.1/",  # short dotted form
    "http://0/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fd00:ec2::254]/latest/meta-data/",  # the same, over IPv6
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://0.0.0.0:8080/",
    "http://[::]/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 wrapping 169.254.169.254
    "http://user:pass@127.0.0.1/",
    "http://93.184.215.14\\@127.0.0.1/",
]


@pytest.fixture
def no_allow_list(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ())


def _subscriptions(session) -> list[tuple[int, str]]:
    session.expire_all()
    return [(s.account_id, s.url) for s in session.scalars(sa.select(WebhookSubscription))]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_destinations_are_refused_at_registration(client, session, make_actor, no_allow_list, url):
    startup = make_actor("startup", verified=False)
    refused = client.put("/api/v1/me/webhook", json={"url": url}, headers=startup.headers)
    assert refused.status_code == 422, refused.json
    assert refused.json["code"] == 422 and refused.json["errors"]["json"]["url"][0]
    assert _subscriptions(session) == []


def test_the_refusal_says_why(client, make_actor, no_allow_list):
    startup = make_actor("startup")

    def why(url):
        return client.put("/api/v1/me/webhook", json={"url": url}, headers=startup.headers).json["errors"]["json"]["url"][0]

    assert "loopback" in why("http://127.0.0.1:2375/")
    assert "localhost" in why("http://localhost:5432/") and "127.0.0.1" in why("http://localhost:5432/")
    assert "link-local" in why("http://169.254.169.254/latest/meta-data/")
    assert "private" in why("http://10.0.0.1/")
    assert "shared" in why("http://100.64.0.1/")
    assert "dotted" in why("http://2130706433/") and "dotted" in why("http://0177.0.0.1/")
    assert "127.0.0.1" in why("http://[::ffff:127.0.0.1]/")


def test_a_public_address_is_accepted_and_a_refused_change_keeps_it(client, session, make_actor, no_allow_list):
    startup = make_actor("startup")
    first = client.put("/api/v1/me/webhook", json={"url": "http://93.184.215.14/hook"}, headers=startup.headers)
    assert first.status_code == 200, first.json
    refused = client.put("/api/v1/me/webhook", json={"url": "http://169.254.169.254/"}, headers=startup.headers)
    assert refused.status_code == 422
    assert _subscriptions(session) == [(startup.account_id, "http://93.184.215.14/hook")]


def test_only_https_in_production(client, app, make_actor, no_allow_list, monkeypatch):
    startup = make_actor("startup")
    monkeypatch.setitem(app.config, "BROKER_ENV", "production")
    plain = client.put("/api/v1/me/webhook", json={"url": "http://93.184.215.14/hook"}, headers=startup.headers)
    assert plain.status_code == 422 and "https" in plain.json["errors"]["json"]["url"][0]
    assert client.put("/api/v1/me/webhook", json={"url": "https://93.184.215.14/hook"},
                      headers=startup.headers).status_code == 200


def test_the_allow_list_lets_only_the_named_local_target_through(client, app, make_actor, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ("127.0.0.1",))
    startup = make_actor("startup")
    assert client.put("/api/v1/me/webhook", json={"url": "http://127.0.0.1:8080/hook"},
                      headers=startup.headers).status_code == 200
    # The same address spelled another way, or reached through a name, is not what was allowed.
    for url in ("http://localhost:8080/", "http://2130706433:8080/", "http://[::ffff:127.0.0.1]:8080/", "http://127.0.0.2/"):
        assert client.put("/api/v1/me/webhook", json={"url": url}, headers=startup.headers).status_code == 422, url


def test_urls_that_are_not_http_or_too_long_are_422(client, make_actor):
    startup = make_actor("startup")
    for url in ("file:///etc/passwd", "gopher://93.184.215.14/", "http:///nohost", "http://93.184.215.14:99999/",
                "http://93.184.215.14/" + "a" * 500, "not a url"):
        refused = client.put("/api/v1/me/webhook", json={"url": url}, headers=startup.headers)
        assert refused.status_code == 422 and "url" in refused.json["errors"]["json"], url


class Receiver:
    def __init__(self, status=204, headers=None):
        self.status, self.headers, self.received = status, headers or {}, []

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.received.append((request.host, request.path, request.get_data()))
        return Response(status=self.status, headers=self.headers)(environ, start_response)


@pytest.fixture
def receiver():
    handler = Receiver()
    server = Simulator(handler)
    yield handler, server.url
    server.close()


def _queue_event(session, startup_id):
    events.record(session, "request.expired", None, startup_id, None, NOW, request_id=7)
    session.commit()


def _subscribe(session, make_actor, url):
    """A subscription as stored, whatever the rules were when it was made (or a name resolved then)."""
    startup = make_actor("startup")
    session.add(WebhookSubscription(account_id=startup.account_id, url=url, secret="whsec_test"))
    session.commit()
    _queue_event(session, startup.startup_id)
    return startup


def _delivery(session) -> WebhookDelivery:
    session.expire_all()
    return session.scalar(sa.select(WebhookDelivery))


def test_an_allow_listed_receiver_gets_its_events(session, make_actor, receiver):
    handler, url = receiver
    _subscribe(session, make_actor, url + "/hook")
    with requests.Session() as http:
        counts = events.deliver_due(session, http, NOW, guard=DestinationGuard.parse(["127.0.0.1"]))
    assert counts["delivered"] == 1 and len(handler.received) == 1


def test_a_receiver_no_longer_allowed_is_refused_at_delivery_and_not_called(session, make_actor, receiver):
    handler, url = receiver
    _subscribe(session, make_actor, url + "/hook")
    with requests.Session() as http:
        counts = events.deliver_due(session, http, NOW, guard=DestinationGuard())
    assert counts == {"delivered": 0, "retrying": 0, "failed": 1}
    delivery = _delivery(session)
    assert delivery.status is DeliveryStatus.failed and "loopback" in delivery.last_error
    assert handler.received == []


def test_a_name_that_now_resolves_inside_is_refused_at_delivery(session, make_actor, receiver):
    """DNS rebinding: the name passed when it was registered; it resolves to 127.0.0.1 now."""
    handler, url = receiver
    port = url.rsplit(":", 1)[1]
    _subscribe(session, make_actor, f"http://localhost:{port}/hook")
    with requests.Session() as http:
        counts = events.deliver_due(session, http, NOW, guard=DestinationGuard.parse(["127.0.0.1"]))
    assert counts["failed"] == 1
    delivery = _delivery(session)
    assert delivery.status is DeliveryStatus.failed and "localhost" in delivery.last_error
    assert handler.received == []


def test_the_scheduled_job_checks_with_the_configured_allow_list(app, session, make_actor, receiver, monkeypatch):
    handler, url = receiver
    _subscribe(session, make_actor, url + "/hook")
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ())
    jobs.deliver_webhooks(app, NOW)
    assert _delivery(session).status is DeliveryStatus.failed and handler.received == []
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ("127.0.0.1",))
    session.execute(sa.update(WebhookDelivery).values(status=DeliveryStatus.pending))
    session.commit()
    jobs.deliver_webhooks(app, NOW)
    assert _delivery(session).status is DeliveryStatus.delivered and len(handler.received) == 1


def test_delivery_connects_to_the_address_it_checked(session, make_actor, receiver):
    """The name is resolved once, by the check; the connection goes to that address with the name as Host."""
    handler, url = receiver
    port = int(url.rsplit(":", 1)[1])
    answers = []

    def resolve(host, port):
        answers.append(host)
        return ["127.0.0.1"]

    guard = DestinationGuard.parse(["hook.example"], resolve=resolve)
    _subscribe(session, make_actor, f"http://hook.example:{port}/hook")
    with requests.Session() as http:
        # hook.example is not in any DNS: only a connection to the checked address can reach the receiver.
        assert events.deliver_due(session, http, NOW, guard=guard)["delivered"] == 1
    assert answers == ["hook.example"]
    assert handler.received[0][:2] == (f"hook.example:{port}", "/hook")


def test_redirects_are_never_followed(session, make_actor):
    handler = Receiver(status=302, headers={"Location": "/elsewhere"})
    server = Simulator(handler)
    try:
        _subscribe(session, make_actor, server.url + "/hook")
        with requests.Session() as http:
            counts = events.deliver_due(session, http, NOW, guard=DestinationGuard.parse(["127.0.0.1"]))
        assert counts["retrying"] == 1 and _delivery(session).last_error == "HTTP 302"
        assert [path for _, path, _ in handler.received] == ["/hook"]
    finally:
        server.close()


@pytest.fixture
def certificate(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hook.example",
         "-addext", "subjectAltName=DNS:hook.example", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


def test_https_delivery_sends_the_name_for_sni_and_verifies_it_on_the_pinned_address(session, make_actor, certificate):
    import threading

    cert, key = certificate
    handler = Receiver()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server = make_server("127.0.0.1", 0, handler, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_port
        guard = DestinationGuard.parse(["hook.example"], resolve=lambda host, port: ["127.0.0.1"])
        _subscribe(session, make_actor, f"https://hook.example:{port}/hook")
        with requests.Session() as http:
            http.verify = cert  # the receiver's own certificate, for hook.example only
            assert events.deliver_due(session, http, NOW, guard=guard)["delivered"] == 1
        assert names == ["hook.example"] and handler.received[0][0] == f"hook.example:{port}"

        # A certificate for another name is refused, even on the checked address.
        guard = DestinationGuard.parse(["other.example"], resolve=lambda host, port: ["127.0.0.1"])
        session.execute(sa.update(WebhookSubscription).values(url=f"https://other.example:{port}/hook"))
        session.execute(sa.update(WebhookDelivery).values(status=DeliveryStatus.pending, attempts=0))
        session.commit()
        with requests.Session() as http:
            http.verify = cert
            assert events.deliver_due(session, http, NOW, guard=guard)["retrying"] == 1
        assert "SSL" in _delivery(session).last_error and len(handler.received) == 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
