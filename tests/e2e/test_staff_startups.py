"""Startups (企业) through the test client: the register (pending first, filters, counts, pages),
one startup's page with its requests and allocations, and each action: verify, reject (refused
without a reason, nothing changed), remove, edit (a bad value refused with its message, nothing
changed), key enterprise on and off, reissued access by email through the outbox. A company's
person gets 403; an unknown startup 404."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from broker.models import AuditEntry, OutboxEmail, Role, Sector, Startup, StartupStatus
from broker.models.people import Invitation, PasswordReset
from broker.services import accounts, people
from broker.web import session as console_session
from tests.conftest import make_uscc, statements_sent
from tests.e2e.test_console_sign_in import sign_in, token_of
from tests.e2e.test_cycle_workflow import clock, market, run  # noqa: F401 - fixtures

PASSWORD = "长宁区硅巷-企业管理-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
NAMES = (
    ("上海云驰智行科技有限公司", Sector.smart_driving),
    ("上海深瞳大模型技术有限公司", Sector.ai_models),
    ("上海墨韵数字文化创意有限公司", Sector.digital_culture),
    ("上海澜星能源科技有限公司", Sector.energy_management),
    ("上海仁济智慧医疗科技有限公司", Sector.smart_healthcare),
)


def staff_signed_in(client, session):
    person = people.create_district_person(session, "wang.lei@changning.example.gov.cn", "王磊", Role.staff, PASSWORD)
    assert sign_in(client, person.email, PASSWORD).status_code == 303
    return person


def register(session, n: int, name: str, sector: Sector = Sector.ai_models) -> Startup:
    startup, _, _ = accounts.register_startup(session, {
        "name": name, "uscc": make_uscc(n), "sector": sector, "founded_on": dt.date(2022, 3, 1),
        "headcount": 30, "contact_name": "张伟", "contact_email": f"ceo{n}@example.cn"})
    return startup


def fresh(session, startup_id: int) -> Startup:
    session.expire_all()
    return session.get(Startup, startup_id)


def rows_of(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="startup-(\d+)"', page)]


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": token_of(client, "/staff/startups"), **data})


@pytest.fixture
def district(session, frozen_clock):
    """Five verified Chinese startups, two pending registrations after them, a staff account."""
    frozen_clock(MONDAY_0900)
    verifier, _, _ = accounts.create_user(session, Role.staff, "核验员")
    verified = []
    for i, (name, sector) in enumerate(NAMES):
        startup = register(session, 100 + i, name, sector)
        accounts.verify_startup(session, verifier, startup.id, MONDAY_0900)
        verified.append(startup.id)
    accounts.set_key_enterprise(session, verifier, verified[0], True, MONDAY_0900)
    first = register(session, 200, "上海星河量子计算科技有限公司", Sector.industrial_software)
    second = register(session, 201, "上海汇金数智金融科技有限公司", Sector.fintech)
    return {"verified": verified, "pending": [first.id, second.id], "verifier": verifier}


def test_the_register_puts_pending_first_counts_by_status_and_filters(client, session, district):
    staff_signed_in(client, session)
    page = client.get("/staff/startups")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert rows_of(text)[:2] == district["pending"]  # awaiting a decision, oldest first
    assert rows_of(text)[2:] == list(reversed(district["verified"]))  # then the rest, newest first
    assert re.search(r'id="count-pending"[^>]*>待核验 <span class="count">2</span>', text)
    assert re.search(r'id="count-verified"[^>]*>已核验 <span class="count">5</span>', text)
    assert "上海星河量子计算科技有限公司" in text and "工业软件" in text and "重点企业" in text
    assert rows_of(client.get("/staff/startups?status=verified").get_data(as_text=True)) == list(reversed(district["verified"]))
    assert rows_of(client.get("/staff/startups?sector=fintech").get_data(as_text=True)) == [district["pending"][1]]
    assert rows_of(client.get("/staff/startups?key=yes").get_data(as_text=True)) == [district["verified"][0]]
    assert district["verified"][0] not in rows_of(client.get("/staff/startups?key=no").get_data(as_text=True))
    assert rows_of(client.get("/staff/startups?q=深瞳").get_data(as_text=True)) == [district["verified"][1]]
    by_code = client.get(f"/staff/startups?q={make_uscc(104)[:17].lower()}").get_data(as_text=True)
    assert rows_of(by_code) == [district["verified"][4]]
    assert rows_of(client.get("/staff/startups?q=100%25").get_data(as_text=True)) == []  # % is a character, not a wildcard
    bad = client.get("/staff/startups?sector=mining")
    assert bad.status_code == 400 and "没有这个行业" in bad.get_data(as_text=True)


def test_the_register_pages_by_fifty(client, session, frozen_clock):
    frozen_clock(MONDAY_0900)
    made = [register(session, 300 + i, f"上海测试{i:02d}科技有限公司").id for i in range(53)]
    staff_signed_in(client, session)
    first = client.get("/staff/startups").get_data(as_text=True)
    assert rows_of(first) == made[:50]  # all pending: oldest first
    assert "共 53 家，第 1 / 2 页" in first and 'href="/staff/startups?page=2"' in first
    second = client.get("/staff/startups?page=2").get_data(as_text=True)
    assert rows_of(second) == made[50:]
    kept = client.get("/staff/startups?page=2&status=pending").get_data(as_text=True)
    assert "page=1&amp;status=pending" in kept or "status=pending&amp;page=1" in kept  # the filter stays on the page links
    assert rows_of(client.get("/staff/startups?page=99").get_data(as_text=True)) == made[50:]  # past the end: the last


def test_a_startups_page_shows_its_record_people_requests_allocations_subsidy_and_appeals(app, client, session, market):  # noqa: F811
    run(client, market["staff"])
    staff_signed_in(client, session)
    startup_id = market["culture"].startup_id
    people.find_or_link(session, fresh(session, startup_id).uscc, "fa.ren@example.cn", "王芳", "legal_representative",
                        MONDAY_0900)
    page = client.get(f"/staff/startups/{startup_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "已核验" in text and "数字文创" in text and "王芳" in text and "法定代表人" in text
    assert "最近 2 条，共 2 条" in text  # two requests
    assert re.search(r'id="allocations".*?待审批', text, re.S)  # its proposal, in words
    assert 'id="subsidy"' in text and "没有诉求" in text


def test_an_unknown_startup_is_404_and_a_company_person_gets_403(app, client, session, district):
    staff_signed_in(client, session)
    assert client.get("/staff/startups/999999").status_code == 404
    assert post(client, "/staff/startups/999999/verify").status_code == 404
    uscc = fresh(session, district["verified"][1]).uscc
    person = people.find_or_link(session, uscc, "fa.ren@example.cn", "王芳", "legal_representative", MONDAY_0900)
    with app.test_request_context():
        console_session.start(person.id)
        cookie = dict(__import__("flask").session)
    with client.session_transaction() as stored:
        stored.clear()
        stored.update(cookie)
    assert client.get("/staff/startups").status_code == 403
    assert client.get(f"/staff/startups/{district['pending'][0]}").status_code == 403
    refused = client.post(f"/staff/startups/{district['pending'][0]}/verify", data={"csrf_token": token_of(client, "/")})
    assert refused.status_code == 403
    assert fresh(session, district["pending"][0]).status is StartupStatus.pending


def test_verify_from_the_page(client, session, district):
    staff = staff_signed_in(client, session)
    startup_id = district["pending"][0]
    done = post(client, f"/staff/startups/{startup_id}/verify")
    assert done.status_code == 303 and done.headers["Location"] == f"/staff/startups/{startup_id}"
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "已核验：该企业现在可以申请资源" in page
    assert fresh(session, startup_id).status is StartupStatus.verified
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "startups", AuditEntry.entity_id == startup_id,
                                                       AuditEntry.action == "verify"))
    assert entry.actor_id == staff.account_id  # the console names who did it
    again = post(client, f"/staff/startups/{startup_id}/verify")
    assert again.status_code == 409 and "该企业已经核验过" in again.get_data(as_text=True)


def test_a_reject_needs_a_reason_which_the_startup_then_sees(client, session, district):
    staff_signed_in(client, session)
    startup_id = district["pending"][1]
    refused = post(client, f"/staff/startups/{startup_id}/reject", reason="   ")
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert re.search(r'id="reject-reason"[^>]*aria-invalid="true"', text)
    assert 'id="reject_reason-error">请填写理由（不超过 2000 字），企业会看到它。' in text
    assert fresh(session, startup_id).status is StartupStatus.pending
    done = post(client, f"/staff/startups/{startup_id}/reject", reason="营业执照与登记名称不符，请核对后重新登记")
    assert done.status_code == 303
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "已驳回该登记" in page and "营业执照与登记名称不符" in page
    rejected = fresh(session, startup_id)
    assert rejected.status is StartupStatus.rejected and rejected.rejection_reason.startswith("营业执照")
    # A verified registration is not rejected (it is removed instead), and says so.
    verified = district["verified"][2]
    assert post(client, f"/staff/startups/{verified}/reject", reason="重复").status_code == 409
    assert post(client, f"/staff/startups/{verified}/remove", reason="").status_code == 422
    assert fresh(session, verified).status is StartupStatus.verified
    removed = post(client, f"/staff/startups/{verified}/remove", reason="冒用他人企业名义登记")
    assert removed.status_code == 303 and fresh(session, verified).status is StartupStatus.removed


def test_the_startup_is_told_the_reason_through_the_api(client, session, frozen_clock):
    frozen_clock(MONDAY_0900)
    startup, _, secret = accounts.register_startup(session, {
        "name": "上海若水数据科技有限公司", "uscc": make_uscc(400), "sector": Sector.ai_models,
        "founded_on": dt.date(2022, 3, 1), "headcount": 12, "contact_name": "陈静", "contact_email": "chen@example.cn"})
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"/api/v1/startups/{startup.id}", headers=headers).json["rejection_reason"] is None
    staff_signed_in(client, session)
    assert post(client, f"/staff/startups/{startup.id}/reject", reason="注册地不在本区").status_code == 303
    told = client.get(f"/api/v1/startups/{startup.id}", headers=headers)
    assert told.status_code == 401 and "注册地不在本区" in told.get_data(as_text=True)  # its token ended, with why


def test_an_edit_with_a_bad_value_changes_nothing_and_a_good_one_is_saved(client, session, district):
    staff_signed_in(client, session)
    startup_id = district["verified"][3]
    before = fresh(session, startup_id)
    form = {"name": "上海澜星新能源科技有限公司", "sector": "energy_management", "founded_on": "2021-06-18",
            "headcount": "-4", "contact_name": "刘洋", "contact_email": "liu.yang@lanxing.example.cn",
            "contact_phone": "021-6208 1234", "cycle_budget": "50000", "registered_in_district": "yes"}
    refused = post(client, f"/staff/startups/{startup_id}/edit", **form)
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert 'id="headcount-error">员工人数须是 0 到 1,000,000 之间的整数。' in text
    assert 'value="上海澜星新能源科技有限公司"' in text  # what was typed is kept
    unchanged = fresh(session, startup_id)
    assert (unchanged.name, unchanged.headcount, unchanged.cycle_budget) == (before.name, 30, None)
    bad_email = post(client, f"/staff/startups/{startup_id}/edit", **{**form, "headcount": "45", "contact_email": "不是邮箱"})
    assert bad_email.status_code == 422 and "请填写有效的联系邮箱" in bad_email.get_data(as_text=True)
    done = post(client, f"/staff/startups/{startup_id}/edit", **{**form, "headcount": "45"})
    assert done.status_code == 303
    assert "企业信息已保存" in client.get(done.headers["Location"]).get_data(as_text=True)
    saved = fresh(session, startup_id)
    assert (saved.name, saved.headcount, str(saved.cycle_budget), saved.contact_phone, saved.founded_on) == (
        "上海澜星新能源科技有限公司", 45, "50000.00", "021-6208 1234", dt.date(2021, 6, 18))
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_id == startup_id, AuditEntry.action == "amend_by_staff"))
    assert entry.before["name"] == "上海澜星能源科技有限公司" and entry.after["headcount"] == 45
    # Blank budget and phone mean none; unticked: not registered in the district.
    cleared = post(client, f"/staff/startups/{startup_id}/edit",
                   **{**form, "headcount": "45", "cycle_budget": "", "contact_phone": "", "registered_in_district": ""})
    assert cleared.status_code == 303
    saved = fresh(session, startup_id)
    assert (saved.cycle_budget, saved.contact_phone, saved.registered_in_district) == (None, None, False)


def test_key_enterprise_on_and_off(client, session, district):
    staff_signed_in(client, session)
    startup_id = district["verified"][1]
    page = client.get(f"/staff/startups/{startup_id}").get_data(as_text=True)
    assert "标记为重点企业" in page and "按政策加权" in page
    done = post(client, f"/staff/startups/{startup_id}/key-enterprise", key="yes")
    assert done.status_code == 303 and fresh(session, startup_id).key_enterprise is True
    assert "已标记为重点企业" in client.get(done.headers["Location"]).get_data(as_text=True)
    twice = post(client, f"/staff/startups/{startup_id}/key-enterprise", key="yes")  # a second tab, say
    assert twice.status_code == 409 and "重点企业标记已是这样" in twice.get_data(as_text=True)
    assert post(client, f"/staff/startups/{startup_id}/key-enterprise", key="no").status_code == 303
    assert fresh(session, startup_id).key_enterprise is False
    actions = list(session.scalars(sa.select(AuditEntry.action).where(
        AuditEntry.entity_type == "startups", AuditEntry.entity_id == startup_id).order_by(AuditEntry.id)))
    assert actions[-2:] == ["mark_key_enterprise", "unmark_key_enterprise"]


def test_reissued_access_is_a_reset_link_by_email_or_an_invitation_to_the_contact(client, session, district):
    staff = staff_signed_in(client, session)
    startup_id = district["verified"][0]
    uscc = fresh(session, startup_id).uscc
    person = people.find_or_link(session, uscc, "zhao.min@yunchi.example.cn", "赵敏", "legal_representative", MONDAY_0900)
    page = client.get(f"/staff/startups/{startup_id}").get_data(as_text=True)
    assert "赵敏" in page and "invite-contact" not in page  # it has a person: no invitation offered
    done = post(client, f"/staff/startups/{startup_id}/reissue-access", person_id=str(person.id))
    assert done.status_code == 303
    assert "已向 zhao.min@yunchi.example.cn 发送重设密码的邮件" in client.get(done.headers["Location"]).get_data(as_text=True)
    email = session.scalar(sa.select(OutboxEmail).where(OutboxEmail.to_address == "zhao.min@yunchi.example.cn"))
    assert "/password-reset/" in email.body and "区科委工作人员" in email.body
    reset = session.scalar(sa.select(PasswordReset).where(PasswordReset.person_id == person.id))
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "password_resets",
                                                       AuditEntry.entity_id == reset.id))
    assert entry.action == "reissue_access" and entry.actor_id == staff.account_id
    # Another company's person is not this startup's to reissue; nothing is sent.
    other = district["verified"][1]
    assert post(client, f"/staff/startups/{other}/reissue-access", person_id=str(person.id)).status_code == 404
    assert post(client, f"/staff/startups/{startup_id}/reissue-access").status_code == 422  # choose the person
    # A startup with nobody on the broker: its contact email is invited as the first administrator.
    invited = post(client, f"/staff/startups/{other}/reissue-access")
    assert invited.status_code == 303
    page = client.get(invited.headers["Location"]).get_data(as_text=True)
    assert "已向 ceo101@example.cn 发出邀请邮件" in page and 'id="pending-invitations"' in page
    invitation = session.scalar(sa.select(Invitation).where(Invitation.startup_id == other))
    assert invitation.email == "ceo101@example.cn" and invitation.company_role.value == "administrator"
    assert session.scalar(sa.select(sa.func.count(OutboxEmail.id))) == 2
    # A deactivated person gets no reset link (it would not let them in): the page says why.
    people.deactivate_person(session, staff, person.id, MONDAY_0900)
    refused = post(client, f"/staff/startups/{startup_id}/reissue-access", person_id=str(person.id))
    assert refused.status_code == 409 and "此人已停用" in refused.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count(OutboxEmail.id))) == 2


def test_the_pages_cost_the_same_statements_whatever_the_numbers(app, client, session, market):  # noqa: F811
    staff_signed_in(client, session)
    startup_id = market["culture"].startup_id
    small_list, small_page = statements_sent(app, client, "/staff/startups"), statements_sent(app, client, f"/staff/startups/{startup_id}")
    run(client, market["staff"])  # requests proposed: allocations for every startup
    for i in range(12):
        register(session, 600 + i, f"上海新登记{i:02d}科技有限公司")
    people.find_or_link(session, fresh(session, startup_id).uscc, "fa.ren@example.cn", "王芳", "legal_representative",
                        MONDAY_0900)
    large_list, large_page = statements_sent(app, client, "/staff/startups"), statements_sent(app, client, f"/staff/startups/{startup_id}")
    assert len(large_list) == len(small_list), "the register's statements grew with the rows: an N+1"
    assert len(large_page) == len(small_page), "a startup's page's statements grew with its rows: an N+1"


def test_the_screen_in_english(client, session, district):
    staff_signed_in(client, session)
    client.set_cookie("broker_lang", "en")
    listing = client.get("/staff/startups").get_data(as_text=True)
    assert "Awaiting verification" in listing and "Unified social credit code" in listing
    page = client.get(f"/staff/startups/{district['pending'][0]}").get_data(as_text=True)
    assert ">Verify</button>" in page and "Reason for rejecting (the company will see it)" in page and "Industrial software" in page
