"""The five-administrator limit holds when two people accept their invitations at the same moment,
from two processes on PostgreSQL: the company's row is locked while its administrators are counted.
Likewise the platform keeps an admin when its last two deactivate each other at once."""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from broker.clock import utcnow
from broker.db import get_db
from broker.models import CompanyRole, Person, PersonStatus, Role
from broker.services import accounts, passwords, people
from tests.conftest import startup_payload
from tests.races import accept_invitation_in_lockstep, deactivate_in_lockstep
from tests.world import committed_app, session_of

pytestmark = [pytest.mark.committing, pytest.mark.slow]

BASE = "http://console.test"
PASSWORD = "a long and unusual passphrase"


@pytest.fixture(scope="module")
def context(databases):
    if databases.server_url is None:
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE); this race is a PostgreSQL one")
    return multiprocessing.get_context("spawn")


def _token(link: str) -> str:
    return link[len(BASE + people.INVITATION_PATH):]


def test_two_acceptances_at_once_never_make_a_sixth_administrator(context, databases, tmp_path):
    old = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    url = databases.create()
    app = committed_app(url, str(tmp_path))
    session = session_of(app)
    try:
        now = utcnow()
        staff = people.create_district_person(session, "staff@district.gov.cn", "张伟", Role.staff, PASSWORD)
        startup, _, _ = accounts.register_startup(session, startup_payload(1, parse=True))
        _, link = people.invite(session, staff, "admin1@startup.cn", now, BASE,
                                company_role=CompanyRole.administrator, startup_id=startup.id)
        first = people.accept_invitation(session, _token(link), "管理员1", PASSWORD, now)
        for n in range(2, 5):
            _, link = people.invite(session, first, f"admin{n}@startup.cn", now, BASE, company_role=CompanyRole.administrator)
            people.accept_invitation(session, _token(link), f"管理员{n}", PASSWORD, now)
        racing = [people.invite(session, first, f"racer{n}@startup.cn", now, BASE,
                                company_role=CompanyRole.administrator)[1] for n in (5, 6)]
        with context.Manager() as manager, context.Pool(2) as pool:
            barrier = manager.Barrier(2)
            answers = pool.starmap(accept_invitation_in_lockstep,
                                   [(url, str(tmp_path), _token(link), f"赛跑者{n}", barrier) for n, link in enumerate(racing)])
        assert sorted(answers) == sorted(["accepted", "A company has at most 5 administrators: deactivate one first."]), answers
        session.rollback()
        administrators = session.scalar(sa.select(sa.func.count(Person.id)).where(
            Person.company_role == CompanyRole.administrator, Person.status == PersonStatus.active))
        assert administrators == 5
        assert dt.timedelta(0) <= utcnow() - now < dt.timedelta(minutes=5)
    finally:
        passwords.use_hasher(old)
        session.close()
        get_db(app).engine.dispose()


def test_two_admins_deactivating_each_other_at_once_leave_one(context, databases, tmp_path):
    old = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    url = databases.create()
    app = committed_app(url, str(tmp_path))
    session = session_of(app)
    try:
        first = people.create_district_person(session, "admin1@district.gov.cn", "王芳", Role.admin, PASSWORD)
        second = people.create_district_person(session, "admin2@district.gov.cn", "赵磊", Role.admin, PASSWORD)
        with context.Manager() as manager, context.Pool(2) as pool:
            barrier = manager.Barrier(2)
            answers = pool.starmap(deactivate_in_lockstep, [(url, str(tmp_path), first.id, second.id, barrier),
                                                            (url, str(tmp_path), second.id, first.id, barrier)])
        # The second finds itself the last admin, or (had the first committed before it began) deactivated.
        assert answers.count("deactivated") == 1, answers
        assert [a for a in answers if a != "deactivated"][0] in (people.LAST_ADMIN, people.DEACTIVATED), answers
        session.rollback()
        active = session.scalar(sa.select(sa.func.count(Person.id)).where(Person.status == PersonStatus.active))
        assert active == 1
    finally:
        passwords.use_hasher(old)
        session.close()
        get_db(app).engine.dispose()
