"""Related parties and other public subsidies through the API: what startups and carriers declare
blocks a program with the reason in words (the quotes say so too), each side sees only its own
declarations, bad input changes nothing; the quote across offers; the cycle on net prices."""

from decimal import Decimal

import sqlalchemy as sa

from broker.models import AuditEntry, OtherSubsidy, RelatedParty
from broker.services import ledger
from tests.conftest import make_uscc
from tests.e2e.test_ledger import WINDOW, approve_one, awards_of, district, open_program  # noqa: F401 (fixture)
from tests.e2e.test_offers import gpu_offer, publish

SHAREHOLDER = make_uscc(900001)  # a company that holds shares in the startup
AFFILIATE = make_uscc(900002)


def declare_parties(client, actor, *parties):
    return client.put("/api/v1/me/related-parties", json={"parties": list(parties)}, headers=actor.headers)


def party(uscc, name="上海某某投资有限公司", relation="shareholder"):
    return {"uscc": uscc, "name": name, "relation": relation}


def city_subsidy(carrier_id, **overrides):
    return {"level": "city", "name": "上海市算力券", "granting_body": "上海市经济和信息化委员会", "amount": "5000",
            "carrier_id": carrier_id, "kind": "gpu", **overrides}


def an_offer(client, staff):
    return client.get("/api/v1/offers?kind=gpu", headers=staff.headers).json[0]


def test_a_related_party_blocks_the_subsidy_with_its_reason_and_the_quotes_say_so(client, session, district):
    staff, carrier, startup = district["staff"], district["carrier"], district["startup"]
    open_program(client, staff, "voucher", rate="0.4")
    declared = declare_parties(client, startup, party(SHAREHOLDER))
    assert declared.status_code == 200, declared.json
    assert [p["uscc"] for p in declared.json["parties"]] == [SHAREHOLDER]
    # The shareholder is the supplying carrier itself: the carrier records its own code.
    assert client.put(f"/api/v1/carriers/{carrier.carrier_id}/uscc", json={"uscc": SHAREHOLDER},
                      headers=carrier.headers).status_code == 200
    why = (f"related party of the supplier: {SHAREHOLDER} is the startup's declared shareholder 上海某某投资有限公司 "
           f"and the code of the supplying carrier {carrier.carrier_code}")

    offer = an_offer(client, staff)
    quote = client.get(f"/api/v1/offers/{offer['id']}/quote?quantity=100", headers=startup.headers).json
    assert quote["not_eligible"] == {"voucher": why} and quote["subsidy"] == "0.00"
    across = client.post("/api/v1/quotes", json={"kind": "gpu", "quantity": "100", **WINDOW}, headers=startup.headers)
    assert across.status_code == 200, across.json
    assert {o["not_eligible"]["voucher"] for o in across.json["offers"]} == {why}
    assert {o["net"] for o in across.json["offers"]} == {"1000.00"}

    allocation = approve_one(client, district)
    assert awards_of(session, allocation["id"]) == {}  # no award, no row
    assert ledger.reconcile(session).ok


def test_a_carrier_affiliate_matching_the_startup_itself_blocks_too(client, session, district, make_actor):
    staff, carrier, startup = district["staff"], district["carrier"], district["startup"]
    open_program(client, staff, "voucher", rate="0.4")
    own_code = client.get(f"/api/v1/startups/{startup.startup_id}", headers=startup.headers).json["uscc"]
    assert declare_parties(client, carrier, party(own_code, "上海测试科技", "affiliate")).status_code == 200
    quote = client.get(f"/api/v1/offers/{an_offer(client, staff)['id']}/quote?quantity=100", headers=startup.headers).json
    assert quote["not_eligible"]["voucher"] == (
        f"related party of the supplier: {own_code} is the startup's own code and the affiliate 上海测试科技 "
        f"that carrier {carrier.carrier_code} declared")
    # A startup the carrier did not name is not blocked.
    other = make_actor("startup")
    assert client.get(f"/api/v1/offers/{an_offer(client, staff)['id']}/quote?quantity=100",
                      headers=other.headers).json["subsidy"] == "400.00"


