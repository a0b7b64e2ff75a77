"""A company registers and manages its people, in a real browser: a founder opens 注册企业 from
the sign-in page, fills the form and lands signed in on /company, which says the registration
waits for verification; staff verify it (through the service); the founder sees it verified and
invites a colleague as an agent. axe-core finds nothing serious; the screenshots are
docs/screenshots/portal_register.png and portal_company.png."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.db import get_db
from broker.models import Invitation, Role, Startup
from broker.services import accounts
from tests.conftest import make_uscc

PASSWORD = "长宁区硅巷-企业注册-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)


def test_a_founder_registers_waits_for_verification_then_invites_a_colleague(app, page, axe, screenshot):
    install_clock(app, FrozenClock(MONDAY_0900))  # the server thread serves the same app, so it reads this clock too
    try:
        suffix = uuid.uuid4().hex[:6]
        code = make_uscc(int(uuid.uuid4().int % 10_000_000) * 10 + 7)
        email = f"chen{suffix}@yunfan.example.cn"

        page.goto("/sign-in")
        page.get_by_role("link", name="注册企业").click()
        page.wait_for_url("**/register")
        page.get_by_label("企业名称").fill("上海云帆智算科技有限公司")
        page.get_by_label("统一社会信用代码（18 位）").fill(code)
        page.get_by_label("行业").select_option("ai_models")
        page.get_by_label("成立日期").fill("2023-05-08")
        page.get_by_label("员工人数").fill("18")
        page.get_by_label("联系电话（可不填）").fill("021-6238 0000")
        page.get_by_label("姓名", exact=True).fill("陈晨")
        page.get_by_label("邮箱（用于登录）").fill(email)
        page.get_by_label("密码（至少 12 个字符，不能是常见密码）").fill(PASSWORD)
        assert axe(page) == []
        screenshot(page, "portal_register")
        page.get_by_role("button", name="注册", exact=True).click()
        page.wait_for_url("**/company?done=registered")
        assert page.locator("h1").inner_text() == "上海云帆智算科技有限公司"
        assert page.locator("#startup-status").inner_text() == "待核验"
        assert "核验通过后才能提交资源申请" in page.locator("#pending-banner").inner_text()
        assert page.locator(".portal-nav a[aria-current=page]").inner_text() == "企业与人员"
        assert axe(page) == []

        with get_db(app).sessionmaker() as fresh:
            startup_id = fresh.scalar(sa.select(Startup.id).where(Startup.uscc == code))
            staff, _, _ = accounts.create_user(fresh, Role.staff, "沈慧")
            accounts.verify_startup(fresh, staff, startup_id, MONDAY_0900)

        page.goto("/company")
        assert page.locator("#startup-status").inner_text() == "已核验"
        assert page.locator("#pending-banner").count() == 0
        page.get_by_label("邮箱", exact=True).fill(f"zhao{suffix}@yunfan.example.cn")
        page.get_by_label("姓名（选填）").fill("赵静")
        page.get_by_label("角色").select_option("agent")
        page.get_by_label("资源申请").check()
        page.get_by_label("诉求").check()
        page.get_by_label("经办人授权截止日期（仅经办人，一年之内）").fill("2027-06-30")
        page.get_by_role("button", name="发送邀请").click()
        page.wait_for_url("**/company?done=invited")
        assert "已发送邀请" in page.locator("#company-done").inner_text()
        assert f"zhao{suffix}@yunfan.example.cn" in page.locator("#invitations").inner_text()
        assert "经办人" in page.locator("#invitations").inner_text()
        assert axe(page) == []
        screenshot(page, "portal_company")
        with get_db(app).sessionmaker() as fresh:
            invited = fresh.scalar(sa.select(Invitation).where(Invitation.email == f"zhao{suffix}@yunfan.example.cn"))
            assert invited.startup_id == startup_id and invited.scopes == ["appeals", "requests"]
    finally:
        install_clock(app, None)
