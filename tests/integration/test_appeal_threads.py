"""Appeal threads through the services on a real database: assign, the district's reply, the
startup's follow-up, close (after which the thread takes nothing), and the overdue cut-off in
working days across a weekend and the National Day holiday."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from broker.errors import Conflict, Forbidden, InvalidInput, NotFound
from broker.models import Account, Appeal, AppealMessage, AppealSide, AppealStatus, Event, Role
from broker.services import appeals, people
from tests.e2e.test_cycle_workflow import MONDAY_0900, clock, market, run  # noqa: F401 - fixtures

SH = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def thread(client, session, market):  # noqa: F811
    """The smart-driving startup appeals its rejected allocation; a staff person to answer it."""
    run(client, market["staff"])
    mine = client.get("/api/v1/allocations", headers=market["driving"].headers).json[0]
    client.post(f"/api/v1/allocations/{mine['id']}/reject", json={"reason": "材料不全"}, headers=market["staff"].headers)
    startup = session.get(Account, market["driving"].account_id)
    appeal = appeals.file_appeal(session, startup, mine["id"], "已补充材料，请复核", MONDAY_0900)
    staff = people.create_district_person(session, "wang.lei@changning.example.gov.cn", "王磊", Role.staff,
                                          "长宁区硅巷-诉求-2026")
    return {"appeal": appeal, "startup": startup, "staff": staff, "other": session.get(Account, market["models"].account_id)}


def messages(session, appeal_id):
    return [(m.author_side, m.body) for m in session.scalars(
        sa.select(AppealMessage).where(AppealMessage.appeal_id == appeal_id).order_by(AppealMessage.id))]


def test_filing_opens_a_thread_with_the_startups_message(session, thread):
    appeal = thread["appeal"]
    assert appeal.status is AppealStatus.open and appeal.waiting_since == MONDAY_0900
    assert messages(session, appeal.id) == [(AppealSide.startup, "已补充材料，请复核")]


def test_assign_to_an_active_district_person_only(session, thread):
    appeal, staff = thread["appeal"], thread["staff"]
    assert appeals.assign_appeal(session, staff.account, appeal.id, staff.id, MONDAY_0900).assigned_to_id == staff.id
    with pytest.raises(InvalidInput):
        appeals.assign_appeal(session, staff.account, appeal.id, 999_999, MONDAY_0900)
    with pytest.raises(Forbidden):  # a startup's account may not assign
        appeals.assign_appeal(session, thread["startup"], appeal.id, staff.id, MONDAY_0900)
    with pytest.raises(NotFound):
        appeals.assign_appeal(session, staff.account, 999_999, staff.id, MONDAY_0900)
    assert appeals.assign_appeal(session, staff.account, appeal.id, None, MONDAY_0900).assigned_to_id is None


def test_reply_then_the_startup_writes_again_then_close(session, thread):
    appeal, staff, startup = thread["appeal"], thread["staff"], thread["startup"]
    later = MONDAY_0900 + dt.timedelta(hours=3)
    replied = appeals.reply_to_appeal(session, staff.account, appeal.id, "已收到，下周期优先处理", later)
    assert replied.status is AppealStatus.answered and replied.answer == "已收到，下周期优先处理"
    assert replied.waiting_since == later
    event = session.scalars(sa.select(Event).where(Event.startup_id == appeal.startup_id).order_by(Event.id.desc())).first()
    assert event.type == "appeal.answered" and event.payload["answer"] == "已收到，下周期优先处理"
    with pytest.raises(InvalidInput):
        appeals.reply_to_appeal(session, staff.account, appeal.id, "   ", later)
    with pytest.raises(NotFound):  # another startup's thread is not theirs to see
        appeals.startup_reply(session, thread["other"], appeal.id, "我们也有意见", later)
    again = appeals.startup_reply(session, startup, appeal.id, "请问具体时间？", later + dt.timedelta(hours=1))
    assert again.status is AppealStatus.open and again.waiting_since == later + dt.timedelta(hours=1)
    # A second message while it already waits does not restart the district's clock.
    appeals.startup_reply(session, startup, appeal.id, "补充：合同见附件", later + dt.timedelta(hours=2))
    assert session.get(Appeal, appeal.id).waiting_since == later + dt.timedelta(hours=1)
    closed = appeals.close_appeal(session, staff.account, appeal.id, "已在第二轮撮合中解决", later + dt.timedelta(days=1))
    assert closed.status is AppealStatus.closed and closed.closed_by_id == staff.account_id
    assert messages(session, appeal.id) == [
        (AppealSide.startup, "已补充材料，请复核"), (AppealSide.district, "已收到，下周期优先处理"),
        (AppealSide.startup, "请问具体时间？"), (AppealSide.startup, "补充：合同见附件"),
        (AppealSide.district, "已在第二轮撮合中解决"),
    ]


def test_a_closed_thread_takes_no_more_messages(session, thread):
    appeal, staff, startup = thread["appeal"], thread["staff"], thread["startup"]
    appeals.close_appeal(session, staff.account, appeal.id, "", MONDAY_0900)
    for attempt in (
        lambda: appeals.reply_to_appeal(session, staff.account, appeal.id, "还有一句", MONDAY_0900),
        lambda: appeals.startup_reply(session, startup, appeal.id, "不同意", MONDAY_0900),
        lambda: appeals.close_appeal(session, staff.account, appeal.id, None, MONDAY_0900),
        lambda: appeals.assign_appeal(session, staff.account, appeal.id, staff.id, MONDAY_0900),
    ):
        with pytest.raises(Conflict):
            attempt()
    assert len(messages(session, appeal.id)) == 1


@pytest.mark.parametrize(("today", "cutoff_day"), [
    # Monday 7 Dec: five working days back is Monday 30 Nov (the weekend skipped); an appeal from
    # Friday 27 Nov has had Mon–Fri wholly and is overdue, one from Monday 30 Nov is due today.
    (dt.datetime(2026, 12, 7, 10, 0, tzinfo=SH), dt.date(2026, 11, 30)),
    # Friday 9 Oct 2026: back over National Day (1–7 Oct off) and Mid-autumn (25–27 Sep off):
    # 8 Oct, 30, 29, 28 Sep, then Thursday 24 Sep is the fifth working day.
    (dt.datetime(2026, 10, 9, 10, 0, tzinfo=SH), dt.date(2026, 9, 24)),
    # Monday 12 Oct: the adjusted working Saturday 10 Oct (调休) counts, Sunday 11 Oct does not:
    # 10, 9, 8 Oct, 30, 29 Sep.
    (dt.datetime(2026, 10, 12, 10, 0, tzinfo=SH), dt.date(2026, 9, 29)),
])
def test_overdue_cut_off_counts_working_days(today, cutoff_day):
    cutoff = appeals.overdue_before(today.astimezone(dt.UTC), 5)
    assert cutoff == dt.datetime.combine(cutoff_day, dt.time(0), SH)


def test_an_unknown_years_calendar_counts_weekdays():
    cutoff = appeals.overdue_before(dt.datetime(2031, 1, 6, 2, 0, tzinfo=dt.UTC), 5)  # a Monday
    assert cutoff == dt.datetime(2030, 12, 30, 0, 0, tzinfo=SH)


def test_the_inbox_filters_and_marks_overdue_in_sql(session, thread):
    appeal, staff = thread["appeal"], thread["staff"]
    me = staff
    inbox = appeals.appeal_inbox(session, staff.account, me, appeals.InboxFilters(), MONDAY_0900 + dt.timedelta(days=1))
    row = next(r for r in inbox.rows if r.id == appeal.id)
    assert not row.overdue and row.assignee_name is None and row.startup_name
    late = MONDAY_0900 + dt.timedelta(days=8)  # Tuesday 8 Dec: Tue 1 – Mon 7 are five working days
    inbox = appeals.appeal_inbox(session, staff.account, me, appeals.InboxFilters(overdue_only=True), late)
    assert [r.id for r in inbox.rows if r.id == appeal.id] == [appeal.id] and inbox.overdue >= 1
    assert appeal.id not in [r.id for r in appeals.appeal_inbox(
        session, staff.account, me, appeals.InboxFilters(overdue_only=True), MONDAY_0900 + dt.timedelta(days=7)).rows]
    assert appeal.id not in [r.id for r in appeals.appeal_inbox(
        session, staff.account, me, appeals.InboxFilters(assignee="me"), late).rows]
    appeals.assign_appeal(session, staff.account, appeal.id, staff.id, late)
    mine = appeals.appeal_inbox(session, staff.account, me, appeals.InboxFilters(assignee="me"), late)
    assert [r.id for r in mine.rows] == [appeal.id] and mine.rows[0].assignee_name == "王磊"
    assert appeal.id not in [r.id for r in appeals.appeal_inbox(
        session, staff.account, me, appeals.InboxFilters(assignee="none"), late).rows]
    appeals.reply_to_appeal(session, staff.account, appeal.id, "已处理", late)
    answered = appeals.appeal_inbox(session, staff.account, me, appeals.InboxFilters(status=AppealStatus.answered), late)
    assert [r.id for r in answered.rows] == [appeal.id] and not answered.rows[0].overdue
