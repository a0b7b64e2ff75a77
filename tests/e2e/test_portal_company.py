"""A company registers itself (/register) and manages its people (/company), through the test
client: a founder registers with a password, lands signed in on /company and sees the pending
banner; bad input (a wrong credit code, a code already held, a weak password, no name) comes
back by its field at 422 with nothing made; through the unified login (the local identity
provider over real HTTP) a legal representative whose company is not on the broker registers
with the code and name it vouched for, linked to it. /company shows a startup verified, or
turned away with the staff's reason; its managers invite (the outbox sends the link), a plain
member sees the list without the buttons and is refused (403); a carrier's person sees its own
people; staff get 403; another company's person or invitation is 404."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from broker.models import Carrier, Role, Startup, StartupStatus
from broker.models.outbox import OutboxEmail
from broker.models.people import CompanyRole, Invitation, Person, PersonStatus, Side, SignInAttempt
from broker.services import accounts, passwords, people
from tests.conftest import make_uscc, startup_payload, statements_sent
from tests.e2e.test_console_sign_in import serve_idp, sign_in, token_of, unified_login

PASSWORD = "长宁区硅巷-企业注册-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)
UNREGISTERED = make_uscc(7301)


@pytest.fixture(autouse=True)
def cheap_hasher():
    """Fast argon2id parameters: these tests make many people."""
    old = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    passwords.use_hasher(old)


@pytest.fixture
def clock(frozen_clock):
    return frozen_clock(MONDAY_0900)


def form(**changes: str) -> dict[str, str]:
    """A complete registration form, as a founder fills it."""
    return {"name": "上海云帆智算科技有限公司", "uscc": UNREGISTERED.lower(), "sector": "ai_models",
            "founded_on": "2023-05-08", "headcount": "18", "contact_name": "", "contact_email": "", "contact_phone": "",
            "registered_in_district": "yes", "person_name": "陈晨", "email": "chen.chen@yunfan.example.cn",
            "password": PASSWORD, **changes}


def register(client, **changes: str):
    return client.post("/register", data={**form(**changes), "csrf_token": token_of(client, "/register")})


def counts(session) -> tuple[int, int]:
    session.expire_all()
    return (session.scalar(sa.select(sa.func.count(Startup.id))), session.scalar(sa.select(sa.func.count(Person.id))))


def founder_of(client, session, n: int, email: str, *, verified: bool = False) -> tuple[Person, int]:
    """A startup registered at the console by its founder, who is then signed in on `client`."""
    answer = register(client, uscc=make_uscc(n), email=email, name=f"上海测试{n}科技有限公司")
    assert answer.status_code == 303, answer.get_data(as_text=True)
    person = session.scalar(sa.select(Person).where(Person.email_key == email))
    if verified:
        staff, _, _ = accounts.create_user(session, Role.staff, "沈慧")
        accounts.verify_startup(session, staff, person.account.startup_id, MONDAY_0900)
    return person, person.account.startup_id


# -- registration ---------------------------------------------------------------------------------


def test_a_founder_registers_and_lands_signed_in_on_the_company_page_while_it_waits(client, session, clock):
    assert 'href="/register">注册企业</a>' in client.get("/sign-in").get_data(as_text=True)
    blank = client.get("/register")
    assert blank.status_code == 200 and "注册企业" in blank.get_data(as_text=True)
    answer = register(client, contact_phone="021-6238 0000")
    assert answer.status_code == 303 and answer.headers["Location"] == "/company?done=registered"
    startup = session.scalar(sa.select(Startup).where(Startup.uscc == UNREGISTERED))
    assert (startup.name, startup.status, startup.headcount, startup.founded_on, startup.contact_name,
            startup.contact_email, startup.contact_phone, startup.registered_in_district) == (
        "上海云帆智算科技有限公司", StartupStatus.pending, 18, dt.date(2023, 5, 8), "陈晨", "chen.chen@yunfan.example.cn",
        "021-6238 0000", True)  # blank contacts are the founder's
    person = session.scalar(sa.select(Person).where(Person.email_key == "chen.chen@yunfan.example.cn"))
    assert (person.side, person.company_role, person.account.startup_id, person.account.role) == (
        Side.startup, CompanyRole.legal_representative, startup.id, Role.startup)
    assert person.password_hash and person.oidc_linked_at is None and person.last_sign_in_at == MONDAY_0900
    assert startup.created_at == MONDAY_0900
    attempt = session.scalar(sa.select(SignInAttempt).where(SignInAttempt.person_id == person.id))
    assert (attempt.outcome.value, attempt.source) == ("success", "register")

    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "企业已注册" in page and "上海云帆智算科技有限公司" in page
    assert re.search(r'id="startup-status">待核验<', page) and 'id="pending-banner"' in page
    assert "核验通过后才能提交资源申请" in page and UNREGISTERED in page
    assert re.search(r'<tr id="person-\d+">\s*<th scope="row">陈晨 <span class="muted">（本人）', page)
    assert "法定代表人" in page and 'href="/me"' in page and 'id="invite-heading"' in page
    english = client.application.test_client()
    english.post("/language", data={"language": "en", "next": "/register", "csrf_token": token_of(english, "/register")})
    page = english.get("/register").get_data(as_text=True)
    assert "<h1>Register a company</h1>" in page and "Unified social credit code (18 characters)" in page
    # The founder signs in with the password chosen, another day.
    other = client.application.test_client()
    assert sign_in(other, "chen.chen@yunfan.example.cn", PASSWORD).headers["Location"] == "/portal/requests"


@pytest.mark.parametrize("changes, field, words", [
    ({"uscc": UNREGISTERED[:17] + ("0" if UNREGISTERED[17] != "0" else "1")}, "uscc", "校验位须正确"),
    ({"uscc": "91310105MA1FL0001"}, "uscc", "须是 18 位"),
    ({"password": "short"}, "password", "密码至少需要 12 个字符"),
    ({"password": "password1234"}, "password", "最常见的密码之一"),
    ({"person_name": ""}, "person_name", "请填写您的姓名"),
    ({"email": "chen.chen@"}, "email", "请填写有效的邮箱"),
    ({"founded_on": "2027-01-01"}, "founded_on", "不晚于今天"),
    ({"sector": ""}, "sector", "请选择行业"),
    ({"headcount": "十八"}, "headcount", "员工人数须是"),
])
def test_bad_input_comes_back_by_its_field_and_nothing_is_made(client, session, clock, changes, field, words):
    before = counts(session)
    answer = register(client, **changes)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(rf'<span class="error field-error" id="{field}-error">[^<]*{words}', page), page
    assert 'aria-invalid="true"' in page and "上海云帆智算科技有限公司" in page  # what was typed stays
    assert counts(session) == before
    assert client.get("/company").status_code == 302  # nobody was signed in


def test_a_code_already_registered_or_an_email_already_taken_is_refused_with_nothing_made(client, session, clock):
    accounts.register_startup(session, {**startup_payload(1, parse=True), "uscc": UNREGISTERED})
    before = counts(session)
    taken = register(client)
    page = taken.get_data(as_text=True)
    assert taken.status_code == 422 and "该统一社会信用代码已经登记在平台上" in page and 'id="uscc-error"' in page
    assert counts(session) == before
    assert session.scalar(sa.select(Person).where(Person.email_key == "chen.chen@yunfan.example.cn")) is None

    people.create_district_person(session, "chen.chen@yunfan.example.cn", "陈晨", Role.staff, PASSWORD)
    before = counts(session)
    again = register(client, uscc=make_uscc(7302))
    assert again.status_code == 422 and "这个邮箱已属于平台上的一位人员" in again.get_data(as_text=True)
    assert counts(session) == before
    assert session.scalar(sa.select(Startup).where(Startup.uscc == make_uscc(7302))) is None


# -- through the unified login --------------------------------------------------------------------


@pytest.fixture
def idp_url(app):
    """The local identity provider with a legal representative whose company is not on the broker,
    an agent of another such company, and the district's person."""
    users = [{"sub": "liu", "name": "刘洋", "email": "liu.yang@weilai.example.cn", "uscc": UNREGISTERED,
              "company_role": "legal_representative", "company_name": "上海硅巷未来科技有限公司"},
             {"sub": "agent", "name": "张伟", "email": "zhang.wei@weilai.example.cn", "uscc": make_uscc(7303),
              "company_role": "agent"}]
    yield from serve_idp(app, users)


