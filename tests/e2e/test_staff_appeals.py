"""The appeals inbox (诉求) through the test client: threads with the startup, the allocation, the
status in words and who has them; an overdue one marked with a class and a word; a thread with its
messages in Shanghai time, assigned, replied to (an empty reply refused with 422, nothing changed)
and closed. A company's person gets 403 on the staff pages, and 404 on another company's appeal
at /portal/appeals/<id>, while the startup's own person reads and answers its thread there."""

from __future__ import annotations

import datetime as dt
import re

import flask
import sqlalchemy as sa

from broker.models import Appeal, AppealMessage, AppealStatus, AuditEntry, Role, Startup
from broker.services import people
from broker.web import session as console_session
from tests.e2e.test_console_sign_in import sign_in, token_of
from tests.e2e.test_cycle_workflow import clock, market, run  # noqa: F401 - fixtures

PASSWORD = "长宁区硅巷-诉求-2026"


def staff_signed_in(client, session):
    person = people.create_district_person(session, "zhou.min@changning.example.gov.cn", "周敏", Role.staff, PASSWORD)
    assert sign_in(client, person.email, PASSWORD).status_code == 303
    return person


def company_person_signed_in(app, client, session, startup_id, email, at):
    startup = session.get(Startup, startup_id)
    person = people.find_or_link(session, startup.uscc, email, "王芳", "legal_representative", at)
    with app.test_request_context():
        console_session.start(person.id)
        cookie = dict(flask.session)
    with client.session_transaction() as stored:
        stored.clear()
        stored.update(cookie)
    return person


def file(client, market):
    """The driving startup's allocation rejected, and its appeal filed through the API."""
    run(client, market["staff"])
    mine = client.get("/api/v1/allocations", headers=market["driving"].headers).json[0]
    client.post(f"/api/v1/allocations/{mine['id']}/reject", json={"reason": "材料不全"}, headers=market["staff"].headers)
    filed = client.post(f"/api/v1/allocations/{mine['id']}/appeals", json={"message": "已补充材料，请复核"},
                        headers=market["driving"].headers)
    assert filed.status_code == 201, filed.json
    assert filed.json["waiting_since"] == "2026-11-30T09:00:00+08:00" and filed.json["assigned_to_id"] is None
    return filed.json["id"], mine["id"]


def appeal_row(session, appeal_id):
    session.expire_all()
    appeal = session.get(Appeal, appeal_id)
    count = session.scalar(sa.select(sa.func.count(AppealMessage.id)).where(AppealMessage.appeal_id == appeal_id))
    return appeal.status, appeal.assigned_to_id, appeal.answer, count


def test_the_inbox_lists_threads_and_marks_the_overdue_one(client, session, market, clock):  # noqa: F811
    appeal_id, allocation_id = file(client, market)
    person = staff_signed_in(client, session)
    page = client.get("/staff/appeals").get_data(as_text=True)
    row = re.search(rf'<tr id="appeal-{appeal_id}"(.*?)</tr>', page, re.S).group(0)
    assert 'class="overdue"' not in row and "超期" not in row
    assert f"方案 {allocation_id}" in row and "待区里答复" in row and "未分派" in row and "2026年11月30日 09:00" in row
    clock.advance(dt.timedelta(days=8))  # Tuesday 8 Dec: five working days wholly passed
    assert sign_in(client, person.email, PASSWORD).status_code == 303  # the idle session ended meanwhile
    page = client.get("/staff/appeals").get_data(as_text=True)
    row = re.search(rf'<tr id="appeal-{appeal_id}"(.*?)</tr>', page, re.S).group(0)
    assert 'class="overdue"' in row and "超期" in row
    assert f'id="appeal-{appeal_id}"' in client.get("/staff/appeals?overdue=1").get_data(as_text=True)
    assert f'id="appeal-{appeal_id}"' not in client.get("/staff/appeals?status=answered").get_data(as_text=True)
    assert f'id="appeal-{appeal_id}"' not in client.get("/staff/appeals?assignee=me").get_data(as_text=True)
    bad = client.get("/staff/appeals?status=lost&assignee=whoever&page=x")
    assert bad.status_code == 200 and "没有这个状态" in bad.get_data(as_text=True)
    assert 'href="/staff/appeals"' in client.get("/staff").get_data(as_text=True)  # the nav lists it
    client.set_cookie("broker_lang", "en")
    english = client.get("/staff/appeals").get_data(as_text=True)
    assert "Waiting for the district" in english and "Overdue" in english and "2026-11-30 09:00" in english


