"""A whole subsidy period, end to end, as the district runs it (issue 11's first "Done when"):

deposit → approvals with awards (the best program chosen over an older, smaller one) → evidence
uploaded and verified → a public notice over working days with one upheld objection → usage the
carrier reports (pulled over HTTP from the telecom simulator) redeems → a settlement statement
approved by two staff → write-off → the unused commitment released. `broker ledger reconcile`
(the real command) exits 0 after every step. On a clock the test controls.
"""

import datetime as dt
import io
from decimal import ROUND_DOWN, Decimal

import pytest
import sqlalchemy as sa

from broker.cli import main
from broker.clock import SHANGHAI
from broker.models import Award, AwardStatus, Carrier, LedgerEntry, NoticeState, Offer
from broker.services.provisioning import provision_due, pull_usage
from tests.world import synced_telecom

pytestmark = pytest.mark.slow

CONTRACT = b"%PDF-1.7\n1 0 obj << /Title (GPU rental contract) >> endobj\n"
INVOICE = b"%PDF-1.4\n1 0 obj << /Title (VAT invoice 00421) >> endobj\n"


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), SHANGHAI).astimezone(dt.timezone.utc)


def reconcile_exits_0(app) -> str:
    """Run `broker ledger reconcile` and require exit 0; return what it printed."""
    result = app.test_cli_runner().invoke(main, ["ledger", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "Reconciled" in result.output
    return result.output


def test_a_whole_period_from_deposit_to_release(app, client, session, make_actor, frozen_clock, monkeypatch, capsys):
    clock = frozen_clock(at(dt.date(2026, 11, 30)))
    # Four eyes from ¥1: the simulator's lots are small, the rule is what is tested.
    monkeypatch.setitem(app.config, "SETTLEMENT_FOUR_EYES_ABOVE", "1")
    builder, first, second = make_actor("staff"), make_actor("staff"), make_actor("staff")
    founders = [make_actor("startup") for _ in range(3)]
    simulator, adapter = synced_telecom(session, make_actor, clock())
    try:
        offer = session.scalar(
            sa.select(Offer).where(Offer.divisible, Offer.unit_price > 0, Offer.quantity >= 100)
            .order_by(Offer.window_end, Offer.id)
        )
        window_end = min(offer.window_end, offer.window_start + dt.timedelta(days=14))
        staff = builder.headers

        # 1. Programs and their budgets: an older, smaller voucher and a newer, more generous one.
        for code, rate, extra in (("old-voucher", "0.2", {}),
                                  ("voucher", "0.4", {"evidence_required": ["contract", "invoice"]})):
            opened = client.post("/api/v1/subsidy-programs", headers=staff, json={
                "code": code, "name": f"算力券 {code}", "kinds": [offer.kind], "rate": rate, "cap_per_startup": "100000",
                "budget": "500000", "funding_document": "沪经信智〔2025〕489号", "starts_on": "2026-01-01",
                "ends_on": "2028-01-01", "requires_notice": True, **extra})
            assert opened.status_code == 201, opened.json
        program = opened.json
        topped = client.post(f"/api/v1/subsidy-programs/{program['id']}/deposits", headers=staff,
                             json={"amount": "250000", "funding_document": "长科经〔2026〕7号", "note": "区级配套"})
        assert topped.status_code == 201, topped.json
        reconcile_exits_0(app)

        # 2. Three startups ask; one cycle proposes; staff approve: the newer voucher pays each.
        allocations = []
        for founder in founders:
            asked = client.post("/api/v1/requests", headers=founder.headers, json={
                "kind": offer.kind, "quantity": "10", "regions": [offer.region],
                "window_start": offer.window_start.isoformat(), "window_end": window_end.isoformat()})
            assert asked.status_code == 201, asked.json
            allocations.append(asked.json["id"])
        assert client.post("/api/v1/cycles", json={}, headers=staff).status_code == 201
        awards = []
        for founder, request_id in zip(founders, allocations):
            [proposal] = client.get(f"/api/v1/allocations?request_id={request_id}", headers=staff).json
            approved = client.post(f"/api/v1/allocations/{proposal['id']}/approve", json={}, headers=first.headers)
            assert approved.status_code == 200, approved.json
            assert [a["program"] for a in approved.json["awards"]] == ["voucher"]  # not the older, smaller one
            awards.append(approved.json["awards"][0]["id"])
        cost = (Decimal(10) * offer.unit_price).quantize(Decimal("0.01"))
        share = (cost * Decimal("0.4")).quantize(Decimal("0.01"), rounding=ROUND_DOWN)  # never a fen more than the rate
        assert {session.get(Award, a).amount for a in awards} == {share}
        reconcile_exits_0(app)

        # 3. Evidence: the first two startups upload their contract and invoice, staff verify them.
        for founder, award_id in zip(founders[:2], awards[:2]):
            for kind, data in (("contract", CONTRACT), ("invoice", INVOICE)):
                sent = client.post(f"/api/v1/awards/{award_id}/evidence", headers=founder.headers,
                                   data={"type": kind, "file": (io.BytesIO(data), f"{kind}.pdf")},
                                   content_type="multipart/form-data")
                assert sent.status_code == 201, sent.json
                verified = client.post(f"/api/v1/evidence/{sent.json['id']}/verify", json={}, headers=first.headers)
                assert verified.status_code == 200, verified.json
        session.expire_all()
        assert [session.get(Award, a).evidence_complete for a in awards] == [True, True, False]
        reconcile_exits_0(app)

        # 4. The public notice: five working days from Tuesday 1 December; an objection against the
        #    third award is upheld, which takes it out of the batch and gives its commitment back.
        notice = client.post("/api/v1/notices", headers=staff, json={
            "title": "2026年算力券拟支持名单公示", "award_ids": awards, "starts_on": "2026-12-01", "working_days": 5})
        assert notice.status_code == 201, notice.json
        notice = notice.json
        assert notice["ends_on"] == "2026-12-07"  # Tue 1 to Mon 7 December: the weekend does not count
        public = client.get(f"/api/v1/public/notices/{notice['id']}").json  # no sign-in
        third = next(item for item in public["items"] if item["award_id"] == awards[2]) if "award_id" in public["items"][0] \
            else public["items"][2]
        clock.set(at(dt.date(2026, 12, 2)))
        lodged = client.post(f"/api/v1/public/notices/{notice['id']}/objections",
                             json={"name": "李四", "contact": "13900000000", "text": "该企业未实际使用算力。", "item_id": third["id"]})
        assert lodged.status_code == 201, lodged.json
        upheld = client.post(f"/api/v1/objections/{lodged.json['id']}/answer", headers=first.headers,
                             json={"decision": "upheld", "answer": "经核实，移出名单。"})
        assert upheld.status_code == 200, upheld.json
        reconcile_exits_0(app)
        clock.set(at(dt.date(2026, 12, 8)))
        final = client.post(f"/api/v1/notices/{notice['id']}/finalise", headers=staff)
        assert final.status_code == 200, final.json
        session.expire_all()
        assert [session.get(Award, a).notice_state for a in awards] == [NoticeState.final, NoticeState.final, NoticeState.removed]
        reconcile_exits_0(app)

        # 5. The carrier sets the grants up and reports usage (a tenth of each order): it redeems. The
        #    third grant goes on (the objection was against its subsidy, not its capacity), unsubsidised.
        clock.set(max(clock(), at(offer.window_start)))  # time only moves forward
        assert provision_due(session, lambda _carrier: adapter, clock())["provisioned"] == 3
        carrier = session.scalar(sa.select(Carrier).where(Carrier.code == "telecom"))
        assert pull_usage(session, carrier, adapter, clock())["recorded"] == 3
        session.expire_all()
        redeemed = [session.get(Award, a).redeemed for a in awards]
        assert all(r > 0 for r in redeemed[:2]) and redeemed[2] == 0
        reconcile_exits_0(app)

        # 6. After the quarter: the statement, built by one staff member, approved by two others.
        clock.set(at(max(dt.date(2027, 1, 4), window_end + dt.timedelta(days=1))))
        period = f"{offer.window_start.year}-Q{(offer.window_start.month - 1) // 3 + 1}"
        built = client.post("/api/v1/settlements", json={"program": "voucher", "period": period}, headers=staff)
        assert built.status_code == 201, built.json
        statement = built.json
        assert statement["approvals_needed"] == 2
        own = client.post(f"/api/v1/settlements/{statement['id']}/approve", headers=staff,
                          json={"disbursement_reference": "沪财预〔2027〕3号"})
        assert own.status_code == 403 and "own statement" in own.json["message"]
        once = client.post(f"/api/v1/settlements/{statement['id']}/approve", headers=first.headers,
                           json={"disbursement_reference": "沪财预〔2027〕3号"})
        assert once.status_code == 200 and once.json["status"] == "draft", once.json
        twice = client.post(f"/api/v1/settlements/{statement['id']}/approve", headers=first.headers,
                            json={"disbursement_reference": "沪财预〔2027〕3号"})
        assert twice.status_code in (403, 409), twice.json
        done = client.post(f"/api/v1/settlements/{statement['id']}/approve", headers=second.headers,
                           json={"disbursement_reference": "沪财预〔2027〕3号 ICBC-20270104-001"})
        assert done.status_code == 200 and done.json["status"] == "written_off", done.json
        session.expire_all()
        assert [session.get(Award, a).written_off for a in awards[:2]] == redeemed[:2]
        reconcile_exits_0(app)

        # 7. The period is over: what usage did not redeem goes back to the budget.
        released = client.post(f"/api/v1/subsidy-programs/{program['id']}/release-unused", headers=staff,
                                json={"until": clock().astimezone(SHANGHAI).date().isoformat()})
        assert released.status_code == 200, released.json
        session.expire_all()
        closed = [session.get(Award, a) for a in awards[:2]]
        assert all(a.status is AwardStatus.released and a.committed == a.redeemed == a.written_off for a in closed)
        printed = reconcile_exits_0(app)
        shown = client.get(f"/api/v1/subsidy-programs/{program['id']}", headers=staff).json
        assert Decimal(shown["committed"]) == sum(redeemed, Decimal(0)) == Decimal(shown["written_off"])
        assert Decimal(shown["budget"]) == Decimal("750000.00")

        # For the closing note: one award from commit to write-off and release, and the balances.
        with capsys.disabled():
            print("\nledger rows of award", awards[0])
            for row in session.scalars(sa.select(LedgerEntry).where(LedgerEntry.award_id == awards[0]).order_by(LedgerEntry.id)):
                print(f"  {row.id:>3} {row.kind.value:<10}{row.amount:>12} {row.created_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} "
                      f"key={row.idempotency_key} reference={row.reference or ''} reason={row.reason or ''}")
            print(printed)
    finally:
        simulator.close()