def test_a_declared_city_subsidy_blocks_a_program_that_excludes_it(client, session, district):
    staff, carrier, startup = district["staff"], district["carrier"], district["startup"]
    strict = open_program(client, staff, "no-other-city", rate="0.4", excludes_subsidy_levels=["city"],
                          excludes_subsidy_kinds=["gpu"])
    assert strict["excludes_subsidy_levels"] == ["city"] and strict["excludes_subsidy_kinds"] == ["gpu"]
    open_program(client, staff, "lenient", rate="0.2")
    held = client.put("/api/v1/me/other-subsidies", json={"subsidies": [city_subsidy(carrier.carrier_id)]},
                      headers=startup.headers)
    assert held.status_code == 200, held.json
    assert held.json["subsidies"][0]["amount"] == "5000.00"

    quote = client.get(f"/api/v1/offers/{an_offer(client, staff)['id']}/quote?quantity=100", headers=startup.headers).json
    assert quote["not_eligible"]["no-other-city"] == (
        "the startup holds another city-level public subsidy for this contract (上海市算力券, granted by "
        "上海市经济和信息化委员会); the program excludes city-level subsidies for gpu")
    assert quote["paid_by"] == [{"program": "lenient", "amount": "200.00"}]
    allocation = approve_one(client, district)
    assert set(awards_of(session, allocation["id"])) == {"lenient"}
    assert ledger.reconcile(session).ok


def test_a_subsidy_of_another_level_or_contract_does_not_block(client, session, district):
    staff, carrier, startup = district["staff"], district["carrier"], district["startup"]
    open_program(client, staff, "no-other-city", rate="0.4", excludes_subsidy_levels=["city"])
    body = {"subsidies": [city_subsidy(carrier.carrier_id, level="district"), city_subsidy(carrier.carrier_id, kind="tokens")]}
    assert client.put("/api/v1/me/other-subsidies", json=body, headers=startup.headers).status_code == 200
    quote = client.get(f"/api/v1/offers/{an_offer(client, staff)['id']}/quote?quantity=100", headers=startup.headers).json
    assert quote["paid_by"] == [{"program": "no-other-city", "amount": "400.00"}]


def test_declarations_are_each_sides_own(client, session, district, make_actor):
    staff, carrier, startup = district["staff"], district["carrier"], district["startup"]
    other_startup, other_carrier = make_actor("startup"), make_actor("carrier")
    assert declare_parties(client, startup, party(SHAREHOLDER)).status_code == 200
    assert declare_parties(client, carrier, party(AFFILIATE, relation="affiliate")).status_code == 200
    assert client.put("/api/v1/me/other-subsidies", json={"subsidies": [city_subsidy(carrier.carrier_id)]},
                      headers=startup.headers).status_code == 200

    mine = f"/api/v1/startups/{startup.startup_id}/related-parties"
    assert client.get(mine, headers=startup.headers).json["parties"][0]["uscc"] == SHAREHOLDER
    assert client.get(mine, headers=staff.headers).json["parties"][0]["uscc"] == SHAREHOLDER
    for stranger in (other_startup, carrier, other_carrier):
        assert client.get(mine, headers=stranger.headers).status_code == 404
        assert client.get(f"/api/v1/startups/{startup.startup_id}/other-subsidies", headers=stranger.headers).status_code == 404
    theirs = f"/api/v1/carriers/{carrier.carrier_id}/related-parties"
    assert client.get(theirs, headers=staff.headers).json["parties"][0]["uscc"] == AFFILIATE
    for stranger in (startup, other_carrier):
        assert client.get(theirs, headers=stranger.headers).status_code == 404
    assert client.get("/api/v1/me/related-parties", headers=other_startup.headers).json["parties"] == []
    assert client.get("/api/v1/me/other-subsidies", headers=other_startup.headers).json["subsidies"] == []
    # Nobody declares for anyone else, and only a startup holds other subsidies.
    assert client.put(f"/api/v1/carriers/{carrier.carrier_id}/uscc", json={"uscc": AFFILIATE},
                      headers=other_carrier.headers).status_code == 404
    assert client.put("/api/v1/me/related-parties", json={"parties": []}, headers=staff.headers).status_code == 403
    assert client.put("/api/v1/me/other-subsidies", json={"subsidies": []}, headers=carrier.headers).status_code == 403
    # Staff set a carrier's code.
    assert client.put(f"/api/v1/carriers/{other_carrier.carrier_id}/uscc", json={"uscc": AFFILIATE},
                      headers=staff.headers).json["uscc"] == AFFILIATE


