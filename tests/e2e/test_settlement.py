"""Settlement (核销) through the API and the CLI: a period from deposit to write-off and release, four
eyes, clawback after write-off with a ban that eligibility honours, bad input that changes nothing,
and each payee seeing only its own lines. On a clock the test controls, with real cycles.

Evidence review and the public notice are built elsewhere (they set `Award.evidence_complete` and
`Award.notice_state`); here those two fields are set directly on the award rows through the session.
"""

import datetime as dt
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa

from broker.cli import main
from broker.models import (
    Allocation,
    Award,
    Event,
    LedgerEntry,
    NoticeState,
    SettlementStatement,
    SubsidyBan,
    UsageReport,
)
from broker.services import ledger, subsidies
from tests.e2e.test_offers import gpu_offer, publish

SHANGHAI_OFFSET = dt.timedelta(hours=8)
DOCUMENT = "沪经信智〔2025〕489号"


def at(day, hour=9):
    """`hour` o'clock in Shanghai on `day`, as an aware UTC instant."""
    return dt.datetime.combine(day, dt.time(hour), dt.timezone(SHANGHAI_OFFSET)).astimezone(dt.timezone.utc)


@pytest.fixture
def period(client, make_actor, frozen_clock):
    """Three staff, one carrier with a big GPU lot, two startups, and a voucher paying half the cost."""
    clock = frozen_clock(at(dt.date(2026, 11, 30)))
    people = {name: make_actor("staff") for name in ("builder", "first", "second")}
    people["carrier"] = make_actor("carrier")
    people["alpha"], people["beta"] = make_actor("startup"), make_actor("startup")
    published = publish(client, people["carrier"],
                        gpu_offer("big", quantity="10000", unit_price="250", list_price="300"))
    assert published.status_code == 200, published.json
    program = client.post("/api/v1/subsidy-programs", headers=people["builder"].headers, json={
        "code": "voucher", "name": "算力券", "kinds": ["gpu"], "rate": "0.5", "cap_per_startup": "200000",
        "budget": "1000000", "funding_document": DOCUMENT, "starts_on": "2026-01-01", "ends_on": "2027-07-01",
        "evidence_required": ["contract", "invoice"], "requires_notice": True})
    assert program.status_code == 201, program.json
    return {**people, "clock": clock, "program": program.json}


def approve_all(client, people, asks, window=("2026-12-07", "2026-12-20")):
    """Each startup in `asks` asks for its GPU-hours; one cycle proposes; staff approve. Returns allocation ids."""
    requests = {}
    for name, quantity in asks.items():
        asked = client.post("/api/v1/requests", headers=people[name].headers, json={
            "kind": "gpu", "quantity": quantity, "window_start": window[0], "window_end": window[1]})
        assert asked.status_code == 201, asked.json
        requests[name] = asked.json["id"]
    assert client.post("/api/v1/cycles", json={}, headers=people["first"].headers).status_code == 201
    found = {}
    for name, request_id in requests.items():
        [allocation] = client.get(f"/api/v1/allocations?request_id={request_id}", headers=people["first"].headers).json
        approved = client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=people["first"].headers)
        assert approved.status_code == 200, approved.json
        found[name] = allocation["id"]
    return found


def award_of(session, allocation_id):
    session.expire_all()
    return session.scalar(sa.select(Award).where(Award.allocation_id == allocation_id))


def use(session, allocation_id, quantity, when, external_id):
    """The carrier reports usage and it redeems the award pro rata (as provisioning.pull_usage does)."""
    allocation = session.get(Allocation, allocation_id)
    usage = UsageReport(carrier_id=allocation.offer.carrier_id, external_id=external_id, allocation_id=allocation_id,
                        quantity=Decimal(quantity), recorded_at=when)
    session.add(usage)
    session.flush()
    redeemed = subsidies.redeem_usage(session, allocation, usage, when)
    session.commit()
    return redeemed


def reviewed(session, allocation_id, *, evidence=True, notice=NoticeState.final):
    # What the evidence review and the public notice would set (built in their own branches).
    award = award_of(session, allocation_id)
    award.evidence_complete, award.notice_state = evidence, notice
    session.commit()


def rows_of(session, award_id):
    session.expire_all()
    return list(session.scalars(sa.select(LedgerEntry).where(LedgerEntry.award_id == award_id).order_by(LedgerEntry.id)))


def reconciled(session):
    session.expire_all()  # read the caches as the requests left them, not as this session last saw them
    result = ledger.reconcile(session)
    assert result.differences == []
    return result.ok


