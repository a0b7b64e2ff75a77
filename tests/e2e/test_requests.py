"""Verified startups submit, list, read and withdraw requests; retries are idempotent."""

import datetime as dt

import pytest
import sqlalchemy as sa

from broker.clock import FrozenClock, install_clock
from broker.models import Offer, ResourceRequest
from tests.e2e.test_offers import _promise, gpu_offer, publish


def ask(**overrides):
    body = {
        "kind": "gpu",
        "quantity": "500",
        "min_quantity": "100",
        "regions": ["sh-changning", "sh-minhang"],
        "attributes": {"gpu_model": ["H100", "A100"], "gpu_memory_gb": 80},
        "window_start": "2026-12-01",
        "window_end": "2026-12-15",
        "max_unit_price": "15",
        "purpose": "自动驾驶感知模型训练",
    }
    body.update(overrides)
    return body


def test_submit_read_list_withdraw(client, make_actor):
    startup = make_actor("startup", sector="smart_driving")
    created = client.post("/api/v1/requests", json=ask(), headers=startup.headers)
    assert created.status_code == 201, created.json
    body = created.json
    assert body["status"] == "submitted" and body["quantity"] == "500.000" and body["unit"] == "GPU-hour"
    assert body["attributes"] == {"gpu_model": ["A100", "H100"], "gpu_memory_gb": [80]}
    assert body["submitted_at"].endswith("+08:00")
    request_id = body["id"]
    assert client.get(f"/api/v1/requests/{request_id}", headers=startup.headers).json["id"] == request_id
    assert [r["id"] for r in client.get("/api/v1/requests", headers=startup.headers).json] == [request_id]
    withdrawn = client.post(f"/api/v1/requests/{request_id}/withdraw", headers=startup.headers)
    assert withdrawn.status_code == 200 and withdrawn.json["status"] == "withdrawn"
    assert client.post(f"/api/v1/requests/{request_id}/withdraw", headers=startup.headers).status_code == 409
    assert client.get("/api/v1/requests?status=withdrawn", headers=startup.headers).json[0]["id"] == request_id


def test_withdrawing_a_proposed_request_gives_its_capacity_back(client, session, make_actor):
    carrier, startup = make_actor("carrier"), make_actor("startup")
    publish(client, carrier, gpu_offer("a"))
    request = _promise(session, startup, "a", 400)
    response = client.post(f"/api/v1/requests/{request.id}/withdraw", headers=startup.headers)
    assert response.status_code == 200
    assert response.json["allocations"][0]["status"] == "rejected"
    session.expire_all()
    assert session.scalar(sa.select(Offer.promised).where(Offer.external_id == "a")) == 0


