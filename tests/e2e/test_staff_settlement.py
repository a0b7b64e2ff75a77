"""Notices (公示) and settlement statements (结算单) in the staff console, through the test client:
a batch frozen (bad input and a period the working-day calendar can't count refused, nothing
frozen), an objection upheld and another dismissed, a finalise refused before the end and done
after it; a statement built (`2026-Q5` refused naming the period), its builder refused, two other
staff people approving it with the disbursement reference, the award written off and the ledger
reconciled. A company's person gets 403; unknown ids 404. On the settlement tests' voucher and clock.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import openpyxl
import sqlalchemy as sa

from broker.models import AwardStatus, Notice, NoticeState, NoticeStatus, Objection, ObjectionStatus, Role, Startup
from broker.services import people
from broker.web import session as console_session
from tests.e2e.test_console_sign_in import sign_in, token_of
from tests.e2e.test_notices import objection
from tests.conftest import statements_sent
from tests.e2e.test_settlement import (  # noqa: F401 - the period fixture
    approve_all,
    at,
    award_of,
    period,
    reconciled,
    reviewed,
    snapshot,
    use,
)

PASSWORD = "长宁区硅巷-结算-2026"


def staff_client(app, session, email: str, name: str):
    """A browser of its own, signed in as a new district staff person."""
    people.create_district_person(session, email, name, Role.staff, PASSWORD)
    browser = app.test_client()
    assert sign_in(browser, email, PASSWORD).status_code == 303
    return browser


def back_after(clock, moment, *browsers_and_emails):
    """Move the clock on; each browser's session has gone idle meanwhile, so its person signs in again."""
    clock.set(moment)
    for browser, email in browsers_and_emails:
        assert sign_in(browser, email, PASSWORD).status_code == 303


def form_post(client, page: str, action: str, **data):
    """Post `data` to `action` with the CSRF token of `page` (the page the form is on)."""
    return client.post(action, data={"csrf_token": token_of(client, page), **data})


def notices_count(session) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count(Notice.id)))


def text(response) -> str:
    return response.get_data(as_text=True)