def snapshot(session):
    session.expire_all()
    return (session.scalar(sa.select(sa.func.count(LedgerEntry.id))),
            [(s.id, s.status, s.first_approved_by_id) for s in session.scalars(sa.select(SettlementStatement))],
            [(a.id, a.status, a.committed, a.redeemed, a.written_off) for a in session.scalars(sa.select(Award))],
            session.scalar(sa.select(sa.func.count(SubsidyBan.id))))


def test_a_period_from_usage_to_write_off_release_and_clawback(app, client, session, period, capsys):
    people, clock = period, period["clock"]
    staff = lambda name: people[name].headers  # noqa: E731
    allocations = approve_all(client, people, {"alpha": "1000", "beta": "200"})
    alpha, beta = allocations["alpha"], allocations["beta"]
    assert award_of(session, alpha).committed == Decimal("125000.00")  # 1000 h × ¥250 × 50%
    assert award_of(session, beta).committed == Decimal("25000.00")
    assert reconciled(session)

    # Usage in the quarter: alpha uses 900 of its 1000 hours, beta 100 of 200.
    use(session, alpha, "400", at(dt.date(2026, 12, 10)), "u-1")
    use(session, alpha, "500", at(dt.date(2026, 12, 18)), "u-2")
    use(session, beta, "100", at(dt.date(2026, 12, 18)), "u-3")
    reviewed(session, alpha)  # evidence verified, notice final
    reviewed(session, beta, notice=NoticeState.in_notice)  # still in its notice: held
    assert reconciled(session)

    clock.set(at(dt.date(2027, 1, 4)))
    bad_period = client.post("/api/v1/settlements", json={"program": "voucher", "period": "2026-Q5"}, headers=staff("builder"))
    assert bad_period.status_code == 422 and "period" in bad_period.json["errors"]["json"], bad_period.json
    assert "2026-Q4" in bad_period.json["errors"]["json"]["period"][0]
    assert client.post("/api/v1/settlements", json={"program": "voucher", "period": "2026-Q4"},
                       headers=people["alpha"].headers).status_code == 403
    assert client.get("/api/v1/settlements", headers=staff("builder")).json == []

    built = client.post("/api/v1/settlements", json={"program": "voucher", "period": "2026-Q4"}, headers=staff("builder"))
    assert built.status_code == 201, built.json
    statement = built.json
    lines = {line["award_id"]: line for line in statement["lines"]}
    alpha_award, beta_award = award_of(session, alpha), award_of(session, beta)
    assert lines[alpha_award.id]["redeemed_in_period"] == "112500.00" and lines[alpha_award.id]["payable"] == "112500.00"
    assert lines[beta_award.id]["payable"] == "0.00" and "notice not final (in_notice)" in lines[beta_award.id]["held"]
    assert (statement["status"], statement["total_payable"], statement["approvals_needed"]) == ("draft", "112500.00", 2)
    assert client.post("/api/v1/settlements", json={"program": "voucher", "period": "2026-Q4"},
                       headers=staff("second")).status_code == 409  # one statement per program and period
    assert reconciled(session)

    # Each payee sees only its own lines; the carrier (not the claimant here) and strangers see nothing.
    mine = client.get("/api/v1/settlements", headers=people["beta"].headers).json
    assert [[line["award_id"] for line in s["lines"]] for s in mine] == [[beta_award.id]]
    assert mine[0]["total_payable"] == "0.00"
    assert client.get("/api/v1/settlements", headers=people["carrier"].headers).json == []
    assert client.get(f"/api/v1/settlements/{statement['id']}", headers=people["carrier"].headers).status_code == 404

    url = f"/api/v1/settlements/{statement['id']}/approve"
    before = snapshot(session)
    own = client.post(url, json={"disbursement_reference": "ICBC-20270104-001"}, headers=staff("builder"))
    assert own.status_code == 403 and "own statement" in own.json["message"], own.json
    missing = client.post(url, json={}, headers=staff("first"))
    assert missing.status_code == 422 and "disbursement_reference" in missing.json["errors"]["json"], missing.json
    blank = client.post(url, json={"disbursement_reference": "  "}, headers=staff("first"))
    assert blank.status_code == 422 and "disbursement_reference" in blank.json["errors"]["json"]
    assert snapshot(session) == before

    first = client.post(url, json={"disbursement_reference": "ICBC-20270104-001"}, headers=staff("first"))
    assert first.status_code == 200, first.json
    assert (first.json["status"], first.json["first_approved_by_id"]) == ("draft", people["first"].account_id)
    assert [r.kind.value for r in rows_of(session, alpha_award.id)] == ["commit", "redeem", "redeem"]  # nothing written off yet
    again = client.post(url, json={"disbursement_reference": "ICBC-20270104-001"}, headers=staff("first"))
    assert again.status_code == 409 and "second, different staff account" in again.json["message"], again.json
    assert reconciled(session)

    final = client.post(url, json={"disbursement_reference": "沪财预〔2027〕3号 ICBC-20270104-001"}, headers=staff("second"))
    assert final.status_code == 200, final.json
    assert (final.json["status"], final.json["approved_by_id"]) == ("written_off", people["second"].account_id)
    alpha_award = award_of(session, alpha)
    assert alpha_award.written_off == alpha_award.redeemed == Decimal("112500.00") and alpha_award.payable == 0
    [write_off] = [r for r in rows_of(session, alpha_award.id) if r.kind.value == "write_off"]
    assert write_off.idempotency_key == f"write_off:statement:{statement['id']}:award:{alpha_award.id}"
    assert write_off.reference == "沪财预〔2027〕3号 ICBC-20270104-001" and write_off.actor_id == people["second"].account_id
    assert award_of(session, beta).written_off == 0  # held lines are not written off
    assert client.post(url, json={"disbursement_reference": "x"}, headers=staff("first")).status_code == 409
    assert reconciled(session)

    # Release at period end: the windows ended 2026-12-20, so what usage did not redeem goes back.
    release_url = f"/api/v1/subsidy-programs/{people['program']['id']}/release-unused"
    assert client.post(release_url, json={"until": "2027-03-01"}, headers=staff("first")).status_code == 422  # not ended yet
    released = client.post(release_url, json={"until": "2027-01-04"}, headers=staff("first"))
    assert released.status_code == 200, released.json
    assert released.json["returned"] == "25000.00"  # alpha's 12,500 and beta's 12,500
    assert sorted(released.json["award_ids"]) == sorted([alpha_award.id, beta_award.id])
    program = client.get(f"/api/v1/subsidy-programs/{people['program']['id']}", headers=staff("first")).json
    assert (program["committed"], program["redeemed"], program["written_off"]) == ("125000.00", "125000.00", "112500.00")
    assert reconciled(session)

    # The ledger rows of one award from commit to write-off and release, as an auditor reads them.
    rows = rows_of(session, alpha_award.id)
    assert [(r.kind.value, r.amount) for r in rows] == [
        ("commit", Decimal("125000.00")), ("redeem", Decimal("50000.00")), ("redeem", Decimal("62500.00")),
        ("write_off", Decimal("112500.00")), ("reverse", Decimal("12500.00"))]
    with capsys.disabled():
        print(f"\n-- ledger rows of award {alpha_award.id} (allocation {alpha}) --")
        for r in rows:
            print(f"{r.id:>4} {r.kind.value:<9} {r.amount:>12} {r.created_at.astimezone(dt.timezone(SHANGHAI_OFFSET)):%Y-%m-%d %H:%M} "
                  f"key={r.idempotency_key} reverses={r.reverses_id} reason={r.reason} reference={r.reference}")

    # The operator's statement, as the CLI prints it (it exists, so it is read, not built again).
    printed = app.test_cli_runner().invoke(main, ["ledger", "statement", "--program", "voucher", "--period", "2026-Q4"])
    assert printed.exit_code == 0, printed.output
    assert "program voucher" in printed.output and "period 2026-Q4" in printed.output and "written_off" in printed.output
    assert "112500.00" in printed.output and DOCUMENT in printed.output
    with capsys.disabled():
        print("\n-- broker ledger statement --program voucher --period 2026-Q4 --\n" + printed.output)

    # Clawback after write-off: what was paid is to be recovered, the startup is banned and told.
    before = snapshot(session)
    no_reason = client.post(f"/api/v1/awards/{alpha_award.id}/clawback", json={"note": "发票伪造"}, headers=staff("first"))
    assert no_reason.status_code == 422 and "reason" in no_reason.json["errors"]["json"], no_reason.json
    bad_reason = client.post(f"/api/v1/awards/{alpha_award.id}/clawback", json={"reason": "dislike", "note": "x"},
                             headers=staff("first"))
    assert bad_reason.status_code == 422 and "reason" in bad_reason.json["errors"]["json"]
    past_ban = client.post(f"/api/v1/awards/{alpha_award.id}/clawback",
                           json={"reason": "false_evidence", "note": "x", "ban_until": "2026-12-31"}, headers=staff("first"))
    assert past_ban.status_code == 422 and "ban_until" in past_ban.json["errors"]["json"]
    assert client.post(f"/api/v1/awards/{alpha_award.id}/clawback", json={"reason": "false_evidence", "note": "x"},
                       headers=people["alpha"].headers).status_code == 403
    assert snapshot(session) == before

    clawed = client.post(f"/api/v1/awards/{alpha_award.id}/clawback",
                         json={"reason": "false_evidence", "note": "发票系伪造", "ban_until": "2030-01-01"}, headers=staff("first"))
    assert clawed.status_code == 200, clawed.json
    assert (clawed.json["released"], clawed.json["taken_back"], clawed.json["to_recover"]) == ("0.00", "112500.00", "112500.00")
    assert clawed.json["award"]["status"] == "clawed_back" and clawed.json["award"]["payable"] == "-112500.00"
    assert clawed.json["ban"]["until"] == "2030-01-01"
    assert client.post(f"/api/v1/awards/{alpha_award.id}/clawback", json={"reason": "non_use", "note": "x"},
                       headers=staff("first")).status_code == 409
    [adjust] = [r for r in rows_of(session, alpha_award.id) if r.kind.value == "adjust"]
    assert (adjust.amount, adjust.reason) == (Decimal("-112500.00"), "clawback")
    [event] = session.scalars(sa.select(Event).where(Event.type == "subsidy.clawed_back")).all()
    assert event.startup_id == people["alpha"].startup_id and event.payload["to_recover"] == "112500.00"
    assert event.payload["reason"] == "false_evidence"
    feed = client.get("/api/v1/events", headers=people["alpha"].headers).json
    assert "subsidy.clawed_back" in [e["type"] for e in feed]
    assert reconciled(session)

    # The ban holds: alpha's next allocation gets nothing from the voucher, and the quote says why.
    offer_id = client.get("/api/v1/offers?kind=gpu", headers=people["alpha"].headers).json[0]["id"]
    quote = client.get(f"/api/v1/offers/{offer_id}/quote?quantity=10", headers=people["alpha"].headers).json
    assert quote["not_eligible"]["voucher"] == "barred from this program until 2030-01-01 after a clawback (false_evidence)"
    later = approve_all(client, people, {"alpha": "10"}, window=("2027-01-11", "2027-01-20"))
    assert award_of(session, later["alpha"]) is None
    assert reconciled(session)


