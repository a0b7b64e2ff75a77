"""Report 6, compliance (合规情况): on the district of tests/spend_data.py (beta's award clawed back for a double
subsidy on 2027-01-04, ¥12,500 taken back), alpha's invoice rejected on 2027-01-05, and a public notice of gamma's
award from 2026-12-22 with two objections (one against the award, upheld; one against the batch, dismissed) — in
December, as the working-day calendar knows no later year yet. On 2026-12-24 the voucher (which excludes the
supplier's related parties) also comes to exclude other city-level subsidies, and two approvals pay nothing: delta
declared the supplying carrier as its shareholder (refused: related party), epsilon a city subsidy for the same
carrier's GPUs (refused: double subsidy); each writes one `subsidy.refused`.
The page, the API, the CSV and the XLSX give these counts and lists; filters, staff only, bad filters (422)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from broker.models import Award, Carrier, Event, Role, Startup, SubsidyProgram
from broker.services import people
from tests.conftest import make_uscc, statements_sent
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of
from tests.spend_data import at, build_spend_district

PAGE = "/staff/reports/compliance"
API = "/api/v1/reports/compliance"
PERIOD = "start=2026-12-01&end=2027-01-31"
INVOICE = b"%PDF-1.4\n1 0 obj << /Title (VAT invoice 00421 report) >> endobj\n"
# (what, count, amount taken back)
COUNTS = [("clawback:false_evidence", 0, "0.00"), ("clawback:related_party", 0, "0.00"), ("clawback:non_use", 0, "0.00"),
          ("clawback:double_subsidy", 1, "12500.00"), ("refused:related_party", 1, None), ("refused:double_subsidy", 1, None),
          ("evidence_rejected", 1, None), ("objections_raised", 2, None),
          ("objections_upheld", 1, None), ("objections_dismissed", 1, None)]


@pytest.fixture
def district(client, session, make_actor, frozen_clock):
    found = build_spend_district(client, session, make_actor, frozen_clock)
    staff, clock = found["first"].headers, found["clock"]
    clock.set(at(dt.date(2027, 1, 5)))
    sent = client.post(f"/api/v1/awards/{found['awards']['alpha']}/evidence", content_type="multipart/form-data",
                       data={"type": "invoice", "file": (io.BytesIO(INVOICE), "发票.pdf")}, headers=found["alpha"].headers)
    assert sent.status_code == 201, sent.json
    rejected = client.post(f"/api/v1/evidence/{sent.json['id']}/reject", json={"reason": "发票抬头与合同不符"}, headers=staff)
    assert rejected.status_code == 200, rejected.json

    # The voucher now goes through a public notice; gamma's award is noticed and objected to (back in December).
    clock.set(at(dt.date(2026, 12, 21)))
    session.get(SubsidyProgram, found["program"]["id"]).requires_notice = True
    session.commit()
    gamma = make_actor("startup", sector="fintech")
    asked = client.post("/api/v1/requests", headers=gamma.headers, json={
        "kind": "gpu", "quantity": "100", "window_start": "2026-12-28", "window_end": "2027-01-10"})
    assert asked.status_code == 201, asked.json
    assert client.post("/api/v1/cycles", json={}, headers=staff).status_code == 201
    [allocation] = client.get(f"/api/v1/allocations?request_id={asked.json['id']}", headers=staff).json
    assert client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=staff).status_code == 200
    award = session.scalar(sa.select(Award.id).where(Award.allocation_id == allocation["id"]))
    notice = client.post("/api/v1/notices", headers=staff, json={
        "title": "2026年第四批算力券拟支持名单公示", "starts_on": "2026-12-22", "working_days": 5, "award_ids": [award]})
    assert notice.status_code == 201, notice.json
    clock.set(at(dt.date(2026, 12, 22), 10))
    item = client.get(f"/api/v1/public/notices/{notice.json['id']}").json["items"][0]["id"]
    objections = [client.post(f"/api/v1/public/notices/{notice.json['id']}/objections", json={
        "name": "张三", "contact": "13800000000", "text": text, **extra}) for text, extra in
        (("该企业与供应商存在关联关系。", {"item_id": item}), ("名单不全。", {}))]
    assert [o.status_code for o in objections] == [201, 201], [o.json for o in objections]
    clock.set(at(dt.date(2026, 12, 23), 10))
    for objection, decision in zip(objections, ("upheld", "dismissed"), strict=True):
        answered = client.post(f"/api/v1/objections/{objection.json['id']}/answer", headers=staff,
                               json={"decision": decision, "answer": "经核实。"})
        assert answered.status_code == 200, answered.json
    return {**found, "gamma": gamma, "notice": notice.json, **_refusals(client, session, make_actor, found)}


def _refusals(client, session, make_actor, found) -> dict:
    """On 2026-12-24: delta (a related party of the carrier) and epsilon (a city subsidy held) approved for nothing."""
    staff, carrier = found["first"].headers, found["carrier"]
    found["clock"].set(at(dt.date(2026, 12, 24), 10))
    session.get(SubsidyProgram, found["program"]["id"]).excludes_subsidy_levels = ["city"]
    session.commit()
    code = make_uscc(900001)
    assert client.put(f"/api/v1/carriers/{carrier.carrier_id}/uscc", json={"uscc": code}, headers=carrier.headers).status_code == 200
    delta, epsilon = make_actor("startup"), make_actor("startup")
    declared = client.put("/api/v1/me/related-parties", headers=delta.headers, json={"parties": [
        {"uscc": code, "name": "上海某某算力有限公司", "relation": "shareholder"}]})
    assert declared.status_code == 200, declared.json
    held = client.put("/api/v1/me/other-subsidies", headers=epsilon.headers, json={"subsidies": [
        {"level": "city", "name": "上海市算力券", "granting_body": "上海市经济和信息化委员会", "amount": "5000",
         "carrier_id": carrier.carrier_id, "kind": "gpu"}]})
    assert held.status_code == 200, held.json
    allocations = {}
    for name, actor in (("delta", delta), ("epsilon", epsilon)):
        asked = client.post("/api/v1/requests", headers=actor.headers, json={
            "kind": "gpu", "quantity": "100", "window_start": "2026-12-28", "window_end": "2027-01-10"})
        assert asked.status_code == 201, asked.json
        allocations[name] = asked.json["id"]
    assert client.post("/api/v1/cycles", json={}, headers=staff).status_code == 201
    for name, request_id in allocations.items():
        [allocation] = client.get(f"/api/v1/allocations?request_id={request_id}", headers=staff).json
        assert client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=staff).status_code == 200
        allocations[name] = allocation["id"]
    return {"delta": delta, "epsilon": epsilon, "refused": allocations}


@pytest.fixture
def staff(session, client, district):
    person = people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)
    session.commit()
    sign_in(client, person.email, PASSWORD)
    return person


def _text(html: str, table: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.split(f'id="{table}-table"')[1].split("</table>")[0])).strip()


def test_the_api_gives_the_counts_and_lists(client, session, district):
    answer = client.get(f"{API}?{PERIOD}", headers=district["first"].headers)
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["filters"] == {"start": "2026-12-01", "end": "2027-01-31", "program": None}
    assert [(c["what"], c["count"], c["amount"]) for c in body["counts"]] == COUNTS
    beta = session.get(Startup, district["beta"].startup_id).name
    alpha = session.get(Startup, district["alpha"].startup_id).name
    gamma = session.get(Startup, district["gamma"].startup_id).name
    assert [(c["award_id"], c["startup"], c["program"], c["reason"], c["amount"], c["banned_until"]) for c in body["clawbacks"]] == [
        (district["awards"]["beta"], beta, "voucher", "double_subsidy", "12500.00", "2030-01-01")]
    carrier = session.get(Carrier, district["carrier"].carrier_id).name
    delta = session.get(Startup, district["delta"].startup_id).name
    epsilon = session.get(Startup, district["epsilon"].startup_id).name
    assert [(r["allocation_id"], r["startup"], r["program"], r["carrier"], r["reason"]) for r in body["refusals"]] == [
        (district["refused"]["epsilon"], epsilon, "voucher", carrier, "double_subsidy"),
        (district["refused"]["delta"], delta, "voucher", carrier, "related_party")]
    assert body["refusals"][0]["at"] == "2026-12-24T02:00:00+00:00"
    assert [(e["award_id"], e["startup"], e["type"], e["reason"]) for e in body["evidence"]] == [
        (district["awards"]["alpha"], alpha, "invoice", "发票抬头与合同不符")]
    assert [(o["startup"], o["status"]) for o in body["objections"]] == [("", "dismissed"), (gamma, "upheld")]


@pytest.mark.parametrize(("query", "counts"), [
    ("start=2027-01-01&end=2027-01-31", [0, 0, 0, 1, 0, 0, 1, 0, 0, 0]),  # after the notice and the refusals
    ("start=2026-12-22&end=2026-12-22", [0, 0, 0, 0, 0, 0, 0, 2, 0, 0]),  # lodged, not yet answered
    ("start=2026-12-24&end=2026-12-24", [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]),  # the refusals alone
    ("start=2026-10-01&end=2026-11-30", [0] * 10),
])
def test_the_period_filter(client, district, query, counts):
    body = client.get(f"{API}?{query}", headers=district["first"].headers).json
    assert [c["count"] for c in body["counts"]] == counts


def test_the_program_filter(client, district):
    program = district["program"]["id"]
    mine = client.get(f"{API}?{PERIOD}&program={program}", headers=district["first"].headers).json
    assert [c["count"] for c in mine["counts"]] == [c for _, c, _ in COUNTS]
    other = client.get(f"{API}?{PERIOD}&program={program + 1000}", headers=district["first"].headers).json
    assert [c["count"] for c in other["counts"]] == [0] * 10 and other["objections"] == [] and other["refusals"] == []


@pytest.mark.parametrize("query", ["start=2027-02-30", "start=2027-01-31&end=2027-01-01", "program=0", "program=x"])
def test_bad_filters_are_refused(client, district, staff, query):
    assert client.get(f"{API}?{query}", headers=district["first"].headers).status_code == 422
    page = client.get(f"{PAGE}?{query}")
    html = page.get_data(as_text=True)
    assert page.status_code == 422 and "筛选条件有误" in html and 'aria-invalid="true"' in html
    assert client.get(f"{PAGE}.csv?{query}").status_code == 422
    assert client.get(f"{PAGE}.xlsx?{query}").status_code == 422


def test_the_page_shows_the_counts_and_lists(client, district, staff):
    page = client.get(f"{PAGE}?{PERIOD}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>合规情况</h1>" in html and 'aria-current="page"' in html
    counts = _text(html, "counts")
    assert "追回：重复享受补贴 1 ¥12,500.00" in counts and "追回：发现关联交易 0 ¥0.00" in counts
    assert "证明材料被驳回 1 —" in counts and "公示期异议提出 2 —" in counts and "异议成立 1 —" in counts
    assert "重复享受补贴 ¥12,500.00 2030-01-01" in _text(html, "clawbacks")
    assert "发票 发票抬头与合同不符" in _text(html, "evidence")
    objections = _text(html, "objections")
    assert "整批 不成立" in objections and "成立 2026-12-23 10:00" in objections
    assert "批准时不予补贴：发现关联交易 1 —" in counts and "批准时不予补贴：重复享受补贴 1 —" in counts
    refusals = _text(html, "refusals")
    assert "批准时不予补贴（最近200条） 时间（北京时间） 分配编号 企业 补贴项目 运营商 原因 2026-12-24 10:00" in refusals
    assert refusals.endswith("发现关联交易") and refusals.count("2026-12-24 10:00") == 2
    assert "系统不留记录" not in html
    assert '"values": [0, 0, 0, 1, 1, 1, 1, 2, 1, 1]' in html


def test_in_english_through_the_language_switch(client, district, staff):
    switched = client.post("/language", data={"language": "en", "next": PAGE, "csrf_token": token_of(client, PAGE)})
    assert switched.status_code == 303
    html = client.get(f"{PAGE}?{PERIOD}").get_data(as_text=True)
    assert "<h1>Compliance</h1>" in html and "合规情况" not in html and "Evidence rejected" in html


def _names(session, district, who) -> tuple[str, str, str]:
    """A refusal row's firm, program and carrier."""
    return (session.get(Startup, district[who].startup_id).name, "voucher",
            session.get(Carrier, district["carrier"].carrier_id).name)


