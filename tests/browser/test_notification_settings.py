"""Email notifications in a real browser: a founder turns one kind of email off on 通知设置, and
staff find the founder's verification email in the delivery log (邮件发送记录) by recipient.
axe-core finds nothing serious; the screenshots are docs/screenshots/notification_settings.png and
staff_emails.png."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import OutboxEmail, Role, Sector
from broker.models.people import Person, Side
from broker.services import accounts, people
from tests.conftest import make_uscc
from tests.browser.support import sign_in as sign_in_as

PASSWORD = "长宁区硅巷-通知设置-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)


def sign_in(page, email: str) -> None:
    sign_in_as(page, email, PASSWORD)
    page.wait_for_load_state()


def test_a_founder_turns_an_email_off_and_staff_see_the_delivery_log(app, session, browser, live_server, page, axe,
                                                                      screenshot):
    install_clock(app, FrozenClock(MONDAY_0900))
    try:
        suffix = uuid.uuid4().hex[:6]
        staff = people.create_district_person(session, f"mail{suffix}@changning.example.gov.cn", "陈静", Role.staff, PASSWORD)
        startup, _, _ = accounts.register_startup(session, {
            "name": "上海云驰智行科技有限公司", "uscc": make_uscc(int(uuid.uuid4().int % 10_000_000) * 10),
            "sector": Sector.smart_driving, "founded_on": dt.date(2022, 3, 1), "headcount": 40,
            "contact_name": "张伟", "contact_email": f"ceo{suffix}@yunchi.example.cn"})
        founder_email = f"founder{suffix}@yunchi.example.cn"
        founder = people.create_company_person(session, Side.startup, startup.id, founder_email, "张伟", PASSWORD)
        session.commit()
        accounts.verify_startup(session, staff.account, startup.id, MONDAY_0900)  # emails the founder
        session.commit()
        staff_email, founder_id = staff.email, founder.id
        session.close()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, founder_email)
        page.goto("/settings/notifications")
        assert page.locator("h1").inner_text() == "通知设置"
        page.get_by_label("资源将在 7 天内到期").uncheck()
        page.get_by_role("button", name="保存", exact=True).click()
        page.wait_for_url("**/settings/notifications?done=saved")
        assert page.locator("#saved").is_visible()
        assert not page.get_by_label("资源将在 7 天内到期").is_checked()
        assert axe(page) == []
        screenshot(page, "notification_settings")
        session.expire_all()
        assert session.get(Person, founder_id).email_muted == ["allocation.expiring"]
        session.rollback()  # on SQLite an open transaction would hold the write lock the server needs

        context = browser.new_context(base_url=live_server, locale="zh-CN", viewport={"width": 1280, "height": 900})
        try:
            staff_page = context.new_page()
            sign_in(staff_page, staff_email)
            staff_page.goto("/staff/emails")
            staff_page.get_by_label("收件人").fill(founder_email)
            staff_page.get_by_role("button", name="筛选", exact=True).click()
            staff_page.wait_for_url("**/staff/emails?**")
            rows = staff_page.locator("#emails tbody tr")
            assert rows.count() == 1 and "注册已通过审核" in rows.first.inner_text()
            assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)
                                  .where(OutboxEmail.to_address == founder_email)) == 1
            assert axe(staff_page) == []
            screenshot(staff_page, "staff_emails")
        finally:
            context.close()
    finally:
        install_clock(app, None)