def test_an_allocation_of_another_startup_is_not_a_contract_to_declare(client, session, district, make_actor):
    allocation = approve_one(client, district)
    intruder = make_actor("startup")
    refused = client.put("/api/v1/me/other-subsidies", json={"subsidies": [city_subsidy(None, kind=None,
                                                                                         allocation_id=allocation["id"])]},
                         headers=intruder.headers)
    assert refused.status_code == 422
    assert "allocation_id" in refused.json["errors"]["json"]["subsidies"]["0"]
    assert session.scalar(sa.select(sa.func.count()).select_from(OtherSubsidy)) == 0
    own = client.put("/api/v1/me/other-subsidies", json={"subsidies": [city_subsidy(None, kind=None,
                                                                                     allocation_id=allocation["id"])]},
                     headers=district["startup"].headers)
    assert own.status_code == 200, own.json


def test_bad_input_names_the_field_and_changes_nothing(client, session, district):
    startup, carrier = district["startup"], district["carrier"]
    assert declare_parties(client, startup, party(SHAREHOLDER)).status_code == 200
    assert client.put("/api/v1/me/other-subsidies", json={"subsidies": [city_subsidy(carrier.carrier_id)]},
                      headers=startup.headers).status_code == 200

    bad_code = SHAREHOLDER[:-1] + ("0" if SHAREHOLDER[-1] != "0" else "1")
    for body, where in [
        ({"parties": [party(AFFILIATE), party(bad_code)]}, ("parties", "1", "uscc")),
        ({"parties": [party(AFFILIATE), party(AFFILIATE)]}, ("parties", "1", "uscc")),
        ({"parties": [party(AFFILIATE, relation="cousin")]}, ("parties", "0", "relation")),
    ]:
        refused = declare_parties(client, startup, *body["parties"])
        assert refused.status_code == 422, (body, refused.json)
        errors = refused.json["errors"]["json"]
        for key in where:
            errors = errors[key]
        assert errors
    for body, where in [
        ({"subsidies": [city_subsidy(carrier.carrier_id, level="provincial")]}, "level"),
        ({"subsidies": [city_subsidy(carrier.carrier_id, amount="-5")]}, "amount"),
        ({"subsidies": [city_subsidy(carrier.carrier_id, kind=None)]}, "kind"),
        ({"subsidies": [city_subsidy(carrier.carrier_id, allocation_id=1)]}, "allocation_id"),
    ]:
        refused = client.put("/api/v1/me/other-subsidies", json=body, headers=startup.headers)
        assert refused.status_code == 422, (body, refused.json)
        assert where in refused.json["errors"]["json"]["subsidies"]["0"], refused.json
    unknown_carrier = client.put("/api/v1/me/other-subsidies", json={"subsidies": [city_subsidy(99999)]}, headers=startup.headers)
    assert unknown_carrier.status_code == 422 and "carrier_id" in unknown_carrier.json["errors"]["json"]["subsidies"]["0"]
    refused = client.put(f"/api/v1/carriers/{carrier.carrier_id}/uscc", json={"uscc": "123"}, headers=carrier.headers)
    assert refused.status_code == 422 and "uscc" in refused.json["errors"]["json"]

    session.expire_all()
    assert session.scalars(sa.select(RelatedParty.uscc)).all() == [SHAREHOLDER]
    assert session.scalars(sa.select(OtherSubsidy.level)).all() == ["city"]
    assert client.get("/api/v1/carriers", headers=startup.headers).json[0]["uscc"] is None


def test_replacing_a_list_is_audited_row_by_row(client, session, district):
    startup = district["startup"]
    assert declare_parties(client, startup, party(SHAREHOLDER)).status_code == 200
    assert declare_parties(client, startup, party(AFFILIATE, relation="affiliate")).status_code == 200
    entries = session.scalars(sa.select(AuditEntry).where(AuditEntry.entity_type == "related_parties")
                              .order_by(AuditEntry.id)).all()
    assert [(e.action, (e.after or e.before)["uscc"]) for e in entries] == [
        ("create", SHAREHOLDER), ("delete", SHAREHOLDER), ("create", AFFILIATE)]
    assert {e.actor_id for e in entries} == {startup.account_id}
    assert entries[1].after is None and entries[1].before["relation"] == "shareholder"


