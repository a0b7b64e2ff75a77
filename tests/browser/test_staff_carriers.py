"""The carriers screen (运营商) in a real browser: staff sign in, see 中国电信上海分公司,
中国移动上海分公司 and 中国联通上海分公司 with their sync health, open 中国电信上海分公司, read a
quarantined record's reason in Chinese and the record as sent, and press Retry on a provisioning
whose retries ran out; the page says it was queued again. axe-core finds nothing serious; the
screenshots are docs/screenshots/staff_carriers.png and staff_carrier.png."""

from __future__ import annotations

from broker.clock import FrozenClock, install_clock
from broker.models import Allocation, Role
from broker.services import people
from tests.carriers_data import MONDAY_0900, build_carriers

PASSWORD = "长宁区硅巷-运营商浏览器-2026"


def test_staff_read_a_carriers_quarantine_and_retry_a_failed_provisioning(app, client, session, page, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        built = build_carriers(client, session)  # the module's own database: the codes are free
        telecom = built["codes"]["telecom_sh"]
        first, second = built["allocations"]
        email = "carriers.browser@changning.example.gov.cn"
        people.create_district_person(session, email, "周敏", Role.staff, PASSWORD)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        page.goto("/staff/carriers")
        page.get_by_label("邮箱").fill(email)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        page.wait_for_url("**/staff/carriers")
        assert page.locator("h1").inner_text() == "运营商"
        assert "正常" in page.locator(f"#carrier-{telecom}").inner_text()
        assert "起同步失败" in page.locator(f"#carrier-{built['codes']['unicom_sh']}").inner_text()
        assert "从未同步" in page.locator(f"#carrier-{built['codes']['cmcc_sh']}").inner_text()
        assert axe(page) == []
        screenshot(page, "staff_carriers")

        page.get_by_role("link", name="中国电信上海分公司").click()
        page.wait_for_url(f"**/staff/carriers/{telecom}")
        assert page.locator("h1").inner_text() == "中国电信上海分公司"
        quarantined = page.locator("#quarantined tbody tr").first
        assert "数量或价格超出允许范围" in quarantined.inner_text()
        quarantined.locator("summary").click()
        assert "CTC-H100-02" in quarantined.locator("pre").inner_text()
        assert "运营商返回 503" in page.locator(f"#failure-{first}").inner_text()
        assert axe(page) == []
        screenshot(page, "staff_carrier")

        page.get_by_role("button", name=f"重试开通分配 {first}").click()
        page.wait_for_selector("#notice")
        assert f"分配 {first} 已重新排队开通" in page.locator("#notice").inner_text()
        assert page.locator(f"#failure-{first}").count() == 0 and page.locator(f"#failure-{second}").count() == 1
        assert axe(page) == []
        session.expire_all()
        retried = session.get(Allocation, first)
        assert retried.next_attempt_at is not None and session.get(Allocation, second).next_attempt_at is None
        session.commit()
    finally:
        install_clock(app, None)
