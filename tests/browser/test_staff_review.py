"""The review queue (审批队列) in a real browser: a cycle's proposals from three Chinese startups,
three chosen and approved in bulk while one was approved by someone else meanwhile; the page shows
each item's result (one refused, two approved). axe-core finds nothing serious; the screenshot is
docs/screenshots/staff_review.png."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Allocation, AllocationStatus, ResourceRequest, Role, Sector
from broker.models.people import Person
from broker.services import accounts, people
from tests.conftest import Actor, make_uscc
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask

PASSWORD = "长宁区硅巷-审批浏览器-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
STARTUPS = (
    ("上海云驰智行科技有限公司", Sector.smart_driving),
    ("上海深瞳大模型技术有限公司", Sector.ai_models),
    ("上海墨韵数字文化创意有限公司", Sector.digital_culture),
    ("上海澜星能源科技有限公司", Sector.energy_management),
)


def test_bulk_approve_shows_each_items_result(app, client, session, page, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        suffix = uuid.uuid4().hex[:6]
        staff, _, staff_secret = accounts.create_user(session, Role.staff, "审批队列")
        staff_actor = Actor(staff.id, staff_secret)
        carrier, token, secret = accounts.register_carrier(session, f"cmcc{suffix}", "中国移动上海分公司", "telecom", ["telecom"])
        carrier_actor = Actor(token.account_id, secret, carrier_id=carrier.id)
        published = publish(client, carrier_actor,
                            gpu_offer(f"h100-{suffix}", quantity="600", unit_price="10", window_start="2026-12-01"),
                            gpu_offer(f"tok-{suffix}", kind="tokens", attributes={"model": "jiutian"}, quantity="100000",
                                      unit_price="2", list_price="4", window_start="2026-12-01"))
        assert published.status_code == 200, published.json
        mine = []
        base = int(uuid.uuid4().int % 10_000_000) * 10
        for i, (name, sector) in enumerate(STARTUPS):
            startup, token, secret = accounts.register_startup(session, {
                "name": name, "uscc": make_uscc(base + i), "sector": sector, "founded_on": dt.date(2022, 3, 1),
                "headcount": 30 + i, "contact_name": "张伟", "contact_email": f"ceo{suffix}{i}@example.cn"})
            accounts.verify_startup(session, staff, startup.id, MONDAY_0900)
            mine.append(startup.id)
            body = (ask(quantity="300", min_quantity="100", max_unit_price="20", regions=["sh-changning"],
                        window_start="2026-12-07", window_end="2026-12-20") if i < 2
                    else {"kind": "tokens", "quantity": "5000", "window_start": "2026-12-07", "window_end": "2026-12-20"})
            made = client.post("/api/v1/requests", json=body, headers=Actor(token.account_id, secret).headers)
            assert made.status_code == 201, made.json
        cycle = client.post("/api/v1/cycles", json={}, headers=staff_actor.headers)
        assert cycle.status_code == 201, cycle.json
        cycle_id = cycle.json["id"]
        ids = list(session.scalars(
            sa.select(Allocation.id).join(Allocation.request)
            .where(Allocation.cycle_id == cycle_id, ResourceRequest.startup_id.in_(mine)).order_by(Allocation.id)))
        assert len(ids) == 4
        email = "review.browser@changning.example.gov.cn"
        if session.scalar(sa.select(Person.id).where(Person.email_key == email)) is None:
            people.create_district_person(session, email, "周敏", Role.staff, PASSWORD)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        page.goto(f"/staff/cycles/{cycle_id}/review")
        page.get_by_label("邮箱").fill(email)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        page.wait_for_url(f"**/staff/cycles/{cycle_id}/review")
        assert page.locator("h1").inner_text() == "审批队列"
        assert "2026年12月2日 18:00" in page.locator("#deadline").inner_text()
        assert page.locator("#proposals tbody tr").count() >= 3
        assert axe(page) == []

        # Someone else approves the first meanwhile, through the API.
        assert client.post(f"/api/v1/allocations/{ids[0]}/approve", json={}, headers=staff_actor.headers).status_code == 200
        session.commit()
        for allocation_id in ids[:3]:
            page.locator(f"#choose-{allocation_id}").check()
        page.get_by_role("button", name="批准所选").click()
        page.wait_for_selector("#results")
        assert "成功 2 条，未处理 1 条" in page.locator("#results caption").inner_text()
        assert "该方案已批准，无需重复审批" in page.locator(f"#result-{ids[0]}").inner_text()
        assert "已批准" in page.locator(f"#result-{ids[1]}").inner_text()
        assert "已批准" in page.locator(f"#result-{ids[2]}").inner_text()
        assert page.locator(f"#proposal-{ids[3]}").count() == 1  # not chosen: still awaiting a decision
        assert axe(page) == []
        screenshot(page, "staff_review")
        session.expire_all()
        statuses = set(session.scalars(sa.select(Allocation.status).where(Allocation.id.in_(ids[:3]))))
        assert session.get(Allocation, ids[3]).status is AllocationStatus.proposed
        session.commit()
        assert statuses == {AllocationStatus.approved}
    finally:
        install_clock(app, None)