def test_a_thread_is_assigned_replied_to_and_closed(client, session, market):  # noqa: F811
    appeal_id, _ = file(client, market)
    me = staff_signed_in(client, session)
    path = f"/staff/appeals/{appeal_id}"
    page = client.get(path).get_data(as_text=True)
    assert "已补充材料，请复核" in page and "2026年11月30日 09:00" in page and "材料不全" in page  # the rejection reason
    assigned = client.post(f"{path}/assign", data={"csrf_token": token_of(client, path), "person_id": str(me.id)})
    assert assigned.status_code == 303 and assigned.headers["Location"].startswith(path)
    assert appeal_row(session, appeal_id)[1] == me.id
    assert "周敏" in client.get(assigned.headers["Location"]).get_data(as_text=True)
    replied = client.post(f"{path}/reply", data={"csrf_token": token_of(client, path), "body": "已收到，下周期优先处理"})
    assert replied.status_code == 303
    assert appeal_row(session, appeal_id) == (AppealStatus.answered, me.id, "已收到，下周期优先处理", 2)
    thread = client.get(replied.headers["Location"]).get_data(as_text=True)
    assert "回复已发送" in thread and thread.index("已补充材料，请复核") < thread.index("已收到，下周期优先处理")
    events = [e["type"] for e in client.get("/api/v1/events", headers=market["driving"].headers).json]
    assert events[-1] == "appeal.answered"
    closed = client.post(f"{path}/close", data={"csrf_token": token_of(client, path), "note": "已在下一轮解决"})
    assert closed.status_code == 303
    assert appeal_row(session, appeal_id)[0] is AppealStatus.closed
    after = client.get(path).get_data(as_text=True)
    assert "该诉求已关闭" in after and 'name="body"' not in after
    late = client.post(f"{path}/reply", data={"csrf_token": token_of(client, path), "body": "还有一句"})
    assert late.status_code == 409 and "已关闭" in late.get_data(as_text=True)
    assert appeal_row(session, appeal_id)[3] == 3
    audit = session.execute(sa.select(AuditEntry.action, AuditEntry.actor_id).where(
        AuditEntry.entity_type == "appeals", AuditEntry.entity_id == appeal_id).order_by(AuditEntry.id)).all()
    assert [tuple(a) for a in audit][1:] == [("assign", me.account_id), ("answer", me.account_id), ("close", me.account_id)]


def test_an_empty_reply_or_a_bad_assignee_is_refused_and_changes_nothing(client, session, market):  # noqa: F811
    appeal_id, _ = file(client, market)
    staff_signed_in(client, session)
    path = f"/staff/appeals/{appeal_id}"
    before = appeal_row(session, appeal_id)
    empty = client.post(f"{path}/reply", data={"csrf_token": token_of(client, path), "body": "   "})
    assert empty.status_code == 422
    assert 'id="reply-error"' in empty.get_data(as_text=True) and "请填写回复内容" in empty.get_data(as_text=True)
    nobody = client.post(f"{path}/assign", data={"csrf_token": token_of(client, path), "person_id": "999999"})
    assert nobody.status_code == 422 and "请选择一位在岗的区科委工作人员" in nobody.get_data(as_text=True)
    assert appeal_row(session, appeal_id) == before


def test_unknown_appeals_are_404(client, session, market):  # noqa: F811
    staff_signed_in(client, session)
    assert client.get("/staff/appeals/999999").status_code == 404
    path = "/staff/appeals"
    assert client.post("/staff/appeals/999999/reply", data={"csrf_token": token_of(client, path), "body": "x"}).status_code == 404


def test_a_company_person_gets_403_on_staff_pages_and_404_on_another_companys_appeal(app, client, session, market, clock):  # noqa: F811
    appeal_id, _ = file(client, market)
    assert client.get("/staff/appeals").headers["Location"].startswith("/sign-in?next=/staff/appeals")
    company_person_signed_in(app, client, session, market["models"].startup_id, "fa.ren@shenzhen-models.example.cn",
                             clock())
    assert client.get("/staff/appeals").status_code == 403
    assert client.get(f"/staff/appeals/{appeal_id}").status_code == 403
    other = client.get(f"/portal/appeals/{appeal_id}")
    assert other.status_code == 404 and "已补充材料" not in other.get_data(as_text=True)
    assert client.get("/portal/appeals/999999").status_code == 404  # the same answer as for one that exists
    before = appeal_row(session, appeal_id)
    refused = client.post(f"/portal/appeals/{appeal_id}/reply", data={"csrf_token": token_of(client, "/"), "body": "看看"})
    assert refused.status_code == 404 and appeal_row(session, appeal_id) == before


def test_the_startups_own_person_reads_and_answers_its_thread(app, client, session, market, clock):  # noqa: F811
    appeal_id, _ = file(client, market)
    company_person_signed_in(app, client, session, market["driving"].startup_id, "ceo@yunchi.example.cn", clock())
    path = f"/portal/appeals/{appeal_id}"
    page = client.get(path)
    assert page.status_code == 200 and "已补充材料，请复核" in page.get_data(as_text=True)
    empty = client.post(f"{path}/reply", data={"csrf_token": token_of(client, path), "body": ""})
    assert empty.status_code == 422 and appeal_row(session, appeal_id)[3] == 1
    sent = client.post(f"{path}/reply", data={"csrf_token": token_of(client, path), "body": "补充：合同已上传"})
    assert sent.status_code == 303 and appeal_row(session, appeal_id)[3] == 2


def test_district_staff_on_the_company_page_go_to_the_staff_page(client, session, market):  # noqa: F811
    appeal_id, _ = file(client, market)
    staff_signed_in(client, session)
    moved = client.get(f"/portal/appeals/{appeal_id}")
    assert moved.status_code == 302 and moved.headers["Location"] == f"/staff/appeals/{appeal_id}"
