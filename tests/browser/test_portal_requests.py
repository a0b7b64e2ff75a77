"""The startup portal (企业门户) in a real browser: a founder of 上海云驰智行科技有限公司 signs in and
lands on 我的申请, opens the request the cycle left short and reads why and what would help, then
opens an allocation with its net price. axe-core finds nothing serious; the screenshots are
docs/screenshots/portal_requests.png, portal_request.png and portal_allocations.png."""

from __future__ import annotations

import datetime as dt
import uuid

from broker.clock import FrozenClock, install_clock
from broker.models import Role, Sector
from broker.models.people import CompanyRole
from broker.services import accounts, people
from tests.conftest import Actor, make_uscc
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask
from tests.browser.support import sign_in

PASSWORD = "长宁区硅巷-企业门户-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
WINDOW = {"window_start": "2026-12-07", "window_end": "2026-12-20"}


def test_a_founder_reads_why_a_request_was_left_short_and_its_allocations_net_price(
        app, client, session, page, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        suffix = uuid.uuid4().hex[:6]
        staff, _, staff_secret = accounts.create_user(session, Role.staff, "企业门户")
        staff_actor = Actor(staff.id, staff_secret)
        carrier, token, secret = accounts.register_carrier(session, f"cmcc{suffix}", "中国移动上海分公司", "telecom", ["telecom"])
        published = publish(client, Actor(token.account_id, secret, carrier_id=carrier.id),
                            gpu_offer(f"h100-{suffix}", quantity="600", unit_price="10", window_start="2026-12-01"))
        assert published.status_code == 200, published.json
        startup, token, secret = accounts.register_startup(session, {
            "name": "上海云驰智行科技有限公司", "uscc": make_uscc(int(uuid.uuid4().int % 10_000_000) * 10),
            "sector": Sector.smart_driving, "founded_on": dt.date(2022, 3, 1), "headcount": 40,
            "contact_name": "张伟", "contact_email": f"ceo{suffix}@yunchi.example.cn"})
        accounts.verify_startup(session, staff, startup.id, MONDAY_0900)
        founder = Actor(token.account_id, secret)
        for body in (ask(quantity="300", min_quantity="100", max_unit_price="20", regions=["sh-changning"], **WINDOW),
                     ask(quantity="50", min_quantity=None, max_unit_price="1", regions=["sh-changning"], **WINDOW)):
            made = client.post("/api/v1/requests", json={k: v for k, v in body.items() if v is not None},
                               headers=founder.headers)
            assert made.status_code == 201, made.json
        short_id = made.json["id"]
        cycle = client.post("/api/v1/cycles", json={}, headers=staff_actor.headers)
        assert cycle.status_code == 201, cycle.json
        allocation = client.get("/api/v1/allocations", headers=founder.headers).json[0]
        approved = client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=staff_actor.headers)
        assert approved.status_code == 200, approved.json

        email = f"admin{suffix}@yunchi.example.cn"
        inviter = people.create_district_person(session, f"portal{suffix}@changning.example.gov.cn", "陈静", Role.staff, PASSWORD)
        _, link = people.invite(session, inviter, email, MONDAY_0900, "http://127.0.0.1",
                                company_role=CompanyRole.administrator, startup_id=startup.id)
        people.accept_invitation(session, link.rsplit(people.INVITATION_PATH, 1)[1], "李想", PASSWORD, MONDAY_0900)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, email, PASSWORD)
        page.wait_for_url("**/portal/requests")
        assert page.locator("h1").inner_text() == "我的申请"
        assert page.locator("#requests tbody tr").count() == 2
        assert axe(page) == []
        screenshot(page, "portal_requests")

        page.get_by_role("link", name=f"申请 {short_id}", exact=True).click()
        page.wait_for_url(f"**/portal/requests/{short_id}")
        assert page.locator("#reason-words").inner_text() == "相符的资源单价都高于企业能接受的最高单价。"
        assert "提高可接受的最高单价。" in page.locator("#reason-help").inner_text()
        assert "提交申请" in page.locator("#timeline").inner_text()
        assert axe(page) == []
        screenshot(page, "portal_request")

        page.get_by_role("link", name="我的分配", exact=True).click()
        page.wait_for_url("**/portal/allocations")
        assert "中国移动上海分公司" in page.locator("#allocations").inner_text()
        assert axe(page) == []
        screenshot(page, "portal_allocations")

        page.get_by_role("link", name=f"分配 {allocation['id']}", exact=True).click()
        page.wait_for_url(f"**/portal/allocations/{allocation['id']}")
        assert page.locator("#allocation-status").inner_text() == "已批准"
        assert page.locator("#net").inner_text() == "¥3,000.00"  # 300 H100 hours at ¥10, no subsidy program
        assert axe(page) == []
    finally:
        install_clock(app, None)
