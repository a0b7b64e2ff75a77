"""The portal's appeals (诉求) through the test client: a founder opens an appeal from its rejected
allocation's page and lands on the new thread; it is in the company's list (status in words, last
message, waiting since) and in the staff inbox; a second appeal on the same allocation, an empty
message and an allocation that cannot be appealed are refused in words with nothing created;
another company's allocation is 404; staff get 403 on the list; the list's SQL does not grow with rows."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa

from broker.models import Appeal
from tests.conftest import statements_sent
from tests.e2e.test_console_sign_in import token_of
from tests.e2e.test_cycle_workflow import clock, market, run  # noqa: F401  (fixtures)
from tests.e2e.test_staff_appeals import company_person_signed_in, staff_signed_in

WINDOW = {"window_start": "2026-12-07", "window_end": "2026-12-20"}


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def appeals_count(session) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count(Appeal.id)))


def rejected(client, market, who="driving"):  # noqa: F811
    """A cycle runs and staff reject the first of `who`'s allocations. Returns its id."""
    run(client, market["staff"])
    mine = client.get("/api/v1/allocations", headers=market[who].headers).json[0]
    done = client.post(f"/api/v1/allocations/{mine['id']}/reject", json={"reason": "材料不全"},
                       headers=market["staff"].headers)
    assert done.status_code == 200, done.json
    return mine["id"]


def as_person(app, client, session, market, clock, who="driving"):  # noqa: F811
    return company_person_signed_in(app, client, session, market[who].startup_id, f"ceo@{who}.example.cn", clock())


def file(client, allocation_id, message):
    token = token_of(client, f"/portal/allocations/{allocation_id}")
    return client.post(f"/portal/allocations/{allocation_id}/appeals", data={"csrf_token": token, "message": message})


def test_an_appeal_opened_on_a_rejected_allocation_is_listed_and_reaches_the_staff_inbox(
        app, client, session, market, clock):  # noqa: F811
    allocation_id = rejected(client, market)
    as_person(app, client, session, market, clock)
    page = text(client.get(f"/portal/allocations/{allocation_id}"))
    assert 'id="appeal-form"' in page and "未获批准的原因：材料不全" in page
    filed = file(client, allocation_id, "已补充营业执照，请复核")
    assert filed.status_code == 303
    appeal_id = int(re.search(r"/portal/appeals/(\d+)\?done=filed$", filed.headers["Location"])[1])
    thread = text(client.get(filed.headers["Location"]))
    assert "诉求已提交，区科委工作人员会尽快答复。" in thread and "已补充营业执照，请复核" in thread

    listing = client.get("/portal/appeals")
    assert listing.status_code == 200
    page = text(listing)
    assert '<a href="/portal/appeals" aria-current="page">诉求</a>' in page
    row = re.search(rf'<tr id="appeal-{appeal_id}"(.*?)</tr>', page, re.S)[0]
    assert f'href="/portal/appeals/{appeal_id}"' in row and f"分配 {allocation_id}" in row
    assert "待区里答复" in row and "已补充营业执照，请复核" in row and "2026年11月30日 09:00" in row
    # The allocation's page no longer offers a second appeal while this one waits.
    assert 'id="appeal-form"' not in text(client.get(f"/portal/allocations/{allocation_id}"))

    answered = client.post(f"/api/v1/appeals/{appeal_id}/answer", json={"answer": "已收到，正在复核"},
                           headers=market["staff"].headers)
    assert answered.status_code == 200, answered.json
    row = re.search(rf'<tr id="appeal-{appeal_id}"(.*?)</tr>', text(client.get("/portal/appeals")), re.S)[0]
    assert "已收到，正在复核" in row and "已答复，待企业回应" in row

    staff_signed_in(client, session)
    inbox = text(client.get("/staff/appeals"))
    assert f'id="appeal-{appeal_id}"' in inbox


def test_a_second_appeal_an_empty_message_and_an_unappealable_allocation_are_refused(
        app, client, session, market, clock):  # noqa: F811
    asked = client.post("/api/v1/requests", json={"kind": "tokens", "quantity": "100", **WINDOW},
                        headers=market["culture"].headers)
    assert asked.status_code == 201, asked.json
    allocation_id = rejected(client, market, who="culture")
    as_person(app, client, session, market, clock, who="culture")
    empty = file(client, allocation_id, "   ")
    assert empty.status_code == 422
    page = text(empty)
    assert "请填写诉求内容。" in page
    assert 'aria-invalid="true"' in page and "A message" not in page
    assert appeals_count(session) == 0

    assert file(client, allocation_id, "请复核").status_code == 303
    token = token_of(client, "/portal/appeals")
    again = client.post(f"/portal/allocations/{allocation_id}/appeals", data={"csrf_token": token, "message": "再次申请"})
    assert again.status_code == 409 and "该分配已有一个诉求在等待答复" in text(again)
    assert appeals_count(session) == 1

    proposed = client.get("/api/v1/allocations", headers=market["culture"].headers).json
    open_one = next(a for a in proposed if a["status"] == "proposed")
    refused = client.post(f"/portal/allocations/{open_one['id']}/appeals", data={"csrf_token": token, "message": "为什么"})
    assert refused.status_code == 409 and "只有未获批准或已失效的分配可以提出诉求。" in text(refused)
    assert appeals_count(session) == 1


def test_another_companys_allocation_is_404_and_staff_get_403(app, client, session, market, clock):  # noqa: F811
    theirs = rejected(client, market)
    as_person(app, client, session, market, clock, who="culture")
    token = token_of(client, "/portal/appeals")
    refused = client.post(f"/portal/allocations/{theirs}/appeals", data={"csrf_token": token, "message": "我来诉求"})
    assert refused.status_code == 404 and appeals_count(session) == 0
    assert "还没有诉求" in text(client.get("/portal/appeals"))

    with client.session_transaction() as stored:
        stored.clear()
    assert client.get("/portal/appeals").headers["Location"].startswith("/sign-in?next=")
    staff_signed_in(client, session)
    assert client.get("/portal/appeals").status_code == 403


def test_the_list_speaks_english_and_does_not_grow_in_sql_statements(app, client, session, market, clock):  # noqa: F811
    for _ in range(3):
        asked = client.post("/api/v1/requests", json={"kind": "tokens", "quantity": "100", **WINDOW},
                            headers=market["culture"].headers)
        assert asked.status_code == 201, asked.json
    first = rejected(client, market)
    filed = client.post(f"/api/v1/allocations/{first}/appeals", json={"message": "请复核"}, headers=market["driving"].headers)
    assert filed.status_code == 201, filed.json
    as_person(app, client, session, market, clock)
    one = len(statements_sent(app, client, "/portal/appeals"))

    culture = [a for a in client.get("/api/v1/allocations", headers=market["culture"].headers).json if a["status"] == "proposed"]
    assert len(culture) >= 3
    for allocation in culture:
        client.post(f"/api/v1/allocations/{allocation['id']}/reject", json={"reason": "预算不足"}, headers=market["staff"].headers)
        made = client.post(f"/api/v1/allocations/{allocation['id']}/appeals", json={"message": "请复核"},
                           headers=market["culture"].headers)
        assert made.status_code == 201, made.json
    as_person(app, client, session, market, clock, who="culture")
    assert text(client.get("/portal/appeals")).count('<tr id="appeal-') == len(culture)
    assert len(statements_sent(app, client, "/portal/appeals")) == one

    client.set_cookie("broker_lang", "en")
    english = text(client.get("/portal/appeals"))
    assert "Last message" in english and "Waiting for the district" in english and "最新消息" not in english