def test_a_statement_under_the_threshold_needs_one_approval_and_the_xlsx_has_it(app, client, session, period, tmp_path):
    people, clock = period, period["clock"]
    allocations = approve_all(client, people, {"alpha": "100"})
    use(session, allocations["alpha"], "60", at(dt.date(2026, 12, 9)), "u-1")
    reviewed(session, allocations["alpha"])
    clock.set(at(dt.date(2026, 12, 31), hour=18))
    target = tmp_path / "statement.xlsx"
    printed = app.test_cli_runner().invoke(main, ["ledger", "statement", "--program", "voucher", "--period", "2026-12",
                                                  "--xlsx", str(target)])
    assert printed.exit_code == 0, printed.output
    assert "Status: draft; approvals needed: 1" in printed.output and "7500.00" in printed.output
    sheet = openpyxl.load_workbook(target).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0][:2] == ["结算单编号", cells[0][1]] and ["资金文件", DOCUMENT] in [row[:2] for row in cells]
    header = next(row for row in cells if row[0] == "奖励编号")
    assert "应付金额(元)" in header and "收款方" in header
    line = cells[cells.index(header) + 1]
    payable = line[header.index("应付金额(元)")]
    assert payable == 7500 and isinstance(payable, (int, float))  # a number, not text
    assert sheet.cell(cells.index(header) + 2, header.index("应付金额(元)") + 1).number_format == "#,##0.00"

    statement_id = session.scalar(sa.select(SettlementStatement.id))
    assert session.scalar(sa.select(SettlementStatement.built_by_id)) is None  # the operator's CLI built it
    done = client.post(f"/api/v1/settlements/{statement_id}/approve", json={"disbursement_reference": "ICBC-1"},
                       headers=people["first"].headers)
    assert done.status_code == 200 and done.json["status"] == "written_off", done.json
    assert award_of(session, allocations["alpha"]).written_off == Decimal("7500.00")
    assert reconciled(session)
    unknown = app.test_cli_runner().invoke(main, ["ledger", "statement", "--program", "voucher", "--period", "2026-13"])
    assert unknown.exit_code == 2 and "period" in unknown.output


