"""The in-app inbox (消息, /inbox) through the test client: a startup's person reads its company's
events as sentences with links, never another company's; a carrier's person reads its own; the
unread are marked and the first page marks them seen; the filters; every event type the services
record (found in their code) and the notifications' new kinds have words in both languages; an
unknown type reads as a generic sentence; staff get 403, nobody signed in the sign-in page; the
page sends as many SQL statements for many events as for one."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from broker.models import Allocation, EvidenceStatus, Person, ResourceRequest
from broker.services import events
from broker.web import event_words
from broker.web.inbox import GROUP_NAMES
from tests.conftest import statements_sent
from tests.e2e.test_carrier_allocations import PASSWORD, person_of
from tests.e2e.test_console_sign_in import sign_in
from tests.e2e.test_cycle_workflow import clock, market, run  # noqa: F401  (fixtures)
from tests.e2e.test_staff_appeals import company_person_signed_in, staff_signed_in

SERVICES = Path(__file__).parents[2] / "broker" / "services"
# Kinds the email notifications record (issue 13), worded here before they land.
NEW_KINDS = {"startup.verified", "startup.rejected", "allocation.expiring", "subsidy.committed", "notice.started"}
EVENT_TYPE = re.compile(r"^[a-z_]+\.[a-z_]+$")
CJK = re.compile(r"[\u4e00-\u9fff]")


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def rows_of(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="event-(\d+)"', page)]


def recorded_types() -> set[str]:
    """Every event type a service records: the type argument of each `events.record*` call (and of a
    module's own wrapper that passes its parameter on), a literal, both arms of an `if`, a loop
    variable's literals in the same function, or `f"evidence.{status}"` over the evidence statuses."""
    found: set[str] = set()
    for path in SERVICES.glob("*.py"):
        tree = ast.parse(path.read_text())
        functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)]
        recorders = {"record", "record_for_allocations"} if path.name == "events.py" else set()
        for function in functions:  # a wrapper: def _record(session, type_, ...): events.record(session, type_, ...)
            params = {a.arg for a in function.args.args}
            for call in _calls(function, {"record", "record_for_allocations"}, "events"):
                if isinstance(call.args[1], ast.Name) and call.args[1].id in params and function.name != "record":
                    recorders.add(function.name)
        for function in functions:
            for call in [*_calls(function, {"record", "record_for_allocations"}, "events"), *_calls(function, recorders, None)]:
                found |= _types(call.args[1], function, path)
    return found


def _calls(function: ast.FunctionDef, names: set[str], owner: str | None) -> list[ast.Call]:
    calls = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call) or len(node.args) < 2:
            continue
        func = node.func
        if owner and isinstance(func, ast.Attribute) and func.attr in names and getattr(func.value, "id", None) == owner:
            calls.append(node)
        elif owner is None and isinstance(func, ast.Name) and func.id in names:
            calls.append(node)
    return calls


