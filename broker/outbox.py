"""The email outbox: use cases write email rows in their own transaction; a job delivers them.

Writing the row inside the use case's transaction means an email goes out exactly when what
it tells of has committed (an invitation that rolled back sends nothing). Delivery is a
separate step, `deliver_pending`, run every minute by the scheduler (and called directly by
tests): over SMTP when BROKER_SMTP_HOST is set, otherwise (development) into .eml files in the
instance folder's outbox/, which `list_dev_emails` lists for a page to show.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.db import unit_of_work
from broker.models.outbox import EmailStatus, OutboxEmail

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # then the row is marked failed: about 2 hours of back-off in all
FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_RETRY = dt.timedelta(hours=1)
BATCH = 100  # emails one delivery run sends at most
DEFAULT_MAIL_FROM = "硅巷资源撮合平台 <noreply@broker.localhost>"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    user: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout: float = 30.0


@dataclass(frozen=True)
class MailSettings:
    """Where email goes: an SMTP server, or (smtp None) the folder of .eml files."""

    mail_from: str
    smtp: SmtpSettings | None
    dev_dir: str

    @classmethod
    def from_config(cls, config: Mapping[str, object], instance_path: str) -> MailSettings:
        host = config.get("SMTP_HOST")
        smtp = None
        if host:
            smtp = SmtpSettings(
                host=str(host), port=int(config.get("SMTP_PORT") or 587),  # type: ignore[call-overload]
                user=config.get("SMTP_USER") or None, password=config.get("SMTP_PASSWORD") or None,  # type: ignore[arg-type]
                starttls=bool(config.get("SMTP_STARTTLS", True)),
            )
        return cls(str(config.get("MAIL_FROM") or DEFAULT_MAIL_FROM), smtp, os.path.join(instance_path, "outbox"))


def enqueue(session: Session, to: str, subject: str, body: str, now: dt.datetime) -> OutboxEmail:
    """An email to send once the caller's transaction commits (the caller's use case commits it)."""
    email = OutboxEmail(to_address=to, subject=subject, body=body, next_attempt_at=now)
    session.add(email)
    return email


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def retry_delay(attempts: int) -> dt.timedelta:
    """The pause after the `attempts`-th failure: 1 minute, doubling, at most an hour."""
    return min(LONGEST_RETRY, FIRST_RETRY * 2 ** (attempts - 1))


def deliver_pending(session: Session, settings: MailSettings, now: dt.datetime) -> DeliveryReport:
    """Send every pending email that is due, one transaction each; a failure is retried with back-off.

    Each row is locked while it is sent (SKIP LOCKED on PostgreSQL), so two runners never send
    the same email. A delivered email's body is cleared: it held a link's secret.
    """
    report = DeliveryReport()
    due = sa.select(OutboxEmail.id).where(
        OutboxEmail.status == EmailStatus.pending, OutboxEmail.next_attempt_at <= now
    ).order_by(OutboxEmail.next_attempt_at, OutboxEmail.id).limit(BATCH)
    ids = list(session.scalars(due))
    session.rollback()
    for email_id in ids:
        with unit_of_work(session):
            email = session.scalar(
                sa.select(OutboxEmail).where(OutboxEmail.id == email_id, OutboxEmail.status == EmailStatus.pending)
                .with_for_update(skip_locked=True).execution_options(populate_existing=True)
            )
            if email is None:  # sent by another runner meanwhile
                continue
            try:
                _send(settings, email, now)
            except (OSError, smtplib.SMTPException) as error:
                give_up = email.attempts + 1 >= MAX_ATTEMPTS
                email.attempt_failed(f"{type(error).__name__}: {error}", None if give_up else now + retry_delay(email.attempts + 1))
                (report.failed if give_up else report.retrying).append(email.id)
                log.warning("email %d to %s not delivered (attempt %d%s): %s", email.id, email.to_address, email.attempts,
                            ", giving up" if give_up else f", retrying at {email.next_attempt_at.isoformat()}", email.last_error)
            else:
                email.sent(now)
                report.sent.append(email.id)
    return report


def build_message(settings: MailSettings, email: OutboxEmail, now: dt.datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(idstring=f"outbox-{email.id}", domain="broker.localhost")
    for name, value in (email.headers or {}).items():
        message[name] = value
    message.set_content(email.body or "", charset="utf-8")
    if email.attachment is not None:
        # The email package writes a non-ASCII file name as RFC 2231 (filename*=utf-8''...).
        maintype, _, subtype = str(email.attachment_type).partition("/")
        message.add_attachment(email.attachment, maintype=maintype, subtype=subtype, filename=email.attachment_name)
    return message


def _send(settings: MailSettings, email: OutboxEmail, now: dt.datetime) -> None:
    message = build_message(settings, email, now)
    if settings.smtp is None:
        _write_eml(settings.dev_dir, email, message, now)
        return
    smtp = settings.smtp
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context())
        if smtp.user:
            client.login(smtp.user, smtp.password or "")
        client.send_message(message)


def _write_eml(folder: str, email: OutboxEmail, message: EmailMessage, now: dt.datetime) -> None:
    os.makedirs(folder, exist_ok=True)
    name = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{email.id:08d}.eml"
    temporary = os.path.join(folder, f".{name}.tmp")
    with open(temporary, "wb") as out:
        out.write(message.as_bytes())
    os.replace(temporary, os.path.join(folder, name))  # a reader never sees half a file


@dataclass(frozen=True)
class DevEmail:
    filename: str
    to: str
    subject: str
    date: str
    body: str


def list_dev_emails(folder: str) -> list[DevEmail]:
    """The emails development wrote instead of sending them, newest first (for a dev page)."""
    if not os.path.isdir(folder):
        return []
    emails = []
    for name in sorted((n for n in os.listdir(folder) if n.endswith(".eml")), reverse=True):
        with open(os.path.join(folder, name), "rb") as file:
            message = BytesParser(policy=default_policy).parse(file)
        part = message.get_body(preferencelist=("plain",))
        emails.append(DevEmail(name, str(message["To"]), str(message["Subject"]), str(message["Date"]),
                               part.get_content() if part is not None else ""))
    return emails
