"""A demand survey open to firms not registered (issue 14): a firm answers by its unified social credit
code on a public page, the link reaches it through a real SMTP server, nothing counts until it confirms,
it revises through the link until the close; a second answer for the code waits for the first contact's
confirmation; the staff page, the carriers' aggregate and the gap report count it as one firm; once the
firm registers and is verified, its lines are the startup's, counted once."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from broker import outbox
from broker.models import OutboxEmail, SurveyDeclaration, SurveyRespondent
from broker.services import accounts
from tests.conftest import make_uscc, startup_payload
from tests.e2e.test_console_sign_in import token_of
from tests.e2e.test_surveys import DEC_01_0900, clock, declare_district, district  # noqa: F401 (fixtures)
from tests.integration.test_outbox import _settings, smtp_server  # noqa: F401 (fixture)

FIRM_USCC = make_uscc(777)
LINK = re.compile(r"https?://\S+?/surveys/answers/([A-Za-z0-9_-]+)")


def firm(**change) -> dict:
    return {"uscc": FIRM_USCC, "firm_name": "上海未注册算力科技有限公司", "contact_name": "王芳",
            "contact_email": "wang.fang@firm.test", "sector": "fintech", **change}


def rows(*lines) -> dict:
    """Form fields of the line rows: each line a (kind, quantity, region, month, price, purpose)."""
    data = {}
    for row, (kind, quantity, region, month, price, purpose) in enumerate(lines):
        data |= {f"lines-{row}-kind": kind, f"lines-{row}-quantity": quantity, f"lines-{row}-region": region,
                 f"lines-{row}-month": month, f"lines-{row}-max_unit_price": price, f"lines-{row}-purpose": purpose}
    return data


GPU_40 = ("gpu", "40", "上海", "2027-01-01", "8", "风控模型训练")
TOKENS_500 = ("tokens", "500", "北京", "2027-01-01", "", "客服问答")


def open_to_unregistered(client, d) -> None:
    answer = client.patch(f"/api/v1/surveys/{d['id']}", json={"allow_unregistered": True}, headers=d["staff"].headers)
    assert answer.status_code == 200 and answer.json["allow_unregistered"] is True, answer.json


def submit(client, campaign_id: int, data: dict):
    path = f"/surveys/{campaign_id}/declare"
    return client.post(path, data={"csrf_token": token_of(client, path), **data})


def link_of(session, smtp, tmp_path, now, address: str) -> tuple[str, str]:
    """Deliver the outbox through the SMTP server; (subject, link secret) of the one email to `address`."""
    inbox, port = smtp
    before = len(inbox.messages())
    outbox.deliver_pending(session, _settings(port, tmp_path), now)
    new = inbox.messages()[before:]
    assert [m["To"] for m in new] == [address]
    body = new[0].get_body(preferencelist=("plain",)).get_content()
    return new[0]["Subject"], LINK.search(body).group(1)


def count(session, model, *where) -> int:
    """Rows of `model`, read in a transaction of the test's session that ends at once: the test's session
    shares the app's connection (savepoints), and a read left open would roll the app's later writes back."""
    found = session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
    session.commit()
    return found


def carrier_cell(client, d, kind="gpu", month="2027-01-01") -> tuple:
    answer = client.get(f"/api/v1/surveys/{d['id']}/demand", headers=d["carrier"].headers).json
    cell = next(c for c in answer["cells"] if (c["kind"], c["region"], c["month"]) == (kind, "上海", month))
    return cell["firms"], cell["quantity"], cell["avg_max_price"], answer["suppressed"]


def gap_gpu_surveyed(client, d) -> str:
    body = client.get(f"/api/v1/reports/gap?campaign={d['id']}", headers=d["staff"].headers).json
    return next(k["surveyed"] for k in body["kinds"] if k["kind"] == "gpu")


def test_submit_confirm_revise_and_the_close_through_a_real_smtp_server(client, session, district, clock, smtp_server,
                                                                      tmp_path):
    d = district
    declare_district(client, d)
    open_to_unregistered(client, d)
    # before: gpu/上海/2027-01 is d1 100 @10, d2 50 @12, m1 30; gpu surveyed 100+50+30+20 = 200
    assert carrier_cell(client, d) == (3, "180.000", "11.00", 2)
    assert float(gap_gpu_surveyed(client, d)) == 200

    assert submit(client, d["id"], firm() | rows(GPU_40, TOKENS_500)).status_code == 303
    subject, secret = link_of(session, smtp_server, tmp_path, DEC_01_0900, "wang.fang@firm.test")
    assert subject == "【硅巷资源撮合平台】请确认 上海未注册算力科技有限公司 对需求摸排“2027年一季度算力需求摸排”的填报"
    # nothing counts before the confirmation; the link's page shows what waits, and changes nothing
    assert carrier_cell(client, d) == (3, "180.000", "11.00", 2)
    page = client.get(f"/surveys/answers/{secret}")
    assert page.status_code == 200 and "待确认的填报" in page.get_data(as_text=True)
    assert count(session, SurveyDeclaration, SurveyDeclaration.respondent_id.is_not(None)) == 0
    # a second answer for the code while the first waits: refused, no email
    again = submit(client, d["id"], firm(contact_email="someone.else@firm.test") | rows(GPU_40))
    assert again.status_code == 409 and "正在等待邮件确认" in again.get_data(as_text=True)
    assert count(session, OutboxEmail, OutboxEmail.to_address == "someone.else@firm.test") == 0

    confirm = client.post(f"/surveys/answers/{secret}/confirm", data={"csrf_token": token_of(client, f"/surveys/answers/{secret}")})
    assert confirm.status_code == 303
    # one more firm: 180 + 40 = 220, the mean of 10, 12 and 8; tokens/北京 now has 2 firms, still left out
    assert carrier_cell(client, d) == (4, "220.000", "10.00", 2)
    assert float(gap_gpu_surveyed(client, d)) == 240
    staff_cells = client.get(f"/api/v1/surveys/{d['id']}/aggregate", headers=d["staff"].headers).json
    assert staff_cells["firms"] == 6
    assert [(c["sector"], c["firms"], c["unregistered"], c["quantity"]) for c in staff_cells["cells"]
            if (c["kind"], c["month"]) == ("gpu", "2027-01-01")] == [
        ("ai_models", 1, 0, "30.000"), ("fintech", 1, 1, "40.000"), ("smart_driving", 2, 0, "150.000")]

    # revised through the link: one line of 60 @9, the tokens line removed
    path = f"/surveys/answers/{secret}"
    revised = client.post(path, data={"csrf_token": token_of(client, path),
                                      **rows(("gpu", "60", "上海", "2027-01-01", "9", "风控模型训练"))})
    assert revised.status_code == 303
    assert carrier_cell(client, d) == (4, "240.000", "10.33", 2)  # (10 + 12 + 9) / 3
    assert count(session, SurveyRespondent) == 1

    # a second answer for the confirmed code: its contact (not the sender) is asked; the old link stops
    assert submit(client, d["id"], firm(contact_email="someone.else@firm.test")
                  | rows(("gpu", "70", "上海", "2027-01-01", "", "新的用途"))).status_code == 303
    subject, newer = link_of(session, smtp_server, tmp_path, DEC_01_0900, "wang.fang@firm.test")
    assert "新的填报待您确认" in subject and newer != secret
    assert client.get(f"/surveys/answers/{secret}").status_code == 404
    assert carrier_cell(client, d) == (4, "240.000", "10.33", 2)  # unchanged until confirmed
    client.post(f"/surveys/answers/{newer}/confirm", data={"csrf_token": token_of(client, f"/surveys/answers/{newer}")})
    assert carrier_cell(client, d) == (4, "250.000", "11.00", 2)  # 100 + 50 + 30 + 70; the new line has no price
    assert count(session, SurveyRespondent) == 1

    # the close: the link refuses, the public form is gone, the answer still counts
    clock.set(dt.datetime(2027, 1, 1, 1, 0, tzinfo=dt.timezone.utc))
    path = f"/surveys/answers/{newer}"
    late = client.post(path, data={"csrf_token": token_of(client, path), **rows(GPU_40)})
    assert late.status_code == 409 and "该摸排已截止" in late.get_data(as_text=True)
    assert client.get(f"/surveys/{d['id']}/declare").status_code == 404
    assert carrier_cell(client, d) == (4, "250.000", "11.00", 2)
    assert float(gap_gpu_surveyed(client, d)) == 270


def test_bad_input_is_422_naming_the_field_in_chinese_and_nothing_is_kept(client, session, district):
    open_to_unregistered(client, district)
    bad_check = FIRM_USCC[:-1] + ("0" if FIRM_USCC[-1] != "0" else "1")
    answer = submit(client, district["id"], firm(uscc=bad_check) | rows(("gpu", "0", "上海", "2027-04-01", "", "训练")))
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="uscc-error"' in html and "校验位须正确" in html
    assert 'id="lines-0-quantity-error"' in html and "第 1 行：数量须大于 0" in html
    assert 'id="lines-0-month-error"' in html
    assert count(session, SurveyRespondent) == 0
    assert count(session, OutboxEmail) == 0
    no_lines = submit(client, district["id"], firm())
    assert no_lines.status_code == 422 and "请至少填写一项需求" in no_lines.get_data(as_text=True)


def test_one_address_has_at_most_three_answers_waiting_in_a_campaign(client, session, district):
    open_to_unregistered(client, district)
    for n in range(3):
        assert submit(client, district["id"], firm(uscc=make_uscc(800 + n)) | rows(GPU_40)).status_code == 303
    fourth = submit(client, district["id"], firm(uscc=make_uscc(803)) | rows(GPU_40))
    assert fourth.status_code == 409 and 'id="contact_email-error"' in fourth.get_data(as_text=True)
    assert "已有多份填报在等待确认" in fourth.get_data(as_text=True)
    assert count(session, SurveyRespondent) == 3 and count(session, OutboxEmail) == 3


def test_a_registered_code_is_told_to_sign_in(client, session, district):
    open_to_unregistered(client, district)
    registered = session.get(accounts.Startup, district["d1"].startup_id).uscc
    session.commit()
    answer = submit(client, district["id"], firm(uscc=registered) | rows(GPU_40))
    assert answer.status_code == 409 and "请登录控制台" in answer.get_data(as_text=True)
    assert 'id="sign-in-link"' in answer.get_data(as_text=True)
    assert count(session, SurveyRespondent) == 0


def test_a_survey_not_open_to_firms_not_registered_is_404_until_staff_open_it(app, client, session, district, clock):
    path = f"/surveys/{district['id']}/declare"
    assert client.get(path).status_code == 404
    assert "不接受未注册企业填报" in client.get(path).get_data(as_text=True)
    assert client.get("/surveys/99999/declare").status_code == 404
    assert client.get("/surveys/answers/not-a-link").status_code == 404
    # companies can't change the switch
    assert client.patch(f"/api/v1/surveys/{district['id']}", json={"allow_unregistered": True},
                        headers=district["d1"].headers).status_code == 403
    open_to_unregistered(client, district)
    assert client.get(path).status_code == 200
    clock.set(dt.datetime(2027, 1, 1, 1, 0, tzinfo=dt.timezone.utc))
    closed = client.patch(f"/api/v1/surveys/{district['id']}", json={"allow_unregistered": False},
                          headers=district["staff"].headers)
    assert closed.status_code == 409


def confirmed_by_known_link(client, session, secret: str = "known-secret-for-this-test") -> str:
    """Confirm the one waiting answer through a link whose secret the test sets (the SMTP test reads a real one)."""
    respondent = session.scalar(sa.select(SurveyRespondent))
    respondent.token_hash = accounts.hash_token(secret)
    session.commit()
    path = f"/surveys/answers/{secret}"
    assert client.post(f"{path}/confirm", data={"csrf_token": token_of(client, path)}).status_code == 303
    return secret


def test_staff_switch_it_in_the_console_and_see_the_answers_marked(app, client, session, district):
    from tests.e2e.test_notifications import staff_signed_in

    staff_signed_in(app, client, session)
    page = f"/staff/surveys/{district['id']}"
    assert "本次摸排不接受尚未注册的企业填报" in client.get(page).get_data(as_text=True)
    switched = client.post(f"{page}/unregistered", data={"csrf_token": token_of(client, page), "allow_unregistered": "1"})
    assert switched.status_code == 303
    assert "已开始接受未注册企业填报" in client.get(switched.headers["Location"]).get_data(as_text=True)
    assert submit(client, district["id"], firm() | rows(GPU_40)).status_code == 303
    waiting = client.get(page).get_data(as_text=True)
    assert "上海未注册算力科技有限公司" in waiting and "待邮件确认，未计入" in waiting and "未注册" in waiting
    confirmed_by_known_link(client, session)
    html = client.get(page).get_data(as_text=True)
    assert "已确认，计入" in html and "（含未注册 1 家）" in html


def test_when_the_firm_registers_and_is_verified_its_lines_are_the_startups_counted_once(client, session, district):
    d = district
    open_to_unregistered(client, d)
    assert submit(client, d["id"], firm() | rows(GPU_40, TOKENS_500)).status_code == 303
    secret = confirmed_by_known_link(client, session)
    staff = client.get(f"/api/v1/surveys/{d['id']}/aggregate", headers=d["staff"].headers).json
    assert staff["firms"] == 1 and {c["unregistered"] for c in staff["cells"]} == {1}

    payload = startup_payload(777, sector="fintech", parse=True)
    assert payload["uscc"] == FIRM_USCC
    startup, token, secret_token = accounts.register_startup(session, payload)
    # registered, not yet verified: the public form sends it to the portal; the answer still counts once
    assert submit(client, d["id"], firm() | rows(GPU_40)).status_code == 409
    assert client.post(f"/api/v1/startups/{startup.id}/verify", headers=d["staff"].headers).status_code == 200
    staff = client.get(f"/api/v1/surveys/{d['id']}/aggregate", headers=d["staff"].headers).json
    assert staff["firms"] == 1 and {c["unregistered"] for c in staff["cells"]} == {0}
    assert [(c["kind"], c["sector"], c["quantity"]) for c in staff["cells"]] == [
        ("gpu", "fintech", "40.000"), ("tokens", "fintech", "500.000")]
    session.expire_all()
    assert session.scalar(sa.select(SurveyRespondent)).status() == "attached"
    session.commit()
    # the startup sees them in its portal and revises them as its own
    from tests.conftest import Actor

    founder = Actor(token.account_id, secret_token, startup_id=startup.id)
    mine = client.get(f"/api/v1/surveys/{d['id']}/declarations", headers=founder.headers).json
    assert [(x["kind"], x["quantity"]) for x in mine["lines"]] == [("gpu", "40.000"), ("tokens", "500.000")]
    # the link now sends the firm to the portal
    path = f"/surveys/answers/{secret}"
    assert "已并入企业账户" in client.get(path).get_data(as_text=True)
    assert client.post(path, data={"csrf_token": token_of(client, path), **rows(GPU_40)}).status_code == 409


def test_attaching_keeps_the_startups_own_line_where_both_declared_one(client, session, district):
    d = district
    startup, _, _ = accounts.register_startup(session, startup_payload(778, sector="fintech", parse=True))
    respondent = SurveyRespondent(campaign_id=d["id"], uscc=startup.uscc, firm_name="甲", contact_name="乙",
                                  contact_email="a@b.test", sector=startup.sector, token_hash="f" * 64,
                                  confirmed_at=DEC_01_0900, created_at=DEC_01_0900)
    session.add(respondent)
    session.flush()
    january = dt.date(2027, 1, 1)
    session.add_all([
        SurveyDeclaration(campaign_id=d["id"], startup_id=startup.id, kind="gpu", region="上海", month=january,
                          quantity=90, purpose="企业自己填的", updated_at=DEC_01_0900),
        SurveyDeclaration(campaign_id=d["id"], respondent_id=respondent.id, kind="gpu", region="上海", month=january,
                          quantity=40, purpose="未注册时填的", updated_at=DEC_01_0900),
        SurveyDeclaration(campaign_id=d["id"], respondent_id=respondent.id, kind="tokens", region="上海", month=january,
                          quantity=500, purpose="未注册时填的", updated_at=DEC_01_0900),
    ])
    session.commit()
    assert client.post(f"/api/v1/startups/{startup.id}/verify", headers=d["staff"].headers).status_code == 200
    session.expire_all()
    assert session.scalar(sa.select(SurveyRespondent)).status() == "attached"
    lines = session.scalars(sa.select(SurveyDeclaration).order_by(SurveyDeclaration.kind)).all()
    assert [(x.kind, x.quantity, x.startup_id, x.respondent_id) for x in lines] == [
        ("gpu", 90, startup.id, None), ("tokens", 500, startup.id, None)]
