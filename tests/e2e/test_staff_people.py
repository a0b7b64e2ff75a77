"""People (人员) through the test client on the real database: the district's people and pending
invitations listed, paged and searched; an invitation sent through the outbox and accepted at its
link by someone who can then sign in; a bad or taken email re-shown by its field with nothing
made; staff refused when inviting an admin; an invitation withdrawn; a person deactivated after
the confirmation page (their session ends), oneself and the last admin refused. A company's
person gets 403, an unknown id 404."""

from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from broker import outbox
from broker.models import AuditEntry, Invitation, OutboxEmail, Person, PersonStatus, Role
from broker.services import accounts, passwords, people
from broker.web import session as console_session
from tests.conftest import startup_payload, statements_sent
from tests.e2e.test_console_sign_in import sign_in, token_of

PASSWORD = "长宁区硅巷-人员管理-2026"
MONDAY_0900 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Shanghai


@pytest.fixture(autouse=True)
def cheap_hasher():
    """Fast argon2id parameters: these tests make many people."""
    old = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    passwords.use_hasher(old)


@pytest.fixture
def admin(client, session, frozen_clock):
    frozen_clock(MONDAY_0900)
    person = people.create_district_person(session, "wang.fang@changning.example.gov.cn", "王芳", Role.admin, PASSWORD)
    assert sign_in(client, person.email, PASSWORD).status_code == 303
    return person


def district_person(session, email: str, name: str, role: Role = Role.staff) -> Person:
    return people.create_district_person(session, email, name, role, PASSWORD)


def counts(session) -> tuple[int, int, int]:
    session.expire_all()
    return tuple(session.scalar(sa.select(sa.func.count(model.id))) for model in (Person, Invitation, OutboxEmail))


def post(client, path: str, data: dict | None = None):
    return client.post(path, data={"csrf_token": token_of(client, "/"), **(data or {})})


def status_of(session, person_id: int) -> PersonStatus:
    session.expire_all()
    return session.get(Person, person_id).status


def test_the_page_lists_the_districts_people_and_pending_invitations(client, session, admin):
    staff = district_person(session, "li.na@changning.example.gov.cn", "李娜")
    people.sign_in(session, staff.email, PASSWORD, MONDAY_0900 + dt.timedelta(minutes=5))
    people.invite(session, admin, "gu.min@changning.example.gov.cn", MONDAY_0900, "http://localhost",
                  name="顾敏", role=Role.staff)
    startup, _, _ = accounts.register_startup(session, startup_payload(931, parse=True))
    people.find_or_link(session, startup.uscc, "fa.ren@example.cn", "法人张", "legal_representative", MONDAY_0900)
    page = client.get("/staff/people")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "王芳" in text and "平台管理员" in text and "（本人）" in text
    assert "李娜" in text and "区科委工作人员" in text and "在用" in text
    assert "2026年11月30日 09:05" in text  # 李娜's sign-in in Asia/Shanghai
    assert "法人张" not in text  # a company's people are not the district's
    row = re.search(r'<tr id="invitation-\d+">(.*?)</tr>', text, re.S).group(1)
    assert "gu.min@changning.example.gov.cn" in row and "顾敏" in row and "王芳" in row  # invited by
    assert "2026年12月3日 09:00" in row  # 72 hours, in Shanghai time
    assert f'href="/staff/people/{staff.id}/deactivate"' in text
    assert f'href="/staff/people/{admin.id}/deactivate"' not in text  # no button to deactivate oneself


def test_fifty_a_page_and_a_search(client, session, admin):
    for n in range(55):
        district_person(session, f"staff{n:02d}@changning.example.gov.cn", f"同事{n:02d}")
    first = client.get("/staff/people").get_data(as_text=True)
    assert first.count('<tr id="person-') == 50 and "共 56 人，第 1 / 2 页" in first
    second = client.get("/staff/people?page=2").get_data(as_text=True)
    assert second.count('<tr id="person-') == 6
    found = client.get("/staff/people?q=STAFF0").get_data(as_text=True)
    assert found.count('<tr id="person-') == 10 and "同事07" in found and "同事17" not in found
    assert "没有找到" in client.get("/staff/people?q=%25_").get_data(as_text=True)  # LIKE wildcards taken literally


