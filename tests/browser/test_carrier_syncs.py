"""The carrier page's syncs and the company's webhook in a real browser: a person of 中国电信上海分公司
signs in, opens 同步记录 (two pulls, the latest with a quarantined record and a conflict), opens the
earlier sync's details, then sets the company's webhook and sees its secret once and its deliveries.
axe-core finds nothing serious; the screenshots are docs/screenshots/carrier_syncs.png and
webhook_settings.png."""

from __future__ import annotations

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Carrier
from broker.models.people import Side
from broker.services import events, people
from tests.carriers_data import MONDAY_0900, build_carriers
from tests.browser.support import sign_in

PASSWORD = "电信上海-同步记录-2026"
EMAIL = "qian.li@telecom-sh.example.cn"


def test_a_carrier_person_reads_its_syncs_and_sets_the_webhook(app, client, session, page, axe, screenshot, monkeypatch):
    install_clock(app, FrozenClock(MONDAY_0900))
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ())
    built = build_carriers(client, session)
    carrier_id = session.scalar(sa.select(Carrier.id).where(Carrier.code == built["codes"]["telecom_sh"]))
    people.create_company_person(session, Side.carrier, carrier_id, EMAIL, "钱力", PASSWORD)
    session.commit()

    sign_in(page, EMAIL, PASSWORD)
    page.wait_for_url("**/carrier/**")
    page.goto("/carrier/syncs")
    assert page.locator("h1").inner_text() == "同步记录"
    assert page.locator("#syncs tbody tr").count() == 2
    assert "数量或价格超出允许范围" in page.locator("#quarantined").inner_text()
    assert "运营商下调了数量" in page.locator("#conflicts").inner_text()
    assert axe(page) == []
    screenshot(page, "carrier_syncs")
    page.locator("#syncs tbody tr").nth(1).locator("a").click()
    assert "资源类型无法识别" in page.locator("#quarantined").inner_text()

    page.goto("/settings/webhook")
    page.get_by_label("新的推送地址（http 或 https，公网地址）").fill("https://93.184.215.14/broker-events")
    page.get_by_role("button", name="保存地址").click()
    page.wait_for_url("**/settings/webhook?done=saved")
    assert page.locator("#new-secret code").inner_text().startswith("whsec_")
    for n in range(3):
        events.record(session, "allocation.provisioned", None, None, carrier_id, MONDAY_0900, allocation_id=n + 1)
    session.commit()
    page.reload()
    assert page.locator("#delivery-table tbody tr").count() == 3 and page.locator("#new-secret").count() == 0
    assert axe(page) == []
    screenshot(page, "webhook_settings")