def test_the_unified_login_of_an_unregistered_company_registers_it_with_what_it_vouched_for(client, session, clock, idp_url):
    back = unified_login(client, idp_url, "liu")
    assert back.status_code == 303 and back.headers["Location"] == "/register"
    page = client.get("/register").get_data(as_text=True)
    assert re.search(rf'id="r-uscc" name="uscc" value="{UNREGISTERED}"[^>]* readonly', page)
    assert re.search(r'id="r-name" name="name" value="上海硅巷未来科技有限公司"[^>]* readonly', page)
    assert re.search(r'id="r-email" name="email" type="email" value="liu.yang@weilai.example.cn"[^>]* readonly', page)
    assert 'name="password"' not in page and "一网通办" in page
    # What the provider vouched for wins over anything sent in its place.
    answer = client.post("/register", data={**form(uscc=make_uscc(7304), name="别的公司", email="x@example.cn",
                                                    person_name="别人", password=""),
                                            "csrf_token": token_of(client, "/register")})
    assert answer.status_code == 303 and answer.headers["Location"] == "/company?done=registered"
    startup = session.scalar(sa.select(Startup).where(Startup.uscc == UNREGISTERED))
    assert startup.name == "上海硅巷未来科技有限公司" and startup.status is StartupStatus.pending
    assert session.scalar(sa.select(Startup).where(Startup.uscc == make_uscc(7304))) is None
    person = session.scalar(sa.select(Person).where(Person.account_id == sa.select(
        sa.func.min(Person.account_id)).where(Person.email_key == "liu.yang@weilai.example.cn").scalar_subquery()))
    assert (person.name, person.company_role, person.password_hash, person.oidc_linked_at) == (
        "刘洋", CompanyRole.legal_representative, None, MONDAY_0900)
    assert "上海硅巷未来科技有限公司" in client.get("/company").get_data(as_text=True)
    # The next unified login finds the person it made: straight to the portal.
    client.post("/sign-out", data={"csrf_token": token_of(client, "/company")})
    again = unified_login(client, idp_url, "liu")
    assert again.status_code == 303 and again.headers["Location"] == "/portal/requests"


