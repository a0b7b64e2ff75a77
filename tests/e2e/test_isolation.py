"""Every role sees only its own: each endpoint called as every role and as another tenant.

Each case checks the status and that the object it aimed at is unchanged afterwards.
404 is expected where a 403 would tell a startup that another startup's object exists.
"""

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from broker.models import ApiToken, Offer, ResourceRequest, Startup
from tests.e2e.test_offers import _promise, gpu_offer, publish
from tests.e2e.test_requests import ask


@dataclass
class World:
    actors: dict
    request_id: int
    offer_id: int
    allocation_id: int
    startup_a_token_id: int


@pytest.fixture
def world(client, session, make_actor):
    actors = {
        "staff": make_actor("staff"),
        "admin": make_actor("admin"),
        "carrier_a": make_actor("carrier"),
        "carrier_b": make_actor("carrier"),
        "startup_a": make_actor("startup"),
        "startup_b": make_actor("startup"),
        "unverified": make_actor("startup", verified=False),
    }
    offer_id = publish(client, actors["carrier_a"], gpu_offer("a-lot")).json["offers"][0]["id"]
    request = _promise(session, actors["startup_a"], "a-lot", 100)
    allocation_id = request.allocations[0].id
    token_id = session.scalar(sa.select(ApiToken.id).where(ApiToken.account_id == actors["startup_a"].account_id))
    return World(actors, request.id, offer_id, allocation_id, token_id)


def _snapshot(session, world):
    session.expire_all()
    request = session.get(ResourceRequest, world.request_id)
    offer = session.get(Offer, world.offer_id)
    startup_b = session.get(Startup, world.actors["startup_b"].startup_id)
    unverified = session.get(Startup, world.actors["unverified"].startup_id)
    token = session.get(ApiToken, world.startup_a_token_id)
    return (
        request.status, [a.status for a in request.allocations], offer.status, offer.quantity, offer.promised,
        startup_b.status, unverified.status, token.revoked_at,
        session.scalar(sa.select(sa.func.count(ResourceRequest.id))),
    )


# (who, method, path, expected status); {req}, {offer}, {alloc}, {token}, {startup_a}, {startup_b},
# {unverified}, {account_a} are filled from the world.
CASES = [
    ("anonymous", "GET", "/api/v1/requests/{req}", 401),
    ("anonymous", "GET", "/api/v1/offers", 401),
    ("anonymous", "GET", "/api/v1/allocations", 401),
    ("anonymous", "POST", "/api/v1/requests/{req}/withdraw", 401),
    ("anonymous", "POST", "/api/v1/offers/{offer}/withdraw", 401),
    ("anonymous", "POST", "/api/v1/startups/{unverified}/verify", 401),
    ("startup_b", "GET", "/api/v1/requests/{req}", 404),
    ("startup_b", "POST", "/api/v1/requests/{req}/withdraw", 404),
    ("startup_b", "GET", "/api/v1/allocations/{alloc}", 404),
    ("startup_b", "GET", "/api/v1/startups/{startup_a}", 404),
    ("startup_b", "POST", "/api/v1/tokens/{token}/revoke", 404),
    ("startup_b", "POST", "/api/v1/startups/{unverified}/verify", 403),
    ("startup_b", "POST", "/api/v1/offers/{offer}/withdraw", 403),
    ("startup_b", "POST", "/api/v1/accounts/{account_a}/tokens", 403),
    ("unverified", "POST", "/api/v1/requests", 403),
    ("anonymous", "POST", "/api/v1/startups/{unverified}/reject", 401),
    ("anonymous", "POST", "/api/v1/startups/{startup_a}/remove", 401),
    ("unverified", "POST", "/api/v1/startups/{unverified}/reject", 403),
    ("startup_b", "POST", "/api/v1/startups/{unverified}/reject", 403),
    ("startup_b", "POST", "/api/v1/startups/{startup_a}/remove", 403),
    ("carrier_a", "POST", "/api/v1/startups/{startup_a}/remove", 403),
    ("unverified", "POST", "/api/v1/startups/{unverified}/verify", 403),
    ("carrier_a", "GET", "/api/v1/requests/{req}", 404),
    ("carrier_a", "GET", "/api/v1/requests", 403),
    ("carrier_a", "POST", "/api/v1/requests/{req}/withdraw", 404),
    ("carrier_a", "POST", "/api/v1/requests", 403),
    ("carrier_a", "GET", "/api/v1/startups", 403),
    ("carrier_a", "GET", "/api/v1/startups/{startup_a}", 404),
    ("carrier_a", "POST", "/api/v1/startups/{unverified}/verify", 403),
    ("carrier_a", "POST", "/api/v1/tokens/{token}/revoke", 404),
    ("carrier_a", "GET", "/api/v1/allocations/{alloc}", 200),
    ("carrier_b", "GET", "/api/v1/allocations/{alloc}", 404),
    ("carrier_b", "POST", "/api/v1/offers/{offer}/withdraw", 403),
    ("carrier_b", "POST", "/api/v1/accounts/{account_a}/tokens", 403),
    ("staff", "POST", "/api/v1/requests/{req}/withdraw", 403),
    ("staff", "POST", "/api/v1/offers/{offer}/withdraw", 403),
    ("staff", "POST", "/api/v1/requests", 403),
    ("staff", "POST", "/api/v1/offers", 403),
    ("admin", "POST", "/api/v1/offers", 403),
    ("startup_a", "POST", "/api/v1/offers", 403),
    ("startup_a", "GET", "/api/v1/requests/{req}", 200),
    ("startup_a", "GET", "/api/v1/allocations/{alloc}", 200),
    ("staff", "GET", "/api/v1/requests/{req}", 200),
    ("admin", "GET", "/api/v1/allocations/{alloc}", 200),
]


