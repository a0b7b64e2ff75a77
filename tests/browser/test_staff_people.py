"""People (人员) in a real browser: an admin signs in, invites a new staff member (周敏), sees the
pending invitation, and deactivates another staff member after the confirmation page. axe-core
finds nothing serious; the screenshot is docs/screenshots/staff_people.png."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Invitation, PersonStatus, Role
from broker.models.people import Person
from broker.services import people

PASSWORD = "长宁区硅巷-人员浏览器-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)


def test_an_admin_invites_a_staff_member_and_deactivates_another(app, session, page, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        admin = people.create_district_person(session, "wang.fang@changning.example.gov.cn", "王芳", Role.admin, PASSWORD)
        people.create_district_person(session, "li.na@changning.example.gov.cn", "李娜", Role.staff, PASSWORD)
        leaving = people.create_district_person(session, "chen.jing@changning.example.gov.cn", "陈静", Role.staff, PASSWORD)
        people.sign_in(session, "li.na@changning.example.gov.cn", PASSWORD, MONDAY_0900 - dt.timedelta(hours=20))
        people.invite(session, admin, "gu.lei@changning.example.gov.cn", MONDAY_0900 - dt.timedelta(days=1),
                      "http://localhost", name="顾磊", role=Role.admin)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        page.goto("/staff/people")
        page.get_by_label("邮箱").fill(admin.email)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        page.wait_for_url("**/staff/people")
        assert page.locator("h1").inner_text() == "人员"
        assert page.locator("#people tbody tr").count() == 3
        assert axe(page) == []

        page.locator("#invite-email").fill("zhou.min@changning.example.gov.cn")
        page.locator("#invite-name").fill("周敏")
        page.locator("#invite-role").select_option("staff")
        page.get_by_role("button", name="发送邀请").click()
        page.wait_for_selector("#people-notice")
        assert "已发送邀请" in page.locator("#people-notice").inner_text()
        row = page.locator("#invitations tbody tr", has_text="zhou.min@changning.example.gov.cn")
        assert "区科委工作人员" in row.inner_text() and "王芳" in row.inner_text()
        assert "2026年12月3日 09:00" in row.inner_text()  # 72 hours, in Shanghai time

        page.get_by_role("link", name="停用 陈静").click()
        page.wait_for_url(f"**/staff/people/{leaving.id}/deactivate")
        assert page.locator("#person-name").inner_text() == "陈静"
        assert axe(page) == []
        page.get_by_role("button", name="确认停用").click()
        page.wait_for_url("**/staff/people")
        assert "已停用 陈静" in page.locator("#people-notice").inner_text()
        assert "已停用" in page.locator(f"#person-{leaving.id}").inner_text()
        assert page.get_by_role("link", name="停用 陈静").count() == 0
        assert axe(page) == []
        screenshot(page, "staff_people")

        session.expire_all()
        assert session.get(Person, leaving.id).status is PersonStatus.deactivated
        assert session.scalar(sa.select(Invitation.role).where(Invitation.email == "zhou.min@changning.example.gov.cn")) is Role.staff
        session.commit()
    finally:
        install_clock(app, None)
