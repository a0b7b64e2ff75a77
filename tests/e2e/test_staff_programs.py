"""Subsidy programs (补贴项目) through the test client on the real database: the list with money
from the ledger in 万元, a new program through the API's schema (a bad one refused field by field,
nothing saved), future terms, pause/reopen/close, deposits and adjustments (bad ones re-shown with
the message by the field, the ledger unchanged), and reconciliation still clean after. A company's
person gets 403; an unknown program 404."""

from __future__ import annotations

import re
from decimal import Decimal

import flask
import sqlalchemy as sa

from broker.models import Account, LedgerEntry, ProgramStatus, Role, Startup, SubsidyProgram
from broker.services import ledger, people
from broker.web import session as console_session
from tests.e2e.test_console_sign_in import sign_in, token_of
from tests.e2e.test_ledger import DOCUMENT, MONDAY_0900, approve_one, district, open_program  # noqa: F401 - fixtures
from tests.conftest import statements_sent

PASSWORD = "长宁区硅巷-补贴项目-2026"


def staff_signed_in(client, session) -> None:
    person = people.create_district_person(session, "zhao.min@changning.example.gov.cn", "赵敏", Role.staff, PASSWORD)
    assert sign_in(client, person.email, PASSWORD).status_code == 303


def ledger_rows(session) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count(LedgerEntry.id)))


def program_named(session, code: str) -> SubsidyProgram | None:
    session.expire_all()
    return session.scalar(sa.select(SubsidyProgram).where(SubsidyProgram.code == code))


def voucher_form(**overrides) -> dict:
    form = {"code": "compute-voucher", "name": "算力券", "mode": "after", "claimant": "startup", "kinds": ["gpu", "cpu"],
            "rate": "0.3", "cap_per_startup": "200000", "cap_per_allocation": "", "starts_on": "2026-01-01",
            "ends_on": "2027-01-01", "budget": "5,000,000", "funding_document": DOCUMENT, "requires_notice": "yes",
            "require_in_district": "yes", "exclude_carrier_affiliates": "yes", "evidence_required": ["contract", "invoice"],
            "rule-0-rate": "0.5", "rule-0-attributes": "gpu_model=910B,910C", "rule-0-age": "3"}
    return {**form, **overrides}


def post(client, path: str, form: dict, page: str | None = None):
    return client.post(path, data={"csrf_token": token_of(client, page or path), **form})


def field_error(page: str, field: str) -> str:
    found = re.search(rf'id="{re.escape(field)}-error">(.*?)</span>', page, re.S)
    return found.group(1) if found else ""


def test_a_program_is_created_through_the_form_and_listed_with_its_money(client, session, district):  # noqa: F811
    staff_signed_in(client, session)
    assert "还没有补贴项目" in client.get("/staff/programs").get_data(as_text=True)
    form = client.get("/staff/programs/new").get_data(as_text=True)
    assert "资金文件文号" in form and "gpu_model=910B,910C" in form  # the rules' example
    made = post(client, "/staff/programs/new", voucher_form())
    assert made.status_code == 303, made.get_data(as_text=True)[:2000]
    program = program_named(session, "compute-voucher")
    assert made.headers["Location"].endswith(f"/staff/programs/{program.id}")
    assert program.kinds == ["gpu", "cpu"] and program.rate == Decimal("0.3") and program.cap_per_allocation is None
    assert program.rate_rules == [{"rate": "0.5000", "attributes": {"gpu_model": ["910B", "910C"]}, "sectors": None,
                                   "max_company_age_years": 3}]
    assert program.evidence_required == ["contract", "invoice"] and program.requires_notice
    [opening] = session.scalars(sa.select(LedgerEntry).where(LedgerEntry.program_id == program.id))
    assert (opening.amount, opening.reference) == (Decimal("5000000.00"), DOCUMENT)
    shown = client.get(f"/staff/programs/{program.id}").get_data(as_text=True)
    assert "补贴项目“算力券”已创建" in shown and "500.00万元" in shown and DOCUMENT in shown
    assert "事后补贴" in shown and "企业申领" in shown and "规则 1：50.00%" in shown
    listed = client.get("/staff/programs").get_data(as_text=True)
    row = re.search(rf'<tr id="program-{program.id}">(.*?)</tr>', listed, re.S).group(1)
    assert "算力券" in row and "事后补贴" in row and "开放中" in row and "500.00万元" in row and "2026 年度" in row
    assert ledger.reconcile(session).ok


