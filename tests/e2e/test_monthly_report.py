"""The monthly report email (issue 14): the scheduler's `monthly_report` job writes last month's figures
to every district person who takes it, with the reports' XLSX attached, and `deliver_email` sends it
through a real SMTP server.

The district is tests/spend_data.py's, with beta's allocation set up on 12-08 (tests/report_use_data.py's
`set_up`). December 2026, by hand:

- requests submitted 2 (alpha 1000 h, beta 200 h, on 12-01), both approved, beta's active: fulfilment
  rate 2 ÷ 2 = 100.00%;
- committed ¥137,500.00 (alpha 112,500 capped + beta 25,000, 12-01), redeemed ¥125,000.00
  (45,000 + 67,500 + 12,500); January's write-offs, release and clawback are not December's;
- firms served 2 (both windows, 12-07 — 12-20, are in December); idle grants 1: beta, active, its
  middle day 12-14 passed with nothing used by then (alpha is not active, and used 40% by then).
"""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
import sqlalchemy as sa

from broker.models import Role
from broker.models.outbox import OutboxEmail
from broker.services import notifications, people
from scheduler import jobs
from tests.e2e.test_console_sign_in import token_of
from tests.e2e.test_notifications import staff_signed_in
from tests.integration.test_outbox import smtp_server  # noqa: F401 (fixture)
from tests.report_use_data import set_up
from tests.spend_data import at, build_spend_district

RUN = at(dt.date(2027, 1, 1), 8)  # the job's default slot: 08:00 on the 1st, Shanghai
PASSWORD = "a-long-enough-password-1"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def district(client, session, make_actor, frozen_clock):
    built = build_spend_district(client, session, make_actor, frozen_clock)
    set_up(session, built["allocations"]["beta"], at(dt.date(2026, 12, 8)))
    built["clock"].set(RUN)
    return built


@pytest.fixture
def staff(app, client, session, district):
    """Three district people: 张三 signed in (Chinese), an English reader, and one who turned the report off."""
    zh = staff_signed_in(app, client, session)
    en = people.create_district_person(session, "en@district.test", "Li Si", Role.admin, PASSWORD)
    notifications.save_preferences(session, en.id, ["monthly_report"], False, "en")
    off = people.create_district_person(session, "off@district.test", "王五", Role.staff, PASSWORD)
    notifications.save_preferences(session, off.id, [], False, "zh_CN")
    session.commit()
    return {"zh": zh, "en": en, "off": off}


@pytest.fixture
def smtp_app(app, monkeypatch, smtp_server):  # noqa: F811
    inbox, port = smtp_server
    for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_STARTTLS": False}.items():
        monkeypatch.setitem(app.config, key, value)
    return inbox


def _sheets(content: bytes) -> dict[str, list[tuple]]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


def _received(inbox) -> dict[str, object]:
    return {str(message["To"]): message for message in inbox.messages()}


