"""A demand survey open to firms not registered, in a real browser: the public form (no sign-in) is
refused with the field named in Chinese (a wrong check character of the credit code, a row's quantity),
then sent; the emailed link's page confirms the answer, which then counts. axe-core finds nothing
serious; the screenshots are docs/screenshots/public_survey_answer.png and public_survey_link.png."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Account, OutboxEmail, SurveyDeclaration
from broker.services import surveys
from tests.conftest import make_uscc

DEC_01_0900 = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.timezone.utc)


def test_a_firm_not_registered_answers_on_the_public_form_and_confirms_by_its_link(app, session, page, axe, screenshot,
                                                                                   make_actor):
    install_clock(app, FrozenClock(DEC_01_0900))
    try:
        staff = make_actor("staff")
        campaign = surveys.open_campaign(session, session.get(Account, staff.account_id), {
            "title": "2027年一季度算力需求摸排", "period": "2027-Q1", "opens_on": dt.date(2026, 12, 1),
            "closes_on": dt.date(2026, 12, 31), "kinds": ["gpu", "tokens"], "allow_unregistered": True}, DEC_01_0900)
        session.commit()  # on SQLite an open transaction would hold the write lock the server needs
        good = make_uscc(4242)
        wrong = good[:-1] + ("0" if good[-1] != "0" else "1")

        page.goto(f"/surveys/{campaign.id}/declare")
        assert page.locator("h1").inner_text() == "2027年一季度算力需求摸排"
        page.get_by_label("统一社会信用代码（18 位）").fill(wrong)
        page.get_by_label("企业名称").fill("上海长宁智算科技有限公司")
        page.get_by_label("行业").select_option("ai_models")
        page.get_by_label("联系人").fill("赵敏")
        page.get_by_label("联系邮箱（接收确认和修改链接）").fill("zhao.min@zhisuan.test")
        page.locator("#lines-0-kind").select_option("gpu")
        page.locator("#lines-0-quantity").fill("0")
        page.locator("#lines-0-region").fill("上海")
        page.locator("#lines-0-month").select_option("2027-02-01")
        page.locator("#lines-0-max_unit_price").fill("12.5")
        page.locator("#lines-0-purpose").fill("多模态模型训练")
        with page.expect_response(lambda r: r.request.method == "POST") as refused:
            page.get_by_role("button", name="提交并发送确认邮件").click()
        assert refused.value.status == 422
        assert "校验位须正确" in page.locator("#uscc-error").inner_text()
        assert page.locator("#lines-0-quantity-error").inner_text().startswith("第 1 行：数量须大于 0")
        assert page.locator("#firm_name").input_value() == "上海长宁智算科技有限公司"  # what was typed stays
        assert axe(page) == []

        page.get_by_label("统一社会信用代码（18 位）").fill(good)
        page.locator("#lines-0-quantity").fill("64")
        page.get_by_role("button", name="提交并发送确认邮件").click()
        page.wait_for_selector("#done")
        assert "打开链接确认后" in page.locator("#done").inner_text()
        assert axe(page) == []
        screenshot(page, "public_survey_answer")

        session.expire_all()
        body = session.scalar(sa.select(OutboxEmail.body).where(OutboxEmail.to_address == "zhao.min@zhisuan.test"))
        assert session.scalar(sa.select(sa.func.count()).select_from(SurveyDeclaration)) == 0  # not yet counted
        session.commit()
        link = re.search(r"/surveys/answers/[A-Za-z0-9_-]+", body).group(0)
        page.goto(link)
        assert "多模态模型训练" in page.locator("#pending").inner_text()
        page.get_by_role("button", name="确认填报").click()
        page.wait_for_selector("#done")
        assert "64" in page.locator("#confirmed-lines").inner_text()
        assert page.locator("#lines-0-quantity").input_value() == "64.000"  # the revision form holds the line
        assert axe(page) == []
        screenshot(page, "public_survey_link")
        session.expire_all()
        assert session.scalar(sa.select(sa.func.count()).select_from(SurveyDeclaration)) == 1
        session.commit()
    finally:
        install_clock(app, None)
