"""Hostile input gets a 4xx that names the problem, never a 500, and changes nothing (issue 9).

Each case is sent through HTTP to the real app on the test database (SQLite, or PostgreSQL with
BROKER_TEST_DATABASE_URL: PostgreSQL is where a NUL used to become a 500).
"""

import pytest
import sqlalchemy as sa

from broker.inputs import MAX_JSON_DEPTH, MAX_NUMBER_DIGITS
from broker.models import Account, IdempotencyRecord, Offer, ResourceRequest, Startup, WebhookSubscription
from tests.conftest import startup_payload
from tests.e2e.test_offers import gpu_offer, publish
from tests.e2e.test_requests import ask


def _count(session, model):
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def _refusal(response, status):
    """The README's refusal shape: code, status, message, and the status asked for."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.is_json
    body = response.json
    assert body["code"] == status and body["status"] and body["message"], body
    return body


# ------------------------------------------------------------------ JSON depth and number length


def test_json_nested_a_thousand_deep_is_a_400_even_without_signing_in(client, session):
    before = _count(session, Startup)
    deep = "[" * 1000 + "]" * 1000  # 2 KB
    body = _refusal(client.post("/api/v1/startups", data=deep, content_type="application/json"), 400)
    assert f"deeper than {MAX_JSON_DEPTH}" in body["message"]
    inside = '{"name": ' + "[" * 1000 + "]" * 1000 + "}"
    body = _refusal(client.post("/api/v1/startups", data=inside, content_type="application/json"), 400)
    assert "name" in body["errors"]["json"], body
    assert _count(session, Startup) == before


def test_a_body_just_inside_the_depth_limit_reaches_the_schema(client, make_actor):
    startup = make_actor("startup")
    nested = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    response = client.post("/api/v1/requests", data='{"purpose": ' + nested + "}", headers={
        **startup.headers, "Content-Type": "application/json"})
    body = _refusal(response, 422)
    assert "purpose" in body["errors"]["json"]


@pytest.mark.parametrize("number", ["1" * 5001, "1" * 5001 + ".5", "0." + "1" * 5001, "-" + "9" * 4301])
def test_numbers_with_thousands_of_digits_are_a_400_naming_the_field(client, session, make_actor, number):
    startup = make_actor("startup")
    text = '{"kind": "gpu", "quantity": ' + number + ', "window_start": "2026-12-10", "window_end": "2026-12-20"}'
    body = _refusal(client.post("/api/v1/requests", data=text, headers={
        **startup.headers, "Content-Type": "application/json"}), 400)
    assert f"at most {MAX_NUMBER_DIGITS}" in body["message"]
    assert "quantity" in body["errors"]["json"], body
    assert _count(session, ResourceRequest) == 0


def test_numbers_in_strings_and_ordinary_numbers_are_untouched(client, make_actor):
    startup = make_actor("startup")
    created = client.post("/api/v1/requests", json=ask(quantity=0.30000000000000004, purpose="9" * 1500),
                          headers=startup.headers)
    # A float of 17 digits is within the limit, and digits in a string are text: the schema answers.
    body = _refusal(created, 422)
    assert "decimal places" in str(body["errors"]["json"]["quantity"]) and "purpose" not in body["errors"]["json"]


# ------------------------------------------------------------------ NUL and lone surrogates


NUL, SURROGATE = "a\u0000b", "\\ud800"  # the surrogate goes in as a JSON escape


@pytest.mark.parametrize("where", ["purpose", "regions", "attribute-value", "attribute-name"])
@pytest.mark.parametrize("bad", ["nul", "surrogate"])
def test_nul_and_unpaired_surrogates_in_a_request_are_refused_naming_the_field(client, session, make_actor, where, bad):
    startup = make_actor("startup")
    marker = "BAD"
    body = {
        "purpose": ask(purpose=marker),
        "regions": ask(regions=["sh", marker]),
        "attribute-value": ask(attributes={"gpu_model": [marker]}),
        "attribute-name": ask(attributes={marker: ["H100"]}),
    }[where]
    import json

    text = json.dumps(body, ensure_ascii=False).replace(marker, "a\\u0000b" if bad == "nul" else SURROGATE)
    response = client.post("/api/v1/requests", data=text.encode(), headers={
        **startup.headers, "Content-Type": "application/json"})
    errors = _refusal(response, 422)["errors"]["json"]
    if where == "purpose":
        assert "NUL" in errors["purpose"][0] or "surrogate" in errors["purpose"][0]
    elif where == "regions":
        assert list(errors["regions"]) == ["1"]
    elif where == "attribute-value":
        assert list(errors["attributes"]) == ["gpu_model"]
    else:
        (name,) = errors["attributes"]
        assert name in ("a\\u0000b", "\\ud800") and "field name" in str(errors["attributes"][name])
    assert _count(session, ResourceRequest) == 0


def test_nul_in_a_registration_is_refused_without_signing_in(client, session):
    before = _count(session, Account)
    response = client.post("/api/v1/startups", json={**startup_payload(41), "name": "上海\u0000科技"})
    assert "name" in _refusal(response, 422)["errors"]["json"]
    assert _count(session, Account) == before


def test_a_carrier_cannot_publish_an_offer_with_nul_in_an_attribute(client, session, make_actor):
    carrier, startup = make_actor("carrier"), make_actor("startup")
    response = publish(client, carrier, gpu_offer("nul", attributes={"gpu_model": "H1\u000000"}))
    assert "attributes" in _refusal(response, 422)["errors"]["json"]["offers"]["0"]
    assert _count(session, Offer) == 0
    search = client.get("/api/v1/offers?kind=gpu&attribute=gpu_model:H100", headers=startup.headers)
    assert search.status_code == 200 and search.json == []


def test_nul_in_a_query_string_is_refused_naming_the_parameter(client, make_actor):
    startup = make_actor("startup")
    body = _refusal(client.get("/api/v1/offers?region=sh%00x", headers=startup.headers), 422)
    assert "region" in body["errors"]["query"]
    body = _refusal(client.get("/api/v1/offers?kind=gpu&attribute=gpu_model:H%00100", headers=startup.headers), 422)
    assert "attribute" in body["errors"]["query"]


@pytest.mark.parametrize("value", ["k\x00", "\ud800"])
def test_a_bad_idempotency_key_is_a_400_naming_the_header(client, session, make_actor, value):
    startup = make_actor("startup")
    response = client.post("/api/v1/requests", json=ask(), headers={**startup.headers, "Idempotency-Key": value})
    body = _refusal(response, 400)
    assert "Idempotency-Key" in body["errors"]["headers"] and "Idempotency-Key" in body["message"]
    assert _count(session, ResourceRequest) == 0 and _count(session, IdempotencyRecord) == 0


@pytest.mark.parametrize("value", ["Bearer sab_\x00", "Bearer \ud800"])
def test_a_bad_authorization_header_is_a_400_naming_it(client, value):
    body = _refusal(client.get("/api/v1/me", headers={"Authorization": value}), 400)
    assert "Authorization" in body["errors"]["headers"]


def test_bad_carrier_signature_headers_are_a_400_naming_them(client):
    response = client.post("/api/v1/webhooks/telecom", data=b"{}", headers={"X-CTC-Signature": "sha256=\x00"})
    assert [name.lower() for name in _refusal(response, 400)["errors"]["headers"]] == ["x-ctc-signature"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/carriers/a%00b/syncs"), ("POST", "/api/v1/webhooks/a%00b")])
def test_nul_in_a_path_segment_is_a_404_not_a_database_error(client, make_actor, method, path):
    staff = make_actor("staff")
    _refusal(client.open(path, method=method, data=b"{}", headers=staff.headers), 404)


# ------------------------------------------------------------------ numbers and lengths the database can't hold


@pytest.mark.parametrize("value", ["9" * 30, "2147483648", "1000001", "²", "-1", "80.0"])
def test_an_attribute_filter_the_database_cannot_compare_is_a_422_naming_attribute(client, make_actor, value):
    startup = make_actor("startup")
    response = client.get(f"/api/v1/offers?kind=gpu&attribute=gpu_memory_gb:{value}", headers=startup.headers)
    assert "attribute" in _refusal(response, 422)["errors"]["query"]


def test_an_attribute_filter_within_range_still_filters(client, make_actor):
    carrier, startup = make_actor("carrier"), make_actor("startup")
    publish(client, carrier, gpu_offer("a"), gpu_offer("b", attributes={"gpu_model": "H100", "gpu_memory_gb": 1_000_000}))
    found = client.get("/api/v1/offers?kind=gpu&attribute=gpu_memory_gb:1000000", headers=startup.headers)
    assert [o["external_id"] for o in found.json] == ["b"]


def test_a_webhook_url_longer_than_the_column_is_a_422_naming_url(client, session, make_actor):
    startup = make_actor("startup")
    long_url = "https://example.com/" + "a" * 481  # 501 characters
    response = client.put("/api/v1/me/webhook", json={"url": long_url}, headers=startup.headers)
    assert "url" in _refusal(response, 422)["errors"]["json"]
    assert _count(session, WebhookSubscription) == 0


# ------------------------------------------------------------------ every refusal has a message


def test_every_kind_of_refusal_has_a_message(client, app, make_actor):
    startup = make_actor("startup")
    invalid = _refusal(client.post("/api/v1/requests", json={"kind": "quantum"}, headers=startup.headers), 422)
    assert "kind" in invalid["message"] and "quantity" in invalid["message"]
    query = _refusal(client.get("/api/v1/offers?page_size=1000", headers=startup.headers), 422)
    assert "page_size" in query["message"]
    bad_json = _refusal(client.post("/api/v1/requests", data='{"kind": ', headers={
        **startup.headers, "Content-Type": "application/json"}), 400)
    assert "JSON" in bad_json["message"]
    missing = _refusal(client.get("/api/v1/nothing-here"), 404)
    assert "/api/v1/nothing-here" in missing["message"]
    wrong_method = client.delete("/api/v1/offers")
    assert "DELETE" in _refusal(wrong_method, 405)["message"] and "GET" in wrong_method.headers["Allow"]
    huge = b'{"purpose": "' + b"x" * app.config["MAX_CONTENT_LENGTH"] + b'"}'
    too_big = _refusal(client.post("/api/v1/requests", data=huge, headers={
        **startup.headers, "Content-Type": "application/json"}), 413)
    assert str(app.config["MAX_CONTENT_LENGTH"]) in too_big["message"] and "BROKER_MAX_BODY_BYTES" in too_big["message"]


def test_chinese_text_is_sent_as_utf8_not_escaped(client, make_actor):
    startup = make_actor("startup")
    created = client.post("/api/v1/requests", json=ask(purpose="自动驾驶感知模型训练"), headers=startup.headers)
    raw = created.get_data()
    assert created.status_code == 201 and "自动驾驶感知模型训练".encode() in raw and b"\\u" not in raw
    assert created.headers["Content-Type"].startswith("application/json")


def test_a_string_that_cannot_be_utf8_is_sent_escaped_rather_than_failing(app):
    assert app.json.dumps({"a": "上海", "b": "\ud800"}) == '{"a": "\\u4e0a\\u6d77", "b": "\\ud800"}'
    assert app.json.dumps({"a": "上海"}) == '{"a": "上海"}'