def test_what_the_unified_login_vouched_for_lasts_half_an_hour(client, session, clock, idp_url):
    assert unified_login(client, idp_url, "liu").headers["Location"] == "/register"
    clock.advance(dt.timedelta(minutes=31))
    page = client.get("/register").get_data(as_text=True)
    assert "readonly" not in page and 'name="password"' in page and UNREGISTERED not in page
    answer = register(client, password="")  # now it is an ordinary registration, which needs a password
    assert answer.status_code == 422 and 'id="password-error"' in answer.get_data(as_text=True)


def test_an_agent_of_an_unregistered_company_is_told_to_have_it_registered_not_sent_to_register(
        client, session, clock, idp_url):
    back = unified_login(client, idp_url, "agent")
    assert back.status_code == 401 and "请由企业的法定代表人先注册企业" in back.get_data(as_text=True)
    assert 'id="r-uscc"' in client.get("/register").get_data(as_text=True)
    assert 'readonly' not in client.get("/register").get_data(as_text=True)  # nothing vouched for


# -- the company page -----------------------------------------------------------------------------


def test_a_verified_startup_and_a_rejected_one_with_the_staff_reason(client, session, clock, app):
    founder, startup_id = founder_of(client, session, 7310, "a@verified.example.cn", verified=True)
    page = client.get("/company").get_data(as_text=True)
    assert re.search(r'id="startup-status">已核验<', page) and 'id="pending-banner"' not in page
    assert "核验时间" in page

    other = app.test_client()
    _, rejected_id = founder_of(other, session, 7311, "b@rejected.example.cn")
    staff, _, _ = accounts.create_user(session, Role.staff, "沈慧")
    accounts.reject_startup(session, staff, rejected_id, "营业执照与信用代码不一致", MONDAY_0900)
    page = other.get("/company").get_data(as_text=True)
    assert re.search(r'id="startup-status">已驳回<', page)
    assert re.search(r'id="rejection-reason">营业执照与信用代码不一致<', page) and "驳回了这份登记" in page


