"""The carrier page's delivery and settlement (运营商门户 · 交付与结算) in a real browser: two Shanghai
startups use the GPU-hours a carrier delivered under a 服务券 the carrier claims; the month's statement
is built and approved with its disbursement reference. The carrier's person opens 交付与结算 from the
nav, sees the usage and the subsidy it redeemed, filters by month, and opens the statement with its
lines. axe-core finds nothing serious; the screenshots are docs/screenshots/carrier_delivery.png and
carrier_statement.png."""

from __future__ import annotations

import datetime as dt

from broker.clock import FrozenClock, install_clock
from broker.models import Award, Role, Sector
from broker.services import accounts, people
from broker.services.passwords import hash_password
from tests.conftest import Actor, make_uscc
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_settlement import at, use
from tests.browser.support import sign_in

PASSWORD = "长宁区硅巷-交付结算浏览器-2026"
EMAIL = "lin.hui@sh-unicom.example.cn"
STARTUPS = (("上海深瞳大模型技术有限公司", Sector.ai_models, "400", "320"),
            ("上海云驰智行科技有限公司", Sector.smart_driving, "200", "150"))


def test_a_carrier_person_reads_its_delivery_and_a_statement(app, client, session, page, axe, screenshot):
    clock = FrozenClock(at(dt.date(2026, 11, 30)))
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        builder_account, _, builder_secret = accounts.create_user(session, Role.staff, "王建国")
        first_account, _, first_secret = accounts.create_user(session, Role.staff, "陈静")
        builder, first = Actor(builder_account.id, builder_secret), Actor(first_account.id, first_secret)
        carrier, token, secret = accounts.register_carrier(session, "sh_unicom", "中国联通上海分公司", "telecom", ["telecom"])
        carrier.uscc = make_uscc(9501)
        carrier_actor = Actor(token.account_id, secret, carrier_id=carrier.id)
        session.commit()
        assert publish(client, carrier_actor, gpu_offer("h800", quantity="5000", unit_price="250",
                                                        list_price="300")).status_code == 200
        program = client.post("/api/v1/subsidy-programs", headers=builder.headers, json={
            "code": "service-voucher", "name": "算力服务券", "kinds": ["gpu"], "rate": "0.6", "cap_per_startup": "200000",
            "claimant": "carrier", "budget": "500000", "funding_document": "沪经信智〔2026〕12号",
            "starts_on": "2026-01-01", "ends_on": "2027-07-01", "evidence_required": ["usage_statement"],
            "requires_notice": False})
        assert program.status_code == 201, program.json
        requests = []
        for i, (name, sector, quantity, _used) in enumerate(STARTUPS):
            startup, token, secret = accounts.register_startup(session, {
                "name": name, "uscc": make_uscc(7100 + i), "sector": sector, "founded_on": dt.date(2022, 3, 1),
                "headcount": 40 + i, "contact_name": "张伟", "contact_email": f"ops{i}@example.cn"})
            accounts.verify_startup(session, builder_account, startup.id, clock())
            asked = client.post("/api/v1/requests", headers=Actor(token.account_id, secret).headers, json={
                "kind": "gpu", "quantity": quantity, "window_start": "2026-12-07", "window_end": "2026-12-20"})
            assert asked.status_code == 201, asked.json
            requests.append(asked.json["id"])
        assert client.post("/api/v1/cycles", json={}, headers=first.headers).status_code == 201
        allocations = []
        for request_id in requests:
            [allocation] = client.get(f"/api/v1/allocations?request_id={request_id}", headers=first.headers).json
            assert client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={},
                               headers=first.headers).status_code == 200
            allocations.append(allocation["id"])
        for n, (allocation_id, (_name, _sector, _quantity, used)) in enumerate(zip(allocations, STARTUPS)):
            use(session, allocation_id, used, at(dt.date(2026, 12, 18), 10 + n), f"u-delivery-{n}")
        award = session.query(Award).filter(Award.allocation_id == allocations[0]).one()
        award.evidence_complete = True  # what the evidence review sets: the second's usage statement is missing
        session.commit()
        clock.set(at(dt.date(2027, 1, 4)))
        built = client.post("/api/v1/settlements", json={"program": "service-voucher", "period": "2026-12"},
                            headers=builder.headers)
        assert built.status_code == 201, built.json
        statement = built.json
        assert statement["total_payable"] == "48000.00"  # 320 h × ¥250 × 60%
        assert client.post(f"/api/v1/settlements/{statement['id']}/approve",
                           json={"disbursement_reference": "沪财预〔2027〕8号"}, headers=first.headers).status_code == 200
        person = people.find_or_link(session, make_uscc(9501), EMAIL, "林慧", "legal_representative", clock())
        person.password_hash = hash_password(PASSWORD)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, EMAIL, PASSWORD)
        page.wait_for_url("**/carrier/catalogue")
        page.get_by_role("link", name="交付与结算", exact=True).click()
        page.wait_for_url("**/carrier/delivery")
        assert page.locator("h1").inner_text() == "交付与结算"
        first_row = page.locator(f"#usage-{allocations[0]}").inner_text()
        assert STARTUPS[0][0] in first_row and "320 卡时" in first_row and "¥48,000.00" in first_row
        listed = page.locator(f"#statement-{statement['id']}").inner_text()
        assert "已审批并核销" in listed and "¥48,000.00" in listed and "¥70,500.00" in listed  # approved, claimed
        assert axe(page) == []
        screenshot(page, "carrier_delivery")

        page.get_by_label("上报月份").fill("2026-11")
        page.get_by_role("button", name="筛选").click()
        page.wait_for_url("**/carrier/delivery?*month=2026-11*")
        assert page.locator("#no-usage").count() == 1
        assert axe(page) == []

        page.get_by_role("link", name=str(statement["id"]), exact=True).click()
        page.wait_for_url(f"**/carrier/delivery/statements/{statement['id']}")
        assert page.locator("#lines tbody tr").count() == 2
        assert "沪财预〔2027〕8号" in page.locator("#reference").inner_text()
        assert "¥48,000.00" in page.locator("#paid").inner_text()
        assert axe(page) == []
        screenshot(page, "carrier_statement")
    finally:
        install_clock(app, None)
