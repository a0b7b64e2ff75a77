"""Carrier pledges (运营商承诺资源) through the API and the console, on a small district whose figures are
computed by hand below: pledged, published (offers open on at least one day of the period),
allocated (approved, provisioning, active, released on those offers) and delivered (usage recorded in
the period, Asia/Shanghai) per carrier × kind, the same on the staff page, its CSV, the API and the
carrier's own page; revising replaces the figures (the audit log keeps the old); another carrier's
pledges 404; bad input 422 with nothing changed; a startup 403; the statement count flat."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.clock import SHANGHAI
from broker.models import (
    Allocation,
    AllocationStatus,
    AuditEntry,
    MatchingCycle,
    Offer,
    Pledge,
    ResourceRequest,
    Role,
    UsageReport,
)
from broker.services import people
from tests.conftest import statements_sent
from tests.e2e.test_carrier_allocations import PASSWORD as CARRIER_PASSWORD
from tests.e2e.test_carrier_allocations import person_of
from tests.e2e.test_console_sign_in import PASSWORD, sign_in, token_of

NOW = dt.datetime(2027, 2, 15, 2, 0, tzinfo=dt.timezone.utc)  # 2027-02-15 10:00 in Shanghai: in 2027-Q1
ALPHA_EMAIL = "li.na@alpha.example.cn"

# carrier × kind: pledged, published, allocated, delivered, shortfall (see `district` for the sums)
EXPECTED = {
    ("cn_alpha", "gpu"): ("1000", "900", "240", "65", "100"),
    ("cn_alpha", "tokens"): ("500000", "200000", "50000", "12345.5", "300000"),
    ("cn_beta", "gpu"): ("0", "400", "0", "0", "0"),
    ("cn_beta", "cpu"): ("5000", "8000", "1000", "0", "0"),
}


def shanghai(y, m, d, hour=12, minute=0) -> dt.datetime:
    return dt.datetime(y, m, d, hour, minute, tzinfo=SHANGHAI).astimezone(dt.timezone.utc)


def plain(value) -> str:
    return f"{Decimal(value).normalize():f}"


def put(client, actor, code, period, pledges):
    return client.put(f"/api/v1/carriers/{code}/pledges", json={"period": period, "pledges": pledges},
                      headers=actor.headers)


@pytest.fixture
def district(session, make_actor, frozen_clock, client):
    """Two carriers, their offers, allocations and usage around 2027-Q1 (2027-01-01 to 2027-03-31)."""
    clock = frozen_clock(NOW)
    alpha, beta = make_actor("carrier", code="cn_alpha"), make_actor("carrier", code="cn_beta")
    startup, staff = make_actor("startup"), make_actor("staff")
    cycle = MatchingCycle(scheduled_for=NOW)
    session.add(cycle)
    session.flush()

    def offer(carrier, name, kind, quantity, start, end):
        made = Offer(carrier_id=carrier.carrier_id, external_id=name, kind=kind, region="cn-east",
                     quantity=Decimal(quantity), window_start=start, window_end=end, list_price=Decimal(10),
                     unit_price=Decimal(8), divisible=True)
        session.add(made)
        session.flush()
        return made

    def allocation(on, quantity, status):
        request = ResourceRequest(startup_id=startup.startup_id, kind=on.kind, quantity=Decimal(quantity),
                                  window_start=dt.date(2027, 1, 1), window_end=dt.date(2027, 3, 31))
        session.add(request)
        session.flush()
        made = Allocation(cycle_id=cycle.id, request_id=request.id, offer_id=on.id, quantity=Decimal(quantity),
                          unit_price=Decimal(8), status=status)
        session.add(made)
        session.flush()
        return made

    def usage(of, quantity, when, name):
        session.add(UsageReport(carrier_id=of.offer.carrier_id, external_id=name, allocation_id=of.id,
                                quantity=Decimal(quantity), recorded_at=when))

    s = AllocationStatus
    # alpha's GPU: open on the period's first day only, on its last day only (both count: 600 + 300 = 900),
    # the day before it and the day after it (neither counts).
    first_day = offer(alpha, "a-gpu-1", "gpu", "600", dt.date(2026, 12, 20), dt.date(2027, 1, 1))
    last_day = offer(alpha, "a-gpu-2", "gpu", "300", dt.date(2027, 3, 31), dt.date(2027, 4, 30))
    before = offer(alpha, "a-gpu-3", "gpu", "700", dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    offer(alpha, "a-gpu-4", "gpu", "250", dt.date(2027, 4, 1), dt.date(2027, 5, 1))
    tokens = offer(alpha, "a-tok-1", "tokens", "200000", dt.date(2027, 1, 10), dt.date(2027, 2, 10))
    # allocated GPU: 100 + 50 + 30 + 60 = 240; proposed, rejected, lapsed, cancelled and the one on `before` don't count
    allocation(first_day, "100", s.approved)
    active = allocation(first_day, "50", s.active)
    released = allocation(first_day, "30", s.released)
    for quantity, status in (("40", s.proposed), ("20", s.rejected), ("10", s.lapsed), ("5", s.cancelled)):
        allocation(first_day, quantity, status)
    allocation(last_day, "60", s.provisioning)
    earlier = allocation(before, "70", s.active)
    used_tokens = allocation(tokens, "50000", s.active)
    # delivered GPU: 20 + 15 + 30 = 65 (by Shanghai's calendar: 23:30 on 12-31 and 00:10 on 04-01 are outside)
    usage(active, "20", shanghai(2027, 1, 5), "u1")
    usage(active, "7", shanghai(2026, 12, 31, 23, 30), "u2")
    usage(earlier, "15", shanghai(2027, 1, 1, 0, 30), "u3")  # on an offer outside the period: usage still counts
    usage(released, "30", shanghai(2027, 3, 31, 23, 0), "u4")
    usage(released, "4", shanghai(2027, 4, 1, 0, 10), "u5")
    usage(used_tokens, "12345.5", shanghai(2027, 2, 1), "u6")
    # beta: GPU published and not pledged, CPU pledged and over-published
    offer(beta, "b-gpu-1", "gpu", "400", dt.date(2027, 1, 1), dt.date(2027, 3, 31))
    cpu = offer(beta, "b-cpu-1", "cpu", "8000", dt.date(2027, 2, 1), dt.date(2027, 2, 28))
    allocation(cpu, "1000", s.approved)
    session.commit()

    assert put(client, alpha, "cn_alpha", "2027-Q1", [
        {"kind": "gpu", "quantity": "1000", "terms": "discounted", "unit_price": "8.50"},
        {"kind": "tokens", "quantity": "500000", "terms": "discounted", "discount_rate": "0.2", "note": "八折"},
    ]).status_code == 200
    assert put(client, beta, "cn_beta", "2027-Q1", [{"kind": "cpu", "quantity": "5000", "terms": "free"}]).status_code == 200
    assert put(client, beta, "cn_beta", "2027-Q2", [{"kind": "gpu", "quantity": "999", "terms": "free"}]).status_code == 200
    return {"alpha": alpha, "beta": beta, "startup": startup, "staff": staff, "clock": clock}


def staff_signed_in(session, client):
    people.create_district_person(session, "shen.hui@changning.example.gov.cn", "沈慧", Role.staff, PASSWORD)
    assert sign_in(client, "shen.hui@changning.example.gov.cn", PASSWORD).status_code == 303


def carrier_signed_in(session, client, carrier, email=ALPHA_EMAIL, n=9301):
    person_of(session, carrier.carrier_id, email, n, NOW)
    assert sign_in(client, email, CARRIER_PASSWORD).status_code == 303


def page_lines(html: str) -> dict[tuple[str, str], tuple[str, ...]]:
    found = {}
    for code, kind, row in re.findall(r'<tr id="tracking-([\w-]+?)-(gpu|cpu|tokens|data_line|cloud_vm|storage)">(.*?)</tr>',
                                      html, re.S):
        cells = dict(re.findall(r'class="amount (\w+)">([^<]*)<', row))
        found[(code, kind)] = tuple(cells[name].replace(",", "") for name in
                                    ("pledged", "published", "allocated", "delivered", "shortfall"))
    return found


def test_tracking_is_the_hand_computed_figures_on_the_page_the_csv_and_the_api(app, client, session, district):
    api = client.get("/api/v1/pledge-tracking?period=2027-Q1", headers=district["staff"].headers)
    assert api.status_code == 200, api.json
    assert api.json["first_day"] == "2027-01-01" and api.json["last_day"] == "2027-03-31"
    assert {(line["carrier"], line["kind"]): tuple(
        plain(line[name]) for name in ("pledged", "published", "allocated", "delivered", "shortfall"))
        for line in api.json["lines"]} == EXPECTED
    assert [(line["carrier"], line["kind"]) for line in api.json["lines"]] == list(EXPECTED)  # carrier, then kind order

    staff_signed_in(session, client)
    page = client.get("/staff/pledges?period=2027-Q1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert page_lines(html) == EXPECTED
    assert 'id="pledges-chart"' in html and "vendor/echarts/echarts.min.js" in html

    one = page_lines(client.get("/staff/pledges?period=2027-Q1&carrier=cn_beta").get_data(as_text=True))
    assert one == {k: v for k, v in EXPECTED.items() if k[0] == "cn_beta"}

    exported = client.get("/staff/pledges.csv?period=2027-Q1")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    raw = exported.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:6] == ["期间", "运营商编码", "运营商", "资源类型", "计量单位", "承诺数量"]
    assert {(r[1], {"GPU 算力": "gpu", "CPU 算力": "cpu", "大模型 Tokens": "tokens"}[r[3]]):
            tuple(plain(v) for v in r[5:10]) for r in rows[1:]} == EXPECTED

    q2 = client.get("/api/v1/pledge-tracking?period=2027-Q2", headers=district["staff"].headers).json
    assert [(line["carrier"], line["kind"], line["pledged"]) for line in q2["lines"] if line["pledged"] != "0.000"] \
        == [("cn_beta", "gpu", "999.000")]


def test_a_carrier_sees_only_its_own_and_records_a_pledge_on_its_page(app, client, session, district):
    alpha = district["alpha"]
    assert client.get("/api/v1/carriers/cn_beta/pledges?period=2027-Q1", headers=alpha.headers).status_code == 404
    assert put(client, alpha, "cn_beta", "2027-Q1", []).status_code == 404
    assert client.get("/api/v1/pledge-tracking?period=2027-Q1&carrier=cn_beta", headers=alpha.headers).status_code == 404
    own = client.get("/api/v1/pledge-tracking?period=2027-Q1", headers=alpha.headers).json
    assert {line["carrier"] for line in own["lines"]} == {"cn_alpha"}
    assert client.get("/api/v1/pledge-tracking?period=2027-Q1", headers=district["startup"].headers).status_code == 403
    assert client.get("/api/v1/carriers/cn_alpha/pledges?period=2027-Q1",
                      headers=district["startup"].headers).status_code == 403

    carrier_signed_in(session, client, alpha)
    page = client.get("/carrier/pledges")  # this quarter by the clock: 2027-Q1
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert page_lines(html) == {k: v for k, v in EXPECTED.items() if k[0] == "cn_alpha"}
    assert 'value="8.50"' in html and 'aria-current' in html and "承诺资源" in html
    saved = client.post("/carrier/pledges", data={
        "csrf_token": token_of(client, "/carrier/pledges"), "period": "2027-Q1", "kind": "cpu", "quantity": "300",
        "terms": "free", "note": "通用算力"})
    assert saved.status_code == 303 and "done=saved" in saved.headers["Location"]
    assert "承诺已保存" in client.get(saved.headers["Location"]).get_data(as_text=True)
    assert page_lines(client.get("/carrier/pledges?period=2027-Q1").get_data(as_text=True))[("cn_alpha", "cpu")][0] == "300"
    removed = client.post("/carrier/pledges/remove", data={
        "csrf_token": token_of(client, "/carrier/pledges"), "period": "2027-Q1", "kind": "cpu"})
    assert removed.status_code == 303
    assert session.scalar(sa.select(sa.func.count(Pledge.id)).where(Pledge.kind == "cpu",
                                                                     Pledge.carrier_id == alpha.carrier_id)) == 0
    again = client.post("/carrier/pledges/remove", data={
        "csrf_token": token_of(client, "/carrier/pledges"), "period": "2027-Q1", "kind": "cpu"})
    assert again.status_code == 404
    assert client.get("/staff/pledges").status_code == 403  # the carrier is not staff


def test_revising_replaces_the_figures_and_the_audit_log_keeps_the_old(client, session, district):
    alpha, staff = district["alpha"], district["staff"]
    pledge_id = session.scalar(sa.select(Pledge.id).where(Pledge.carrier_id == alpha.carrier_id, Pledge.kind == "gpu"))
    revised = put(client, staff, "cn_alpha", "2027-Q1", [  # staff record it for the carrier; tokens left out: removed
        {"kind": "gpu", "quantity": "1200.5", "terms": "free"}])
    assert revised.status_code == 200, revised.json
    assert [(p["kind"], p["quantity"], p["terms"], p["unit_price"]) for p in revised.json] == [
        ("gpu", "1200.500", "free", None)]
    session.expire_all()
    rows = session.scalars(sa.select(Pledge).where(Pledge.carrier_id == alpha.carrier_id, Pledge.period == "2027-Q1")).all()
    assert [(p.id, p.quantity, p.unit_price) for p in rows] == [(pledge_id, Decimal("1200.500"), None)]
    entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_type == "pledges",
                                                        AuditEntry.entity_id == pledge_id, AuditEntry.action == "revise")).one()
    assert entry.before["quantity"] == "1000.000" and entry.before["unit_price"] == "8.50"
    assert entry.after["quantity"] == "1200.500" and entry.actor_id == staff.account_id
    gone = session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_type == "pledges",
                                                       AuditEntry.action == "remove")).one()
    assert gone.before["kind"] == "tokens" and gone.before["quantity"] == "500000.000" and gone.after is None
    assert gone.before["discount_rate"] == "0.2000" and gone.actor_id == staff.account_id


def test_bad_input_is_422_with_the_fields_words_and_nothing_changed(client, session, district):
    alpha = district["alpha"]

    def snapshot():
        session.expire_all()
        return sorted((p.kind, p.period, p.quantity, p.terms, p.unit_price, p.discount_rate)
                      for p in session.scalars(sa.select(Pledge)))

    before = snapshot()
    for body, field in (
        ([{"kind": "gpu", "quantity": "0", "terms": "free"}], "quantity"),
        ([{"kind": "gpu", "quantity": "10", "terms": "free", "unit_price": "3"}], "unit_price"),
        ([{"kind": "gpu", "quantity": "10", "terms": "discounted"}], "unit_price"),
        ([{"kind": "gpu", "quantity": "10", "terms": "discounted", "unit_price": "1", "discount_rate": "0.1"}],
         "discount_rate"),
        ([{"kind": "gpu", "quantity": "10", "terms": "discounted", "unit_price": "1.001"}], "unit_price"),
        ([{"kind": "gpu", "quantity": "10", "terms": "discounted", "discount_rate": "1"}], "discount_rate"),
        ([{"kind": "gpus", "quantity": "10", "terms": "free"}], "kind"),
    ):
        refused = put(client, alpha, "cn_alpha", "2027-Q1", body)
        assert refused.status_code == 422, (body, refused.json)
        assert field in str(refused.json["errors"]), (field, refused.json)
    assert put(client, alpha, "cn_alpha", "2027-Q5", []).status_code == 422
    assert snapshot() == before

    carrier_signed_in(session, client, alpha)
    token = token_of(client, "/carrier/pledges")
    page = client.post("/carrier/pledges", data={"csrf_token": token, "period": "2027-Q1", "kind": "gpu",
                                                  "quantity": "50", "terms": "discounted", "unit_price": "2",
                                                  "discount_rate": "0.3"})
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "单价与折扣率只填一项。" in html and 'id="gpu-discount_rate-error"' in html and 'value="50"' in html
    empty = client.post("/carrier/pledges", data={"csrf_token": token, "period": "2027-Q1", "kind": "cpu",
                                                   "quantity": "many", "terms": ""})
    assert empty.status_code == 422
    text = empty.get_data(as_text=True)
    assert "数量须为大于 0 的数" in text and "请选择条件" in text and "Must be" not in text
    assert client.get("/carrier/pledges?period=2027-13").status_code == 422
    assert snapshot() == before

    client.set_cookie("broker_lang", "en")
    english = client.post("/carrier/pledges", data={"csrf_token": token, "period": "2027-Q1", "kind": "gpu",
                                                     "quantity": "50", "terms": "discounted"})
    assert english.status_code == 422
    assert "A discounted pledge needs a unit price or a discount rate" in english.get_data(as_text=True)


def test_not_signed_in_goes_to_sign_in_and_a_startup_person_is_refused(client, session, district):
    assert client.get("/carrier/pledges").headers["Location"].startswith("/sign-in")
    assert client.get("/staff/pledges").headers["Location"].startswith("/sign-in")
    assert client.get("/staff/pledges.csv").headers["Location"].startswith("/sign-in")


def test_the_staff_page_costs_the_same_statements_for_one_line_as_for_many(app, client, session, district):
    staff_signed_in(session, client)
    one = statements_sent(app, client, "/staff/pledges?period=2027-Q2")  # beta's GPU pledge only
    many = statements_sent(app, client, "/staff/pledges?period=2027-Q1")
    assert len(one) == len(many)