def test_freeze_a_notice_answer_its_objections_and_finalise_it(app, client, session, period):  # noqa: F811
    people_, clock = period, period["clock"]
    allocations = approve_all(client, people_, {"alpha": "1000", "beta": "200"})
    alpha, beta = award_of(session, allocations["alpha"]), award_of(session, allocations["beta"])
    email = "li.na@changning.example.gov.cn"
    staff = staff_client(app, session, email, "李娜")

    without_rows = len(statements_sent(app, staff, "/staff/notices"))
    empty = staff.get("/staff/notices")
    assert empty.status_code == 200 and "还没有公示" in text(empty)
    assert 'href="/staff/statements"' in text(empty)  # the sub-navigation

    bad = form_post(staff, "/staff/notices", "/staff/notices", title="", starts_on="12/01", working_days="五")
    assert bad.status_code == 422
    page = text(bad)
    assert "请填写公示标题" in page and "格式如 2026-12-01" in page and "公示天数须为 1 到 60" in page
    neither = form_post(staff, "/staff/notices", "/staff/notices", title="公示", starts_on="2026-12-01", working_days="5")
    assert neither.status_code == 422 and "或选择补贴项目和年度，二者选一" in text(neither)
    assert notices_count(session) == 0

    # Ten working days from 2026-12-28 end in 2027, whose holidays the calendar does not know yet.
    beyond = form_post(staff, "/staff/notices", "/staff/notices", title="2026年第四批算力券拟支持名单公示",
                       program="voucher", fiscal_year="2026", starts_on="2026-12-28", working_days="10")
    assert beyond.status_code == 422
    assert "工作日历只收录了" in text(beyond) and "2026 年 12 月 31 日前结束" in text(beyond)
    past = form_post(staff, "/staff/notices", "/staff/notices", title="公示", award_ids=f"{alpha.id}",
                     starts_on="2026-11-01", working_days="5")
    assert past.status_code == 422 and "公示不能从过去的日期开始" in text(past)
    unknown = form_post(staff, "/staff/notices", "/staff/notices", title="公示", award_ids=f"{alpha.id}, 999999",
                        starts_on="2026-12-01", working_days="5")
    assert unknown.status_code == 422 and "未冻结任何奖励：999999" in text(unknown)
    assert notices_count(session) == 0 and award_of(session, allocations["alpha"]).notice_state is NoticeState.not_noticed

    frozen = form_post(staff, "/staff/notices", "/staff/notices", title="2026年第四批算力券拟支持名单公示",
                       program="voucher", fiscal_year="2026", starts_on="2026-12-01", working_days="5")
    assert frozen.status_code == 303, text(frozen)
    notice_id = int(frozen.headers["Location"].rsplit("/", 1)[1])
    shown = staff.get(frozen.headers["Location"])
    assert "已冻结 2 个奖励，公示自 2026-12-01 起至 2026-12-07 止" in text(shown)
    assert "2026年12月1日 起 5 个工作日，至 2026年12月7日 止" in text(shown)
    assert f'href="/notices/{notice_id}"' in text(shown)  # the public page
    assert "¥125,000.00" in text(shown) and "¥25,000.00" in text(shown)
    assert [award_of(session, a).notice_state for a in allocations.values()] == [NoticeState.in_notice] * 2

    # Two objections come in through the public API: one against beta's item, one against the batch.
    back_after(clock, at(dt.date(2026, 12, 2)), (staff, email))
    items = {i["award_id"]: i["id"] for i in client.get(f"/api/v1/notices/{notice_id}", headers=people_["first"].headers).json["items"]}
    against_beta = objection(client, notice_id, item_id=items[beta.id], text="该企业与算力供应商存在关联关系。")
    general = objection(client, notice_id, text="公示时间过短。")
    assert against_beta.status_code == general.status_code == 201
    listed = text(staff.get("/staff/notices"))
    assert len(statements_sent(app, staff, "/staff/notices")) == without_rows  # counts in the page's query, not per row
    row = re.search(rf'<tr id="notice-{notice_id}">(.*?)</tr>', listed, re.S).group(1)
    assert "公示中" in row and "<td>2</td>" in row  # two awards, two open objections

    path = f"/staff/notices/{notice_id}"
    page = text(staff.get(path))
    assert "该企业与算力供应商存在关联关系。" in page and "公示时间过短。" in page
    assert f"维持异议将使奖励 {beta.id} 作废" in page  # said before the button
    answer = f"{path}/objections/{against_beta.json['id']}"
    no_decision = form_post(staff, path, answer, answer="经核实")
    assert no_decision.status_code == 422 and "请选择维持异议或驳回异议" in text(no_decision)
    no_answer = form_post(staff, path, answer, decision="upheld", answer="  ")
    assert no_answer.status_code == 422 and "请填写答复" in text(no_answer)
    assert session.get(Objection, against_beta.json["id"]).status is ObjectionStatus.open
    assert award_of(session, allocations["beta"]).status is AwardStatus.committed

    early = form_post(staff, path, f"{path}/finalise")
    assert early.status_code == 409
    assert "未能确定公示结果" in text(early) and "2026-12-07" in text(early)
    session.expire_all()
    assert session.get(Notice, notice_id).status is NoticeStatus.open

    upheld = form_post(staff, path, answer, decision="upheld", answer="经核实，该企业与供应商存在关联关系，取消支持。")
    assert upheld.status_code == 303
    assert "相应奖励已移出名单" in text(staff.get(path))
    beta_now = award_of(session, allocations["beta"])
    assert beta_now.notice_state is NoticeState.removed and beta_now.status is not AwardStatus.committed
    assert reconciled(session)

    batch = f"{path}/objections/{general.json['id']}"
    refused = form_post(staff, path, batch, decision="upheld", answer="不予采纳")
    assert refused.status_code == 422 and "只能驳回" in text(refused)
    assert form_post(staff, path, batch, decision="dismissed", answer="公示期符合规定。").status_code == 303
    again = form_post(staff, path, batch, decision="dismissed", answer="重复")
    assert again.status_code == 409 and "未能答复异议" in text(again)

    back_after(clock, at(dt.date(2026, 12, 8)), (staff, email))
    assert 'id="finalise"' in text(staff.get(path))
    final = form_post(staff, path, f"{path}/finalise")
    assert final.status_code == 303
    assert "名单已确定" in text(staff.get(path))
    assert award_of(session, allocations["alpha"]).notice_state is NoticeState.final
    assert reconciled(session)

    assert staff.get("/staff/notices/999999").status_code == 404
    assert form_post(staff, path, "/staff/notices/999999/finalise").status_code == 404
    assert form_post(staff, path, f"{path}/objections/999999", decision="dismissed", answer="x").status_code == 404