def test_a_manager_invites_an_administrator_and_an_agent_through_the_outbox(client, session, clock):
    founder, startup_id = founder_of(client, session, 7320, "lead@company.example.cn")
    sent = client.post("/company/invitations", data={"email": "li.xiang@company.example.cn", "name": "李想",
                                                     "company_role": "administrator", "csrf_token": token_of(client, "/company")})
    assert sent.status_code == 303 and sent.headers["Location"] == "/company?done=invited"
    invitation = session.scalar(sa.select(Invitation).where(Invitation.email == "li.xiang@company.example.cn"))
    assert (invitation.startup_id, invitation.company_role, invitation.invited_by_id) == (
        startup_id, CompanyRole.administrator, founder.account_id)
    email = session.scalar(sa.select(OutboxEmail).where(OutboxEmail.to_address == "li.xiang@company.example.cn"))
    assert "/invitations/" in email.body and "上海测试7320科技有限公司" in email.body
    page = client.get("/company?done=invited").get_data(as_text=True)
    assert "已发送邀请" in page and f'id="invitation-{invitation.id}"' in page and "lead@company.example.cn" in page

    agent = client.post("/company/invitations", data={
        "email": "zhao.jing@company.example.cn", "company_role": "agent", "scopes": ["requests", "appeals"],
        "agent_until": "2027-06-30", "csrf_token": token_of(client, "/company")})
    assert agent.status_code == 303
    invited = session.scalar(sa.select(Invitation).where(Invitation.email == "zhao.jing@company.example.cn"))
    assert invited.scopes == ["appeals", "requests"]
    assert invited.agent_expires_at == dt.datetime(2027, 6, 30, 16, 0, tzinfo=dt.timezone.utc)  # the day's end in Shanghai

    before = session.scalar(sa.select(sa.func.count(Invitation.id)))
    for data, field, words in (
        ({"email": "wu@company.example.cn", "company_role": "agent", "agent_until": "2027-06-30"}, "scopes", "至少选择一项"),
        ({"email": "wu@company.example.cn", "company_role": "agent", "scopes": ["requests"]}, "agent_expires_at", "截止日期"),
        ({"email": "wu@company", "company_role": "administrator"}, "email", "请填写有效的邮箱"),
        ({"email": "lead@company.example.cn", "company_role": "administrator"}, "email", "已属于平台上的一位人员"),
        ({"email": "wu@company.example.cn", "company_role": "legal_representative"}, "company_role", "请选择管理员或经办人"),
        ({"email": "wu@company.example.cn", "company_role": "owner"}, "company_role", "请选择管理员或经办人"),
    ):
        refused = client.post("/company/invitations", data={**data, "csrf_token": token_of(client, "/company")})
        assert refused.status_code == 422, (data, refused.status_code)
        assert re.search(rf'id="invite-{field}-error">[^<]*{words}', refused.get_data(as_text=True)), data
    assert session.scalar(sa.select(sa.func.count(Invitation.id))) == before

    revoked = client.post(f"/company/invitations/{invitation.id}/revoke", data={"csrf_token": token_of(client, "/company")})
    assert revoked.status_code == 303 and revoked.headers["Location"] == "/company?done=revoked"
    assert f'id="invitation-{invitation.id}"' not in client.get("/company").get_data(as_text=True)


def test_a_plain_member_sees_the_people_without_the_buttons_and_is_refused(client, session, clock, app):
    founder, startup_id = founder_of(client, session, 7330, "lead@member.example.cn")
    _, link = people.invite(session, founder, "agent@member.example.cn", MONDAY_0900, "http://localhost",
                            company_role=CompanyRole.agent, scopes=["requests"],
                            agent_expires_at=MONDAY_0900 + dt.timedelta(days=90))
    people.accept_invitation(session, link.rsplit("/", 1)[1], "张伟", PASSWORD, MONDAY_0900)
    pending, _ = people.invite(session, founder, "later@member.example.cn", MONDAY_0900, "http://localhost",
                               company_role=CompanyRole.administrator)
    member = app.test_client()
    assert sign_in(member, "agent@member.example.cn", PASSWORD).status_code == 303
    page = member.get("/company").get_data(as_text=True)
    assert "lead@member.example.cn" in page and "later@member.example.cn" in page and "经办人" in page
    assert "资源申请" in page  # the agent's scope, in words
    assert 'id="not-manager"' in page and 'id="invite-heading"' not in page
    assert "/deactivate" not in page and "/revoke" not in page
    token = token_of(member, "/company")
    assert member.post("/company/invitations", data={"email": "x@member.example.cn", "company_role": "administrator",
                                                     "csrf_token": token}).status_code == 403
    assert member.post(f"/company/people/{founder.id}/deactivate", data={"csrf_token": token}).status_code == 403
    assert member.post(f"/company/invitations/{pending.id}/revoke", data={"csrf_token": token}).status_code == 403
    session.expire_all()
    assert founder.status is PersonStatus.active and pending.expires_at > MONDAY_0900


