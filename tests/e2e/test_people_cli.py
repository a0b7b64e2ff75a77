"""`broker people create` invites the first staff member of a fresh install; the demo's staff person."""

from __future__ import annotations

import re

import sqlalchemy as sa

from broker.cli import main
from broker.demo import DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD, DemoSummary
from broker.models import AuditEntry, Role
from broker.services import passwords, people
from broker.clock import now


def test_people_create_prints_a_one_time_invitation_link_that_makes_the_person(app, session):
    result = app.test_cli_runner().invoke(main, ["people", "create", "--email", "first@district.gov.cn",
                                                 "--name", "首位工作人员", "--role", "staff",
                                                 "--base-url", "https://broker.district.gov.cn"])
    assert result.exit_code == 0, result.output
    [link] = re.findall(r"^https://broker\.district\.gov\.cn/invitations/\S+$", result.output, re.MULTILINE)
    assert "Asia/Shanghai" in result.output and "72 h" in result.output
    token = link.rsplit("/", 1)[1]
    person = people.accept_invitation(session, token, "", "a long and unusual passphrase", now(app))
    assert person.name == "首位工作人员" and person.role is Role.staff
    assert session.scalar(sa.select(AuditEntry.action).where(AuditEntry.entity_type == "invitations")
                          .order_by(AuditEntry.id)) == "invite_at_console"
    again = app.test_cli_runner().invoke(main, ["people", "create", "--email", "FIRST@district.gov.cn",
                                                "--name", "x", "--role", "staff"])
    assert again.exit_code == 2 and "already exists" in again.output


def test_the_demo_prints_its_staff_sign_in_whose_password_the_policy_accepts():
    passwords.check_password(DEMO_STAFF_PASSWORD)
    text = DemoSummary(True, "sab_x", {}, "sqlite://").describe("http://127.0.0.1:5000")
    assert f"{DEMO_STAFF_EMAIL} / {DEMO_STAFF_PASSWORD}" in text