def test_build_a_statement_and_approve_it_with_four_eyes(app, client, session, period):  # noqa: F811
    people_, clock = period, period["clock"]
    allocations = approve_all(client, people_, {"alpha": "1000", "beta": "200"})
    alpha, beta = allocations["alpha"], allocations["beta"]
    use(session, alpha, "400", at(dt.date(2026, 12, 10)), "u-1")
    use(session, alpha, "500", at(dt.date(2026, 12, 18)), "u-2")
    use(session, beta, "100", at(dt.date(2026, 12, 18)), "u-3")
    reviewed(session, alpha)
    reviewed(session, beta, notice=NoticeState.in_notice)
    clock.set(at(dt.date(2027, 1, 4)))
    builder = staff_client(app, session, "zhao.lei@changning.example.gov.cn", "赵磊")
    first = staff_client(app, session, "qian.hong@changning.example.gov.cn", "钱红")
    second = staff_client(app, session, "sun.li@changning.example.gov.cn", "孙丽")

    assert "还没有结算单" in text(builder.get("/staff/statements"))
    before = snapshot(session)
    bad = form_post(builder, "/staff/statements", "/staff/statements", program="voucher", period="2026-Q5")
    assert bad.status_code == 422
    assert 'id="period-error"' in text(bad) and "如 2026-Q4" in text(bad)
    blank = form_post(builder, "/staff/statements", "/staff/statements", program="", period="")
    assert blank.status_code == 422 and "请选择补贴项目" in text(blank)
    assert snapshot(session) == before

    built = form_post(builder, "/staff/statements", "/staff/statements", program="voucher", period="2026-Q4")
    assert built.status_code == 303, text(built)
    path = built.headers["Location"]
    statement_id = int(path.rsplit("/", 1)[1])
    page = text(builder.get(path))
    assert "应付合计 ¥112,500.00，须 2 人审批" in page
    assert "¥112,500.00（11.25万元）" in page
    lines = dict(re.findall(r'<tr id="line-(\d+)"[^>]*>(.*?)</tr>', page, re.S))
    alpha_line, beta_line = lines[str(award_of(session, alpha).id)], lines[str(award_of(session, beta).id)]
    assert "¥125,000.00" in alpha_line and "¥112,500.00" in alpha_line and "材料齐全" in alpha_line
    assert "公示尚未确定（公示中）" in beta_line and "¥0.00" in beta_line
    assert "沪经信智〔2025〕489号" in page  # the funding document
    assert "这张结算单由您编制" in page
    assert f'href="/staff/statements/{statement_id}.xlsx"' in page
    listed = text(builder.get("/staff/statements"))
    assert re.search(rf'<tr id="statement-{statement_id}">.*?2026-Q4.*?待审批.*?0 / 2.*?¥112,500.00', listed, re.S)
    one_row = len(statements_sent(app, builder, "/staff/statements"))
    for month in ("2026-11", "2026-12"):
        assert form_post(builder, "/staff/statements", "/staff/statements", program="voucher", period=month).status_code == 303
    assert len(statements_sent(app, builder, "/staff/statements")) == one_row  # three statements, the same queries
    twice = form_post(builder, "/staff/statements", "/staff/statements", program="voucher", period="2026-Q4")
    assert twice.status_code == 409 and "未能编制结算单" in text(twice)

    approve = f"{path}/approve"
    before = snapshot(session)
    own = form_post(builder, path, approve, disbursement_reference="ICBC-20270104-001")
    assert own.status_code == 403 and "不能审批自己编制的结算单" in text(own)
    missing = form_post(first, path, approve, disbursement_reference="  ")
    assert missing.status_code == 422 and "请填写拨付凭证号" in text(missing)
    assert snapshot(session) == before

    one = form_post(first, path, approve, disbursement_reference="沪财预〔2027〕3号")
    assert one.status_code == 303
    assert "须由另一位工作人员终审" in text(first.get(path))
    again = form_post(first, path, approve, disbursement_reference="沪财预〔2027〕3号")
    assert again.status_code == 409 and "未能审批" in text(again)
    assert award_of(session, alpha).written_off == 0
    assert reconciled(session)

    final = form_post(second, path, approve, disbursement_reference="沪财预〔2027〕3号")
    assert final.status_code == 303
    page = text(second.get(path))
    assert "已审批并核销" in page and "第一位审批人：钱红" in page and "终审人：孙丽" in page
    award = award_of(session, alpha)
    assert award.written_off == award.redeemed == Decimal("112500.00")
    assert award_of(session, beta).written_off == 0
    assert reconciled(session)

    second.set_cookie("broker_lang", "en")
    english = text(second.get(path))
    assert "approved and written off" in english and "Total payable" in english and "notice not final (on notice)" in english
    second.delete_cookie("broker_lang")

    sheet = second.get(f"/staff/statements/{statement_id}.xlsx")
    assert sheet.status_code == 200 and sheet.mimetype.endswith("spreadsheetml.sheet")
    rows = list(openpyxl.load_workbook(io.BytesIO(sheet.data)).active.values)
    assert rows[0][:2] == ("结算单编号", statement_id)
    assert rows[6][:2] == ("拨付凭证号", "沪财预〔2027〕3号")

    assert second.get("/staff/statements/999999").status_code == 404
    assert second.get("/staff/statements/999999.xlsx").status_code == 404
    assert form_post(second, path, "/staff/statements/999999/approve", disbursement_reference="x").status_code == 404


