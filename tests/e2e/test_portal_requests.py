"""The startup portal (企业门户) through the test client: a startup's person lands on its requests,
sees each request's timeline and, for one left short, why in words and what would help; withdraws
a request (and a second withdrawal is refused, nothing changed); sees its allocations with gross,
subsidy and net; another company's request or allocation is 404; district staff get 403; the
lists send as many SQL statements for many rows as for one."""

from __future__ import annotations

import html

import pytest
import sqlalchemy as sa

from broker.models import ResourceRequest
from broker.models.enums import RequestStatus
from tests.conftest import statements_sent
from tests.e2e.test_console_sign_in import token_of
from tests.e2e.test_cycle_workflow import clock, market, run  # noqa: F401  (fixtures)
from tests.e2e.test_staff_appeals import company_person_signed_in, staff_signed_in

WINDOW = {"window_start": "2026-12-07", "window_end": "2026-12-20"}


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def cycled(client, market):  # noqa: F811
    """The culture startup asks for tokens three more times; one cycle runs."""
    for _ in range(3):
        asked = client.post("/api/v1/requests", json={"kind": "tokens", "quantity": "100", **WINDOW},
                            headers=market["culture"].headers)
        assert asked.status_code == 201, asked.json
    market["cycle"] = run(client, market["staff"])
    return market


def as_person(app, client, session, actor, email, clock):  # noqa: F811
    return company_person_signed_in(app, client, session, actor.startup_id, email, clock())


def test_a_founder_lands_on_its_requests_and_sees_why_one_was_left_short(app, client, session, cycled, clock):  # noqa: F811
    ids = cycled["ids"]
    person = as_person(app, client, session, cycled["culture"], "ceo@culture.example.cn", clock)

    listing = client.get("/portal/requests")
    assert listing.status_code == 200
    page = text(listing)
    assert f"申请 {ids['culture_cheap']}" in page and f"申请 {ids['culture_tokens']}" in page
    assert f"申请 {ids['driving_gpu']}" not in page  # another company's
    assert "GPU 算力" in page and "大模型 Tokens" in page and "2026年12月7日" in page
    assert '<a href="/portal/requests" aria-current="page">我的申请</a>' in page
    assert "/portal/allocations" in page
    assert person.account.startup_id == cycled["culture"].startup_id

    filtered = text(client.get("/portal/requests?status=submitted"))
    assert f"申请 {ids['culture_cheap']}" in filtered and f"申请 {ids['culture_tokens']}\n" not in filtered

    short = text(client.get(f"/portal/requests/{ids['culture_cheap']}"))
    assert "为什么还没有分配" in short
    assert "相符的资源单价都高于企业能接受的最高单价。" in short  # price_ceiling, in words
    assert "提高可接受的最高单价。" in short  # and what would help
    assert "price_ceiling" not in short
    assert "提交申请" in short and 'id="timeline"' in short  # the timeline
    # The stepper: submitted reached (with its date), the rest not yet.
    assert short.count('class="reached"') == 1 and short.count('class="pending"') == 5 and "未到" in short

    proposed = text(client.get(f"/portal/requests/{ids['culture_tokens']}"))
    assert "撮合提出分配方案" in proposed and "为什么还没有分配" not in proposed
    assert 'id="request-allocations"' in proposed
    assert proposed.count('class="reached"') == 2  # submitted, proposed