def test_the_job_emails_last_months_figures_and_the_xlsx_once(app, client, session, staff, smtp_app):
    jobs.monthly_report(app, RUN)
    jobs.deliver_email(app, RUN)
    received = _received(smtp_app)
    assert set(received) == {"staff@district.test", "en@district.test"}  # 王五 turned it off

    message = received["staff@district.test"]
    assert str(message["Subject"]) == "【硅巷资源撮合平台】2026-12 月度报告"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "2026-12-01 至 2026-12-31（北京时间）" in body
    assert "提交申请 2 项，其中获批 2 项、已开通 1 项，需求满足率（获批÷提交）100.00%" in body
    assert "补贴承诺 ¥137,500.00，核验使用（兑付）¥125,000.00" in body
    assert "本月使用资源的企业 2 家" in body and "闲置分配（窗口过半、使用低于阈值）1 项" in body
    assert str(message["List-Unsubscribe"]).startswith("<http://127.0.0.1:5000/unsubscribe/")

    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == XLSX and attachment.get_filename() == "月度报告-2026-12.xlsx"
    assert "filename*=utf-8''%E6%9C%88%E5%BA%A6%E6%8A%A5%E5%91%8A-2026-12.xlsx" in str(attachment).replace("\n ", "")
    sheets = _sheets(attachment.get_content())
    assert sheets["筛选条件"][1] == ("期间（北京时间）", "2026-12-01 — 2026-12-31")
    assert sheets["需求满足漏斗（期间合计）"][1][:5] == ("合计", 2, 2, 2, 1)
    total = dict(zip(sheets["补贴资金（期间合计）"][0], sheets["补贴资金（期间合计）"][1], strict=True))
    assert (total["承诺"], total["核验使用"]) == (137500, 125000)
    assert len(sheets["闲置分配（待跟进）"]) == 2 and sheets["闲置分配（待跟进）"][1][1].startswith("上海测试科技")

    english = received["en@district.test"]
    assert str(english["Subject"]) == "[Silicon Alley Resource Broker] Monthly report for 2026-12"
    text = english.get_body(preferencelist=("plain",)).get_content()
    assert "2 requests submitted, of which 2 approved and 1 active; fulfilment rate (approved ÷ submitted) 100.00%" in text
    assert "subsidy committed ¥137,500.00, redeemed ¥125,000.00" in text and "2 firms served" in text
    [file] = list(english.iter_attachments())
    assert file.get_filename() == "monthly-report-2026-12.xlsx"
    english_sheets = _sheets(file.get_content())
    assert english_sheets["Fulfilment funnel (period total"][1][:5] == ("Total", 2, 2, 2, 1)  # 31 characters
    assert list(english_sheets)[0] == "Filters" and len(english_sheets) == len(sheets)

    # Run again (a restart, a second runner): nothing new is written or sent.
    jobs.monthly_report(app, RUN + dt.timedelta(minutes=5))
    jobs.deliver_email(app, RUN + dt.timedelta(minutes=5))
    assert len(smtp_app.messages()) == 2
    keys = session.scalars(sa.select(OutboxEmail.dedupe_key).where(OutboxEmail.dedupe_key.like("monthly:%"))).all()
    assert sorted(keys) == sorted(f"monthly:2026-12:person:{p.id}" for p in (staff["zh"], staff["en"]))


def test_the_attachment_holds_what_the_console_exports_for_the_month(app, client, session, staff, smtp_app):
    jobs.monthly_report(app, RUN)
    jobs.deliver_email(app, RUN)
    [attachment] = list(_received(smtp_app)["staff@district.test"].iter_attachments())
    mailed = _sheets(attachment.get_content())
    month = "start=2026-12-01&end=2026-12-31"
    for report in ("fulfilment", "spend", "utilisation"):
        export = client.get(f"/staff/reports/{report}.xlsx?{month}")
        assert export.status_code == 200
        tables = {title: rows for title, rows in _sheets(export.data).items() if title != "筛选条件"}
        assert tables and all(mailed[title] == rows for title, rows in tables.items()), report


def test_a_staff_person_turns_the_report_off_in_the_settings(app, client, session, staff, smtp_app):
    page = client.get("/settings/notifications")
    assert page.status_code == 200 and "月度报告（上月主要数字，附报表 XLSX）" in page.get_data(as_text=True)
    assert "企业注册通过审核" not in page.get_data(as_text=True)  # company events do not reach the district
    saved = client.post("/settings/notifications", data={"csrf_token": token_of(client, "/settings/notifications"),
                                                          "language": "zh_CN"})
    assert saved.status_code == 303
    jobs.monthly_report(app, RUN)
    jobs.deliver_email(app, RUN)
    assert set(_received(smtp_app)) == {"en@district.test"}


def test_a_month_with_nobody_to_tell_writes_nothing(app, session, district):
    jobs.monthly_report(app, RUN)
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail).where(
        OutboxEmail.dedupe_key.like("monthly:%"))) == 0
