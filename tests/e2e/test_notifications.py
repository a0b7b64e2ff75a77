"""Email notifications end to end: events written by the use cases become one outbox email per
opted-in person, in their language, never twice; the opt-out link, the settings page and the staff
delivery log through the console; a proposal email through a real SMTP server."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import flask
import pytest
import sqlalchemy as sa

from broker import outbox
from broker.models import Account, Allocation, AllocationStatus, EmailStatus, MatchingCycle, OutboxEmail, Role
from broker.models.people import CompanyRole, Person, Side
from broker.models.workflow import Event
from broker.services import accounts, events, notifications, people, provisioning
from broker.web import session as console_session
from tests.e2e.test_console_sign_in import token_of
from tests.e2e.test_cycle_workflow import MONDAY_0900, clock, market, run  # noqa: F401 (fixtures)
from tests.e2e.test_staff_appeals import company_person_signed_in
from tests.integration.test_outbox import _settings, smtp_server  # noqa: F401 (fixture)

NOW = MONDAY_0900


def person_of(session, side: Side, company_id: int, email: str, language: str = "zh_CN", **prefs) -> Person:
    person = people._new_person(session, email=email, name=email.split("@")[0], password_hash=None, side=side,
                                startup_id=company_id if side is Side.startup else None,
                                carrier_id=company_id if side is Side.carrier else None,
                                company_role=CompanyRole.administrator)
    person.language = language
    for name, value in prefs.items():
        setattr(person, name, value)
    session.commit()
    return person


def staff_signed_in(app, client, session) -> Person:
    staff = people.create_district_person(session, "staff@district.test", "张三", Role.staff, "a-long-enough-password-1")
    with app.test_request_context():
        console_session.start(staff.id)
        cookie = dict(flask.session)
    with client.session_transaction() as stored:
        stored.update(cookie)
    return staff


def emails_to(session, address: str) -> list[OutboxEmail]:
    session.expire_all()
    return list(session.scalars(sa.select(OutboxEmail).where(OutboxEmail.to_address == address).order_by(OutboxEmail.id)))


def notification_emails(session) -> list[OutboxEmail]:
    session.expire_all()
    return list(session.scalars(sa.select(OutboxEmail).where(OutboxEmail.dedupe_key.is_not(None)).order_by(OutboxEmail.id)))


@pytest.fixture
def two_companies(session, market):  # noqa: F811
    """Startup `driving` with a Chinese and an English reader and one who turned proposals off;
    startup `culture` with one person; the carrier with one person."""
    driving, culture, carrier = market["driving"].startup_id, market["culture"].startup_id, market["carrier"].carrier_id
    return {
        "zh": person_of(session, Side.startup, driving, "zh@driving.test"),
        "en": person_of(session, Side.startup, driving, "en@driving.test", "en"),
        "muted": person_of(session, Side.startup, driving, "muted@driving.test", email_muted=["allocation.proposed"]),
        "off": person_of(session, Side.startup, driving, "off@driving.test", email_off=True),
        "other": person_of(session, Side.startup, culture, "someone@culture.test"),
        "carrier": person_of(session, Side.carrier, carrier, "ops@carrier.test"),
    }


def test_a_cycle_emails_each_opted_in_person_of_the_startup_once_in_their_language(client, session, market, two_companies):
    run(client, market["staff"])
    driving_allocations = session.scalars(
        sa.select(Allocation.id).join(Allocation.request).where(sa.text("resource_requests.startup_id = :s"))
        .params(s=market["driving"].startup_id)).all()
    assert len(driving_allocations) == 1
    [zh] = emails_to(session, "zh@driving.test")
    [en] = emails_to(session, "en@driving.test")
    assert zh.subject.startswith("【硅巷资源撮合平台】新的分配方案待审批") and "GPU 算力" in zh.subject and "卡时" in zh.subject
    deadline = session.scalar(sa.select(MatchingCycle.approval_deadline))
    assert notifications.local_time(deadline) == "2026-12-02 18:00"  # the policy's window: Wednesday 18:00 in Shanghai
    assert "区科委将在 2026-12-02 18:00（北京时间）前审批" in zh.body
    assert en.subject.startswith("[Silicon Alley Resource Broker] New proposal awaiting approval")
    assert "by 2026-12-02 18:00 (Beijing time, UTC+8)" in en.body
    assert emails_to(session, "muted@driving.test") == [] and emails_to(session, "off@driving.test") == []
    assert emails_to(session, "ops@carrier.test") == []  # a proposal is the startup's business
    # Another company's people get their own company's proposals only.
    for email in emails_to(session, "someone@culture.test"):
        assert "分配 #" in email.body and f"#{driving_allocations[0]}：" not in email.body
    assert zh.dedupe_key == f"event:{session.scalar(sa.select(Event.id).where(Event.type == 'allocation.proposed', Event.allocation_id == driving_allocations[0]))}:person:{two_companies['zh'].id}"
    assert zh.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_processing_the_same_events_again_sends_nothing_twice(client, session, market, two_companies):
    run(client, market["staff"])
    before = len(notification_emails(session))
    proposed = list(session.scalars(sa.select(Event).where(Event.type == "allocation.proposed")))
    assert notifications.notify(session, proposed) == 0
    session.commit()
    assert len(notification_emails(session)) == before > 0


KIND_PAYLOADS = {
    "startup.verified": {}, "startup.rejected": {"reason": "材料不实"},
    "allocation.proposed": {"approval_deadline": "2026-12-02T10:00:00+00:00"}, "allocation.approved": {},
    "allocation.rejected": {"reason": "超出预算"}, "allocation.lapsed": {},
    "allocation.provisioned": {"carrier_ref": "CT-0042"}, "allocation.provisioning_failed": {"error": "HTTP 503"},
    "allocation.expiring": {"window_end": "2026-12-20"}, "appeal.answered": {"answer": "已复核，维持原决定"},
    "subsidy.committed": {"amount": "12345.60", "program_name": "算力券"},
    "evidence.rejected": {"reason": "发票模糊", "file_name": "invoice.pdf"},
    "notice.started": {"title": "2026年第1批", "ends_on": "2026-12-14", "amount": "12345.60"},
}
FACTS_SHOWN = {"startup.rejected": "材料不实", "allocation.rejected": "超出预算", "allocation.provisioned": "CT-0042",
               "allocation.provisioning_failed": "HTTP 503", "appeal.answered": "已复核，维持原决定",
               "subsidy.committed": "¥12,345.60", "evidence.rejected": "发票模糊", "notice.started": "¥12,345.60",
               "allocation.proposed": "2026-12-02 18:00", "allocation.expiring": "2026-12-20"}


@pytest.mark.parametrize("kind", list(notifications.EVENT_KINDS))
def test_each_kind_reaches_the_people_of_its_table_in_their_language(client, session, market, two_companies, kind):
    run(client, market["staff"])
    allocation = session.scalar(sa.select(Allocation).join(Allocation.request)
                                .where(sa.text("resource_requests.startup_id = :s")).params(s=market["driving"].startup_id))
    before = {p: len(emails_to(session, p.email)) for p in two_companies.values()}
    allocation.carrier_ref = KIND_PAYLOADS[kind].get("carrier_ref")  # the event reads it off the allocation
    events.record(session, kind, allocation, market["driving"].startup_id, market["carrier"].carrier_id, NOW,
                  **KIND_PAYLOADS[kind])
    session.commit()
    new = {name: emails_to(session, p.email)[before[p]:] for name, p in two_companies.items()}
    assert len(new["zh"]) == len(new["en"]) == 1
    assert new["muted"] == ([] if kind == "allocation.proposed" else new["muted"]) and new["off"] == []
    assert new["other"] == []  # another company's people never get this company's events
    assert len(new["carrier"]) == (1 if "carrier" in notifications.KINDS[kind] else 0)
    assert new["zh"][0].subject.startswith("【硅巷资源撮合平台】") and "您好" in new["zh"][0].body
    assert new["en"][0].subject.startswith("[Silicon Alley Resource Broker]") and "Dear" in new["en"][0].body
    if kind in FACTS_SHOWN:
        assert FACTS_SHOWN[kind] in new["zh"][0].body and FACTS_SHOWN[kind] in new["en"][0].body
    assert "/unsubscribe/" in new["zh"][0].body and "http://127.0.0.1:5000/inbox" in new["zh"][0].body


def test_rejection_and_registration_decisions_are_emailed_with_their_reasons(client, session, market, two_companies, make_actor):
    run(client, market["staff"])
    mine = client.get("/api/v1/allocations", headers=market["driving"].headers).json[0]
    client.post(f"/api/v1/allocations/{mine['id']}/reject", json={"reason": "材料不全"}, headers=market["staff"].headers)
    [rejected] = [e for e in emails_to(session, "zh@driving.test") if "未获批准" in e.subject]
    assert "原因：材料不全" in rejected.body
    pending = make_actor("startup", verified=False)
    founder = person_of(session, Side.startup, pending.startup_id, "founder@pending.test")
    staff = session.get(Account, market["staff"].account_id)
    accounts.reject_startup(session, staff, pending.startup_id, "营业执照与名称不符", NOW)
    [mail] = emails_to(session, founder.email)
    assert "未通过审核" in mail.subject and "营业执照与名称不符" in mail.body


def test_verifying_a_registration_is_emailed(session, make_actor, market):
    pending = make_actor("startup", verified=False)
    founder = person_of(session, Side.startup, pending.startup_id, "founder@new.test", "en")
    accounts.verify_startup(session, session.get(Account, market["staff"].account_id), pending.startup_id, NOW)
    [mail] = emails_to(session, founder.email)
    assert mail.subject.endswith("registration is verified")


def test_the_expiring_job_records_each_allocation_once(client, session, market, two_companies):
    run(client, market["staff"])
    allocation = session.scalar(sa.select(Allocation).join(Allocation.request)
                                .where(sa.text("resource_requests.startup_id = :s")).params(s=market["driving"].startup_id))
    session.execute(sa.update(Allocation).where(Allocation.id == allocation.id).values(status=AllocationStatus.active, carrier_ref="CT-1"))
    session.commit()
    at = dt.datetime(2026, 12, 14, 1, 0, tzinfo=dt.timezone.utc)  # window ends 2026-12-20: 6 days on
    assert provisioning.warn_expiring(session, at) == 1
    assert provisioning.warn_expiring(session, at) == 0
    assert provisioning.warn_expiring(session, at + dt.timedelta(days=1)) == 0
    expiring = session.scalars(sa.select(Event).where(Event.type == "allocation.expiring")).all()
    assert [e.allocation_id for e in expiring] == [allocation.id] and expiring[0].payload["window_end"] == "2026-12-20"
    assert len([e for e in emails_to(session, "zh@driving.test") if "到期" in e.subject]) == 1


def test_too_early_for_the_expiring_warning(client, session, market, two_companies):
    run(client, market["staff"])
    session.execute(sa.update(Allocation).values(status=AllocationStatus.active, carrier_ref="CT-1"))
    session.commit()
    assert provisioning.warn_expiring(session, dt.datetime(2026, 12, 12, 1, 0, tzinfo=dt.timezone.utc)) == 0  # 8 days


def test_a_proposal_email_through_a_real_smtp_server(client, session, market, two_companies, smtp_server, tmp_path):  # noqa: F811
    inbox, port = smtp_server
    run(client, market["staff"])
    report = outbox.deliver_pending(session, _settings(port, tmp_path), NOW)
    assert report.failed == [] and report.retrying == []
    [message] = [m for m in inbox.messages() if str(m["To"]) == "zh@driving.test"]
    assert "新的分配方案待审批" in str(message["Subject"])
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "2026-12-02 18:00（北京时间）" in body
    unsubscribe = re.fullmatch(r"<(http://127\.0\.0\.1:5000/unsubscribe/[^>]+)>", str(message["List-Unsubscribe"]))
    assert unsubscribe and str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert unsubscribe.group(1) in body
    # RFC 8058: the mail client POSTs the header's URL with this body, no cookie, no CSRF token.
    done = client.post(urlsplit(unsubscribe.group(1)).path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "不再收到此类邮件" in done.get_data(as_text=True)
    session.expire_all()
    assert session.get(Person, two_companies["zh"].id).email_muted == ["allocation.proposed"]


def test_the_opt_out_page_shows_what_stops_and_a_bad_token_changes_nothing(client, session, app, two_companies):
    person = two_companies["en"]
    token = notifications.unsubscribe_token("test-secret", person.id, "allocation.lapsed", NOW)
    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and "en@driving.test" in page.get_data(as_text=True)
    assert "分配方案逾期失效" in page.get_data(as_text=True)
    session.expire_all()
    assert session.get(Person, person.id).email_muted == []  # GET changes nothing
    for bad in (token[:-2] + "xx", notifications.unsubscribe_token("another-key", person.id, "allocation.lapsed", NOW),
                notifications.unsubscribe_token("test-secret", person.id, "allocation.lapsed", NOW - dt.timedelta(days=91))):
        for method in (client.get, client.post):
            response = method(f"/unsubscribe/{bad}")
            assert response.status_code == 400 and "无效或已过期" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Person, person.id).email_muted == []


def test_the_settings_page_saves_preferences_and_refuses_bad_input(app, client, session, market, two_companies):
    me = company_person_signed_in(app, client, session, market["culture"].startup_id, "boss@culture.test", NOW)
    page = client.get("/settings/notifications")
    assert page.status_code == 200 and "撮合拟定了新的分配方案" in page.get_data(as_text=True)
    token = token_of(client, "/settings/notifications")
    bad = client.post("/settings/notifications", data={"csrf_token": token, "language": "fr", "kinds": ["allocation.approved"]})
    assert bad.status_code == 422 and "请选择邮件语言" in bad.get_data(as_text=True)
    session.expire_all()
    assert session.get(Person, me.id).language == "zh_CN" and session.get(Person, me.id).email_muted == []
    saved = client.post("/settings/notifications", data={"csrf_token": token, "language": "en", "email_off": "on",
                                                          "kinds": ["allocation.approved", "allocation.rejected"]})
    assert saved.status_code == 303 and saved.headers["Location"].endswith("?done=saved")
    session.expire_all()
    stored = session.get(Person, me.id)
    assert stored.language == "en" and stored.email_off is True
    assert "allocation.proposed" in stored.email_muted and "allocation.approved" not in stored.email_muted
    # The language switch sets the emails' language too.
    client.post("/language", data={"csrf_token": token, "language": "zh_CN", "next": "/settings/notifications"})
    session.expire_all()
    assert session.get(Person, me.id).language == "zh_CN"
    client.post("/language", data={"csrf_token": token, "language": "en", "next": "/settings/notifications"})
    english = client.get("/settings/notifications").get_data(as_text=True)
    assert "Events you get emails about" in english and "A new proposal from matching" in english
    session.expire_all()
    assert session.get(Person, me.id).language == "en"


def test_the_settings_page_is_for_people_signed_in(client, app, session, market):
    assert client.get("/settings/notifications").status_code == 302
    staff_signed_in(app, client, session)
    assert client.get("/settings/notifications").status_code == 200  # staff: the monthly report (test_monthly_report.py)
    assert client.get("/staff/emails").status_code == 200


def test_the_staff_delivery_log_filters_by_status_and_recipient(app, client, session, market, two_companies):
    run(client, market["staff"])
    first = notification_emails(session)[0]
    first.status, first.attempts, first.last_error = EmailStatus.failed, 8, "SMTPServerDisconnected: gone"
    session.commit()
    staff_signed_in(app, client, session)
    everything = client.get("/staff/emails").get_data(as_text=True)
    assert "zh@driving.test" in everything and "en@driving.test" in everything
    failed = client.get("/staff/emails?status=failed").get_data(as_text=True)
    assert "SMTPServerDisconnected: gone" in failed and f'id="email-{first.id}"' in failed
    assert failed.count('<tr id="email-') == 1
    by_recipient = client.get("/staff/emails?to=en@driving").get_data(as_text=True)
    assert "en@driving.test" in by_recipient and "zh@driving.test" not in by_recipient
    assert client.get("/staff/emails?status=nonsense").status_code == 400


def test_the_delivery_log_sends_as_many_statements_for_many_emails_as_for_one(app, client, session):
    from broker import outbox as mail
    from tests.conftest import statements_sent

    mail.enqueue(session, "a@x.test", "一", "body", NOW)
    session.commit()
    staff_signed_in(app, client, session)
    one = len(statements_sent(app, client, "/staff/emails"))
    for n in range(60):
        mail.enqueue(session, f"b{n}@x.test", "二", "body", NOW)
    session.commit()
    assert len(statements_sent(app, client, "/staff/emails")) == one