def test_a_manager_deactivates_a_colleague_but_another_companys_person_gets_404(client, session, clock, app):
    founder, _ = founder_of(client, session, 7340, "lead@mine.example.cn")
    _, link = people.invite(session, founder, "admin@mine.example.cn", MONDAY_0900, "http://localhost",
                            company_role=CompanyRole.administrator)
    colleague = people.accept_invitation(session, link.rsplit("/", 1)[1], "李想", PASSWORD, MONDAY_0900)
    pending, _ = people.invite(session, founder, "later@mine.example.cn", MONDAY_0900, "http://localhost",
                               company_role=CompanyRole.administrator)
    stranger = app.test_client()
    founder_of(stranger, session, 7341, "lead@theirs.example.cn")
    token = token_of(stranger, "/company")
    assert stranger.post(f"/company/people/{colleague.id}/deactivate", data={"csrf_token": token}).status_code == 404
    assert stranger.post(f"/company/invitations/{pending.id}/revoke", data={"csrf_token": token}).status_code == 404
    assert "admin@mine.example.cn" not in stranger.get("/company").get_data(as_text=True)
    session.expire_all()
    assert colleague.status is PersonStatus.active

    last = client.post(f"/company/people/{colleague.id}/deactivate", data={"csrf_token": token_of(client, "/company")})
    assert last.status_code == 409 and "这是企业最后一位在用的管理员" in last.get_data(as_text=True)
    _, link = people.invite(session, founder, "agent@mine.example.cn", MONDAY_0900, "http://localhost",
                            company_role=CompanyRole.agent, scopes=["requests"],
                            agent_expires_at=MONDAY_0900 + dt.timedelta(days=30))
    agent = people.accept_invitation(session, link.rsplit("/", 1)[1], "张伟", PASSWORD, MONDAY_0900)
    done = client.post(f"/company/people/{agent.id}/deactivate", data={"csrf_token": token_of(client, "/company")})
    assert done.status_code == 303 and done.headers["Location"] == "/company?done=deactivated"
    session.expire_all()
    assert agent.status is PersonStatus.deactivated and colleague.status is PersonStatus.active
    page = client.get("/company?done=deactivated").get_data(as_text=True)
    assert "此人已停用" in page and re.search(rf'<tr id="person-{agent.id}">[\s\S]*?已停用', page)
    again = client.post(f"/company/people/{agent.id}/deactivate", data={"csrf_token": token_of(client, "/company")})
    assert again.status_code == 409 and "此人已经停用" in again.get_data(as_text=True)


def test_a_carrier_person_sees_its_own_people_and_staff_get_403(client, session, clock, app, make_actor):
    carrier = make_actor(Role.carrier, code="unicomsh")
    session.execute(sa.update(Carrier).where(Carrier.id == carrier.carrier_id).values(uscc=make_uscc(7350)))
    person = people.find_or_link(session, make_uscc(7350), "zhao.qiang@unicom.example.cn", "赵强", "legal_representative",
                                 MONDAY_0900)
    person.password_hash = passwords.hash_password(PASSWORD)
    session.commit()
    founder_of(app.test_client(), session, 7351, "lead@startup.example.cn")
    assert sign_in(client, "zhao.qiang@unicom.example.cn", PASSWORD).status_code == 303
    page = client.get("/company").get_data(as_text=True)
    assert "unicomsh" in page and make_uscc(7350) in page and "赵强" in page and "法定代表人" in page
    assert "lead@startup.example.cn" not in page and 'id="startup-status"' not in page
    assert 'href="/company" aria-current="page">人员与令牌<' in page  # the carrier page's nav

    staff = app.test_client()
    people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)
    assert sign_in(staff, "shen.hui@changning.example.gov.cn", PASSWORD).status_code == 303
    assert staff.get("/company").status_code == 403
    assert staff.post("/company/invitations", data={"email": "x@y.cn", "company_role": "administrator",
                                                    "csrf_token": token_of(staff, "/me")}).status_code == 403
    assert app.test_client().get("/company").headers["Location"].startswith("/sign-in?next=/company")


def test_the_company_page_in_english_and_its_statements_do_not_grow_with_its_people(client, session, clock, app):
    founder, _ = founder_of(client, session, 7360, "lead@english.example.cn")
    few = len(statements_sent(app, client, "/company"))
    for n in range(6):
        _, link = people.invite(session, founder, f"p{n}@english.example.cn", MONDAY_0900, "http://localhost",
                                company_role=CompanyRole.agent, scopes=["requests"],
                                agent_expires_at=MONDAY_0900 + dt.timedelta(days=30))
        if n % 2:
            people.accept_invitation(session, link.rsplit("/", 1)[1], f"人员{n}", PASSWORD, MONDAY_0900)
    assert len(statements_sent(app, client, "/company")) == few
    client.post("/language", data={"language": "en", "next": "/company", "csrf_token": token_of(client, "/company")})
    page = client.get("/company").get_data(as_text=True)
    assert re.search(r'id="startup-status">Awaiting verification<', page) and "Requests can be submitted once" in page
    assert "Invite a colleague" in page and "Legal representative" in page and "陈晨" in page
