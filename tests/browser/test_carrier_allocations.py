"""The carrier page's allocations (运营商门户 · 分配) in a real browser: a carrier's person signs in,
opens 分配 from the nav, sees the approved allocation with the startup's name and contact and the
proposed one without, filters to the approved ones. axe-core finds nothing serious; the screenshot
is docs/screenshots/carrier_allocations.png."""

from __future__ import annotations

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Allocation, Carrier
from broker.services import people
from broker.services.passwords import hash_password
from tests.conftest import make_uscc
from tests.e2e.test_cycle_workflow import MONDAY_0900
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask
from tests.browser.support import sign_in

PASSWORD = "长宁区硅巷-运营商分配浏览器-2026"


def test_a_carrier_person_reads_the_allocations_on_its_offers(app, client, session, make_actor, page, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)
    try:
        staff = make_actor("staff")
        carrier = make_actor("carrier", code="telecom_alloc")
        session.execute(sa.update(Carrier).where(Carrier.id == carrier.carrier_id)
                        .values(name="中国电信上海分公司", uscc=make_uscc(9401)))
        session.commit()  # the server writes next: on SQLite an open transaction holds the write lock
        publish(client, carrier, gpu_offer("h100", quantity="1000", unit_price="10"))
        window = {"window_start": "2026-12-07", "window_end": "2026-12-20"}
        for sector in ("smart_driving", "ai_models"):
            startup = make_actor("startup", sector=sector)
            session.commit()
            body = {k: v for k, v in ask(quantity="400", min_quantity="100", max_unit_price="20", regions=None,
                                         **window).items() if v is not None}
            assert client.post("/api/v1/requests", json=body, headers=startup.headers).status_code == 201
        cycle = client.post("/api/v1/cycles", json={}, headers=staff.headers)
        assert cycle.status_code == 201, cycle.json
        session.expire_all()
        ids = list(session.scalars(sa.select(Allocation.id).where(Allocation.cycle_id == cycle.json["id"])
                                   .order_by(Allocation.id)))
        assert len(ids) == 2
        session.commit()
        assert client.post(f"/api/v1/allocations/{ids[0]}/approve", json={}, headers=staff.headers).status_code == 200
        approved_startup = session.get(Allocation, ids[0]).request.startup.name
        email = "chen.jing@telecom-alloc.example.cn"
        person = people.find_or_link(session, make_uscc(9401), email, "陈静", "legal_representative", MONDAY_0900)
        person.password_hash = hash_password(PASSWORD)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, email, PASSWORD)
        page.wait_for_url("**/carrier/catalogue")
        page.get_by_role("link", name="分配", exact=True).click()
        page.wait_for_url("**/carrier/allocations")
        assert page.locator("h1").inner_text() == "分配"
        assert approved_startup in page.locator(f"#allocation-{ids[0]}").inner_text()
        assert "获批后显示" in page.locator(f"#allocation-{ids[1]}").inner_text()
        assert axe(page) == []
        screenshot(page, "carrier_allocations")

        page.get_by_label("状态").select_option("approved")
        page.get_by_role("button", name="筛选").click()
        page.wait_for_url("**/carrier/allocations?status=approved*")
        assert page.locator("#allocations tbody tr").count() == 1
        assert axe(page) == []
    finally:
        install_clock(app, None)