def test_a_bad_program_is_refused_field_by_field_and_nothing_is_saved(client, session, district):  # noqa: F811
    staff_signed_in(client, session)
    rows = ledger_rows(session)
    refused = post(client, "/staff/programs/new", voucher_form(
        code="Bad Code", rate="1.5", funding_document="", ends_on="2025-01-01", budget="-10", **{"rule-0-rate": "2"}))
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "补贴比例须是大于 0、不超过 1 的小数" in field_error(page, "rate")
    assert "资金文件文号" in field_error(page, "funding_document")
    assert "代码须以小写字母" in field_error(page, "code")
    assert "晚于开始日期" in field_error(page, "ends_on")
    assert "开始预算须是大于 0 的金额" in field_error(page, "budget")
    assert "比例须是大于 0" in field_error(page, "rule-0-rate")
    assert 'value="Bad Code"' in page  # what was typed comes back
    allotment = post(client, "/staff/programs/new", voucher_form(mode="allotment"))
    assert allotment.status_code == 422
    assert "每家企业每年的免费数量" in field_error(allotment.get_data(as_text=True), "allotment_per_startup")
    assert program_named(session, "compute-voucher") is None and ledger_rows(session) == rows
    assert post(client, "/staff/programs/new", voucher_form()).status_code == 303
    taken = post(client, "/staff/programs/new", voucher_form())
    assert taken.status_code == 422 and "不能与已有项目重复" in field_error(taken.get_data(as_text=True), "code")


def test_future_terms_are_shown_changed_and_checked_by_the_schema(client, session, district):  # noqa: F811
    program = open_program(client, district["staff"], "tokens-api", name="Tokens/API 专项补贴", kinds=["tokens"])
    staff_signed_in(client, session)
    path = f"/staff/programs/{program['id']}/terms"
    form = client.get(path).get_data(as_text=True)
    assert "只适用于保存之后作出的补贴" in form and 'value="Tokens/API 专项补贴"' in form and 'value="0.3000"' in form
    terms = {"name": "Tokens/API 专项补贴", "mode": "instant", "claimant": "carrier", "kinds": ["tokens"], "rate": "0.4",
             "cap_per_startup": "50000", "cap_per_allocation": "5000", "starts_on": "2026-01-01", "ends_on": "2027-01-01",
             "require_in_district": "yes", "eligible_sectors": ["ai_models", "smart_healthcare"], "max_headcount": "200"}
    bad = post(client, path, {**terms, "rate": "abc", "max_headcount": "many", "kinds": ["quantum"]})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert field_error(page, "rate") and field_error(page, "max_headcount") and field_error(page, "kinds")
    assert program_named(session, "tokens-api").rate == Decimal("0.3")
    saved = post(client, path, terms)
    assert saved.status_code == 303
    changed = program_named(session, "tokens-api")
    assert (changed.mode.value, changed.claimant.value, changed.rate, changed.cap_per_allocation) == (
        "instant", "carrier", Decimal("0.4"), Decimal("5000"))
    assert changed.eligible_sectors == ["ai_models", "smart_healthcare"] and changed.max_headcount == 200
    assert not changed.requires_notice and changed.excluded_kinds == []
    shown = client.get(f"/staff/programs/{program['id']}").get_data(as_text=True)
    assert "即时抵扣" in shown and "服务商申领" in shown and "新条款已保存" in shown
    assert client.get("/staff/programs/9999/terms").status_code == 404
    assert post(client, "/staff/programs/9999/terms", terms, page=path).status_code == 404