def test_the_quote_across_offers_lists_every_compatible_offer_cheapest_net_first(client, session, district, make_actor):
    staff, startup = district["staff"], district["startup"]
    second = make_actor("carrier")
    publish(client, second,
            gpu_offer("cheap", unit_price="9", quantity="50"),
            gpu_offer("far", region="bj-haidian", unit_price="1"),  # a region the request does not take
            gpu_offer("dear", unit_price="14", quantity="300"))
    open_program(client, staff, "ctc-only", rate="0.5", supplier_carrier_ids=[district["carrier"].carrier_id])
    body = {"kind": "gpu", "quantity": "100", "regions": ["sh-changning"], "attributes": {"gpu_model": ["H100"]},
            "max_unit_price": "8", **WINDOW}

    quote = client.post("/api/v1/quotes", json=body, headers=startup.headers)

    assert quote.status_code == 200, quote.json
    offers = quote.json["offers"]
    # The first carrier's H100 lot at ¥10 costs ¥5 after its 50% program, under the ¥8 ceiling;
    # the second carrier's lots pay gross (¥9, ¥14): over the ceiling, so not compatible.
    assert [(o["carrier"], o["unit_price"], o["engine_unit_price"], o["gross"], o["subsidy"], o["net"]) for o in offers] == [
        (district["carrier"].carrier_code, "10.0000", "5.0000", "1000.00", "500.00", "500.00")]
    assert offers[0]["paid_by"] == [{"program": "ctc-only", "amount": "500.00"}]
    # Every gpu offer whose window holds the request's, whatever its region, attributes or price.
    assert quote.json["listed_offers"] == 5
    assert quote.json["listed_available"] == "3350.000"
    assert quote.json["compatible_available"] == "1000.000"

    no_ceiling = client.post("/api/v1/quotes", json=
                             {k: v for k, v in body.items() if k != "max_unit_price"}, headers=startup.headers).json
    assert [(o["carrier"], o["net"]) for o in no_ceiling["offers"]] == [
        (district["carrier"].carrier_code, "500.00"), (second.carrier_code, "900.00"), (second.carrier_code, "1400.00")]
    assert client.post("/api/v1/quotes", json=body, headers=staff.headers).status_code == 403
    refused = client.post("/api/v1/quotes", json={**body, "kind": "teleport"}, headers=startup.headers)
    assert refused.status_code == 422 and "kind" in refused.json["errors"]["json"]


def test_the_cycle_checks_budgets_on_net_prices(client, session, district):
    staff, startup = district["staff"], district["startup"]
    # ¥700 a cycle: 100 GPU-hours at ¥10 is ¥1,000 gross, ¥600 after a 40% program.
    assert client.patch(f"/api/v1/startups/{startup.startup_id}", json={"cycle_budget": "700"},
                        headers=startup.headers).status_code == 200
    asked = client.post("/api/v1/requests", json={"kind": "gpu", "quantity": "100", "attributes": {"gpu_model": "H100"},
                                                  **WINDOW}, headers=startup.headers)
    assert asked.status_code == 201, asked.json
    gross = client.post("/api/v1/cycles/dry-run", json={}, headers=staff.headers).json
    assert [p["quantity"] for p in gross["proposals"]] == ["70.000"]  # without a program the budget binds

    open_program(client, staff, "voucher", rate="0.4")
    cycle = client.post("/api/v1/cycles", json={}, headers=staff.headers)
    assert cycle.status_code == 201, cycle.json
    [allocation] = client.get(f"/api/v1/allocations?request_id={asked.json['id']}", headers=staff.headers).json
    assert (allocation["quantity"], allocation["unit_price"]) == ("100.000", "10.0000")  # filled; the price stays gross
    assert client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=staff.headers).status_code == 200
    assert awards_of(session, allocation["id"])["voucher"].amount == Decimal("400.00")
    assert ledger.reconcile(session).ok


def test_a_subsidy_declared_for_a_proposed_allocation_blocks_the_award_at_approval(client, session, district):
    staff, startup = district["staff"], district["startup"]
    open_program(client, staff, "no-other-city", rate="0.4", excludes_subsidy_levels=["city"])
    asked = client.post("/api/v1/requests", json={"kind": "gpu", "quantity": "100", **WINDOW}, headers=startup.headers)
    assert client.post("/api/v1/cycles", json={}, headers=staff.headers).status_code == 201
    [allocation] = client.get(f"/api/v1/allocations?request_id={asked.json['id']}", headers=startup.headers).json
    held = client.put("/api/v1/me/other-subsidies", json={"subsidies": [city_subsidy(None, kind=None, allocation_id=allocation["id"])]},
                      headers=startup.headers)
    assert held.status_code == 200, held.json
    assert client.post(f"/api/v1/allocations/{allocation['id']}/approve", json={}, headers=staff.headers).status_code == 200
    assert awards_of(session, allocation["id"]) == {}
    assert ledger.reconcile(session).ok