@pytest.mark.parametrize(("who", "method", "path", "status"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_role_matrix(client, session, world, who, method, path, status):
    actors = world.actors
    url = path.format(
        req=world.request_id,
        offer=world.offer_id,
        alloc=world.allocation_id,
        token=world.startup_a_token_id,
        startup_a=actors["startup_a"].startup_id,
        startup_b=actors["startup_b"].startup_id,
        unverified=actors["unverified"].startup_id,
        account_a=actors["startup_a"].account_id,
    )
    headers = {} if who == "anonymous" else actors[who].headers
    body = None
    if method == "POST" and path == "/api/v1/requests":
        body = ask()
    elif method == "POST" and path == "/api/v1/offers":
        body = {"offers": [gpu_offer("a-lot", quantity="5")]}
    elif method == "POST" and path.endswith(("/reject", "/remove")):
        body = {"reason": "squatted"}
    before = _snapshot(session, world)
    response = client.open(url, method=method, json=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    if status >= 400:
        assert _snapshot(session, world) == before


@pytest.mark.parametrize(
    ("who", "path", "visible"),
    [
        ("startup_a", "/api/v1/allocations", 1),
        ("startup_b", "/api/v1/allocations", 0),
        ("carrier_a", "/api/v1/allocations", 1),
        ("carrier_b", "/api/v1/allocations", 0),
        ("staff", "/api/v1/allocations", 1),
        ("startup_b", "/api/v1/requests", 0),
        ("startup_a", "/api/v1/requests", 1),
        ("staff", "/api/v1/requests", 1),
        ("startup_b", "/api/v1/startups", 1),
        ("staff", "/api/v1/startups", 3),
    ],
)
def test_lists_show_only_ones_own(client, world, who, path, visible):
    response = client.get(path, headers=world.actors[who].headers)
    assert response.status_code == 200
    assert len(response.json) == visible


def test_startup_b_lists_only_its_own_tokens(client, world):
    tokens = client.get("/api/v1/tokens", headers=world.actors["startup_b"].headers).json
    assert {t["account_id"] for t in tokens} == {world.actors["startup_b"].account_id}


def test_a_carrier_publishing_anothers_external_id_gets_its_own_lot(client, session, world):
    carrier_b = world.actors["carrier_b"]
    response = publish(client, carrier_b, gpu_offer("a-lot", quantity="7"))
    assert response.json["created"] == 1 and response.json["offers"][0]["id"] != world.offer_id
    session.expire_all()
    assert session.get(Offer, world.offer_id).quantity == 1000