def test_an_invitation_goes_through_the_outbox_and_its_link_makes_a_person_who_signs_in(
    app, client, session, admin, tmp_path, monkeypatch
):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))  # the outbox's folder, this test's own
    sent = post(client, "/staff/people/invite",
                {"email": "zhou.min@changning.example.gov.cn", "name": "周敏", "role": "staff"})
    assert sent.status_code == 303 and sent.headers["Location"] == "/staff/people"
    page = client.get("/staff/people").get_data(as_text=True)
    assert "已发送邀请" in page and 'href="/dev/outbox"' in page
    assert "zhou.min@changning.example.gov.cn" in page
    assert "已发送邀请" not in client.get("/staff/people").get_data(as_text=True)  # shown once
    invitation = session.scalar(sa.select(Invitation).where(Invitation.email == "zhou.min@changning.example.gov.cn"))
    assert invitation.role is Role.staff and invitation.invited_by_id == admin.account_id
    outbox.deliver_pending(session, outbox.MailSettings.from_config(app.config, app.instance_path), MONDAY_0900)
    emails = html.unescape(client.get("/dev/outbox").get_data(as_text=True))
    link = re.search(r"https?://[^\s<]+/invitations/[A-Za-z0-9_\-]+", emails).group(0)
    path = urlsplit(link).path
    newcomer = app.test_client()
    accepted = newcomer.post(path, data={"name": "周敏", "password": PASSWORD, "csrf_token": token_of(newcomer, path)})
    assert accepted.status_code == 303 and accepted.headers["Location"] == "/me"
    other = app.test_client()
    assert sign_in(other, "zhou.min@changning.example.gov.cn", PASSWORD).status_code == 303
    assert other.get("/staff/people").status_code == 200  # staff now
    assert 'id="invitation-' not in client.get("/staff/people").get_data(as_text=True)  # accepted: no longer pending


@pytest.mark.parametrize("email", ["zhou.min", "", "zhou.min@", "zhou min@changning.gov.cn", "zhou.min@changning", "a@b@c.cn",
                                   "zhou.min@" + "x" * 260 + ".cn"])
def test_a_bad_email_is_shown_by_its_field_and_nothing_is_made(client, session, admin, email):
    before = counts(session)
    refused = post(client, "/staff/people/invite", {"email": email, "name": "周敏", "role": "staff"})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert 'id="invite-email-error"' in text and "请填写有效的邮箱地址" in text
    assert 'aria-invalid="true"' in text and 'value="周敏"' in text  # what was typed comes back
    assert counts(session) == before


def test_an_existing_persons_email_is_refused_by_its_field_and_nothing_is_made(client, session, admin):
    district_person(session, "li.na@changning.example.gov.cn", "李娜")
    before = counts(session)
    refused = post(client, "/staff/people/invite", {"email": " Li.Na@Changning.example.gov.cn ", "role": "staff"})
    assert refused.status_code == 422
    assert "该邮箱已属于平台上的一位人员" in refused.get_data(as_text=True)
    assert counts(session) == before


def test_staff_may_not_invite_an_admin_and_an_unknown_role_is_refused(client, session, frozen_clock):
    frozen_clock(MONDAY_0900)
    staff = district_person(session, "li.na@changning.example.gov.cn", "李娜")
    assert sign_in(client, staff.email, PASSWORD).status_code == 303
    before = counts(session)
    refused = post(client, "/staff/people/invite", {"email": "boss@changning.example.gov.cn", "role": "admin"})
    assert refused.status_code == 403
    assert "只有平台管理员可以邀请平台管理员" in refused.get_data(as_text=True)
    odd = post(client, "/staff/people/invite", {"email": "boss@changning.example.gov.cn", "role": "root"})
    assert odd.status_code == 422 and 'id="invite-role-error"' in odd.get_data(as_text=True)
    assert counts(session) == before


def test_an_invitation_is_withdrawn_and_its_link_stops_working(client, session, admin):
    invitation, link = people.invite(session, admin, "gu.min@changning.example.gov.cn", MONDAY_0900,
                                     "http://localhost", role=Role.staff)
    withdrawn = post(client, f"/staff/people/invitations/{invitation.id}/revoke")
    assert withdrawn.status_code == 303
    page = client.get("/staff/people").get_data(as_text=True)
    assert "已撤回对 gu.min@changning.example.gov.cn 的邀请" in page and f'id="invitation-{invitation.id}"' not in page
    assert client.get(urlsplit(link).path).status_code == 404
    again = post(client, f"/staff/people/invitations/{invitation.id}/revoke")
    assert again.status_code == 409 and "该邀请已被接受、撤回或已过期" in again.get_data(as_text=True)
    assert post(client, "/staff/people/invitations/999999/revoke").status_code == 404
    assert session.scalar(sa.select(AuditEntry.actor_id).where(
        AuditEntry.entity_type == "invitations", AuditEntry.action == "revoke")) == admin.account_id


