"""The in-app inbox (消息) in a real browser: a founder of 上海星图智算科技有限公司 signs in, opens 消息
from the portal's nav, reads the company's events as sentences with the new ones marked, filters
to one group and follows an event to its allocation. axe-core finds nothing serious; the
screenshot is docs/screenshots/inbox.png."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from broker.clock import FrozenClock, install_clock
from broker.models import Allocation, Role, Sector
from broker.models.people import CompanyRole
from broker.services import accounts, events, people
from broker.web.staff_carriers import quantity
from tests.conftest import Actor, make_uscc
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask
from tests.browser.support import sign_in

PASSWORD = "长宁区硅巷-消息-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
WINDOW = {"window_start": "2026-12-07", "window_end": "2026-12-20"}


def test_a_founder_reads_the_companys_events_and_follows_one(app, client, session, page, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        suffix = uuid.uuid4().hex[:6]
        staff, _, staff_secret = accounts.create_user(session, Role.staff, "消息")
        staff_actor = Actor(staff.id, staff_secret)
        carrier, token, secret = accounts.register_carrier(session, f"ct{suffix}", "中国电信上海分公司", "telecom", ["telecom"])
        published = publish(client, Actor(token.account_id, secret, carrier_id=carrier.id),
                            gpu_offer(f"h100-{suffix}", quantity="600", unit_price="10", window_start="2026-12-01"))
        assert published.status_code == 200, published.json
        startup, token, secret = accounts.register_startup(session, {
            "name": "上海星图智算科技有限公司", "uscc": make_uscc(int(uuid.uuid4().int % 10_000_000) * 10),
            "sector": Sector.ai_models, "founded_on": dt.date(2023, 5, 8), "headcount": 25,
            "contact_name": "赵敏", "contact_email": f"ceo{suffix}@xingtu.example.cn"})
        accounts.verify_startup(session, staff, startup.id, MONDAY_0900)
        session.commit()  # the server writes next: on SQLite an open transaction holds the write lock
        founder = Actor(token.account_id, secret)
        for asked in ("300", "200"):
            body = ask(quantity=asked, min_quantity="100", max_unit_price="20", regions=["sh-changning"], **WINDOW)
            made = client.post("/api/v1/requests", json={k: v for k, v in body.items() if v is not None},
                               headers=founder.headers)
            assert made.status_code == 201, made.json
        cycle = client.post("/api/v1/cycles", json={}, headers=staff_actor.headers)
        assert cycle.status_code == 201, cycle.json
        made = sorted(client.get("/api/v1/allocations", headers=founder.headers).json, key=lambda a: a["id"])
        (first, second), amount = [a["id"] for a in made], quantity(Decimal(made[0]["quantity"]))
        assert client.post(f"/api/v1/allocations/{first}/approve", json={}, headers=staff_actor.headers).status_code == 200
        assert client.post(f"/api/v1/allocations/{second}/reject", json={"reason": "材料不全"},
                           headers=staff_actor.headers).status_code == 200
        events.record(session, "subsidy.committed", session.get(Allocation, first), startup.id, None, MONDAY_0900,
                      amount="900.00")

        email = f"admin{suffix}@xingtu.example.cn"
        inviter = people.create_district_person(session, f"inbox{suffix}@changning.example.gov.cn", "陈静", Role.staff, PASSWORD)
        _, link = people.invite(session, inviter, email, MONDAY_0900, "http://127.0.0.1",
                                company_role=CompanyRole.administrator, startup_id=startup.id)
        people.accept_invitation(session, link.rsplit(people.INVITATION_PATH, 1)[1], "李想", PASSWORD, MONDAY_0900)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, email, PASSWORD)
        page.wait_for_url("**/portal/requests")
        page.get_by_role("link", name="消息", exact=True).click()
        page.wait_for_url("**/inbox")
        assert page.locator("h1").inner_text() == "消息"
        assert page.locator("#inbox tbody tr").count() == 6  # verified, 2 proposed, approved, rejected, subsidy
        assert page.locator("#inbox tbody tr.unread").count() == 6
        assert "有 6 条新消息" in page.locator("#unread-count").inner_text()
        assert f"分配 #{first}（GPU 算力 {amount} 卡时）已获批准" in page.locator("#inbox").inner_text()
        assert axe(page) == []
        screenshot(page, "inbox")

        page.get_by_label("类别").select_option("subsidies")
        page.get_by_role("button", name="筛选").click()
        page.wait_for_url("**/inbox?group=subsidies*")
        assert page.locator("#inbox tbody tr").count() == 1
        assert "已为分配" in page.locator("#inbox").inner_text() and "¥900.00" in page.locator("#inbox").inner_text()

        page.goto("/inbox")
        assert page.locator("#inbox tbody tr.unread").count() == 0  # the first visit marked them read
        page.get_by_role("link", name=f"分配 #{first}（GPU 算力 {amount} 卡时）已获批准").click()
        page.wait_for_url(f"**/portal/allocations/{first}")
        assert axe(page) == []
    finally:
        install_clock(app, None)
