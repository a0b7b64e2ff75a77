"""The `broker` command, the OpenAPI document and the docs page."""

import re
import subprocess
import sys

from broker.cli import main


def _token(output: str) -> str:
    return re.search(r"(sab_[A-Za-z0-9_-]+)", output).group(1)


def test_users_create_prints_a_working_token_once(app, client):
    result = app.test_cli_runner().invoke(main, ["users", "create", "--role", "staff", "--name", "王审核"])
    assert result.exit_code == 0, result.output
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {_token(result.output)}"})
    assert me.json["role"] == "staff" and me.json["name"] == "王审核"


def test_carriers_add_registers_with_a_known_adapter_only(app, client):
    runner = app.test_cli_runner()
    bad = runner.invoke(main, ["carriers", "add", "--code", "ctc", "--name", "中国电信", "--adapter", "telegraph"])
    assert bad.exit_code == 2
    assert "Unknown adapter 'telegraph'" in bad.output and "telecom" in bad.output and "unicom" in bad.output
    good = runner.invoke(main, ["carriers", "add", "--code", "ctc", "--name", "中国电信", "--adapter", "telecom"])
    assert good.exit_code == 0, good.output
    headers = {"Authorization": f"Bearer {_token(good.output)}"}
    assert client.get("/api/v1/me", headers=headers).json["role"] == "carrier"
    assert [c["code"] for c in client.get("/api/v1/carriers", headers=headers).json] == ["ctc"]
    again = runner.invoke(main, ["carriers", "add", "--code", "ctc", "--name", "x", "--adapter", "telecom"])
    assert again.exit_code == 2 and "already exists" in again.output


def test_tokens_revoke_from_the_console(app, client, make_actor):
    startup = make_actor("startup")
    token_id = client.get("/api/v1/tokens", headers=startup.headers).json[0]["id"]
    result = app.test_cli_runner().invoke(main, ["tokens", "revoke", str(token_id)])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/me", headers=startup.headers).status_code == 401
    assert app.test_cli_runner().invoke(main, ["tokens", "revoke", "999999"]).exit_code == 2


def test_db_upgrade_brings_an_empty_database_to_head(databases, tmp_path):
    url = databases.create()
    env = {"BROKER_DATABASE_URL": url, "BROKER_INSTANCE_PATH": str(tmp_path), "PATH": ""}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "broker", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert "empty database" in run("db", "current").stdout
    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    current = run("db", "current").stdout
    assert re.search(r"current: (\w+)\s+head: \1", current), current


def test_openapi_document_describes_every_endpoint(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in ("/api/v1/offers", "/api/v1/requests", "/api/v1/requests/{request_id}/withdraw",
                 "/api/v1/allocations", "/api/v1/startups", "/api/v1/startups/{startup_id}/verify",
                 "/api/v1/tokens/{token_id}/revoke"):
        assert path in paths, path
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_docs_page_uses_only_local_assets(client):
    page = client.get("/api/docs").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/api/docs/assets/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