def test_a_company_person_gets_403(app, client, session, period):  # noqa: F811
    startup = session.get(Startup, period["alpha"].startup_id)
    person = people.find_or_link(session, startup.uscc, "fa.ren@example.cn", "王芳", "legal_representative",
                                 at(dt.date(2026, 11, 30)))
    with app.test_request_context():
        console_session.start(person.id)
        cookie = dict(__import__("flask").session)
    with client.session_transaction() as stored:
        stored.update(cookie)
    for path in ("/staff/notices", "/staff/notices/1", "/staff/statements", "/staff/statements/1",
                 "/staff/statements/1.xlsx"):
        assert client.get(path).status_code == 403, path
    assert client.post("/staff/notices", data={"csrf_token": token_of(client, "/"), "title": "x", "program": "voucher",
                                               "fiscal_year": "2026", "starts_on": "2026-12-01",
                                               "working_days": "5"}).status_code == 403
    assert client.post("/staff/statements", data={"csrf_token": token_of(client, "/"), "program": "voucher",
                                                  "period": "2026-11"}).status_code == 403
    assert notices_count(session) == 0
    assert client.get("/staff/notices", headers={}).status_code == 403
    anonymous = app.test_client()
    assert anonymous.get("/staff/statements").headers["Location"].startswith("/sign-in?next=/staff/statements")
