"""People: password sign-in with lockout, OIDC linking, invitations, deactivation, password reset,
a person's own API tokens, and the audit entries each leaves. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from broker.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound, TooManyAttempts
from broker.models import (
    AgentScope,
    ApiToken,
    AuditEntry,
    CompanyRole,
    Invitation,
    OutboxEmail,
    Person,
    Role,
    Side,
    SignInAttempt,
    SignInOutcome,
)
from broker.services import accounts, passwords, people
from broker.services.passwords import PASSWORD_MESSAGES, PasswordRefused
from tests.conftest import make_uscc, startup_payload

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
BASE = "http://console.test"
PASSWORD = "a long and unusual passphrase"


@pytest.fixture(autouse=True)
def cheap_hasher():
    """Fast argon2id parameters for the suite; the production ones are tested on their own."""
    old = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    passwords.use_hasher(old)


@pytest.fixture
def staff(session):
    return people.create_district_person(session, "Staff.One@District.gov.cn", "张伟", Role.staff, PASSWORD)


@pytest.fixture
def admin(session):
    return people.create_district_person(session, "admin@district.gov.cn", "王芳", Role.admin, PASSWORD)


def _token_of(link: str, path: str) -> str:
    assert link.startswith(BASE + path), link
    return link[len(BASE + path):]


@pytest.fixture
def startup(session):
    startup, _, _ = accounts.register_startup(session, startup_payload(901, parse=True))
    return startup


def _company_admin(session, staff, startup, email="admin@startup.cn", name="李娜"):
    _, link = people.invite(session, staff, email, NOW, BASE, company_role=CompanyRole.administrator,
                            startup_id=startup.id)
    return people.accept_invitation(session, _token_of(link, people.INVITATION_PATH), name, PASSWORD, NOW)


# --- sign-in -------------------------------------------------------------------------------


def test_a_person_signs_in_with_the_email_in_any_case_and_acts_through_their_own_account(session, staff):
    person = people.sign_in(session, "  staff.one@DISTRICT.gov.cn ", PASSWORD, NOW, "password 127.0.0.1")
    assert person.id == staff.id and person.last_sign_in_at == NOW
    assert person.account.role is Role.staff and person.account.name == "张伟"
    attempt = session.scalar(sa.select(SignInAttempt).where(SignInAttempt.person_id == staff.id))
    assert attempt.outcome is SignInOutcome.success and attempt.source == "password 127.0.0.1"
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "sign_in_attempts",
                                                       AuditEntry.entity_id == attempt.id))
    assert entry.action == "sign_in" and entry.actor_id == staff.account_id


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer_in_comparable_time(session, staff):
    def timed(email):
        start = time.perf_counter()
        with pytest.raises(NotAuthenticated) as refused:
            people.sign_in(session, email, "not the right password", NOW)
        return refused.value.message, time.perf_counter() - start

    passwords.use_hasher(PasswordHasher())  # real parameters, so a skipped hash would show
    with pytest.raises(NotAuthenticated):
        people.sign_in(session, "warm-up@example.cn", "warm the dummy hash up", NOW)
    known = [timed("staff.one@district.gov.cn") for _ in range(3)]
    unknown = [timed("nobody@example.cn") for _ in range(3)]
    assert {message for message, _ in known + unknown} == {people.WRONG_CREDENTIALS}
    fastest_known, fastest_unknown = min(t for _, t in known), min(t for _, t in unknown)
    assert fastest_unknown > fastest_known / 3, (known, unknown)  # a dummy hash was checked


def test_an_unknown_email_is_recorded_and_audited_without_a_person(session):
    with pytest.raises(NotAuthenticated):
        people.sign_in(session, "Nobody@Example.cn", "whatever it may be", NOW, "password 10.0.0.9")
    attempt = session.scalar(sa.select(SignInAttempt).where(SignInAttempt.email == "Nobody@Example.cn"))
    assert attempt.person_id is None and attempt.outcome is SignInOutcome.unknown_email
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "sign_in_attempts",
                                                       AuditEntry.entity_id == attempt.id))
    assert entry.action == "sign_in_failed" and entry.after["email"] == "Nobody@Example.cn"
    assert entry.after["outcome"] == "unknown_email"


def test_five_failures_lock_the_person_out_with_a_doubling_back_off_even_for_the_right_password(
    session, staff, frozen_clock
):
    clock = frozen_clock(NOW)
    for _ in range(4):
        with pytest.raises(NotAuthenticated):
            people.sign_in(session, staff.email, "wrong wrong wrong", clock())
    with pytest.raises(TooManyAttempts) as locked:
        people.sign_in(session, staff.email, "wrong wrong wrong", clock())
    assert locked.value.retry_at == NOW + dt.timedelta(minutes=1)
    assert "2026-12-01 10:01:00 (Asia/Shanghai)" in locked.value.message
    clock.advance(dt.timedelta(seconds=59))
    with pytest.raises(TooManyAttempts):
        people.sign_in(session, staff.email, PASSWORD, clock())  # the right one, still locked
    clock.advance(dt.timedelta(seconds=1))
    with pytest.raises(TooManyAttempts) as locked:  # a sixth failure: two minutes
        people.sign_in(session, staff.email, "wrong wrong wrong", clock())
    assert locked.value.retry_at == clock() + dt.timedelta(minutes=2)
    clock.advance(dt.timedelta(minutes=2))
    with pytest.raises(TooManyAttempts) as locked:  # a seventh: four
        people.sign_in(session, staff.email, "wrong wrong wrong", clock())
    assert locked.value.retry_at == clock() + dt.timedelta(minutes=4)
    clock.advance(dt.timedelta(minutes=4))
    person = people.sign_in(session, staff.email, PASSWORD, clock())
    assert person.failed_sign_ins == 0 and person.locked_until is None
    outcomes = session.scalars(sa.select(SignInAttempt.outcome).where(SignInAttempt.person_id == staff.id)
                               .order_by(SignInAttempt.id)).all()
    assert outcomes == [SignInOutcome.wrong_password] * 5 + [SignInOutcome.locked] + [SignInOutcome.wrong_password] * 2 + [
        SignInOutcome.success]
    # A success resets the count: four more failures do not lock.
    for _ in range(4):
        with pytest.raises(NotAuthenticated):
            people.sign_in(session, staff.email, "wrong wrong wrong", clock())


def test_an_unknown_email_is_locked_out_as_a_person_would_be_so_a_lockout_tells_nothing(session, staff, frozen_clock):
    clock = frozen_clock(NOW)

    def answers(email):
        said = []
        for step in range(7):
            try:
                people.sign_in(session, email, "wrong wrong wrong", clock())
            except TooManyAttempts as locked:
                said.append(("locked", locked.retry_at - clock()))
            except NotAuthenticated as refused:
                said.append(("wrong", refused.message))
            clock.advance(dt.timedelta(seconds=30))
        clock.set(NOW)
        return said

    known, unknown = answers(staff.email), answers("Nobody@Example.cn")
    assert known == unknown, (known, unknown)
    assert [kind for kind, _ in known] == ["wrong"] * 4 + ["locked"] * 3
    outcomes = session.scalars(sa.select(SignInAttempt.outcome).where(SignInAttempt.email_key == "nobody@example.cn")
                               .order_by(SignInAttempt.id)).all()
    # The fifth failure locks for a minute; at the minute a sixth counts and locks for two.
    assert outcomes == [SignInOutcome.unknown_email] * 5 + [SignInOutcome.locked, SignInOutcome.unknown_email]
    assert [wait for _, wait in known[4:]] == [dt.timedelta(minutes=1), dt.timedelta(seconds=30), dt.timedelta(minutes=2)]


def test_the_back_off_doubles_up_to_an_hour():
    assert [people.lockout_for(n) for n in (1, 4)] == [None, None]
    assert [people.lockout_for(n).total_seconds() / 60 for n in (5, 6, 7, 8, 9, 10, 11, 12, 30)] == [
        1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_a_deactivated_person_cannot_sign_in(session, staff, admin):
    people.deactivate_person(session, admin, staff.id, NOW)
    with pytest.raises(NotAuthenticated) as refused:
        people.sign_in(session, staff.email, PASSWORD, NOW)
    assert refused.value.message == people.DEACTIVATED
    with pytest.raises(NotAuthenticated):
        people.sign_in_verified(session, staff, NOW)
    assert people.get_active_person(session, staff.id, NOW) is None


def test_a_changed_hasher_rehashes_the_password_at_the_next_sign_in(session, staff):
    old_hash = staff.password_hash
    passwords.use_hasher(PasswordHasher())  # argon2-cffi's defaults: RFC 9106, argon2id
    person = people.sign_in(session, staff.email, PASSWORD, NOW)
    assert person.password_hash != old_hash and person.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert people.sign_in(session, staff.email, PASSWORD, NOW).password_hash == person.password_hash
    audit = session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_type == "people")).all()
    assert all("password_hash" not in (entry.after or {}) for entry in audit)


# --- passwords -----------------------------------------------------------------------------


@pytest.mark.parametrize("password, key", [
    ("short-pass1", "password_too_short"),
    ("Password1234", "password_too_common"),  # in the list as password1234
    ("QWERTY123456", "password_too_common"),
    ("1qaz2wsx3edc", "password_too_common"),
])
def test_short_and_common_passwords_are_refused_naming_the_field(password, key):
    with pytest.raises(PasswordRefused) as refused:
        passwords.check_password(password)
    assert refused.value.key == key and isinstance(refused.value, InvalidInput)
    assert refused.value.errors == {"password": [PASSWORD_MESSAGES[key]["en"]]}
    assert refused.value.messages["zh_CN"] and refused.value.messages["en"]


def test_the_vendored_list_holds_the_common_passwords():
    common = passwords.common_passwords()
    assert len(common) > 19_000 and {"123456", "password", "qwerty"} <= common
    passwords.check_password(PASSWORD)


def test_an_invitation_with_a_common_password_is_refused_and_stays_usable(session, staff):
    _, link = people.invite(session, staff, "new@district.gov.cn", NOW, BASE, role=Role.staff)
    token = _token_of(link, people.INVITATION_PATH)
    with pytest.raises(PasswordRefused) as refused:
        people.accept_invitation(session, token, "赵磊", "1234567890123", NOW)
    assert "password" in refused.value.errors
    assert people.accept_invitation(session, token, "赵磊", PASSWORD, NOW).email == "new@district.gov.cn"


# --- invitations ---------------------------------------------------------------------------


def test_an_invitation_is_emailed_stored_hashed_and_used_once(session, staff):
    invitation, link = people.invite(session, staff, "Newcomer@District.gov.cn", NOW, BASE, role=Role.staff, name="赵磊")
    token = _token_of(link, people.INVITATION_PATH)
    assert invitation.token_hash != token and token not in invitation.token_hash
    email = session.scalar(sa.select(OutboxEmail).where(OutboxEmail.to_address == "Newcomer@District.gov.cn"))
    assert link in email.body and "邀请" in email.body and "invited you" in email.body
    assert email.body.index("邀请") < email.body.index("invited you")  # Chinese first, English below
    assert "2026-12-04 10:00" in email.body  # 72 hours, in Shanghai time
    person = people.accept_invitation(session, token, "", PASSWORD, NOW + dt.timedelta(hours=71))
    assert person.name == "赵磊" and person.role is Role.staff and person.side is Side.district
    assert people.sign_in(session, "newcomer@district.gov.cn", PASSWORD, NOW).id == person.id
    with pytest.raises(NotFound) as refused:
        people.accept_invitation(session, token, "someone else", PASSWORD, NOW)
    assert refused.value.message == people.BAD_LINK
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "invitations",
                                                       AuditEntry.action == "accept"))
    assert entry.actor_id == person.account_id


def test_an_invitation_expires_after_72_hours(session, staff):
    _, link = people.invite(session, staff, "late@district.gov.cn", NOW, BASE, role=Role.staff)
    with pytest.raises(NotFound):
        people.accept_invitation(session, _token_of(link, people.INVITATION_PATH), "迟到", PASSWORD,
                                 NOW + dt.timedelta(hours=72))
    with pytest.raises(NotFound):
        people.accept_invitation(session, "made-up-token", "迟到", PASSWORD, NOW)


def test_only_an_admin_invites_an_admin(session, staff, admin):
    with pytest.raises(Forbidden):
        people.invite(session, staff, "boss@district.gov.cn", NOW, BASE, role=Role.admin)
    people.invite(session, admin, "boss@district.gov.cn", NOW, BASE, role=Role.admin)


def test_staff_invite_a_companys_first_administrator_who_then_invites_its_people(session, staff, startup):
    first = _company_admin(session, staff, startup)
    assert first.account.role is Role.startup and first.account.startup_id == startup.id
    assert first.company_role is CompanyRole.administrator and first.side is Side.startup
    with pytest.raises(Forbidden):  # the company has its administrator now
        people.invite(session, staff, "second@startup.cn", NOW, BASE, company_role=CompanyRole.administrator,
                      startup_id=startup.id)
    expires = NOW + dt.timedelta(days=90)
    _, link = people.invite(session, first, "agent@startup.cn", NOW, BASE, company_role=CompanyRole.agent,
                            scopes=["requests", "subsidies"], agent_expires_at=expires)
    agent = people.accept_invitation(session, _token_of(link, people.INVITATION_PATH), "刘洋", PASSWORD, NOW)
    assert agent.scopes == ["requests", "subsidies"] and agent.agent_expires_at == expires
    assert agent.account.startup_id == startup.id and agent.account_id != first.account_id
    with pytest.raises(Forbidden):  # an agent does not invite
        people.invite(session, agent, "x@startup.cn", NOW, BASE, company_role=CompanyRole.agent,
                      scopes=["requests"], agent_expires_at=expires)
    with pytest.raises(NotAuthenticated) as refused:  # the agent's term ends
        people.sign_in(session, agent.email, PASSWORD, expires)
    assert refused.value.message == people.AGENT_EXPIRED
    assert {p.id for p in people.list_people(session, first)} == {first.id, agent.id}


def test_an_agent_needs_known_scopes_and_an_expiry(session, staff, startup):
    first = _company_admin(session, staff, startup)
    for scopes, expires in ((["requests"], None), ([], NOW + dt.timedelta(days=1)), (["fly"], NOW + dt.timedelta(days=1)),
                            (["requests"], NOW + dt.timedelta(days=400))):
        with pytest.raises(InvalidInput):
            people.invite(session, first, "agent@startup.cn", NOW, BASE, company_role=CompanyRole.agent,
                          scopes=scopes, agent_expires_at=expires)
    assert {scope.value for scope in AgentScope} >= {"requests", "allocations", "subsidies", "settings"}


def test_a_company_has_at_most_five_administrators(session, staff, startup):
    first = _company_admin(session, staff, startup)
    pending = []
    for n in range(2, 6):
        _, link = people.invite(session, first, f"admin{n}@startup.cn", NOW, BASE, company_role=CompanyRole.administrator)
        pending.append(link)
    _, sixth = people.invite(session, first, "admin6@startup.cn", NOW, BASE, company_role=CompanyRole.administrator)
    for n, link in enumerate(pending, start=2):
        people.accept_invitation(session, _token_of(link, people.INVITATION_PATH), f"管理员{n}", PASSWORD, NOW)
    with pytest.raises(Conflict, match="at most 5 administrators"):
        people.accept_invitation(session, _token_of(sixth, people.INVITATION_PATH), "管理员6", PASSWORD, NOW)
    with pytest.raises(Conflict, match="at most 5 administrators"):
        people.invite(session, first, "admin7@startup.cn", NOW, BASE, company_role=CompanyRole.administrator)


def test_an_email_is_one_person_case_insensitively(session, staff):
    with pytest.raises(Conflict):
        people.invite(session, staff, "STAFF.ONE@district.gov.cn", NOW, BASE, role=Role.staff)
    with pytest.raises(Conflict):
        people.create_district_person(session, "staff.one@district.GOV.CN", "又一个", Role.staff, PASSWORD)


def test_the_console_invites_the_first_staff_member(session):
    invitation, link = people.invite_at_console(session, "first@district.gov.cn", "首位", Role.admin, NOW, BASE)
    assert invitation.invited_by_id is None
    assert session.scalar(sa.select(sa.func.count(OutboxEmail.id))) == 0  # printed, not emailed
    person = people.accept_invitation(session, _token_of(link, people.INVITATION_PATH), "首位", PASSWORD, NOW)
    assert person.role is Role.admin
    assert session.scalar(sa.select(AuditEntry.action).where(AuditEntry.entity_type == "invitations")
                          .order_by(AuditEntry.id)) == "invite_at_console"


# --- deactivation --------------------------------------------------------------------------


def test_deactivation_never_removes_the_last_administrator_and_stays_within_the_company(session, staff, startup):
    first = _company_admin(session, staff, startup)
    with pytest.raises(Conflict, match="last administrator"):
        people.deactivate_person(session, staff, first.id, NOW)
    _, link = people.invite(session, first, "admin2@startup.cn", NOW, BASE, company_role=CompanyRole.administrator)
    second = people.accept_invitation(session, _token_of(link, people.INVITATION_PATH), "管理员二", PASSWORD, NOW)
    other, _, _ = accounts.register_startup(session, startup_payload(902, parse=True))
    outsider = _company_admin(session, staff, other, email="admin@other.cn")
    with pytest.raises(NotFound):
        people.deactivate_person(session, outsider, second.id, NOW)
    _, secret = people.create_own_token(session, second, NOW)
    deactivated = people.deactivate_person(session, first, second.id, NOW)
    assert deactivated.status.value == "deactivated" and deactivated.deactivated_at == NOW
    with pytest.raises(NotAuthenticated):
        accounts.authenticate(session, secret, NOW)  # their tokens end with them
    with pytest.raises(Conflict):
        people.deactivate_person(session, first, second.id, NOW)
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "people",
                                                       AuditEntry.action == "deactivate"))
    assert entry.actor_id == first.account_id and entry.entity_id == second.id


def test_staff_do_not_deactivate_an_admin(session, staff, admin):
    with pytest.raises(Forbidden):
        people.deactivate_person(session, staff, admin.id, NOW)


def test_a_district_person_does_not_deactivate_themselves(session, staff, admin):
    with pytest.raises(Forbidden) as refused:
        people.deactivate_person(session, staff, staff.id, NOW)
    assert refused.value.message == people.NOT_YOURSELF
    second = people.create_district_person(session, "admin2@district.gov.cn", "赵磊", Role.admin, PASSWORD)
    with pytest.raises(Forbidden):
        people.deactivate_person(session, admin, admin.id, NOW)
    assert staff.is_active and admin.is_active and second.is_active


def test_the_last_active_admin_is_never_deactivated(session, admin):
    with pytest.raises(Conflict) as refused:  # alone, the admin is the last one even to themselves
        people.deactivate_person(session, admin, admin.id, NOW)
    assert refused.value.message == people.LAST_ADMIN
    second = people.create_district_person(session, "admin2@district.gov.cn", "赵磊", Role.admin, PASSWORD)
    people.deactivate_person(session, second, admin.id, NOW)
    with pytest.raises(Conflict) as again:
        people.deactivate_person(session, second, second.id, NOW)
    assert again.value.message == people.LAST_ADMIN
    assert second.is_active and not admin.is_active


def test_an_invitation_is_withdrawn_by_whom_may_send_it_and_its_link_stops_working(session, staff, admin, startup):
    invitation, link = people.invite(session, staff, "newcomer@district.gov.cn", NOW, BASE, role=Role.staff)
    boss, _ = people.invite(session, admin, "boss@district.gov.cn", NOW, BASE, role=Role.admin)
    with pytest.raises(Forbidden):
        people.revoke_invitation(session, staff, boss.id, NOW)
    outsider = _company_admin(session, staff, startup)
    with pytest.raises(NotFound):  # another organisation's invitation does not exist for a company
        people.revoke_invitation(session, outsider, invitation.id, NOW)
    people.revoke_invitation(session, staff, invitation.id, NOW + dt.timedelta(minutes=1))
    people.revoke_invitation(session, admin, boss.id, NOW)
    with pytest.raises(NotFound):
        people.accept_invitation(session, _token_of(link, people.INVITATION_PATH), "赵磊", PASSWORD, NOW + dt.timedelta(minutes=2))
    with pytest.raises(Conflict):
        people.revoke_invitation(session, staff, invitation.id, NOW + dt.timedelta(minutes=2))
    with pytest.raises(NotFound):
        people.revoke_invitation(session, staff, 999999, NOW)
    assert people.district_people(session, staff, NOW + dt.timedelta(minutes=2)).invitations == []
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "invitations",
                                                       AuditEntry.action == "revoke").order_by(AuditEntry.id))
    assert entry.actor_id == staff.account_id and entry.entity_id == invitation.id


def test_only_district_people_read_the_districts_people(session, staff, admin, startup):
    invitation, _ = people.invite(session, staff, "newcomer@district.gov.cn", NOW, BASE, role=Role.staff)
    page = people.district_people(session, staff, NOW, search="DISTRICT.gov", limit=1)
    assert page.total == 2 and [p.id for p in page.people] == [staff.id]
    assert [(p.invitation.id, p.invited_by) for p in page.invitations] == [(invitation.id, "张伟")]
    company_admin = _company_admin(session, staff, startup)
    assert people.district_people(session, admin, NOW).total == 2  # the company's person is not the district's
    with pytest.raises(Forbidden):
        people.district_people(session, company_admin, NOW)
    with pytest.raises(NotFound):
        people.district_person(session, staff, company_admin.id)


# --- OIDC ----------------------------------------------------------------------------------


def test_oidc_creates_a_known_companys_legal_representative_and_links_known_people(session, staff, startup):
    with pytest.raises(NotFound):
        people.find_or_link(session, make_uscc(999), "ceo@startup.cn", "张总", "legal_representative", NOW)
    with pytest.raises(NotFound, match="invitation"):
        people.find_or_link(session, startup.uscc, "clerk@startup.cn", "办事员", "agent", NOW)
    legal = people.find_or_link(session, startup.uscc, "CEO@startup.cn", "张总", "legal_representative", NOW)
    assert legal.company_role is CompanyRole.legal_representative and legal.password_hash is None
    assert legal.account.startup_id == startup.id and legal.oidc_linked_at == NOW
    with pytest.raises(NotAuthenticated):  # no password: OIDC only
        people.sign_in(session, "ceo@startup.cn", PASSWORD, NOW)
    assert people.sign_in_verified(session, legal, NOW).last_sign_in_at == NOW
    attempt = session.scalar(sa.select(SignInAttempt).where(SignInAttempt.person_id == legal.id,
                                                            SignInAttempt.outcome == SignInOutcome.success))
    assert attempt.source == "oidc"
    admin = _company_admin(session, staff, startup)
    later = NOW + dt.timedelta(days=1)
    linked = people.find_or_link(session, startup.uscc, "Admin@Startup.cn", "李娜", "administrator", later)
    assert linked.id == admin.id and linked.oidc_linked_at == later
    assert people.find_or_link(session, startup.uscc, "admin@startup.cn", "李娜", "agent", NOW).oidc_linked_at == later
    with pytest.raises(Conflict):  # a second legal representative while one is active
        people.find_or_link(session, startup.uscc, "ceo2@startup.cn", "新总", "legal_representative", NOW)
    other, _, _ = accounts.register_startup(session, startup_payload(903, parse=True))
    with pytest.raises(Forbidden):
        people.find_or_link(session, other.uscc, "ceo@startup.cn", "张总", "legal_representative", NOW)


# --- password reset ------------------------------------------------------------------------


def test_forgot_password_answers_the_same_and_emails_only_a_known_person(session, staff):
    assert people.request_password_reset(session, "nobody@example.cn", NOW, BASE) is None
    assert session.scalar(sa.select(sa.func.count(OutboxEmail.id))) == 0
    assert people.request_password_reset(session, "STAFF.ONE@district.gov.cn", NOW, BASE) is None
    [email] = session.scalars(sa.select(OutboxEmail)).all()
    assert email.to_address == staff.email and "重置" in email.body and "reset your password" in email.body


def test_a_reset_link_sets_a_new_password_once_within_the_hour_and_ends_the_lockout(session, staff):
    for _ in range(5):
        with pytest.raises((NotAuthenticated, TooManyAttempts)):
            people.sign_in(session, staff.email, "wrong wrong wrong", NOW)
    people.request_password_reset(session, staff.email, NOW, BASE)
    link = next(line for line in session.scalar(sa.select(OutboxEmail.body)).splitlines() if line.startswith(BASE))
    token = _token_of(link, people.RESET_PATH)
    with pytest.raises(PasswordRefused):
        people.reset_password(session, token, "password", NOW)
    people.reset_password(session, token, "a brand new passphrase", NOW + dt.timedelta(minutes=59))
    reset_entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "reset_password"))
    assert reset_entry.actor_id == staff.account_id and "password_hash" not in reset_entry.after
    assert reset_entry.after["password_changed_at"] and reset_entry.after["failed_sign_ins"] == 0
    assert people.sign_in(session, staff.email, "a brand new passphrase", NOW + dt.timedelta(minutes=59)).id == staff.id
    with pytest.raises(NotFound):
        people.reset_password(session, token, "another new passphrase", NOW)
    people.request_password_reset(session, staff.email, NOW, BASE)
    body = session.scalars(sa.select(OutboxEmail.body).order_by(OutboxEmail.id.desc())).first()
    late = _token_of(next(line for line in body.splitlines() if line.startswith(BASE)), people.RESET_PATH)
    with pytest.raises(NotFound):
        people.reset_password(session, late, "another new passphrase", NOW + dt.timedelta(hours=1))


def test_a_person_changes_their_password_giving_the_current_one(session, staff):
    with pytest.raises(InvalidInput) as refused:
        people.change_password(session, staff, "not my password at all", "the next long passphrase", NOW)
    assert "current_password" in refused.value.errors
    with pytest.raises(PasswordRefused):
        people.change_password(session, staff, PASSWORD, "qwerty123456", NOW)
    people.change_password(session, staff, PASSWORD, "the next long passphrase", NOW)
    assert people.sign_in(session, staff.email, "the next long passphrase", NOW).id == staff.id
    assert session.scalar(sa.select(AuditEntry.actor_id).where(AuditEntry.action == "change_password")) == staff.account_id


# --- own tokens ----------------------------------------------------------------------------


def test_a_person_creates_and_revokes_their_own_tokens_and_not_anothers(session, staff, admin):
    token, secret = people.create_own_token(session, staff, NOW, expires_in_days=30)
    assert accounts.authenticate(session, secret, NOW).account_id == staff.account_id
    assert token.expires_at == NOW + dt.timedelta(days=30) and token.acting_staff_id is None
    assert [t.id for t in people.list_own_tokens(session, staff, NOW)] == [token.id]
    assert people.list_own_tokens(session, admin, NOW) == []
    with pytest.raises(NotFound):
        people.revoke_own_token(session, admin, token.id, NOW)  # an admin, but not their token
    assert people.revoke_own_token(session, staff, token.id, NOW).revoked_at == NOW
    with pytest.raises(NotAuthenticated):
        accounts.authenticate(session, secret, NOW)
    with pytest.raises(InvalidInput):
        people.create_own_token(session, staff, NOW, expires_in_days=400)
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "api_tokens",
                                                       AuditEntry.action == "revoke"))
    assert entry.actor_id == staff.account_id
    assert session.get(ApiToken, token.id).issued_by_id == staff.account_id


def test_models_are_registered_for_the_audit_log():
    from broker.models import AUDITED_ENTITY_TYPES

    assert {"people", "sign_in_attempts", "invitations", "password_resets"} <= set(AUDITED_ENTITY_TYPES)
    assert Invitation.__audit_exclude__ == {"token_hash"} and "password_hash" in Person.__audit_exclude__


def test_a_company_person_made_at_the_server_is_its_only_legal_representative(session, startup):
    founder = people.create_company_person(session, Side.startup, startup.id, "founder@yunchi.example.cn", "李明",
                                           "长宁区硅巷-创始人-2026")
    assert (founder.side, founder.company_role, founder.account.startup_id) == (Side.startup, CompanyRole.legal_representative,
                                                                                startup.id)
    assert people.sign_in(session, "founder@yunchi.example.cn", "长宁区硅巷-创始人-2026", founder.created_at).id == founder.id
    with pytest.raises(Conflict):  # one active legal representative per company, as at the unified login
        people.create_company_person(session, Side.startup, startup.id, "second@yunchi.example.cn", "王芳", "长宁区硅巷-第二人-2026")
    with pytest.raises(InvalidInput):
        people.create_company_person(session, Side.district, startup.id, "x@example.cn", "某人", "长宁区硅巷-区里人-2026")
    with pytest.raises(PasswordRefused):
        people.create_company_person(session, Side.startup, startup.id, "third@yunchi.example.cn", "赵磊", "password")
