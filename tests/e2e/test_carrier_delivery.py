"""The carrier page's delivery and settlement (运营商门户 · 交付与结算) through the test client: usage per
allocation with the subsidy it redeemed, equal to the ledger's rows and to the API's for the same
carrier; filters (a bad month refused in words), the CSV with its byte-order mark and Chinese headers;
the statements the carrier claims on, summed as the API sums them and paid as the ledger's write-off
rows say; another carrier's or another payee's statement 404; a startup's person and staff 403;
the statement count flat from one row to many. On the settlement tests' voucher and clock."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import sqlalchemy as sa

from broker.models import Role, SettlementStatement, Startup
from broker.services import people
from tests.conftest import statements_sent
from tests.e2e.test_carrier_allocations import PASSWORD, person_of
from tests.e2e.test_console_sign_in import sign_in, token_of
from tests.e2e.test_settlement import approve_all, at, award_of, period, reviewed, use  # noqa: F401 - the period fixture
from tests.e2e.test_staff_appeals import company_person_signed_in

CARRIER_EMAIL = "zhou.min@carrier.example.cn"


def carrier_program(client, people_):
    """A service voucher paying 60% to the carrier (it beats the startups' 50% voucher)."""
    made = client.post("/api/v1/subsidy-programs", headers=people_["builder"].headers, json={
        "code": "service-voucher", "name": "服务券", "kinds": ["gpu"], "rate": "0.6", "cap_per_startup": "200000",
        "claimant": "carrier", "budget": "500000", "funding_document": "京经信〔2026〕7号", "starts_on": "2026-01-01",
        "ends_on": "2027-07-01", "evidence_required": ["usage_statement"], "requires_notice": False})
    assert made.status_code == 201, made.json


def build(client, people_, program, period_text):
    built = client.post("/api/v1/settlements", json={"program": program, "period": period_text},
                        headers=people_["builder"].headers)
    assert built.status_code == 201, built.json
    return built.json


def money(amount) -> str:
    return f"¥{Decimal(amount):,.2f}"


def row(page: str, name: str, number: int) -> str:
    return re.search(rf'<tr id="{name}-{number}"[^>]*>(.*?)</tr>', page, re.S).group(1)


def rows_of(page: str, name: str) -> list[int]:
    return [int(n) for n in re.findall(rf'<tr id="{name}-(\d+)"', page)]


def api_rows(client, headers, **query) -> list[dict]:
    found = client.get("/api/v1/ledger", query_string={**query, "page_size": 100}, headers=headers)
    assert found.status_code == 200, found.json
    return found.json


def test_usage_and_statements_are_the_ledgers_and_the_apis(app, client, session, period, make_actor):  # noqa: F811
    people_, clock = period, period["clock"]
    another = make_actor("carrier")
    carrier_program(client, people_)
    allocations = approve_all(client, people_, {"alpha": "100", "beta": "100"})
    alpha, beta = allocations["alpha"], allocations["beta"]
    use(session, alpha, "60", at(dt.date(2026, 12, 10)), "u-a1")
    use(session, alpha, "40", at(dt.date(2026, 12, 15)), "u-a2")
    use(session, beta, "30", at(dt.date(2026, 12, 15), hour=14), "u-b1")
    reviewed(session, alpha)  # its usage statement is in; beta's is not
    clock.set(at(dt.date(2027, 1, 4)))
    carriers = build(client, people_, "service-voucher", "2026-12")
    startups = build(client, people_, "voucher", "2026-12")  # no lines: the awards are the carrier's
    done = client.post(f"/api/v1/settlements/{carriers['id']}/approve", json={"disbursement_reference": "ICBC-20270104-7"},
                       headers=people_["first"].headers)
    assert done.status_code == 200 and done.json["status"] == "written_off", done.json
    assert session.get(SettlementStatement, startups["id"]) is not None

    person_of(session, people_["carrier"].carrier_id, CARRIER_EMAIL, 9301, clock())
    assert sign_in(client, CARRIER_EMAIL, PASSWORD).status_code == 303
    shown = client.get("/carrier/delivery")
    assert shown.status_code == 200
    page = shown.get_data(as_text=True)
    assert 'aria-current="page">交付与结算<' in page
    assert sorted(rows_of(page, "usage")) == sorted([alpha, beta])

    headers = people_["carrier"].headers
    redeemed = {a: sum((Decimal(r["amount"]) for r in api_rows(client, headers, kind="redeem")
                        if r["allocation_id"] == a), Decimal(0)) for a in (alpha, beta)}
    assert redeemed == {alpha: Decimal("15000.00"), beta: Decimal("4500.00")}  # 100 h and 30 h × ¥250 × 60%
    through_api = {a["id"]: a for a in client.get("/api/v1/allocations", headers=headers).json}
    alpha_row, beta_row = row(page, "usage", alpha), row(page, "usage", beta)
    assert "100 卡时" in alpha_row and money(redeemed[alpha]) in alpha_row and "2026年12月15日 09:00" in alpha_row
    assert ">100 卡时<" in beta_row and ">30 卡时<" in beta_row and money(redeemed[beta]) in beta_row and "2026年12月15日 14:00" in beta_row
    assert Decimal(through_api[alpha]["quantity"]) == 100 and Decimal(through_api[beta]["quantity"]) == 100
    names = {a: session.get(Startup, award_of(session, a).startup_id).name for a in (alpha, beta)}
    session.commit()  # the test's reads end before the app's next requests share the connection
    assert names[alpha] in alpha_row and names[beta] in beta_row  # approved: the startup is named

    # Filters: the month of the reports, the kind, the status; a month that is not one is said so.
    assert sorted(rows_of(client.get("/carrier/delivery?month=2026-12").get_data(as_text=True), "usage")) == sorted([alpha, beta])
    assert rows_of(client.get("/carrier/delivery?month=2026-11").get_data(as_text=True), "usage") == []
    assert rows_of(client.get("/carrier/delivery?kind=cpu").get_data(as_text=True), "usage") == []
    assert rows_of(client.get("/carrier/delivery?status=active").get_data(as_text=True), "usage") == []
    bad = client.get("/carrier/delivery?month=2026-Q4")
    assert bad.status_code == 422 and "月份应写作如 2026-12" in bad.get_data(as_text=True)

    exported = client.get("/carrier/delivery.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.get_data().startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(exported.get_data().decode("utf-8-sig"))))
    assert lines[0][:2] == ["分配编号", "状态"] and "已核验补贴（元）" in lines[0]
    by_id = {int(r[0]): r for r in lines[1:]}
    assert sorted(by_id) == sorted([alpha, beta])
    assert Decimal(by_id[alpha][9]) == redeemed[alpha] and Decimal(by_id[alpha][6]) == 100 and by_id[alpha][4] == names[alpha]
    assert list(csv.reader(io.StringIO(client.get("/carrier/delivery.csv?month=2026-11").get_data().decode("utf-8-sig"))))[1:] == []

    # The statements: only the one the carrier claims on, summed as the API and the ledger have it.
    assert rows_of(page, "statement") == [carriers["id"]]
    [seen] = client.get("/api/v1/settlements", headers=headers).json
    claimed = sum((Decimal(line["outstanding"]) for line in seen["lines"]), Decimal(0))
    paid = sum((Decimal(r["amount"]) for r in api_rows(client, headers, kind="write_off")), Decimal(0))
    assert (claimed, Decimal(seen["total_payable"]), paid) == (Decimal("19500.00"), Decimal("15000.00"), Decimal("15000.00"))
    listed = row(page, "statement", carriers["id"])
    assert "服务券" in listed and "2026-12" in listed and "已审批并核销" in listed
    assert f'{money(claimed)}</td>' in listed and listed.count(money(paid)) == 2  # approved and paid

    one = client.get(f"/carrier/delivery/statements/{carriers['id']}")
    assert one.status_code == 200
    text = one.get_data(as_text=True)
    assert sorted(rows_of(text, "line")) == sorted(line["award_id"] for line in seen["lines"])
    assert "ICBC-20270104-7" in text and "证明材料不全（须提供用量清单）" in text
    assert money(paid) in re.search(r'<dd id="paid">(.*?)</dd>', text).group(1)
    assert client.get(f"/carrier/delivery/statements/{startups['id']}").status_code == 404  # not the carrier's claim
    assert client.get("/carrier/delivery/statements/999999").status_code == 404

    # In English through the language switch.
    client.post("/language", data={"language": "en", "next": "/carrier/delivery", "csrf_token": token_of(client, "/carrier/delivery")})
    english = client.get("/carrier/delivery").get_data(as_text=True)
    assert "交付与结算" not in english and "用量上报" not in english and "已审批并核销" not in english

    # Another carrier: none of it.
    client.post("/sign-out", data={"csrf_token": token_of(client, "/carrier/delivery")})
    person_of(session, another.carrier_id, "wu.lei@other-carrier.example.cn", 9302, clock())
    assert sign_in(client, "wu.lei@other-carrier.example.cn", PASSWORD).status_code == 303
    assert client.get(f"/carrier/delivery/statements/{carriers['id']}").status_code == 404
    elsewhere = client.get("/carrier/delivery").get_data(as_text=True)
    assert rows_of(elsewhere, "usage") == [] and rows_of(elsewhere, "statement") == []
    assert len(list(csv.reader(io.StringIO(client.get("/carrier/delivery.csv").get_data().decode("utf-8-sig"))))) == 1


def test_a_startups_person_and_staff_get_403_and_nobody_signed_in_the_sign_in_page(app, client, session, period):  # noqa: F811
    assert client.get("/carrier/delivery").headers["Location"].startswith("/sign-in?next=/carrier/delivery")
    assert client.get("/carrier/delivery/statements/1").headers["Location"].startswith("/sign-in")
    company_person_signed_in(app, client, session, period["alpha"].startup_id, "chen.jing@alpha.example.cn", period["clock"]())
    for path in ("/carrier/delivery", "/carrier/delivery.csv", "/carrier/delivery/statements/1"):
        assert client.get(path).status_code == 403
    staff = app.test_client()
    people.create_district_person(session, "ma.jun@changning.example.gov.cn", "马俊", Role.staff, PASSWORD)
    session.commit()
    assert sign_in(staff, "ma.jun@changning.example.gov.cn", PASSWORD).status_code == 303
    for path in ("/carrier/delivery", "/carrier/delivery.csv", "/carrier/delivery/statements/1"):
        assert staff.get(path).status_code == 403


def test_the_statement_count_is_flat_from_one_row_to_many(app, client, session, period, make_actor):  # noqa: F811
    people_, clock = period, period["clock"]
    carrier_program(client, people_)
    first = approve_all(client, people_, {"alpha": "100"})
    use(session, first["alpha"], "10", at(dt.date(2026, 12, 10)), "u-1")
    clock.set(at(dt.date(2026, 12, 12)))
    build(client, people_, "service-voucher", "2026-12")
    person_of(session, people_["carrier"].carrier_id, CARRIER_EMAIL, 9303, clock())
    assert sign_in(client, CARRIER_EMAIL, PASSWORD).status_code == 303
    statement_id = session.scalar(sa.select(SettlementStatement.id))
    session.commit()
    one_row = len(statements_sent(app, client, "/carrier/delivery"))
    one_line = len(statements_sent(app, client, f"/carrier/delivery/statements/{statement_id}"))
    assert rows_of(client.get("/carrier/delivery").get_data(as_text=True), "usage") == [first["alpha"]]

    for name in ("gamma", "delta", "epsilon"):
        people_[name] = make_actor("startup")
    more = approve_all(client, people_, {"beta": "100", "gamma": "50", "delta": "20", "epsilon": "10"},
                       window=("2026-12-14", "2026-12-28"))
    for n, allocation_id in enumerate(more.values()):
        use(session, allocation_id, "5", at(dt.date(2026, 12, 15)), f"u-more-{n}")
        use(session, allocation_id, "1", at(dt.date(2026, 12, 16)), f"u-more-{n}-b")
    clock.set(at(dt.date(2027, 1, 4)))
    build(client, people_, "service-voucher", "2026-Q4")
    assert sign_in(client, CARRIER_EMAIL, PASSWORD).status_code == 303  # the session went idle meanwhile
    many = client.get("/carrier/delivery").get_data(as_text=True)
    assert len(rows_of(many, "usage")) == 5 and len(rows_of(many, "statement")) == 2
    assert len(statements_sent(app, client, "/carrier/delivery")) == one_row
    latest = max(rows_of(many, "statement"))
    assert len(rows_of(client.get(f"/carrier/delivery/statements/{latest}").get_data(as_text=True), "line")) == 5
    assert len(statements_sent(app, client, f"/carrier/delivery/statements/{latest}")) == one_line