def test_the_csv_and_xlsx_have_the_same_numbers(client, session, district, staff):
    answer = client.get(f"{PAGE}.csv?{PERIOD}")
    assert answer.status_code == 200 and answer.get_data().startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(answer.get_data().decode("utf-8-sig"))))
    assert ["期间（北京时间）", "2026-12-01 — 2027-01-31"] in rows and ["补贴项目", "全部"] in rows
    assert ["追回：重复享受补贴", "1", "12500"] in rows and ["公示期异议提出", "2", ""] in rows
    assert ["批准时不予补贴：发现关联交易", "1", ""] in rows and ["批准时不予补贴：重复享受补贴", "1", ""] in rows
    assert ["批准时不予补贴（最近200条）"] in rows
    assert [r[1:] for r in rows if r and r[-1] in ("发现关联交易", "重复享受补贴") and len(r) == 6] == [
        [str(district["refused"]["epsilon"]), *_names(session, district, "epsilon"), "重复享受补贴"],
        [str(district["refused"]["delta"]), *_names(session, district, "delta"), "发现关联交易"]]
    book = load_workbook(io.BytesIO(client.get(f"{PAGE}.xlsx?{PERIOD}").get_data()))
    assert book.sheetnames == ["筛选条件", "合规事项（期间合计）", "追回（最近200条）", "批准时不予补贴（最近200条）",
                               "被驳回的证明材料（最近200条）", "公示期异议（最近200条）"]
    refused = list(book["批准时不予补贴（最近200条）"].iter_rows(values_only=True))
    assert [r[1:] for r in refused[1:]] == [
        (str(district["refused"]["epsilon"]), *_names(session, district, "epsilon"), "重复享受补贴"),
        (str(district["refused"]["delta"]), *_names(session, district, "delta"), "发现关联交易")]
    assert ("批准时不予补贴：发现关联交易", 1, None) in list(book["合规事项（期间合计）"].iter_rows(values_only=True))
    counts = list(book["合规事项（期间合计）"].iter_rows(values_only=True))
    assert counts[0] == ("事项", "件数", "追回金额") and ("追回：重复享受补贴", 1, 12500) in counts
    assert ("证明材料被驳回", 1, None) in counts and book["合规事项（期间合计）"]["C5"].number_format == "#,##0.00"


