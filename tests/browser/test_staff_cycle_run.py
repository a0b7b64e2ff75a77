"""A staff member runs a matching cycle from the console and rejects one proposal in the review
queue: first without a reason (refused, nothing decided), then with one, which the allocation keeps.
The cycle is run by the page's button, not the API: the scheduler runs cycles weekly, and staff can
run one now."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from broker.clock import now
from broker.db import get_db
from broker.models import Allocation, AllocationStatus, MatchingCycle, Role
from broker.services import accounts
from tests.browser.test_sign_in import staff_email  # noqa: F401  (a fixture)
from tests.browser.test_staff_reports import Holder, sign_in
from tests.conftest import make_uscc, startup_payload
from tests.e2e.test_cycle_workflow import MONDAY_0900
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask

STARTUPS = [
    ("上海启明星辰自动驾驶科技有限公司", "smart_driving"),
    ("上海和煦能源管理科技有限公司", "energy_management"),
]
WINDOW = {"window_start": "2026-12-07", "window_end": "2026-12-20"}


@pytest.fixture
def queued_requests(app, frozen_clock, staff_email) -> set[int]:  # noqa: F811
    """A carrier's H100 lot and two verified startups asking for part of it; no cycle run yet.
    Returns the ids of the cycles that existed before the test (other tests share the database)."""
    frozen_clock(MONDAY_0900)
    session = get_db(app).sessionmaker()
    try:
        staff_account, _token, _secret = accounts.create_user(session, Role.staff, "区科委 顾晨")
        _carrier, _token, carrier_secret = accounts.register_carrier(
            session, "cu_shanghai", "中国联合网络通信有限公司上海市分公司", "telecom", ["telecom"])
        client = app.test_client()
        offered = publish(client, Holder(carrier_secret), gpu_offer("cu-h100-hongqiao", quantity="1000", unit_price="9"))
        assert offered.status_code == 200, offered.json
        for n, (name, sector) in enumerate(STARTUPS, start=7301):
            payload = {**startup_payload(n, sector=sector, parse=True), "name": name, "uscc": make_uscc(n)}
            startup, _token, secret = accounts.register_startup(session, payload)
            accounts.verify_startup(session, staff_account, startup.id, now(app))
            body = {**ask(quantity="300", min_quantity="100", max_unit_price="20", regions=None), **WINDOW}
            asked = client.post("/api/v1/requests", json={k: v for k, v in body.items() if v is not None}, headers=Holder(secret).headers)
            assert asked.status_code == 201, asked.json
        before = set(session.scalars(sa.select(MatchingCycle.id)))
        session.commit()  # end the transaction before the browser acts (SQLite's write lock)
        return before
    finally:
        session.close()


def test_run_a_cycle_from_the_console_and_reject_a_proposal_with_a_reason(app, page, staff_email, queued_requests, axe):  # noqa: F811
    sign_in(page, staff_email, "/staff/cycles")
    assert axe(page) == []
    page.get_by_role("button", name="立即运行一轮撮合").click()
    page.wait_for_url(re.compile(r"/staff/cycles/\d+/review$"))
    cycle_id = int(re.search(r"/staff/cycles/(\d+)/review", page.url).group(1))
    assert cycle_id not in queued_requests
    assert page.locator("h1").inner_text() == "审批队列"

    session = get_db(app).sessionmaker()
    try:
        mine = list(session.scalars(sa.select(Allocation.id).where(Allocation.cycle_id == cycle_id).order_by(Allocation.id)))
    finally:
        session.close()
    assert len(mine) == 2  # both startups were proposed part of the lot
    first = mine[0]

    # Rejecting without a reason is refused next to the field, and nothing is decided.
    page.get_by_role("button", name=f"驳回方案 {first}").click()
    page.wait_for_selector(f"#reason-error-{first}")
    assert "驳回必须填写理由" in page.locator(f"#reason-error-{first}").inner_text()
    assert axe(page) == []
    page.locator(f"#reason-{first}").fill("该企业本季度已获同类算力支持，请优先满足其他企业。")
    page.get_by_role("button", name=f"驳回方案 {first}").click()
    page.wait_for_selector("#results")
    assert "已驳回" in page.locator(f"#result-{first}").inner_text()
    assert page.locator(f"#proposal-{mine[1]}").count() == 1  # the other still awaits a decision

    session = get_db(app).sessionmaker()
    try:
        rejected = session.get(Allocation, first)
        assert rejected.status is AllocationStatus.rejected
        assert rejected.decision_reason == "该企业本季度已获同类算力支持，请优先满足其他企业。"
        assert session.get(Allocation, mine[1]).status is AllocationStatus.proposed
    finally:
        session.close()
