"""The company's webhook (/settings/webhook) through the test client: its legal representative sets
the URL (a refused internal address is 422 with the reason in Chinese, nothing changed), sees the new
secret once, rotates it (the next delivery, POSTed to a real receiver on 127.0.0.1, is signed with the
new one), sees the deliveries and removes it; an agent sees it read-only and is refused (403); another
company's webhook is not shown; staff get 403; the statements per page do not grow with deliveries."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

import pytest
import requests
import sqlalchemy as sa

from broker.models import Role
from broker.models.people import CompanyRole, Side
from broker.models.workflow import WebhookDelivery, WebhookSubscription
from broker.netguard import DestinationGuard
from broker.services import events, people
from broker.services.passwords import hash_password
from tests.conftest import statements_sent
from tests.e2e.adapters.conftest import Simulator
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.integration.test_webhook_delivery import FlakyReceiver

NOW = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.timezone.utc)
LOCAL = DestinationGuard.parse(["127.0.0.1"])
PATH = "/settings/webhook"


@pytest.fixture
def founder(app, client, session, make_actor, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ("127.0.0.1",))
    startup = make_actor("startup")
    people.create_company_person(session, Side.startup, startup.startup_id, "lin.feng@yunchi.example.cn", "林峰", PASSWORD)
    assert sign_in(client, "lin.feng@yunchi.example.cn", PASSWORD).status_code == 303
    return startup


def _post(client, path, **data):
    return client.post(path, data={"csrf_token": token_of(client, PATH), **data})


def _subscriptions(session) -> list[tuple[int, str, str]]:
    session.expire_all()
    return [(s.account_id, s.url, s.secret) for s in session.scalars(sa.select(WebhookSubscription))]


def _secret(html: str) -> str:
    return re.search(r'id="new-secret".*?<code>(whsec_[^<]+)</code>', html, re.S).group(1)


def test_set_rotate_and_the_new_secret_signs_the_next_delivery(client, session, founder):
    receiver = FlakyReceiver(failures=0)
    server = Simulator(receiver)
    try:
        saved = _post(client, PATH, url=server.url + "/hook")
        assert saved.status_code == 303 and saved.headers["Location"] == PATH + "?done=saved"
        page = client.get(saved.headers["Location"]).get_data(as_text=True)
        first = _secret(page)
        assert "Webhook 地址已保存" in page and server.url + "/hook" in page
        assert first not in client.get(PATH).get_data(as_text=True)  # shown once
        # The company's own account holds it (the one its API token signs in as), not the person's.
        assert _subscriptions(session) == [(founder.account_id, server.url + "/hook", first)]

        rotated = _post(client, PATH + "/rotate")
        assert rotated.status_code == 303
        second = _secret(client.get(rotated.headers["Location"]).get_data(as_text=True))
        assert second != first and _subscriptions(session)[0][2] == second

        events.record(session, "request.expired", None, founder.startup_id, None, NOW, request_id=7)
        session.commit()
        with requests.Session() as http:
            assert events.deliver_due(session, http, NOW, guard=LOCAL)["delivered"] == 1
        signature, body = receiver.received[-1]
        stamp, digest = (part.split("=", 1)[1] for part in signature.split(","))
        signed = f"{stamp}.".encode() + body
        assert hmac.compare_digest(digest, hmac.new(second.encode(), signed, hashlib.sha256).hexdigest())
        assert not hmac.compare_digest(digest, hmac.new(first.encode(), signed, hashlib.sha256).hexdigest())

        html = client.get(PATH).get_data(as_text=True)
        row = re.search(r'<tr id="delivery-\d+">.*?</tr>', html, re.S).group(0)
        assert "request.expired" in row and "已送达" in row and "1 次" in row
    finally:
        server.close()


def test_a_refused_internal_address_is_422_with_the_reason_and_changes_nothing(client, session, founder):
    assert _post(client, PATH, url="http://93.184.215.14/hook").status_code == 303
    before = _subscriptions(session)
    refused = _post(client, PATH, url="http://169.254.169.254/latest/meta-data/")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "链路本地地址" in html and 'aria-invalid="true"' in html
    assert 'value="http://169.254.169.254/latest/meta-data/"' in html
    assert _subscriptions(session) == before
    assert _post(client, PATH, url="  ").status_code == 422 and _subscriptions(session) == before


def test_remove_takes_the_webhook_and_its_deliveries(client, session, founder):
    assert _post(client, PATH, url="http://93.184.215.14/hook").status_code == 303
    events.record(session, "request.expired", None, founder.startup_id, None, NOW, request_id=7)
    session.commit()
    removed = _post(client, PATH + "/remove")
    assert removed.status_code == 303 and "已删除" in client.get(removed.headers["Location"]).get_data(as_text=True)
    assert _subscriptions(session) == [] and session.scalar(sa.select(sa.func.count(WebhookDelivery.id))) == 0
    assert _post(client, PATH + "/rotate").status_code == 409


def test_an_agent_sees_it_read_only_and_is_refused(client, session, founder):
    assert _post(client, PATH, url="http://93.184.215.14/hook").status_code == 303
    agent = people._new_person(session, email="xu.yan@yunchi.example.cn", name="徐燕", password_hash=hash_password(PASSWORD),
                               side=Side.startup, startup_id=founder.startup_id, company_role=CompanyRole.agent,
                               scopes=["settings"], agent_expires_at=NOW + dt.timedelta(days=300))
    session.commit()
    client.delete_cookie("broker_session")
    assert sign_in(client, agent.email, PASSWORD).status_code == 303
    html = client.get(PATH).get_data(as_text=True)
    assert "http://93.184.215.14/hook" in html and 'id="read-only"' in html and 'id="url-form"' not in html
    before = _subscriptions(session)
    for path, data in ((PATH, {"url": "http://93.184.215.15/"}), (PATH + "/rotate", {}), (PATH + "/remove", {})):
        assert _post(client, path, **data).status_code == 403
    assert _subscriptions(session) == before


def test_another_company_sees_only_its_own_and_staff_get_403(app, client, session, founder, make_actor):
    assert _post(client, PATH, url="http://93.184.215.14/hook").status_code == 303
    carrier = make_actor("carrier")
    people.create_company_person(session, Side.carrier, carrier.carrier_id, "ma.jun@carrier.example.cn", "马军", PASSWORD)
    client.delete_cookie("broker_session")
    assert sign_in(client, "ma.jun@carrier.example.cn", PASSWORD).status_code == 303
    html = client.get(PATH).get_data(as_text=True)
    assert "93.184.215.14" not in html and 'id="no-webhook"' in html and "carrier-nav" in html
    client.delete_cookie("broker_session")
    assert client.get(PATH).headers["Location"].startswith("/sign-in")
    people.create_district_person(session, "wu.fang@changning.example.gov.cn", "吴芳", Role.staff, PASSWORD)
    assert sign_in(client, "wu.fang@changning.example.gov.cn", PASSWORD).status_code == 303
    assert client.get(PATH).status_code == 403


def test_statements_do_not_grow_with_the_deliveries(app, client, session, founder):
    assert _post(client, PATH, url="http://93.184.215.14/hook").status_code == 303
    events.record(session, "request.expired", None, founder.startup_id, None, NOW, request_id=1)
    session.commit()
    one = len(statements_sent(app, client, PATH))
    for n in range(2, 15):
        events.record(session, "request.expired", None, founder.startup_id, None, NOW, request_id=n)
    session.commit()
    assert len(re.findall(r'<tr id="delivery-', client.get(PATH).get_data(as_text=True))) == 14
    assert len(statements_sent(app, client, PATH)) == one
