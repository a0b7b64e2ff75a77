"""The email outbox delivered through a real SMTP server (aiosmtpd on 127.0.0.1), into .eml files
in development, and retried with back-off when the server can't be reached."""

from __future__ import annotations

import datetime as dt
import email
import socket
from email.policy import default as default_policy

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher

from broker import outbox
from broker.models import EmailStatus, OutboxEmail, Role
from broker.services import passwords, people
from scheduler import jobs

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
BASE = "http://console.test"
PASSWORD = "a long and unusual passphrase"


@pytest.fixture(autouse=True)
def cheap_hasher():
    old = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    passwords.use_hasher(old)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.received: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 (aiosmtpd's hook name)
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self):
        return [email.message_from_bytes(e.content, policy=default_policy) for e in self.received]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def _settings(port: int, tmp_path) -> outbox.MailSettings:
    return outbox.MailSettings("硅巷资源撮合平台 <noreply@broker.test>",
                               outbox.SmtpSettings("127.0.0.1", port, starttls=False, timeout=5), str(tmp_path / "outbox"))


def test_a_password_reset_goes_through_a_real_smtp_server_and_its_link_works(session, smtp_server, tmp_path):
    inbox, port = smtp_server
    person = people.create_district_person(session, "staff@district.gov.cn", "张伟", Role.staff, PASSWORD)
    people.request_password_reset(session, "staff@district.gov.cn", NOW, BASE)
    people.request_password_reset(session, "nobody@district.gov.cn", NOW, BASE)  # sends nothing
    report = outbox.deliver_pending(session, _settings(port, tmp_path), NOW)
    assert len(report.sent) == 1 and not report.retrying
    [envelope] = inbox.received
    assert envelope.rcpt_tos == ["staff@district.gov.cn"]
    [message] = inbox.messages()
    assert message["Subject"] == "重置您的密码 / Reset your password"
    assert message["From"] == "硅巷资源撮合平台 <noreply@broker.test>"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert body.index("重置") < body.index("reset your password")  # Chinese first, English below
    link = next(line for line in body.splitlines() if line.startswith(BASE + people.RESET_PATH))
    sent = session.get(OutboxEmail, report.sent[0])
    assert sent.status is EmailStatus.sent and sent.sent_at == NOW and sent.body is None  # the link's secret is gone
    people.reset_password(session, link[len(BASE + people.RESET_PATH):], "the new long passphrase", NOW)
    assert people.sign_in(session, person.email, "the new long passphrase", NOW).id == person.id
    assert outbox.deliver_pending(session, _settings(port, tmp_path), NOW).sent == []  # nothing twice


def test_an_invitation_is_delivered_by_the_scheduled_job(app, session, smtp_server, monkeypatch):
    inbox, port = smtp_server
    staff = people.create_district_person(session, "staff@district.gov.cn", "张伟", Role.staff, PASSWORD)
    _, link = people.invite(session, staff, "new@district.gov.cn", NOW, BASE, role=Role.staff)
    for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_STARTTLS": False}.items():
        monkeypatch.setitem(app.config, key, value)
    jobs.deliver_email(app, NOW)
    [message] = inbox.messages()
    assert message["To"] == "new@district.gov.cn" and "邀请" in message["Subject"]
    assert link in message.get_body(preferencelist=("plain",)).get_content()


def test_an_unreachable_server_is_retried_with_back_off_then_given_up(session, tmp_path):
    outbox.enqueue(session, "someone@example.cn", "主题 / Subject", "正文 / Body", NOW)
    session.commit()
    settings = _settings(_free_port(), tmp_path)  # nothing listens there
    at = NOW
    for attempt in range(1, outbox.MAX_ATTEMPTS):
        report = outbox.deliver_pending(session, settings, at)
        [row] = session.scalars(sa.select(OutboxEmail)).all()
        assert report.retrying == [row.id] and row.attempts == attempt and row.status is EmailStatus.pending
        assert row.next_attempt_at == at + outbox.retry_delay(attempt) and "Error" in row.last_error
        assert outbox.deliver_pending(session, settings, row.next_attempt_at - dt.timedelta(seconds=1)).retrying == []
        at = row.next_attempt_at
    assert outbox.deliver_pending(session, settings, at).failed == [row.id]
    session.refresh(row)
    assert row.status is EmailStatus.failed and row.body is not None
    assert [outbox.retry_delay(n).total_seconds() / 60 for n in (1, 2, 3, 7, 8)] == [1, 2, 4, 60, 60]


def test_without_an_smtp_host_emails_are_written_to_the_instance_outbox_and_listed(app, session, tmp_path):
    settings = outbox.MailSettings.from_config({}, str(tmp_path))
    assert settings.smtp is None and settings.dev_dir == str(tmp_path / "outbox")
    outbox.enqueue(session, "a@example.cn", "第一封 / First", "你好\n\nHello", NOW)
    outbox.enqueue(session, "b@example.cn", "第二封 / Second", "再见\n\nBye", NOW + dt.timedelta(seconds=1))
    session.commit()
    assert len(outbox.deliver_pending(session, settings, NOW + dt.timedelta(seconds=1)).sent) == 2
    listed = outbox.list_dev_emails(settings.dev_dir)
    assert [(e.to, e.subject) for e in listed] == [("b@example.cn", "第二封 / Second"), ("a@example.cn", "第一封 / First")]
    assert listed[1].body.strip() == "你好\n\nHello"
    assert outbox.list_dev_emails(str(tmp_path / "none")) == []


def test_mail_settings_come_from_the_broker_variables():
    import config

    settings = config.load_settings({"BROKER_SMTP_HOST": "smtp.district.gov.cn", "BROKER_SMTP_PORT": "2525",
                                     "BROKER_SMTP_USER": "broker", "BROKER_SMTP_PASSWORD": "s3cret",
                                     "BROKER_SMTP_STARTTLS": "false", "BROKER_MAIL_FROM": "平台 <noreply@district.gov.cn>"})
    mail = outbox.MailSettings.from_config(settings, "/srv/instance")
    assert mail.smtp == outbox.SmtpSettings("smtp.district.gov.cn", 2525, "broker", "s3cret", starttls=False)
    assert mail.mail_from == "平台 <noreply@district.gov.cn>"
    assert outbox.MailSettings.from_config(config.load_settings({}), "/srv/instance").smtp is None
    with pytest.raises(config.ConfigurationError, match="BROKER_SMTP_STARTTLS"):
        config.load_settings({"BROKER_SMTP_STARTTLS": "maybe"})