def test_deposits_and_adjustments_move_the_budget_and_bad_ones_change_nothing(client, session, district):  # noqa: F811
    program = open_program(client, district["staff"], "voucher", budget="1000", cap_per_startup="1000")
    approve_one(client, district)  # ¥300 committed
    staff_signed_in(client, session)
    page_path = f"/staff/programs/{program['id']}"
    rows = ledger_rows(session)
    refusals = [
        ("deposits", {"amount": "-5", "funding_document": DOCUMENT}, "deposit-amount", "大于 0"),
        ("deposits", {"amount": "5", "funding_document": ""}, "deposit-funding_document", "资金文件文号"),
        ("deposits", {"amount": "lots", "funding_document": DOCUMENT}, "deposit-amount", "金额"),
        ("adjustments", {"amount": "-5", "reason": "", "note": "录入错误"}, "adjust-reason", "调整原因"),
        ("adjustments", {"amount": "-5", "reason": "mistake", "note": "录入错误"}, "adjust-reason", "调整原因"),
        ("adjustments", {"amount": "0", "reason": "correction", "note": "录入错误"}, "adjust-amount", "不为零"),
        ("adjustments", {"amount": "-5", "reason": "correction", "note": ""}, "adjust-note", "理由"),
        ("adjustments", {"amount": "-800", "reason": "correction", "note": "预算调减"}, "adjust-amount", "低于已承诺"),
        ("adjustments", {"amount": "-5", "reason": "clawback", "note": "追回", "award_id": "99999"}, "adjust-award_id", "没有这个补贴"),
    ]
    for action, form, field, words in refusals:
        refused = post(client, f"{page_path}/{action}", form, page=page_path)
        assert refused.status_code == 422, (form, refused.status_code)
        page = refused.get_data(as_text=True)
        assert words in field_error(page, field), (form, field_error(page, field), page[page.find("error"):][:500])
        assert ledger_rows(session) == rows, form
    deposited = post(client, f"{page_path}/deposits", {"amount": "20,000", "funding_document": "长科委〔2026〕12号"}, page_path)
    assert deposited.status_code == 303
    cut = post(client, f"{page_path}/adjustments", {"amount": "-500", "reason": "correction", "note": "预算调减"}, page_path)
    assert cut.status_code == 303
    assert ledger_rows(session) == rows + 2
    shown = client.get(page_path).get_data(as_text=True)
    assert re.search(r'id="balance-budget">2\.05万元<', shown)  # 1,000 + 20,000 − 500 yuan
    assert re.search(r'id="balance-committed">0\.03万元<', shown)
    assert "长科委〔2026〕12号" in shown and "更正差错" in shown and "预算拨入" in shown and "承诺" in shown
    assert "<summary>幂等键</summary>" in shown  # the key is there, behind details
    assert "补贴（共 1 笔）" in shown
    assert ledger.reconcile(session).ok


def test_pause_reopen_and_close(client, session, district):  # noqa: F811
    program = open_program(client, district["staff"], "voucher")
    staff_signed_in(client, session)
    path = f"/staff/programs/{program['id']}"
    assert 'id="status-pause"' in client.get(path).get_data(as_text=True)
    assert post(client, f"{path}/status", {"change": "pause"}, path).status_code == 303
    assert program_named(session, "voucher").status is ProgramStatus.paused
    again = post(client, f"{path}/status", {"change": "pause"}, path)
    assert again.status_code == 422 and "不允许" in field_error(again.get_data(as_text=True), "status")
    assert post(client, f"{path}/status", {"change": "explode"}, path).status_code == 422
    assert post(client, f"{path}/status", {"change": "reopen"}, path).status_code == 303
    assert program_named(session, "voucher").status is ProgramStatus.open
    assert post(client, f"{path}/status", {"change": "close"}, path).status_code == 303
    assert program_named(session, "voucher").status is ProgramStatus.closed
    closed = client.get(path).get_data(as_text=True)
    assert "项目已关闭" in closed and 'id="status-reopen"' not in closed and 'id="edit-terms"' not in closed
    assert "已关闭" in client.get("/staff/programs").get_data(as_text=True)
    assert ledger.reconcile(session).ok