def _types(node: ast.expr, function: ast.FunctionDef, path: Path) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _types(node.body, function, path) | _types(node.orelse, function, path)
    if isinstance(node, ast.Name):
        literals = {n.value for n in ast.walk(function) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        named = {v for v in literals if EVENT_TYPE.match(v)}
        if named:
            return named
        if node.id in {a.arg for a in function.args.args}:
            return set()  # a wrapper's own parameter: its callers are read instead
    if isinstance(node, ast.JoinedStr) and ast.unparse(node) == "f'evidence.{evidence.status.value}'":
        return {f"evidence.{status.value}" for status in EvidenceStatus}
    raise AssertionError(f"{path.name}: teach this test the event type {ast.unparse(node)}")


SAMPLE = {"allocation_id": 7, "request_id": 3, "offer_id": 2, "quantity": "300", "status": "approved",
          "carrier_ref": "CT-0007", "appeal_id": 4, "amount": "1200.50", "taken_back": "300", "program": "SH-CN-2026",
          "file_name": "invoice-7.pdf", "evidence_type": "invoice", "reason": "incomplete papers"}


def test_every_recorded_event_type_and_the_new_kinds_read_as_sentences_in_both_languages(app):
    types = recorded_types()
    assert {"allocation.approved", "allocation.withdrawn", "request.expired", "evidence.rejected",
            "appeal.answered", "subsidy.clawed_back"} <= types  # the enumeration sees the services
    for type_ in sorted(types | NEW_KINDS):
        assert type_ in event_words.WORDS, f"{type_} has no words in broker/web/event_words.py"
        with app.test_request_context():
            said = {}
            for language in ("zh_CN", "en"):
                with force_locale(language):
                    said[language] = event_words.sentence(type_, SAMPLE, "gpu")
                    generic = event_words.sentence("no.such_type", SAMPLE)
                assert said[language] != generic and type_ not in said[language] and "%(" not in said[language]
            assert CJK.search(said["zh_CN"]) and not CJK.search(said["en"]), said


def test_an_unknown_type_or_a_payload_short_of_a_field_reads_as_a_generic_sentence(app):
    with app.test_request_context():
        assert event_words.sentence("payment.made", {"amount": "x"}) == "新的动态（payment.made）"
        assert event_words.sentence("allocation.approved", {}) == "新的动态（allocation.approved）"
        assert event_words.sentence("allocation.approved", {"allocation_id": 12, "quantity": "300"}, "gpu") == (
            "分配 #12（GPU 算力 300 卡时）已获批准")
        with force_locale("en"):
            assert event_words.sentence("payment.made", {}) == "New activity (payment.made)"


def test_the_groups_shown_are_the_groups_the_service_filters():
    from broker.services.inbox import GROUPS

    assert set(GROUP_NAMES) == set(GROUPS)


@pytest.fixture
def cycled(client, market):  # noqa: F811
    market["cycle"] = run(client, market["staff"])
    return market


def allocation_of(session, startup_id: int) -> Allocation:
    return session.scalars(sa.select(Allocation).join(Allocation.request)
                           .where(ResourceRequest.startup_id == startup_id).order_by(Allocation.id)).first()


def test_a_founder_reads_its_companys_events_in_words_and_not_anothers(app, client, session, cycled, clock):  # noqa: F811
    mine = allocation_of(session, cycled["culture"].startup_id)
    theirs = allocation_of(session, cycled["driving"].startup_id)
    approved = client.post(f"/api/v1/allocations/{mine.id}/approve", json={}, headers=cycled["staff"].headers)
    assert approved.status_code == 200, approved.json
    events.record(session, "payment.made", None, cycled["culture"].startup_id, None, clock())
    session.commit()
    company_person_signed_in(app, client, session, cycled["culture"].startup_id, "ceo@culture.example.cn", clock())

    response = client.get("/inbox")
    assert response.status_code == 200
    page = text(response)
    assert '<a href="/inbox" aria-current="page">消息</a>' in page  # the portal's nav, this page marked
    assert f'<a href="/portal/allocations/{mine.id}">分配 #{mine.id}（大模型 Tokens 5,000 百万 Tokens）已获批准</a>' in page
    assert f"撮合提出分配 #{mine.id}（大模型 Tokens 5,000 百万 Tokens），等待区科委审批" in page
    assert "新的动态（payment.made）" in page  # an unknown type, no error
    assert f"#{theirs.id}" not in page
    assert "2026年11月30日" in page  # the time, in Asia/Shanghai
    ids = rows_of(page)
    assert "企业注册已通过审核，可以申请资源" in page  # startup.verified, the company's first event
    assert ids == sorted(ids, reverse=True) and len(ids) == 4  # newest first: verified, proposed, approved, payment.made

    client.set_cookie("broker_lang", "en")
    english = text(client.get("/inbox"))
    assert f"Allocation #{mine.id} (Model tokens 5,000 million tokens) has been approved" in english
    assert "New activity (payment.made)" in english
    assert "已获批准" not in english


def test_a_carrier_reads_its_own_events(client, session, cycled, clock, make_actor):  # noqa: F811
    allocations = list(session.scalars(sa.select(Allocation).order_by(Allocation.id)))
    events.record(session, "startup.verified", None, cycled["culture"].startup_id, None, clock())  # the startup's only
    person_of(session, cycled["carrier"].carrier_id, "sun.wei@carrier.example.cn", 9301, clock())
    assert sign_in(client, "sun.wei@carrier.example.cn", PASSWORD).status_code == 303
    page = text(client.get("/inbox"))
    assert '<a href="/inbox" aria-current="page">消息</a>' in page and "运营商门户" in page
    for allocation in allocations:
        assert f'<a href="/carrier/allocations#allocation-{allocation.id}">撮合提出分配 #{allocation.id}（' in page
    assert len(rows_of(page)) == len(allocations)
    assert "企业注册已通过审核" not in page

    other = make_actor("carrier")
    person_of(session, other.carrier_id, "qian.li@other-carrier.example.cn", 9302, clock())
    client.post("/sign-out", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)})
    assert sign_in(client, "qian.li@other-carrier.example.cn", PASSWORD).status_code == 303
    assert rows_of(text(client.get("/inbox"))) == []