def test_the_carrier_is_the_payee_where_it_claims_and_held_evidence_is_named(client, session, period):
    people = period
    carrier_program = client.post("/api/v1/subsidy-programs", headers=people["builder"].headers, json={
        "code": "service-voucher", "name": "服务券", "kinds": ["gpu"], "rate": "0.6", "cap_per_startup": "200000",
        "claimant": "carrier", "budget": "500000", "funding_document": "京经信〔2026〕7号", "starts_on": "2026-01-01",
        "ends_on": "2027-07-01", "evidence_required": ["usage_statement"], "requires_notice": False})
    assert carrier_program.status_code == 201, carrier_program.json
    allocations = approve_all(client, people, {"alpha": "100", "beta": "100"})
    for name in ("alpha", "beta"):
        assert award_of(session, allocations[name]).program.code == "service-voucher"  # 60% beats 50%
        use(session, allocations[name], "100", at(dt.date(2026, 12, 15)), f"u-{name}")
    reviewed(session, allocations["alpha"], notice=NoticeState.not_noticed)  # this program needs no notice
    period["clock"].set(at(dt.date(2027, 1, 2)))
    built = client.post("/api/v1/settlements", json={"program": "service-voucher", "period": "2026-12"},
                        headers=people["builder"].headers)
    assert built.status_code == 201, built.json
    assert [p["payee_kind"] for p in built.json["payees"]] == ["carrier"]
    assert built.json["payees"][0]["payable"] == "15000.00"  # alpha's line; beta's evidence is missing
    held = [line["held"] for line in built.json["lines"] if line["payable"] == "0.00"]
    assert held == ["evidence incomplete (usage_statement required)"]
    seen = client.get("/api/v1/settlements", headers=people["carrier"].headers).json
    assert len(seen) == 1 and len(seen[0]["lines"]) == 2
    assert client.get("/api/v1/settlements", headers=people["alpha"].headers).json == []
    assert reconciled(session)


