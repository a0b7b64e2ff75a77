"""The new request wizard (申请资源) in a real browser: a founder of 上海云图智算科技有限公司 signs in,
opens 申请资源 from 我的申请, fills in what it needs, sees the offers of two carriers with the net
price after the district's subsidy, submits, and lands on the new request with its place in the next
cycle. axe-core finds nothing serious; the screenshots are docs/screenshots/portal_wizard.png (the
quote step) and portal_request_place.png."""

from __future__ import annotations

import datetime as dt
import uuid

from broker.clock import FrozenClock, install_clock
from broker.models import Role, Sector
from broker.models.people import CompanyRole
from broker.services import accounts, people
from tests.conftest import Actor, make_uscc
from tests.e2e.test_ledger import program_body
from tests.e2e.test_offers import gpu_offer, publish
from tests.browser.support import sign_in

PASSWORD = "长宁区硅巷-申请向导-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)


def test_a_founder_sees_net_prices_across_carriers_and_submits(app, client, session, page, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        suffix = uuid.uuid4().hex[:6]
        staff, _, staff_secret = accounts.create_user(session, Role.staff, "申请向导")
        telecom, t_token, t_secret = accounts.register_carrier(session, f"ctc{suffix}", "中国电信上海分公司", "telecom", ["telecom"])
        unicom, u_token, u_secret = accounts.register_carrier(session, f"cu{suffix}", "中国联通上海分公司", "telecom", ["telecom"])
        for carrier, token, secret, price in ((telecom, t_token, t_secret, "10"), (unicom, u_token, u_secret, "9")):
            published = publish(client, Actor(token.account_id, secret, carrier_id=carrier.id),
                                gpu_offer(f"h100-{suffix}", quantity="800", unit_price=price, window_start="2026-12-01"))
            assert published.status_code == 200, published.json
        program = client.post("/api/v1/subsidy-programs", headers=Actor(staff.id, staff_secret).headers,
                              json=program_body(f"voucher-{suffix}", name="长宁区算力券", rate="0.3",
                                                supplier_carrier_ids=[telecom.id]))
        assert program.status_code == 201, program.json
        startup, token, secret = accounts.register_startup(session, {
            "name": "上海云图智算科技有限公司", "uscc": make_uscc(int(uuid.uuid4().int % 10_000_000) * 10 + 3),
            "sector": Sector.ai_models, "founded_on": dt.date(2023, 5, 1), "headcount": 30,
            "contact_name": "刘洋", "contact_email": f"ceo{suffix}@yuntu.example.cn"})
        accounts.verify_startup(session, staff, startup.id, MONDAY_0900)
        email = f"admin{suffix}@yuntu.example.cn"
        inviter = people.create_district_person(session, f"wizard{suffix}@changning.example.gov.cn", "陈静", Role.staff, PASSWORD)
        _, link = people.invite(session, inviter, email, MONDAY_0900, "http://127.0.0.1",
                                company_role=CompanyRole.administrator, startup_id=startup.id)
        people.accept_invitation(session, link.rsplit(people.INVITATION_PATH, 1)[1], "刘洋", PASSWORD, MONDAY_0900)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, email, PASSWORD)
        page.wait_for_url("**/portal/requests")
        page.locator("#new-request").click()
        page.wait_for_url("**/portal/requests/new")
        assert page.locator("h1").inner_text() == "申请资源"
        page.get_by_label("资源类型").select_option("gpu")
        page.get_by_label("数量", exact=True).fill("200")
        page.get_by_label("开始日期").fill("2026-12-07")
        page.get_by_label("结束日期").fill("2026-12-20")
        page.get_by_label("可接受的地区（选填）").fill("sh-changning")
        page.locator("#attr-gpu-gpu_model").fill("H100")
        assert axe(page) == []
        page.get_by_role("button", name="查看报价").click()
        page.wait_for_url("**/portal/requests/new/quote?**")

        offers = page.locator("#offers").inner_text()
        assert "中国电信上海分公司" in offers and "中国联通上海分公司" in offers
        # 200 H100 hours: ¥2,000 at the telecom, ¥1,400 after the 30% voucher; ¥1,800 at the unicom.
        assert "¥1,400.00" in offers and "¥1,800.00" in offers
        assert "长宁区算力券：可享受，补贴比例 30%" in offers
        assert "不适用——该运营商不在项目的供应商名单上" in offers
        assert axe(page) == []
        screenshot(page, "portal_wizard")

        page.get_by_role("button", name="提交申请").click()
        page.wait_for_url("**/portal/requests/*?done=submitted")
        assert "申请已提交" in page.locator("#done").inner_text()
        assert "卡时" in page.locator("#place-supply").inner_text()
        assert axe(page) == []
        screenshot(page, "portal_request_place")
    finally:
        install_clock(app, None)
