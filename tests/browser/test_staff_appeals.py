"""The appeals inbox (诉求) in a real browser: 上海云驰智行科技有限公司 appealed its lapsed GPU
allocation six working days ago (overdue, highlighted with a word), 上海深瞳大模型技术有限公司 one
of its own this week. A staff person signs in, opens the inbox, opens the overdue thread, assigns it
to themself and replies. Then a person of 深瞳 (another startup), in a browser of their own, opens
云驰's appeal at /portal/appeals/<id> and gets the 404 page, and /staff/appeals gets 403. axe-core
finds nothing serious; the screenshots are docs/screenshots/staff_appeals.png and staff_appeal.png."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Account, Allocation, ResourceRequest, Role, Sector
from broker.models.people import CompanyRole, Person
from broker.services import accounts, appeals, cycles, people
from tests.conftest import Actor, make_uscc
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask

PASSWORD = "长宁区硅巷-诉求浏览器-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
THURSDAY_1000 = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.timezone.utc)  # the day after approvals closed
WEDNESDAY_1430 = dt.datetime(2026, 12, 9, 6, 30, tzinfo=dt.timezone.utc)
FRIDAY_1000 = dt.datetime(2026, 12, 11, 2, 0, tzinfo=dt.timezone.utc)  # 云驰 has waited six working days
STARTUPS = (("上海云驰智行科技有限公司", Sector.smart_driving), ("上海深瞳大模型技术有限公司", Sector.ai_models))


def _district(app, client, session, clock):
    """Two startups whose GPU allocations lapsed (nobody decided in time), and their appeals."""
    suffix = uuid.uuid4().hex[:6]
    staff, _, staff_secret = accounts.create_user(session, Role.staff, "诉求")
    carrier, token, secret = accounts.register_carrier(session, f"ctc{suffix}", "中国电信上海分公司", "telecom", ["telecom"])
    published = publish(client, Actor(token.account_id, secret, carrier_id=carrier.id),
                        gpu_offer(f"h100-{suffix}", quantity="600", unit_price="10", window_start="2026-12-01"))
    assert published.status_code == 200, published.json
    made = []
    base = int(uuid.uuid4().int % 10_000_000) * 10
    for i, (name, sector) in enumerate(STARTUPS):
        startup, token, secret = accounts.register_startup(session, {
            "name": name, "uscc": make_uscc(base + i), "sector": sector, "founded_on": dt.date(2021, 6, 1),
            "headcount": 40 + i, "contact_name": "陈晓", "contact_email": f"ceo{suffix}{i}@example.cn"})
        accounts.verify_startup(session, staff, startup.id, MONDAY_0900)
        body = ask(quantity="300", min_quantity="100", max_unit_price="20", regions=["sh-changning"],
                   window_start="2026-12-07", window_end="2026-12-20")
        asked = client.post("/api/v1/requests", json=body, headers=Actor(token.account_id, secret).headers)
        assert asked.status_code == 201, asked.json
        made.append(startup)
    cycle = client.post("/api/v1/cycles", json={}, headers=Actor(staff.id, staff_secret).headers)
    assert cycle.status_code == 201, cycle.json
    clock.set(THURSDAY_1000)
    cycles.close_approval_windows(session, THURSDAY_1000)
    lapsed = {startup_id: allocation_id for allocation_id, startup_id in session.execute(
        sa.select(Allocation.id, ResourceRequest.startup_id).join(Allocation.request)
        .where(Allocation.cycle_id == cycle.json["id"]).order_by(Allocation.id))}
    yunchi, shentong = made
    startup_account = {s.id: session.scalar(sa.select(Account).where(Account.startup_id == s.id)) for s in made}
    overdue = appeals.file_appeal(session, startup_account[yunchi.id], lapsed[yunchi.id],
                                  "我司于11月30日提交的GPU算力申请在审批期限内未获处理而失效。该算力用于智能驾驶感知模型训练，"
                                  "12月7日起的训练计划已排期，恳请区科委复核并在下一轮撮合中优先安排。", THURSDAY_1000)
    recent = appeals.file_appeal(session, startup_account[shentong.id], lapsed[shentong.id],
                                 "我司的H100算力分配已失效，请问是否可以在下一轮重新匹配？", WEDNESDAY_1430)
    return yunchi, shentong, overdue.id, recent.id


def test_staff_answer_an_overdue_appeal_and_another_company_cannot_see_it(app, client, session, page, browser,
                                                                          live_server, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        yunchi, shentong, overdue_id, recent_id = _district(app, client, session, clock)
        clock.set(FRIDAY_1000)
        email = "chen.jing@changning.example.gov.cn"
        staff = session.scalar(sa.select(Person).where(Person.email_key == email))
        if staff is None:
            staff = people.create_district_person(session, email, "陈静", Role.staff, PASSWORD)
        other_email = f"admin{uuid.uuid4().hex[:6]}@shentong-ai.example.cn"
        _, link = people.invite(session, staff, other_email, FRIDAY_1000, "http://127.0.0.1",
                                company_role=CompanyRole.administrator, startup_id=shentong.id)
        people.accept_invitation(session, link.rsplit(people.INVITATION_PATH, 1)[1], "刘洋", PASSWORD, FRIDAY_1000)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        page.goto("/staff/appeals")
        page.get_by_label("邮箱").fill(email)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        page.wait_for_url("**/staff/appeals")
        assert page.locator("h1").inner_text() == "诉求"
        overdue_row = page.locator(f"#appeal-{overdue_id}")
        assert overdue_row.get_attribute("class") == "overdue"
        assert "超期" in overdue_row.inner_text() and "上海云驰智行科技有限公司" in overdue_row.inner_text()
        assert "2026年12月3日 10:00" in overdue_row.inner_text()
        recent_row = page.locator(f"#appeal-{recent_id}")
        assert recent_row.get_attribute("class") is None and "超期" not in recent_row.inner_text()
        assert "超期 1 件" in page.locator("#overdue-summary").inner_text()
        assert axe(page) == []
        screenshot(page, "staff_appeals")

        overdue_row.get_by_role("link").click()
        page.wait_for_url(f"**/staff/appeals/{overdue_id}")
        assert "审批期限内未作决定，已失效" in page.locator("#allocation-outcome").inner_text()
        page.get_by_label("分派给").select_option(label="陈静（我）")
        page.get_by_role("button", name="分派", exact=True).click()
        page.wait_for_selector("#done")
        assert page.locator("#assignee").inner_text() == "陈静"
        page.get_by_label("回复企业").fill("您好，已收到贵司诉求。经核实，本轮审批因材料复核延误而失效，"
                                           "我们已将贵司的GPU需求列入下一轮撮合优先名单，请于12月14日前确认训练窗口。")
        page.get_by_role("button", name="发送回复").click()
        page.wait_for_selector("#done")
        messages = page.locator("#messages li")
        assert messages.count() == 2 and "优先名单" in messages.nth(1).inner_text()
        assert "陈静" in messages.nth(1).inner_text() and "2026年12月11日 10:00" in messages.nth(1).inner_text()
        assert "已答复，待企业回应" in page.locator("#appeal-status").inner_text()
        assert axe(page) == []
        screenshot(page, "staff_appeal")

        # A person of another startup, in a browser of their own.
        context = browser.new_context(base_url=live_server, locale="zh-CN", viewport={"width": 1280, "height": 900})
        try:
            theirs = context.new_page()
            theirs.goto(f"/portal/appeals/{overdue_id}")
            theirs.get_by_label("邮箱").fill(other_email)
            theirs.get_by_label("密码").fill(PASSWORD)
            theirs.get_by_role("button", name="登录", exact=True).click()
            theirs.wait_for_load_state()
            assert "页面不存在" in theirs.locator("h1").inner_text()
            assert "优先名单" not in theirs.content() and "上海云驰" not in theirs.content()
            response = theirs.goto(f"/portal/appeals/{overdue_id}")
            assert response.status == 404
            assert axe(theirs) == []
            response = theirs.goto("/staff/appeals")
            assert response.status == 403 and "无权访问" in theirs.locator("h1").inner_text()
            assert theirs.goto(f"/portal/appeals/{recent_id}").status == 200  # their own thread
        finally:
            context.close()
    finally:
        install_clock(app, None)