def test_ledger_rows_are_paginated_newest_first(client, session, district):  # noqa: F811
    program = open_program(client, district["staff"], "voucher")
    for n in range(55):
        made = client.post(f"/api/v1/subsidy-programs/{program['id']}/deposits",
                           json={"amount": str(n + 1), "funding_document": f"长科委〔2026〕{n + 1}号"},
                           headers=district["staff"].headers)
        assert made.status_code == 201
    staff_signed_in(client, session)
    first = client.get(f"/staff/programs/{program['id']}").get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'<tr id="entry-(\d+)">', first)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True) and 'id="older"' in first
    assert "长科委〔2026〕55号" in first and "¥55.00" in first
    second = client.get(f"/staff/programs/{program['id']}?page=2").get_data(as_text=True)
    later = [int(i) for i in re.findall(r'<tr id="entry-(\d+)">', second)]
    assert len(later) == 6 and max(later) < min(ids) and 'id="older"' not in second  # 55 deposits and the opening one


def test_unknown_programs_are_404_and_a_company_person_gets_403(app, client, session, district):  # noqa: F811
    program = open_program(client, district["staff"], "voucher")
    assert client.get("/staff/programs").headers["Location"].startswith("/sign-in?next=/staff/programs")
    staff_signed_in(client, session)
    assert client.get("/staff/programs/9999").status_code == 404
    assert post(client, "/staff/programs/9999/deposits", {"amount": "5", "funding_document": DOCUMENT},
                page="/staff/programs").status_code == 404
    assert post(client, "/staff/programs/9999/status", {"change": "pause"}, page="/staff/programs").status_code == 404
    client.post("/sign-out", data={"csrf_token": token_of(client, "/staff/programs")})
    startup = session.get(Startup, session.get(Account, district["startup"].account_id).startup_id)
    person = people.find_or_link(session, startup.uscc, "fa.ren@example.cn", "王芳", "legal_representative", MONDAY_0900)
    with app.test_request_context():
        console_session.start(person.id)
        cookie = dict(flask.session)
    with client.session_transaction() as stored:
        stored.clear()
        stored.update(cookie)
    rows = ledger_rows(session)
    assert client.get("/staff/programs").status_code == 403
    assert client.get(f"/staff/programs/{program['id']}").status_code == 403
    assert post(client, f"/staff/programs/{program['id']}/deposits", {"amount": "5", "funding_document": DOCUMENT},
                page="/").status_code == 403
    assert post(client, "/staff/programs/new", voucher_form(), page="/").status_code == 403
    assert ledger_rows(session) == rows and program_named(session, "compute-voucher") is None


def test_the_pages_cost_a_bounded_number_of_statements(app, client, session, district):  # noqa: F811
    first = open_program(client, district["staff"], "voucher")
    approve_one(client, district)
    staff_signed_in(client, session)
    small_list, small_page = statements_sent(app, client, "/staff/programs"), statements_sent(app, client, f"/staff/programs/{first['id']}")
    for n in range(3):
        open_program(client, district["staff"], f"more-{n}")
        approve_one(client, district)
    assert len(statements_sent(app, client, "/staff/programs")) == len(small_list), "the list's statements grew: an N+1"
    assert len(statements_sent(app, client, f"/staff/programs/{first['id']}")) == len(small_page), "the page's statements grew"


def test_the_screens_in_english(client, session, district):  # noqa: F811
    program = open_program(client, district["staff"], "voucher", mode="instant")
    staff_signed_in(client, session)
    client.set_cookie("broker_lang", "en")
    listed = client.get("/staff/programs").get_data(as_text=True)
    assert "Deducted at approval" in listed and "¥1,000,000.00" in listed and "Remaining" in listed
    shown = client.get(f"/staff/programs/{program['id']}").get_data(as_text=True)
    assert "Record a budget deposit" in shown and "Funding document number" in shown and "Opening budget" in shown
    form = client.get(f"/staff/programs/{program['id']}/terms").get_data(as_text=True)
    assert "apply only to awards made after they are saved" in form