def test_idempotency_key_returns_the_first_request(client, session, make_actor):
    startup = make_actor("startup")
    headers = {**startup.headers, "Idempotency-Key": "retry-7f3a"}
    first = client.post("/api/v1/requests", json=ask(), headers=headers)
    second = client.post("/api/v1/requests", json=ask(), headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["id"] == second.json["id"]
    assert session.scalar(sa.select(sa.func.count(ResourceRequest.id))) == 1
    different = client.post("/api/v1/requests", json=ask(quantity="600"), headers=headers)
    assert different.status_code == 422 and "different request body" in different.json["message"]
    other_startup = make_actor("startup")
    theirs = client.post("/api/v1/requests", json=ask(), headers={**other_startup.headers, "Idempotency-Key": "retry-7f3a"})
    assert theirs.status_code == 201 and theirs.json["id"] != first.json["id"]


@pytest.mark.parametrize(
    ("overrides", "field", "phrase"),
    [
        ({"quantity": 0}, "quantity", "greater than 0"),
        ({"quantity": -10}, "quantity", "greater than 0"),
        ({"quantity": "1e300"}, "quantity", "at most"),
        ({"min_quantity": "600"}, "min_quantity", "exceed quantity"),
        ({"window_start": "2026-12-20"}, "window_end", "after window_start"),
        ({"window_start": "2026-13-01"}, "window_start", "date"),
        ({"kind": "bandwidth"}, "kind", "Unknown kind"),
        ({"attributes": {"gpu_modle": ["H100"]}}, "attributes", "Unknown attribute"),
        ({"attributes": {"gpu_model": []}}, "attributes", "at least one"),
        ({"regions": "sh-changning"}, "regions", "list"),
        ({"max_unit_price": "-1"}, "max_unit_price", "at least 0"),
        ({"quantity": True}, "quantity", "number"),
        ({"purpose": "x" * 2001}, "purpose", "Length"),
        ({"startup_id": 99}, "startup_id", "Unknown field"),
        ({"kind": "data_line", "attributes": {}, "min_quantity": "50", "quantity": "100"}, "min_quantity", "whole"),
    ],
)
def test_bad_requests_name_the_field_and_change_nothing(client, session, make_actor, overrides, field, phrase):
    startup = make_actor("startup")
    response = client.post("/api/v1/requests", json=ask(**overrides), headers=startup.headers)
    assert response.status_code == 422, response.json
    errors = response.json["errors"]["json"]
    assert field in errors and phrase.lower() in str(errors[field]).lower(), errors
    assert session.scalar(sa.select(sa.func.count(ResourceRequest.id))) == 0


def test_malformed_json_wrong_shape_and_oversized_bodies(client, app, make_actor):
    startup = make_actor("startup")
    headers = {**startup.headers, "Content-Type": "application/json"}
    malformed = client.post("/api/v1/requests", data='{"kind": "gpu",', headers=headers)
    assert malformed.status_code == 400 and malformed.is_json
    assert client.post("/api/v1/requests", data="[1, 2]", headers=headers).status_code == 422
    huge = '{"purpose": "' + "x" * (app.config["MAX_CONTENT_LENGTH"] + 10) + '"}'
    too_big = client.post("/api/v1/requests", data=huge, headers=headers)
    assert too_big.status_code == 413 and too_big.is_json


def test_unknown_routes_and_methods_answer_in_json(client, make_actor):
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.is_json
    wrong_method = client.delete("/api/v1/offers")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["Allow"]


@pytest.fixture
def shanghai_after_midnight(app):
    """2026-12-02 01:00 in Asia/Shanghai, while it is still 2026-12-01 in UTC."""
    clock = FrozenClock(dt.datetime(2026, 12, 1, 17, 0, tzinfo=dt.timezone.utc))
    install_clock(app, clock)
    yield clock
    install_clock(app, None)


def test_a_window_that_has_already_ended_is_refused_by_the_date_in_shanghai(client, session, make_actor, shanghai_after_midnight):
    startup = make_actor("startup")
    ended = client.post("/api/v1/requests", json=ask(window_start="2026-11-20", window_end="2026-12-01"), headers=startup.headers)
    assert ended.status_code == 422, ended.json
    assert "window_end" in ended.json["errors"]["json"] and "2026-12-02" in ended.json["message"]
    assert "Asia/Shanghai" in ended.json["errors"]["json"]["window_end"][0]
    long_ago = client.post("/api/v1/requests", json=ask(window_start="2020-01-01", window_end="2020-02-01"), headers=startup.headers)
    assert long_ago.status_code == 422 and "window_end" in long_ago.json["errors"]["json"]
    assert session.scalar(sa.select(sa.func.count(ResourceRequest.id))) == 0
    ends_today = client.post("/api/v1/requests", json=ask(window_start="2026-11-20", window_end="2026-12-02"), headers=startup.headers)
    assert ends_today.status_code == 201, ends_today.json


def test_a_request_above_the_policys_maximum_for_its_kind_is_refused_naming_it(client, session, make_actor):
    startup, staff = make_actor("startup"), make_actor("staff")
    huge = client.post("/api/v1/requests", json=ask(quantity="10000000000"), headers=startup.headers)
    assert huge.status_code == 422, huge.json
    problem = huge.json["errors"]["json"]["quantity"][0]
    assert "100000.000 GPU-hour" in problem and "max_request_quantity" in problem, problem
    assert "quantity" in huge.json["message"]
    assert session.scalar(sa.select(sa.func.count(ResourceRequest.id))) == 0
    assert client.post("/api/v1/requests", json=ask(quantity="100000"), headers=startup.headers).status_code == 201

    from tests.e2e.test_policy import POLICY

    raised = client.put("/api/v1/policy", json={**POLICY, "max_request_quantity": {"gpu": "500000"}}, headers=staff.headers)
    assert raised.status_code == 200, raised.json
    limits = client.get("/api/v1/policy", headers=startup.headers).json["max_request_quantity"]
    assert limits["gpu"] == "500000.000" and limits["tokens"] == "100000.000" and set(limits) == {
        "gpu", "cpu", "data_line", "cloud_vm", "storage", "tokens"}
    assert client.post("/api/v1/requests", json=ask(quantity="200000"), headers=startup.headers).status_code == 201
    over = client.post("/api/v1/requests", json=ask(quantity="500000.001"), headers=startup.headers)
    assert over.status_code == 422 and "500000.000" in over.json["errors"]["json"]["quantity"][0]