def seen_by(session, person_id: int) -> int | None:
    session.expire_all()
    return session.scalar(sa.select(Person.inbox_seen_event_id).where(Person.id == person_id))


def test_unread_events_are_marked_and_the_first_page_marks_them_seen(app, client, session, cycled, clock):  # noqa: F811
    startup_id = cycled["culture"].startup_id
    mine = allocation_of(session, startup_id)
    person = company_person_signed_in(app, client, session, startup_id, "ceo@culture.example.cn", clock())
    session.commit()
    assert seen_by(session, person.id) is None

    first = text(client.get("/inbox"))
    assert "有 2 条新消息" in first and first.count('class="unread"') == 2  # verified, proposed
    newest, verified = rows_of(first)[0], rows_of(first)[-1]
    assert seen_by(session, person.id) == newest
    again = text(client.get("/inbox"))
    assert "没有新消息。" in again and 'class="unread"' not in again

    committed = events.record(session, "subsidy.committed", mine, startup_id, None, clock(), amount="1200.00")
    answered = events.record(session, "appeal.answered", mine, startup_id, None, clock(), appeal_id=1, answer="好")
    session.commit()
    subsidies = text(client.get("/inbox?group=subsidies"))
    assert rows_of(subsidies) == [committed.id]
    assert f"已为分配 #{mine.id} 承诺补贴 ¥1,200.00" in subsidies and 'class="unread"' in subsidies
    assert seen_by(session, person.id) == newest  # a group's page marks nothing
    unread = text(client.get("/inbox?unread=1"))
    assert rows_of(unread) == [answered.id, committed.id] and "有 2 条新消息" in unread
    assert seen_by(session, person.id) == answered.id
    assert rows_of(text(client.get("/inbox?unread=1"))) == []
    assert rows_of(text(client.get("/inbox?group=appeals"))) == [answered.id]
    assert rows_of(text(client.get("/inbox?group=nonsense&page=x"))) == [answered.id, committed.id, newest, verified]

    from broker.services.inbox import unread_count

    session.expire_all()
    assert unread_count(session, session.get(Person, person.id)) == 0


def test_staff_get_403_and_nobody_signed_in_the_sign_in_page(client, session):
    assert client.get("/inbox").headers["Location"].startswith("/sign-in?next=/inbox")
    staff_signed_in(client, session)
    assert client.get("/inbox").status_code == 403


def test_the_inbox_sends_as_many_statements_for_many_events_as_for_one(app, client, session, cycled, clock):  # noqa: F811
    startup_id = cycled["culture"].startup_id
    mine = allocation_of(session, startup_id)
    company_person_signed_in(app, client, session, startup_id, "ceo@culture.example.cn", clock())
    one = len(statements_sent(app, client, "/inbox"))  # one event, marked seen
    for n in range(30):
        events.record(session, ("allocation.approved", "appeal.answered", "subsidy.committed")[n % 3], mine, startup_id,
                      None, clock(), appeal_id=n + 1, amount="10")
    session.commit()
    assert len(rows_of(text(client.get("/inbox?group=appeals")))) == 10
    assert len(statements_sent(app, client, "/inbox")) == one  # 31 events, marked seen