def test_a_person_is_deactivated_after_confirming_and_their_session_ends(app, client, session, admin):
    staff = district_person(session, "li.na@changning.example.gov.cn", "李娜")
    theirs = app.test_client()
    assert sign_in(theirs, staff.email, PASSWORD).status_code == 303
    assert theirs.get("/staff").status_code == 200
    confirm = client.get(f"/staff/people/{staff.id}/deactivate")
    assert confirm.status_code == 200
    assert "李娜" in confirm.get_data(as_text=True) and "确认停用" in confirm.get_data(as_text=True)
    assert status_of(session, staff.id) is PersonStatus.active  # the confirmation page changes nothing
    done = post(client, f"/staff/people/{staff.id}/deactivate")
    assert done.status_code == 303
    assert "已停用 李娜" in client.get("/staff/people").get_data(as_text=True)
    assert status_of(session, staff.id) is PersonStatus.deactivated
    assert theirs.get("/staff").headers["Location"].startswith("/sign-in")  # their session ended
    assert sign_in(theirs, staff.email, PASSWORD).status_code == 401
    again = post(client, f"/staff/people/{staff.id}/deactivate")
    assert again.status_code == 409 and "该人员已经停用" in again.get_data(as_text=True)


def test_one_does_not_deactivate_oneself_nor_the_last_admin(client, session, admin):
    alone = post(client, f"/staff/people/{admin.id}/deactivate")
    assert alone.status_code == 409
    assert "这是平台唯一在用的管理员" in alone.get_data(as_text=True)
    district_person(session, "zhao.lei@changning.example.gov.cn", "赵磊", Role.admin)
    myself = post(client, f"/staff/people/{admin.id}/deactivate")
    assert myself.status_code == 409 and "不能停用自己的账号" in myself.get_data(as_text=True)
    assert status_of(session, admin.id) is PersonStatus.active


def test_staff_do_not_deactivate_an_admin(app, client, session, admin):
    staff = district_person(session, "li.na@changning.example.gov.cn", "李娜")
    theirs = app.test_client()
    assert sign_in(theirs, staff.email, PASSWORD).status_code == 303
    assert f'href="/staff/people/{admin.id}/deactivate"' not in theirs.get("/staff/people").get_data(as_text=True)
    refused = theirs.post(f"/staff/people/{admin.id}/deactivate", data={"csrf_token": token_of(theirs, "/staff/people")})
    assert refused.status_code == 409 and "只有平台管理员可以停用平台管理员" in refused.get_data(as_text=True)
    assert status_of(session, admin.id) is PersonStatus.active


def test_unknown_ids_are_404(client, session, admin):
    assert client.get("/staff/people/999999/deactivate").status_code == 404
    assert post(client, "/staff/people/999999/deactivate").status_code == 404
    assert client.get("/staff/people?page=abc").status_code == 200  # a page that does not parse: the first


def test_a_company_person_gets_403_and_nobody_signed_in_the_sign_in_page(app, client, session, frozen_clock):
    frozen_clock(MONDAY_0900)
    staff = district_person(session, "li.na@changning.example.gov.cn", "李娜")
    assert client.get("/staff/people").headers["Location"].startswith("/sign-in?next=/staff/people")
    startup, _, _ = accounts.register_startup(session, startup_payload(932, parse=True))
    person = people.find_or_link(session, startup.uscc, "fa.ren@example.cn", "王芳", "legal_representative", MONDAY_0900)
    with app.test_request_context():
        console_session.start(person.id)
        cookie = dict(__import__("flask").session)
    with client.session_transaction() as stored:
        stored.update(cookie)
    before = counts(session)
    assert client.get("/staff/people").status_code == 403
    assert client.get(f"/staff/people/{staff.id}/deactivate").status_code == 403
    assert post(client, f"/staff/people/{staff.id}/deactivate").status_code == 403
    assert post(client, "/staff/people/invite", {"email": "x@changning.example.gov.cn", "role": "staff"}).status_code == 403
    assert counts(session) == before and status_of(session, staff.id) is PersonStatus.active


def test_the_page_in_english(client, session, admin):
    client.set_cookie("broker_lang", "en")
    page = client.get("/staff/people").get_data(as_text=True)
    assert "<h1>People</h1>" in page and "Platform administrator" in page and "Send invitation" in page


def test_the_page_costs_the_same_statements_for_three_people_or_sixty(app, client, session, admin):
    for n in range(2):
        district_person(session, f"staff{n:02d}@changning.example.gov.cn", f"同事{n:02d}")
        people.invite(session, admin, f"new{n:02d}@changning.example.gov.cn", MONDAY_0900, "http://localhost", role=Role.staff)
    small = statements_sent(app, client, "/staff/people")
    for n in range(2, 60):
        district_person(session, f"staff{n:02d}@changning.example.gov.cn", f"同事{n:02d}")
        people.invite(session, admin, f"new{n:02d}@changning.example.gov.cn", MONDAY_0900, "http://localhost", role=Role.staff)
    large = statements_sent(app, client, "/staff/people")
    assert len(large) == len(small), "the page's statements grew with the district: an N+1 is back"
    selects = [statement for statement in small if statement.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 5, selects  # the signed-in person, their account, the count, the page, the invitations
