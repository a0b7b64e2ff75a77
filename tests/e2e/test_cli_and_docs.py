"""The `broker` command, the OpenAPI document and the docs page."""

import os
import pathlib
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa

from broker.cli import main
from broker.models import AuditEntry

CHECKOUT = pathlib.Path(__file__).resolve().parents[2]


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


def test_carriers_add_points_to_carriers_token_which_prints_a_fresh_working_token(app, client, session):
    runner = app.test_cli_runner()
    added = runner.invoke(main, ["carriers", "add", "--code", "ctc", "--name", "中国电信", "--adapter", "telecom"])
    assert "broker carriers token ctc" in added.output
    first = {"Authorization": f"Bearer {_token(added.output)}"}
    fresh = runner.invoke(main, ["carriers", "token", "ctc"])
    assert fresh.exit_code == 0, fresh.output
    headers = {"Authorization": f"Bearer {_token(fresh.output)}"}
    assert _token(fresh.output) != _token(added.output)
    me = client.get("/api/v1/me", headers=headers).json
    assert me["role"] == "carrier" and me["carrier_id"] is not None
    assert client.get("/api/v1/me", headers=first).status_code == 200  # the earlier one is not revoked
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.entity_type == "api_tokens")
                           .order_by(AuditEntry.id.desc()))
    assert entry.action == "issue_at_console" and entry.actor_id is None
    assert entry.after["account_id"] == me["id"] and "token_hash" not in entry.after
    unknown = runner.invoke(main, ["carriers", "token", "telegraph"])
    assert unknown.exit_code == 2 and "No carrier 'telegraph'" in unknown.output and "ctc" in unknown.output


def test_startups_token_prints_a_fresh_working_token(app, client, session, make_actor):
    startup = make_actor("startup", verified=False)
    runner = app.test_cli_runner()
    fresh = runner.invoke(main, ["startups", "token", str(startup.startup_id)])
    assert fresh.exit_code == 0, fresh.output
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {_token(fresh.output)}"}).json
    assert me["startup_id"] == startup.startup_id
    assert session.scalar(sa.select(AuditEntry.action).where(AuditEntry.entity_type == "api_tokens")
                          .order_by(AuditEntry.id.desc())) == "issue_at_console"
    for missing in ("999999", "0", "99999999999999999999999", "abc"):
        result = runner.invoke(main, ["startups", "token", missing])
        assert result.exit_code == 2 and "sab_" not in result.output, (missing, result.output)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert runner.invoke(main, ["tokens", "revoke", "99999999999999999999999"]).exit_code == 2


def test_the_readme_lists_the_token_commands():
    readme = (CHECKOUT / "README.md").read_text()
    commands = readme.split("## The `broker` command", 1)[1].split("###", 1)[0]
    assert "`broker carriers token CODE`" in commands and "`broker startups token ID`" in commands
    roles = readme.split("## Roles", 1)[1].split("##", 1)[0]
    assert "broker carriers token" in roles


@pytest.mark.slow
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


# --- the instance folder, and commands against a database that is not migrated ---------------

# Every command that reads or writes the broker's database, with arguments that would work.
DATABASE_COMMANDS = [
    ("carriers", "list"),
    ("carriers", "add", "--code", "ctc", "--name", "中国电信", "--adapter", "telecom"),
    ("carriers", "token", "telecom"),
    ("carriers", "sync", "telecom"),
    ("carriers", "sync-report", "telecom"),
    ("startups", "token", "1"),
    ("users", "create", "--role", "staff", "--name", "王审核"),
    ("tokens", "revoke", "1"),
    ("cycle", "run", "--dry-run"),
    ("scheduler",),
    ("run", "--port", "0"),
]


def _broker(*args, cwd, env=None, timeout=120):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "broker", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def elsewhere(tmp_path):
    """A working directory that is not the checkout, as a user's shell would be."""
    folder = tmp_path / "somewhere-else"
    folder.mkdir()
    return folder


@pytest.mark.slow
def test_the_instance_folder_does_not_depend_on_the_current_directory(tmp_path, elsewhere):
    # No BROKER_INSTANCE_PATH: the checkout's ./instance, from whichever folder the command runs in.
    result = _broker("db", "current", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert str(CHECKOUT / "instance" / "broker.sqlite3") in result.stdout
    assert not (elsewhere / "instance").exists()
    # BROKER_INSTANCE_PATH wins, for every command.
    instance = tmp_path / "var" / "broker"
    upgraded = _broker("db", "upgrade", cwd=elsewhere, env={"BROKER_INSTANCE_PATH": str(instance)})
    assert upgraded.returncode == 0, upgraded.stderr
    assert (instance / "broker.sqlite3").is_file() and not (elsewhere / "instance").exists()
    other = tmp_path / "another-folder"
    other.mkdir()
    listed = _broker("carriers", "list", cwd=other, env={"BROKER_INSTANCE_PATH": str(instance)})
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert not (other / "instance").exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_command_on_an_unmigrated_sqlite_file_says_so_in_one_line_and_creates_nothing(tmp_path, elsewhere,
                                                                                        command):
    instance = tmp_path / "instance"
    result = _broker(*command, cwd=elsewhere, env={"BROKER_INSTANCE_PATH": str(instance)}, timeout=60)
    database = instance / "broker.sqlite3"
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"Error: the database at {database} is not migrated: run `broker db upgrade`"
    ), result.stderr
    assert not database.exists() and not instance.exists() and not (elsewhere / "instance").exists()


@pytest.mark.slow
def test_a_command_on_an_empty_or_unmigrated_database_says_so_in_one_line(databases, tmp_path, elsewhere):
    url = databases.create()  # an empty PostgreSQL database, or a SQLite file not made yet
    env = {"BROKER_DATABASE_URL": url, "BROKER_INSTANCE_PATH": str(tmp_path)}
    if url.startswith("sqlite"):
        sa.create_engine(url).connect().close()  # an empty file, as the old commands left behind
    where = sa.make_url(url).database if url.startswith("sqlite") else sa.make_url(url).render_as_string()
    for command in (("carriers", "list"), ("users", "create", "--role", "staff", "--name", "x")):
        result = _broker(*command, cwd=elsewhere, env=env)
        assert result.returncode == 1
        assert result.stderr.strip() == f"Error: the database at {where} is not migrated: run `broker db upgrade`"
    assert "empty database" in _broker("db", "current", cwd=elsewhere, env=env).stdout
    assert _broker("db", "upgrade", cwd=elsewhere, env=env).returncode == 0
    assert _broker("carriers", "list", cwd=elsewhere, env=env).returncode == 0
