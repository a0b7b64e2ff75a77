"""The review queue (审批队列) through the test client: the latest cycle's proposals with what each
startup would pay and why it was proposed, filters, one reject refused without a reason, and a
bulk approve the server makes item by item (one item already decided: refused, the rest approved).
A company's person gets 403."""

from __future__ import annotations

from decimal import Decimal

import re

import sqlalchemy as sa

from broker.models import Allocation, AllocationStatus, Role
from broker.services import people
from broker.web import session as console_session
from tests.e2e.test_console_sign_in import sign_in, token_of
from tests.e2e.test_cycle_workflow import clock, market, run  # noqa: F401 - fixtures

PASSWORD = "长宁区硅巷-审批-2026"


def staff_signed_in(client, session) -> None:
    person = people.create_district_person(session, "li.na@changning.example.gov.cn", "李娜", Role.staff, PASSWORD)
    assert sign_in(client, person.email, PASSWORD).status_code == 303


def proposals(session, cycle_id: int) -> list[Allocation]:
    session.expire_all()
    return list(session.scalars(sa.select(Allocation).where(Allocation.cycle_id == cycle_id).order_by(Allocation.id)))


def rows_of(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="proposal-(\d+)"', page)]


def test_an_empty_queue_says_so(client, session, clock):  # noqa: F811
    staff_signed_in(client, session)
    page = client.get("/staff/review")
    assert page.status_code == 200
    assert "目前没有等待审批的撮合方案" in page.get_data(as_text=True)


def test_the_queue_shows_each_proposal_with_price_subsidy_history_and_why(client, session, market):  # noqa: F811
    cycle = run(client, market["staff"])
    staff_signed_in(client, session)
    page = client.get("/staff/review").get_data(as_text=True)
    assert f"第 {cycle['id']} 轮撮合" in page
    assert "2026年12月2日 18:00" in page  # the deadline in Asia/Shanghai, without script
    assert "（剩余 57 小时 0 分）" in page
    assert rows_of(page) == [a.id for a in proposals(session, cycle["id"])]
    assert "上海测试科技" in page and "企业实付" in page and "申请 2 次" in page  # the culture startup asked twice
    assert "单个企业占比上限" in page  # why the driving startup got less than it asked
    assert "行业 2.0" in page  # a Lighthouse sector's weight
    assert client.get(f"/staff/cycles/{cycle['id']}/review").get_data(as_text=True).count('<tr id="proposal-') == len(rows_of(page))
    assert client.get("/staff/cycles/9999/review").status_code == 404


def test_filters_narrow_the_list(client, session, market):  # noqa: F811
    cycle = run(client, market["staff"])
    staff_signed_in(client, session)
    everything = proposals(session, cycle["id"])
    tokens = [a.id for a in everything if a.offer.kind == "tokens"]
    assert tokens and len(tokens) < len(everything)
    assert rows_of(client.get("/staff/review?kind=tokens").get_data(as_text=True)) == tokens
    driving = [a.id for a in everything if a.request.startup.sector.value == "smart_driving"]
    assert rows_of(client.get("/staff/review?sector=smart_driving").get_data(as_text=True)) == driving
    # Bounds at and between the proposals' amounts, so each filter keeps some rows and drops others.
    amounts = sorted({a.quantity * a.unit_price for a in everything})
    assert len(amounts) >= 2, amounts
    low, high = amounts[0], amounts[-1]
    big = [a.id for a in everything if a.quantity * a.unit_price >= high]
    small = [a.id for a in everything if a.quantity * a.unit_price <= low]
    assert big and small and len(big) + len(small) <= len(everything)
    assert rows_of(client.get(f"/staff/review?amount_min={high}").get_data(as_text=True)) == big
    assert rows_of(client.get(f"/staff/review?amount_min={low + Decimal('0.01')}").get_data(as_text=True)) == [
        a.id for a in everything if a.quantity * a.unit_price > low]
    assert rows_of(client.get(f"/staff/review?amount_max={low}").get_data(as_text=True)) == small
    assert rows_of(client.get(f"/staff/review?amount_min={low}&amount_max={high - Decimal('0.01')}")
                   .get_data(as_text=True)) == [a.id for a in everything if a.quantity * a.unit_price < high]
    assert rows_of(client.get("/staff/review?key=yes").get_data(as_text=True)) == []  # no key enterprise here
    bad = client.get("/staff/review?amount_min=lots")
    assert bad.status_code == 200 and "金额须为不小于零的数字" in bad.get_data(as_text=True)


def test_a_reject_without_a_reason_is_refused_and_changes_nothing(client, session, market):  # noqa: F811
    cycle = run(client, market["staff"])
    staff_signed_in(client, session)
    first = proposals(session, cycle["id"])[0]
    path = f"/staff/cycles/{cycle['id']}/review"
    refused = client.post(path, data={"csrf_token": token_of(client, path), "one": f"reject:{first.id}",
                                      f"reason-{first.id}": "   "})
    assert refused.status_code == 422
    assert "驳回必须填写理由" in refused.get_data(as_text=True)
    assert all(a.status is AllocationStatus.proposed for a in proposals(session, cycle["id"]))
    bulk = client.post(path, data={"csrf_token": token_of(client, path), "bulk": "reject", "chosen": [str(first.id)],
                                   "bulk_reason": ""})
    assert bulk.status_code == 422
    assert all(a.status is AllocationStatus.proposed for a in proposals(session, cycle["id"]))
    rejected = client.post(path, data={"csrf_token": token_of(client, path), "one": f"reject:{first.id}",
                                       f"reason-{first.id}": "与已有资源重复"})
    assert rejected.status_code == 200 and 'id="result-' in rejected.get_data(as_text=True)
    decided = proposals(session, cycle["id"])[0]
    assert decided.status is AllocationStatus.rejected and decided.decision_reason == "与已有资源重复"


def test_bulk_approve_decides_each_item_and_shows_each_result(client, session, market):  # noqa: F811
    cycle = run(client, market["staff"])
    staff_signed_in(client, session)
    first, second, third, *_ = proposals(session, cycle["id"])
    # Someone else approved the first meanwhile (through the API).
    assert client.post(f"/api/v1/allocations/{first.id}/approve", json={}, headers=market["staff"].headers).status_code == 200
    path = f"/staff/cycles/{cycle['id']}/review"
    done = client.post(path, data={"csrf_token": token_of(client, path), "bulk": "approve",
                                   "chosen": [str(third.id), str(first.id), str(second.id)]})
    assert done.status_code == 200
    page = done.get_data(as_text=True)
    assert "成功 2 条，未处理 1 条" in page
    result = {int(i): text for i, text in re.findall(r'<tr class="result-\w+" id="result-(\d+)">(.*?)</tr>', page, re.S)}
    assert "该方案已批准，无需重复审批" in result[first.id]
    assert "已批准" in result[second.id] and "未处理" not in result[second.id]
    assert "已批准" in result[third.id] and "未处理" not in result[third.id]
    statuses = {a.id: a.status for a in proposals(session, cycle["id"])}
    assert statuses[first.id] is statuses[second.id] is statuses[third.id] is AllocationStatus.approved
    assert first.id not in rows_of(page) and second.id not in rows_of(page)  # no longer awaiting


def test_a_company_person_gets_403_and_nobody_signed_in_the_sign_in_page(app, client, session, market):  # noqa: F811
    cycle = run(client, market["staff"])
    assert client.get("/staff/review").headers["Location"].startswith("/sign-in?next=/staff/review")
    startup = session.get(Allocation, proposals(session, cycle["id"])[0].id).request.startup
    person = people.find_or_link(session, startup.uscc, "fa.ren@example.cn", "王芳", "legal_representative",
                                 cycle_now(app))
    with app.test_request_context():
        console_session.start(person.id)
        cookie = dict(__import__("flask").session)
    with client.session_transaction() as stored:
        stored.update(cookie)
    assert client.get("/staff/review").status_code == 403
    path = f"/staff/cycles/{cycle['id']}/review"
    assert client.post(path, data={"csrf_token": token_of(client, "/"),
                                   "one": f"approve:{proposals(session, cycle['id'])[0].id}"}).status_code == 403
    assert all(a.status is AllocationStatus.proposed for a in proposals(session, cycle["id"]))


def cycle_now(app):
    from broker.clock import now

    with app.app_context():
        return now()


def test_the_queue_in_english(client, session, market):  # noqa: F811
    cycle = run(client, market["staff"])
    staff_signed_in(client, session)
    client.set_cookie("broker_lang", "en")
    page = client.get("/staff/review").get_data(as_text=True)
    assert f"Matching cycle {cycle['id']}" in page and "2026-12-02 18:00" in page and "(57 h 0 min left)" in page
    assert "The company pays" in page and "short of it because of: the cap on one company" in page, page[page.find("Weight"):][:400]


def test_the_queue_is_paged_in_sql_and_priced_as_one_quote_would_price_each_row(app, client, session, market):  # noqa: F811
    from broker.models import Account
    from broker.services import review, subsidies

    cycle = run(client, market["staff"])
    staff = session.get(Account, market["staff"].account_id)
    moment = cycle_now(app)
    waiting = [a.id for a in proposals(session, cycle["id"]) if a.status is AllocationStatus.proposed]
    assert len(waiting) >= 2
    pages = [review.review_queue(session, staff, cycle["id"], review.Filters(), moment, page=n, page_size=1)
             for n in range(1, len(waiting) + 2)]
    assert [page.rows[0].allocation.id for page in pages[:-1]] == waiting
    assert pages[0].total == pages[0].pages == len(waiting)
    assert pages[-1].page == len(waiting) and pages[-1].rows[0].allocation.id == waiting[-1]  # past the last: the last
    for page in pages[:-1]:
        row = page.rows[0]
        alone = subsidies.quote(session, row.startup, row.offer, row.allocation.quantity, moment,
                                starts_on=max(row.offer.window_start, row.request.window_start))
        assert row.subsidy == min(alone.subsidy, row.gross)
    staff_signed_in(client, session)
    assert rows_of(client.get("/staff/review?page=2").get_data(as_text=True)) == waiting  # one page of 50 holds them all
