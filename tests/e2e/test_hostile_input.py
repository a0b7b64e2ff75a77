"""Hostile input gets a 4xx that names the problem, never a 500, and changes nothing (issue 9).

Each case is sent through HTTP to the real app on the test database (SQLite, or PostgreSQL with
BROKER_TEST_DATABASE_URL: PostgreSQL is where a NUL used to become a 500).
"""

from tests.e2e.test_requests import ask


def _refusal(response, status):
    """The README's refusal shape: code, status, message, and the status asked for."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.is_json
    body = response.json
    assert body["code"] == status and body["status"] and body["message"], body
    return body


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