def test_only_staff_and_statements_flat(app, client, district, staff):
    assert client.get(API, headers=district["alpha"].headers).status_code == 403
    few = len(statements_sent(app, client, f"{PAGE}?start=2026-10-01&end=2026-11-30"))
    assert len(statements_sent(app, client, f"{PAGE}?{PERIOD}")) == few  # more rows in every list, same statements
    client.post("/sign-out", data={"csrf_token": token_of(client, PAGE)})
    assert client.get(PAGE).status_code == 302


def test_a_refusal_is_recorded_with_the_approval_in_the_startups_feed_only(client, session, district):
    refused = session.execute(sa.select(Event.allocation_id, Event.startup_id, Event.carrier_id, Event.payload)
                              .where(Event.type == "subsidy.refused").order_by(Event.id)).all()
    program = district["program"]
    assert [(a, s, c, p["program_id"], p["program"], p["reason"]) for a, s, c, p in refused] == [
        (district["refused"]["delta"], district["delta"].startup_id, None, program["id"], "voucher", "related_party"),
        (district["refused"]["epsilon"], district["epsilon"].startup_id, None, program["id"], "voucher", "double_subsidy")]
    # Programs refused for their own terms are not refusals to count: none in the rest of the district.
    assert session.scalar(sa.select(sa.func.count()).where(Event.type == "subsidy.refused")) == 2
    feed = client.get("/api/v1/events?page_size=100", headers=district["delta"].headers).json
    assert [(e["allocation_id"], e["payload"]["reason"]) for e in feed if e["type"] == "subsidy.refused"] == [
        (district["refused"]["delta"], "related_party")]
    theirs = client.get("/api/v1/events?page_size=100", headers=district["carrier"].headers).json
    assert theirs and not [e for e in theirs if e["type"] == "subsidy.refused"]
