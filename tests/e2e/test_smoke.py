def test_health(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["database"] == "reachable"


def test_actor_factory(client, make_actor):
    staff = make_actor("staff")
    startup = make_actor("startup")
    carrier = make_actor("carrier")
    assert client.get("/api/v1/me", headers=staff.headers).json["role"] == "staff"
    assert client.get("/api/v1/me", headers=startup.headers).json["startup_id"] == startup.startup_id
    assert client.get("/api/v1/me", headers=carrier.headers).json["carrier_id"] == carrier.carrier_id