def test_a_founder_withdraws_a_request_and_a_second_withdrawal_is_refused(app, client, session, cycled, clock):  # noqa: F811
    request_id = cycled["ids"]["culture_cheap"]
    as_person(app, client, session, cycled["culture"], "ceo@culture.example.cn", clock)
    token = token_of(client, f"/portal/requests/{request_id}")
    done = client.post(f"/portal/requests/{request_id}/withdraw", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"].endswith("?done=withdrawn")
    page = text(client.get(done.headers["Location"]))
    assert "申请已撤回。" in page and "企业撤回申请" in page and 'id="withdraw"' not in page
    assert session.scalar(sa.select(ResourceRequest.status).where(ResourceRequest.id == request_id)) is RequestStatus.withdrawn

    updated = session.scalar(sa.select(ResourceRequest.updated_at).where(ResourceRequest.id == request_id))
    again = client.post(f"/portal/requests/{request_id}/withdraw", data={"csrf_token": token})
    assert again.status_code == 409 and "该申请当前的状态不能撤回。" in text(again)
    session.expire_all()
    assert session.scalar(sa.select(ResourceRequest.updated_at).where(ResourceRequest.id == request_id)) == updated


def test_allocations_show_carrier_prices_and_link_to_their_page(app, client, session, cycled, clock):  # noqa: F811
    as_person(app, client, session, cycled["driving"], "ceo@driving.example.cn", clock)
    mine = client.get("/api/v1/allocations", headers=cycled["driving"].headers).json
    assert mine
    page = text(client.get("/portal/allocations"))
    assert '<a href="/portal/allocations" aria-current="page">我的分配</a>' in page
    for allocation in mine:
        assert f"分配 {allocation['id']}" in page
    detail = client.get(f"/portal/allocations/{mine[0]['id']}")
    assert detail.status_code == 200
    page = text(detail)
    assert "Carrier" in page and "待审批" in page and "原价" in page and "实付" in page
    assert "¥5,000.00" in page  # 500 H100 hours at ¥10, no subsidy program: net is gross


def test_a_founder_gives_up_an_allocation_from_its_page_by_withdrawing_its_request(app, client, session, cycled, clock):  # noqa: F811
    as_person(app, client, session, cycled["driving"], "ceo@driving.example.cn", clock)
    mine = client.get("/api/v1/allocations", headers=cycled["driving"].headers).json[0]
    page = text(client.get(f"/portal/allocations/{mine['id']}"))
    assert 'id="give-up"' in page and f"撤回申请 {mine['request_id']}" in page
    token = token_of(client, f"/portal/allocations/{mine['id']}")
    done = client.post(f"/portal/requests/{mine['request_id']}/withdraw", data={"csrf_token": token})
    assert done.status_code == 303
    after = text(client.get(f"/portal/allocations/{mine['id']}"))
    assert 'id="give-up"' not in after and "待审批" not in after  # the proposal ended with its request
    # It ends as rejected by nobody: the startup's own choice, which it cannot appeal.
    assert client.get(f"/api/v1/allocations/{mine['id']}", headers=cycled["driving"].headers).json["status"] == "rejected"
    assert 'id="file-appeal-heading"' not in after
    refused = client.post(f"/portal/allocations/{mine['id']}/appeals", data={"csrf_token": token, "message": "请复核"})
    assert refused.status_code == 409 and "只有未获批准或已失效的分配可以提出诉求。" in text(refused)


def test_another_companys_request_and_allocation_are_404_and_staff_get_403(app, client, session, cycled, clock):  # noqa: F811
    theirs = client.get("/api/v1/allocations", headers=cycled["driving"].headers).json[0]
    as_person(app, client, session, cycled["culture"], "ceo@culture.example.cn", clock)
    assert client.get(f"/portal/requests/{cycled['ids']['driving_gpu']}").status_code == 404
    assert client.get(f"/portal/allocations/{theirs['id']}").status_code == 404
    assert client.get("/portal/requests/999999").status_code == 404
    token = token_of(client, "/portal/requests")
    refused = client.post(f"/portal/requests/{cycled['ids']['driving_gpu']}/withdraw", data={"csrf_token": token})
    assert refused.status_code == 404
    assert session.scalar(sa.select(ResourceRequest.status).where(
        ResourceRequest.id == cycled["ids"]["driving_gpu"])) is RequestStatus.proposed

    with client.session_transaction() as stored:
        stored.clear()
    assert client.get("/portal/requests").headers["Location"].startswith("/sign-in?next=")
    staff_signed_in(client, session)
    assert client.get("/portal/requests").status_code == 403
    assert client.get("/portal/allocations").status_code == 403


def test_the_portal_speaks_english(app, client, session, cycled, clock):  # noqa: F811
    as_person(app, client, session, cycled["culture"], "ceo@culture.example.cn", clock)
    client.set_cookie("broker_lang", "en")
    page = text(client.get(f"/portal/requests/{cycled['ids']['culture_cheap']}"))
    assert "My requests" in page and "Raise the highest unit price you accept." in page
    assert "提高可接受的最高单价" not in page
    assert "My allocations" in text(client.get("/portal/allocations"))


def test_the_lists_do_not_grow_in_sql_statements_with_rows(app, client, session, cycled, clock):  # noqa: F811
    as_person(app, client, session, cycled["driving"], "ceo@driving.example.cn", clock)
    one_request = len(statements_sent(app, client, "/portal/requests"))
    one_allocation = len(statements_sent(app, client, "/portal/allocations"))
    as_person(app, client, session, cycled["culture"], "ceo@culture.example.cn", clock)
    assert len(client.get("/api/v1/requests", headers=cycled["culture"].headers).json) == 5
    assert len(client.get("/api/v1/allocations", headers=cycled["culture"].headers).json) >= 4
    assert len(statements_sent(app, client, "/portal/requests")) == one_request
    assert len(statements_sent(app, client, "/portal/allocations")) == one_allocation


def test_an_allocations_page_links_to_the_appeals_filed_on_it(app, client, session, cycled, clock):  # noqa: F811
    mine = client.get("/api/v1/allocations", headers=cycled["driving"].headers).json[0]
    client.post(f"/api/v1/allocations/{mine['id']}/reject", json={"reason": "材料不全"}, headers=cycled["staff"].headers)
    filed = client.post(f"/api/v1/allocations/{mine['id']}/appeals", json={"message": "已补充材料，请复核"},
                        headers=cycled["driving"].headers)
    assert filed.status_code == 201, filed.json
    as_person(app, client, session, cycled["driving"], "ceo@driving.example.cn", clock)
    page = text(client.get(f"/portal/allocations/{mine['id']}"))
    assert f'href="/portal/appeals/{filed.json["id"]}"' in page and "待区里答复" in page
    thread = text(client.get(f"/portal/appeals/{filed.json['id']}"))
    assert '<nav class="staff-nav portal-nav" aria-label="企业门户">' in thread  # the portal's frame


def test_the_nav_marks_the_screen_whose_url_is_the_longest_prefix_of_the_page(app):
    """A request's page is under 我的申请; a page under no screen marks none; screens not built yet are not shown."""
    from broker.web.guards import _side_nav

    screens = (("portal_requests.requests", "我的申请"), ("portal_requests.allocations", "我的分配"),
               ("no_such.screen", "未建"))
    for path, expected in (("/portal/requests/7", "/portal/requests"), ("/portal/allocations", "/portal/allocations"),
                           ("/portal/requestsx", None), ("/staff", None)):
        with app.test_request_context(path):
            nav = _side_nav(screens)
        assert [url for url, _, _ in nav] == ["/portal/requests", "/portal/allocations"]
        assert [url for url, _, current in nav if current] == ([expected] if expected else [])
