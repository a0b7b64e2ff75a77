"""The portal's subsidies (补贴) and appeals (诉求) in a real browser: a founder of 上海云驰智行科技有限公司
signs in, opens 补贴 and reads its program's balances as the ledger has them, uploads its contract
and sees it waiting for review; then opens its rejected allocation, files an appeal, lands on the
thread and finds it under 诉求. axe-core finds nothing serious; the screenshots are
docs/screenshots/portal_subsidies.png and portal_appeals.png."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from broker.clock import FrozenClock, install_clock
from broker.models import Role, Sector
from broker.models.people import CompanyRole
from broker.services import accounts, people
from tests.conftest import Actor, make_uscc
from tests.e2e.test_ledger import program_body
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask
from tests.browser.support import sign_in

PASSWORD = "长宁区硅巷-企业补贴-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
WINDOW = {"window_start": "2026-12-07", "window_end": "2026-12-20"}
CONTRACT = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Title (browser contract) >> endobj\n"


def test_a_founder_reads_balances_uploads_evidence_and_appeals_a_rejection(app, client, session, page, axe, screenshot):
    clock = FrozenClock(MONDAY_0900)
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        suffix = uuid.uuid4().hex[:6]
        staff, _, staff_secret = accounts.create_user(session, Role.staff, "企业补贴")
        staff_actor = Actor(staff.id, staff_secret)
        made = client.post("/api/v1/subsidy-programs", headers=staff_actor.headers, json=program_body(
            f"compute-{suffix}", name="长宁区算力券", rate="0.4", cap_per_startup="5000", evidence_required=["contract"]))
        assert made.status_code == 201, made.json
        carrier, token, secret = accounts.register_carrier(session, f"cmcc{suffix}", "中国移动上海分公司", "telecom", ["telecom"])
        published = publish(client, Actor(token.account_id, secret, carrier_id=carrier.id),
                            gpu_offer(f"h100-{suffix}", quantity="600", unit_price="10", window_start="2026-12-01"))
        assert published.status_code == 200, published.json
        startup, token, secret = accounts.register_startup(session, {
            "name": "上海云驰智行科技有限公司", "uscc": make_uscc(int(uuid.uuid4().int % 10_000_000) * 10),
            "sector": Sector.smart_driving, "founded_on": dt.date(2022, 3, 1), "headcount": 40,
            "contact_name": "张伟", "contact_email": f"ceo{suffix}@yunchi.example.cn"})
        accounts.verify_startup(session, staff, startup.id, MONDAY_0900)
        founder = Actor(token.account_id, secret)
        for quantity in ("300", "200"):
            asked = client.post("/api/v1/requests", headers=founder.headers, json=ask(
                quantity=quantity, min_quantity="100", max_unit_price="20", regions=["sh-changning"], **WINDOW))
            assert asked.status_code == 201, asked.json
        cycle = client.post("/api/v1/cycles", json={}, headers=staff_actor.headers)
        assert cycle.status_code == 201, cycle.json
        first, second = sorted(client.get("/api/v1/allocations", headers=founder.headers).json, key=lambda a: a["id"])
        approved = client.post(f"/api/v1/allocations/{first['id']}/approve", json={}, headers=staff_actor.headers)
        assert approved.status_code == 200, approved.json
        subsidy = Decimal(approved.json["subsidy"])
        assert subsidy == Decimal(approved.json["gross"]) * Decimal("0.4") > 0
        refused = client.post(f"/api/v1/allocations/{second['id']}/reject", json={"reason": "用途说明不充分"},
                              headers=staff_actor.headers)
        assert refused.status_code == 200, refused.json
        [balance] = client.get("/api/v1/ledger/balances?by=program", headers=founder.headers).json

        email = f"admin{suffix}@yunchi.example.cn"
        inviter = people.create_district_person(session, f"money{suffix}@changning.example.gov.cn", "陈静", Role.staff, PASSWORD)
        _, link = people.invite(session, inviter, email, MONDAY_0900, "http://127.0.0.1",
                                company_role=CompanyRole.administrator, startup_id=startup.id)
        people.accept_invitation(session, link.rsplit(people.INVITATION_PATH, 1)[1], "李想", PASSWORD, MONDAY_0900)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        sign_in(page, email, PASSWORD)
        page.wait_for_url("**/portal/requests")

        page.get_by_role("link", name="补贴", exact=True).click()
        page.wait_for_url("**/portal/subsidies")
        row = page.locator(f"#program-compute-{suffix}")
        assert Decimal(balance["committed"]) == subsidy and Decimal(balance["redeemed"]) == 0
        assert row.locator(".committed").inner_text() == f"¥{subsidy:,.2f}"
        assert row.locator(".redeemed").inner_text() == "¥0.00"
        assert row.locator(".remaining").inner_text() == f"¥{subsidy:,.2f}"
        assert row.locator(".cap-left").inner_text() == f"¥{Decimal(5000) - subsidy:,.2f} / ¥5,000.00"
        assert "尚缺：合同" in page.locator(".award-evidence").inner_text()
        assert axe(page) == []
        screenshot(page, "portal_subsidies")

        page.get_by_label("上传合同（PDF、PNG、JPEG、OFD、XLSX 或 CSV，最大 20 MB）").set_input_files(
            {"name": "算力服务合同.pdf", "mimeType": "application/pdf", "buffer": CONTRACT + suffix.encode()})
        page.get_by_role("button", name="上传", exact=True).click()
        page.wait_for_url("**/portal/subsidies?done=uploaded*")
        assert page.locator("#done").inner_text() == "材料已上传，等待区科委审核。"
        assert "算力服务合同.pdf" in page.locator(".evidence-pieces").inner_text()
        assert "待审核" in page.locator(".evidence-pieces").inner_text()
        assert axe(page) == []

        page.goto(f"/portal/allocations/{second['id']}")
        page.get_by_label("您对这一决定有什么疑问或补充？").fill("已补充用途说明：用于城市道路感知模型训练。")
        page.get_by_role("button", name="提交诉求", exact=True).click()
        page.wait_for_url("**/portal/appeals/*?done=filed")
        assert "诉求已提交" in page.locator("#done").inner_text()

        page.get_by_role("link", name="诉求", exact=True).click()
        page.wait_for_url("**/portal/appeals")
        table = page.locator("#appeals").inner_text()
        assert f"分配 {second['id']}" in table and "待区里答复" in table and "已补充用途说明" in table
        assert axe(page) == []
        screenshot(page, "portal_appeals")
    finally:
        install_clock(app, None)
