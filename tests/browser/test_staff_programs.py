"""Subsidy programs (补贴项目) in a real browser: a district official signs in, creates the compute
voucher 算力券 through the form, records a budget deposit under 沪经信智〔2025〕489号 and sees the
balance in 万元 on the program and on the list beside the Tokens/API program. axe-core finds
nothing serious; the screenshots are docs/screenshots/staff_programs.png and staff_program.png."""

from __future__ import annotations

import sqlalchemy as sa

from broker.models import LedgerEntry, Role, SubsidyProgram
from broker.models.people import Person
from broker.services import accounts, ledger, people
from tests.conftest import Actor

PASSWORD = "长宁区硅巷-补贴浏览器-2026"
DOCUMENT = "沪经信智〔2025〕489号"


def test_create_a_program_and_deposit_budget(app, client, session, page, axe, screenshot):
    staff, _, secret = accounts.create_user(session, Role.staff, "补贴项目")
    made = client.post("/api/v1/subsidy-programs", headers=Actor(staff.id, secret).headers, json={
        "code": "tokens-api-2026", "name": "Tokens/API 专项补贴", "kinds": ["tokens"], "rate": "0.4",
        "cap_per_startup": "50000", "budget": "3000000", "funding_document": "长科委〔2026〕12号",
        "starts_on": "2026-01-01", "ends_on": "2027-01-01", "mode": "instant"})
    assert made.status_code == 201, made.json
    email = "programs.browser@changning.example.gov.cn"
    if session.scalar(sa.select(Person.id).where(Person.email_key == email)) is None:
        people.create_district_person(session, email, "陈静", Role.staff, PASSWORD)
    session.commit()  # on SQLite an open transaction would hold the write lock the server needs

    page.goto("/staff/programs/new")
    page.get_by_label("邮箱").fill(email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url("**/staff/programs/new")
    assert page.locator("h1").inner_text() == "新建补贴项目"
    page.get_by_label("项目代码").fill("compute-voucher-2026")
    page.get_by_label("项目名称").fill("算力券")
    page.get_by_label("补贴方式").select_option("after")
    page.get_by_label("适用开始日期").fill("2026-01-01")
    page.get_by_label("适用截止日期（不含）").fill("2027-01-01")
    page.get_by_label("开始预算（元）").fill("5000000")
    page.get_by_label("资金文件文号").fill("长科委〔2026〕8号")
    page.get_by_label("基本补贴比例").fill("0.3")
    page.get_by_label("每家企业年度上限（元）").fill("200000")
    page.get_by_label("规则 1 的比例").fill("0.5")
    page.get_by_label("规则 1 的配置条件").fill("gpu_model=910B,910C")
    page.locator('input[name="kinds"][value="gpu"]').check()
    page.locator('input[name="kinds"][value="cpu"]').check()
    page.locator('input[name="evidence_required"][value="contract"]').check()
    assert axe(page) == []
    page.get_by_role("button", name="创建补贴项目").click()
    page.wait_for_selector("#program-notice")
    assert "补贴项目“算力券”已创建" in page.locator("#program-notice").inner_text()
    assert page.locator("#balance-budget").inner_text() == "500.00万元"

    page.get_by_label("金额（元）", exact=True).fill("2,000,000")
    page.get_by_label("资金文件文号").fill(DOCUMENT)
    page.get_by_role("button", name="记入台账").first.click()
    page.wait_for_selector("#program-notice")
    assert DOCUMENT in page.locator("#program-notice").inner_text()
    assert page.locator("#balance-budget").inner_text() == "700.00万元"
    assert page.locator("#balance-remaining").inner_text() == "700.00万元"
    assert page.locator("#ledger tbody tr").count() == 2
    assert DOCUMENT in page.locator("#ledger tbody tr").first.inner_text()
    assert axe(page) == []
    screenshot(page, "staff_program")

    page.get_by_role("link", name="返回补贴项目列表").click()
    page.wait_for_selector("#programs")
    voucher = page.locator("#programs tbody tr", has_text="算力券")
    assert "700.00万元" in voucher.inner_text() and "事后补贴" in voucher.inner_text()
    assert "300.00万元" in page.locator("#programs tbody tr", has_text="Tokens/API").inner_text()
    page.wait_for_selector("#programs-chart svg")
    assert axe(page) == []
    screenshot(page, "staff_programs")

    session.expire_all()
    program = session.scalar(sa.select(SubsidyProgram).where(SubsidyProgram.code == "compute-voucher-2026"))
    references = set(session.scalars(sa.select(LedgerEntry.reference).where(LedgerEntry.program_id == program.id)))
    assert references == {"长科委〔2026〕8号", DOCUMENT}
    assert ledger.reconcile(session).ok
    session.commit()
