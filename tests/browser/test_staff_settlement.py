"""Notices (公示) and settlement statements (结算单) in a real browser: three Shanghai startups'
算力券 awards frozen into a notice, an objection against one of them upheld through the page (the
page warns first), then, the notice final and the usage redeemed, a statement over the four-eyes
threshold built and first approved by two other staff accounts, and approved as the second staff
person through the page with 沪财预〔2027〕3号. axe-core finds nothing serious; the screenshots are
docs/screenshots/staff_notices.png and staff_statement.png."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Award, NoticeState, Role, Sector, StatementStatus
from broker.models.settlement import SettlementStatement
from broker.models.people import Person
from broker.services import accounts, people
from tests.conftest import Actor, make_uscc
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_settlement import at, use

PASSWORD = "长宁区硅巷-结算浏览器-2026"
EMAIL = "settlement.browser@changning.example.gov.cn"
REFERENCE = "沪财预〔2027〕3号"
STARTUPS = (
    ("上海深瞳大模型技术有限公司", Sector.ai_models, "1000"),
    ("上海云驰智行科技有限公司", Sector.smart_driving, "400"),
    ("上海澜星能源科技有限公司", Sector.energy_management, "200"),
)


def sign_in_through_the_page(page, path: str) -> None:
    page.goto(path)
    page.get_by_label("邮箱").fill(EMAIL)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(f"**{path}")


def test_answer_an_objection_then_approve_a_statement(app, client, session, page, axe, screenshot):
    clock = FrozenClock(at(dt.date(2026, 11, 30)))
    install_clock(app, clock)  # the server thread serves the same app, so it reads this clock too
    try:
        staff = {}
        for name in ("王建国", "陈静"):
            account, _, secret = accounts.create_user(session, Role.staff, name)
            staff[name] = Actor(account.id, secret)
        builder, first = staff["王建国"], staff["陈静"]
        carrier, token, secret = accounts.register_carrier(session, "sh_telecom", "中国电信上海公司", "telecom", ["telecom"])
        carrier_actor = Actor(token.account_id, secret, carrier_id=carrier.id)
        assert publish(client, carrier_actor, gpu_offer("h800", quantity="10000", unit_price="250",
                                                        list_price="300")).status_code == 200
        program = client.post("/api/v1/subsidy-programs", headers=builder.headers, json={
            "code": "compute-voucher", "name": "算力券", "kinds": ["gpu"], "rate": "0.5", "cap_per_startup": "200000",
            "budget": "1000000", "funding_document": "沪经信智〔2025〕489号", "starts_on": "2026-01-01",
            "ends_on": "2027-07-01", "evidence_required": ["contract", "invoice"], "requires_notice": True})
        assert program.status_code == 201, program.json
        allocations = []
        for i, (name, sector, quantity) in enumerate(STARTUPS):
            startup, token, secret = accounts.register_startup(session, {
                "name": name, "uscc": make_uscc(7000 + i), "sector": sector, "founded_on": dt.date(2022, 3, 1),
                "headcount": 40 + i, "contact_name": "张伟", "contact_email": f"finance{i}@example.cn"})
            reviewer, _, _ = accounts.create_user(session, Role.staff, f"审核员{i}")
            accounts.verify_startup(session, reviewer, startup.id, at(dt.date(2026, 11, 30)))
            asked = client.post("/api/v1/requests", headers=Actor(token.account_id, secret).headers, json={
                "kind": "gpu", "quantity": quantity, "window_start": "2026-12-07", "window_end": "2026-12-20"})
            assert asked.status_code == 201, asked.json
            allocations.append(asked.json["id"])
        assert client.post("/api/v1/cycles", json={}, headers=first.headers).status_code == 201
        for n, request_id in enumerate(allocations):
            [allocation] = client.get(f"/api/v1/allocations?request_id={request_id}", headers=first.headers).json
            assert client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={},
                               headers=first.headers).status_code == 200
            allocations[n] = allocation["id"]
        frozen = client.post("/api/v1/notices", headers=builder.headers, json={
            "title": "2026年第四批算力券拟支持名单公示", "program": "compute-voucher", "fiscal_year": 2026,
            "starts_on": "2026-12-01", "working_days": 5})
        assert frozen.status_code == 201, frozen.json
        notice = frozen.json
        third = notice["items"][2]
        clock.set(at(dt.date(2026, 12, 2), 10))
        lodged = client.post(f"/api/v1/public/notices/{notice['id']}/objections", json={
            "name": "李明", "contact": "13900000000", "item_id": third["id"],
            "text": "该企业法定代表人同时在算力供应商任职，属于关联交易，不应享受算力券支持。"})
        assert lodged.status_code == 201, lodged.json
        if session.scalar(sa.select(Person.id).where(Person.email_key == EMAIL)) is None:
            people.create_district_person(session, EMAIL, "周敏", Role.staff, PASSWORD)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs

        # The notice: its list, the objection, the warning before upholding; answered through the page.
        sign_in_through_the_page(page, "/staff/notices")
        assert page.locator("h1").inner_text() == "公示"
        assert page.locator(f"#notice-{notice['id']}").inner_text().count("公示中") == 1
        assert axe(page) == []
        page.get_by_role("link", name="2026年第四批算力券拟支持名单公示").click()
        page.wait_for_url(f"**/staff/notices/{notice['id']}")
        objection = f"#objection-{lodged.json['id']}"
        assert "关联交易" in page.locator(objection).inner_text()
        assert "作废" in page.locator(f"#uphold-warning-{lodged.json['id']}").inner_text()
        assert axe(page) == []
        screenshot(page, "staff_notices")
        page.locator(objection).get_by_label("维持异议（奖励作废）").check()
        page.get_by_label("答复（将告知异议人）").fill("经核实，该企业与算力供应商存在关联关系，取消本次支持。")
        page.get_by_role("button", name="提交答复").click()
        page.wait_for_selector("#flashed")
        assert "已维持" in page.locator("#flashed").inner_text()
        assert page.locator(f"#item-{third['id']}.removed").count() == 1
        assert axe(page) == []
        session.expire_all()
        assert session.get(Award, third["award_id"]).notice_state is NoticeState.removed
        session.commit()

        # The notice ends; usage is redeemed and the evidence verified; a statement is built and first approved.
        clock.set(at(dt.date(2026, 12, 8)))
        assert client.post(f"/api/v1/notices/{notice['id']}/finalise", json={}, headers=builder.headers).status_code == 200
        use(session, allocations[0], "900", at(dt.date(2026, 12, 18)), "u-browser-1")
        use(session, allocations[1], "400", at(dt.date(2026, 12, 19)), "u-browser-2")
        for allocation_id in allocations[:2]:
            award = session.scalar(sa.select(Award).where(Award.allocation_id == allocation_id))
            award.evidence_complete = True  # what the evidence review sets (built in its own branch)
        session.commit()
        clock.set(at(dt.date(2027, 1, 4)))
        built = client.post("/api/v1/settlements", json={"program": "compute-voucher", "period": "2026-Q4"},
                            headers=builder.headers)
        assert built.status_code == 201, built.json
        statement = built.json
        assert statement["approvals_needed"] == 2 and statement["total_payable"] == "162500.00"
        assert client.post(f"/api/v1/settlements/{statement['id']}/approve", json={"disbursement_reference": REFERENCE},
                           headers=first.headers).status_code == 200
        session.commit()

        # The second staff person approves through the page: written off.
        sign_in_through_the_page(page, f"/staff/statements/{statement['id']}")
        assert "¥162,500.00（16.25万元）" in page.locator("#total").inner_text()
        assert "已有 1 人 / 须 2 人" in page.locator("#approvals").inner_text()
        assert axe(page) == []
        page.get_by_label("拨付凭证号").fill(REFERENCE)
        page.get_by_role("button", name="审批通过").click()
        page.wait_for_selector("#flashed")
        assert "已终审" in page.locator("#flashed").inner_text()
        assert page.locator("#statement-status").inner_text() == "已审批并核销"
        assert REFERENCE in page.locator("#reference").inner_text()
        assert axe(page) == []
        screenshot(page, "staff_statement")
        session.expire_all()
        assert session.get(SettlementStatement, statement["id"]).status is StatementStatus.written_off
        paid = session.scalar(sa.select(Award).where(Award.allocation_id == allocations[0]))
        assert paid.written_off == paid.redeemed > 0
        session.commit()
    finally:
        install_clock(app, None)