def test_an_award_changed_since_the_statement_was_built_stops_the_write_off(client, session, period):
    people = period
    allocations = approve_all(client, people, {"alpha": "100"})
    use(session, allocations["alpha"], "100", at(dt.date(2026, 12, 9)), "u-1")
    reviewed(session, allocations["alpha"])
    period["clock"].set(at(dt.date(2027, 1, 5)))
    unknown = client.post("/api/v1/settlements", json={"program": "nope", "period": "2026-12"}, headers=people["builder"].headers)
    assert unknown.status_code == 422 and "program" in unknown.json["errors"]["json"]
    early = client.post("/api/v1/settlements", json={"program": "voucher", "period": "2027-02"}, headers=people["builder"].headers)
    assert early.status_code == 422 and "begins on 2027-02-01" in early.json["errors"]["json"]["period"][0]
    built = client.post("/api/v1/settlements", json={"program": "voucher", "period": "2026-12"}, headers=people["builder"].headers)
    assert built.json["total_payable"] == "12500.00"
    award = award_of(session, allocations["alpha"])
    award.notice_state = NoticeState.removed  # an objection upheld after the statement was built (the notice's branch)
    session.commit()
    before = snapshot(session)
    refused = client.post(f"/api/v1/settlements/{built.json['id']}/approve", json={"disbursement_reference": "ICBC-9"},
                          headers=people["first"].headers)
    assert refused.status_code == 409 and f"Award {award.id} is no longer final" in refused.json["message"], refused.json
    assert snapshot(session) == before
    assert reconciled(session)


def test_the_daily_job_releases_what_ended_unused_once_the_program_is_over(app, client, session, period):
    from scheduler.jobs import release_unused

    people = period
    allocations = approve_all(client, people, {"alpha": "100"})
    use(session, allocations["alpha"], "40", at(dt.date(2026, 12, 9)), "u-1")
    release_unused(app, at(dt.date(2027, 1, 5), hour=2))  # the program runs to 2027-07-01: nothing yet
    assert award_of(session, allocations["alpha"]).status.value == "committed"
    release_unused(app, at(dt.date(2027, 7, 1), hour=2))
    award = award_of(session, allocations["alpha"])
    assert (award.status.value, award.committed, award.redeemed) == ("released", Decimal("5000.00"), Decimal("5000.00"))
    release_unused(app, at(dt.date(2027, 7, 2), hour=2))  # again: nothing left to give back, no new row
    assert [r.kind.value for r in rows_of(session, award.id)] == ["commit", "redeem", "reverse"]
    assert reconciled(session)
