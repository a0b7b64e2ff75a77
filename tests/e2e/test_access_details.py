"""How to use an allocation (如何使用): the real provisioning job orders it from the telecom simulator,
whose answer carries access details; the owning startup's people see them on the allocation page in
words (and in English), without the secret; the API shows them to the owning startup only; another
company's allocation is 404; an allocation the carrier gave no details for says to contact the carrier
with its reference; nothing shows before it is active; the event and its webhooks never carry them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html

import pytest
import sqlalchemy as sa

from adapters.base import CarrierConfig
from adapters.simulators import telecom as telecom_sim
from adapters.telecom import TelecomAdapter
from broker.models import Allocation, AllocationStatus, Carrier, Offer
from broker.models.workflow import Event
from broker.services.provisioning import provision_due
from config import CarrierSettings
from scheduler import jobs
from tests.e2e.adapters.conftest import Simulator
from tests.e2e.test_staff_appeals import company_person_signed_in, staff_signed_in
from tests.integration.test_sync import FAST
from tests.world import approved_allocation

NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.timezone.utc)
TOKEN_VARIABLE = "BROKER_CARRIER_TELECOM_TOKEN"


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def world(app, session, make_actor, monkeypatch):
    """The telecom simulator configured as the app's carrier `telecom` and synced by the real job; two
    startups with an approved allocation each on its token lot, and one of them on a GPU lot too."""
    simulator = Simulator(telecom_sim.create_app(seed=3, offers=20, first_month=dt.date(2026, 12, 1)))
    monkeypatch.setenv(TOKEN_VARIABLE, telecom_sim.DEFAULT_TOKEN)
    monkeypatch.setitem(app.config["CARRIERS"], "telecom", CarrierSettings(
        "telecom", CarrierConfig(simulator.url, {"token": TOKEN_VARIABLE}, **FAST)))
    carrier = make_actor("carrier", code="telecom")
    session.execute(sa.update(Carrier).where(Carrier.code == "telecom").values(adapter="telecom"))
    owner, other, staff = make_actor("startup"), make_actor("startup"), make_actor("staff")
    session.commit()
    jobs.sync_carrier(app, NOW, "telecom")
    offers = {o.kind: o for o in session.scalars(sa.select(Offer).order_by(Offer.id.desc()))}  # first of each kind
    mine = approved_allocation(session, owner.startup_id, offers["tokens"], NOW)
    theirs = approved_allocation(session, other.startup_id, offers["tokens"], NOW)
    gpu = approved_allocation(session, owner.startup_id, offers["gpu"], NOW)
    session.commit()
    yield {"simulator": simulator, "carrier": carrier, "owner": owner, "other": other, "staff": staff,
           "mine": mine.id, "theirs": theirs.id, "gpu": gpu.id, "offers": offers}
    simulator.close()


def provisioned_by_the_job(app, session, world) -> Allocation:
    jobs.provision(app, NOW)
    session.expire_all()
    allocation = session.get(Allocation, world["mine"])
    assert allocation.status is AllocationStatus.active and allocation.carrier_ref.startswith("CTC-ORD-")
    return allocation


def test_the_page_says_how_to_use_it_in_words_without_the_secret(app, client, session, world):
    allocation = provisioned_by_the_job(app, session, world)
    assert allocation.access_details["endpoint"] == "https://maas.ctyun.example/v1"
    company_person_signed_in(app, client, session, world["owner"].startup_id, "ceo@owner.example.cn", NOW)
    page = text(client.get(f"/portal/allocations/{allocation.id}"))
    assert '<h2 id="how-to-use-heading">如何使用</h2>' in page
    assert f"运营商单号 {allocation.carrier_ref}" in page
    assert "接口地址" in page and "<code>https://maas.ctyun.example/v1</code>" in page
    assert "模型名称" in page and allocation.access_details["model"] in page
    console = f"https://console.ctyun.example/orders/{allocation.carrier_ref}"
    assert f'<a href="{console}" rel="noopener noreferrer">{console}</a>' in page
    assert "运营商的使用说明" in page and "OpenAI 兼容接口" in page
    assert "请登录运营商控制台查看" in page  # the API key is the carrier's to give
    order = world["simulator"].app.extensions["simulator"]["orders"].orders[allocation.carrier_ref]
    assert order["access"]["api_key"] not in page
    assert order["access"]["api_key"] not in str(allocation.access_details)

    gpu = text(client.get(f"/portal/allocations/{world['gpu']}"))
    assert "登录地址" in gpu and "登录用户名" in gpu and "ctcuser" in gpu and "地域或资源池" in gpu

    client.set_cookie("broker_lang", "en")
    english = text(client.get(f"/portal/allocations/{allocation.id}"))
    assert "How to use it" in english and "API endpoint" in english and "Model name" in english
    assert "如何使用" not in english and "接口地址" not in english


def test_the_api_shows_them_to_the_owning_startup_only(app, client, session, world):
    allocation = provisioned_by_the_job(app, session, world)
    own = client.get(f"/api/v1/allocations/{allocation.id}", headers=world["owner"].headers)
    assert own.status_code == 200 and own.json["access_details"] == allocation.access_details
    assert own.json["access_details"]["secret_at_carrier"] is True and "api_key" not in own.json["access_details"]
    listed = {a["id"]: a for a in client.get("/api/v1/allocations", headers=world["owner"].headers).json}
    assert listed[allocation.id]["access_details"] == allocation.access_details
    # The carrier made them, staff have no use for them: neither is sent them.
    for who in ("carrier", "staff"):
        seen = client.get(f"/api/v1/allocations/{allocation.id}", headers=world[who].headers)
        assert seen.status_code == 200 and seen.json["access_details"] is None and seen.json["carrier_ref"]
        assert all(a["access_details"] is None
                   for a in client.get("/api/v1/allocations", headers=world[who].headers).json)
    # Another company's allocation, provisioned too: 404 to the owner, details only to its own startup.
    assert client.get(f"/api/v1/allocations/{world['theirs']}", headers=world["owner"].headers).status_code == 404
    theirs = client.get(f"/api/v1/allocations/{world['theirs']}", headers=world["other"].headers).json
    assert theirs["access_details"]["endpoint"] and theirs["carrier_ref"] != allocation.carrier_ref
    # The provisioned event (and so its webhooks and emails) carries the reference, never the details.
    events = session.scalars(sa.select(Event).where(Event.type == "allocation.provisioned")).all()
    assert events and all("access_details" not in e.payload and e.payload["carrier_ref"] for e in events)
    assert all("maas.ctyun.example" not in str(e.payload) for e in events)


def test_another_companys_allocation_is_404_and_staff_get_403(app, client, session, world):
    provisioned_by_the_job(app, session, world)
    company_person_signed_in(app, client, session, world["owner"].startup_id, "ceo@owner.example.cn", NOW)
    assert client.get(f"/portal/allocations/{world['theirs']}").status_code == 404
    with client.session_transaction() as stored:
        stored.clear()
    assert client.get(f"/portal/allocations/{world['mine']}").headers["Location"].startswith("/sign-in?next=")
    staff_signed_in(client, session)
    assert client.get(f"/portal/allocations/{world['mine']}").status_code == 403


def test_nothing_shows_before_it_is_active_and_without_details_the_page_says_ask_the_carrier(
        app, client, session, world):
    company_person_signed_in(app, client, session, world["owner"].startup_id, "ceo@owner.example.cn", NOW)
    waiting = text(client.get(f"/portal/allocations/{world['mine']}"))
    assert "如何使用" not in waiting and "开通后显示" in waiting

    class SaysNothing(TelecomAdapter):
        """A carrier whose order answers carry no access details."""

        def provision(self, request):
            return dataclasses.replace(super().provision(request), access=None)

    adapter = SaysNothing(CarrierConfig(world["simulator"].url, {"token": "T"}, **FAST),
                          environ={"T": telecom_sim.DEFAULT_TOKEN})
    assert provision_due(session, lambda carrier: adapter, NOW)["provisioned"] == 3
    allocation = session.get(Allocation, world["mine"])
    assert allocation.status is AllocationStatus.active and allocation.access_details is None
    page = text(client.get(f"/portal/allocations/{allocation.id}"))
    assert "如何使用" in page and 'id="access-details"' not in page
    assert f"运营商没有通过本平台提供接入信息：请凭运营商单号 {allocation.carrier_ref} 联系" in page


def test_broken_details_from_the_carrier_are_dropped_and_provisioning_still_succeeds(
        app, client, session, world, caplog):
    world["simulator"].app.extensions["simulator"]["options"].bad_access = True
    with caplog.at_level("WARNING", logger="adapters.base"):
        allocation = provisioned_by_the_job(app, session, world)
    assert "console_url" not in allocation.access_details and "instructions" not in allocation.access_details
    assert allocation.access_details["endpoint"] == "https://maas.ctyun.example/v1"
    assert "not an http(s) URL" in caplog.text and "javascript" not in caplog.text
    company_person_signed_in(app, client, session, world["owner"].startup_id, "ceo@owner.example.cn", NOW)
    page = text(client.get(f"/portal/allocations/{allocation.id}"))
    assert "javascript:" not in page and "长长长" not in page and "<dt>运营商控制台</dt>" not in page
    assert "<dt>接口地址</dt>" in page
