"""`broker carriers sync CODE` against each carrier's simulator over HTTP, the sync report on
the command line and through the API, and who may read it."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from adapters.base import CarrierConfig
from broker.cli import main
from broker.models import Carrier
from config import CarrierSettings
from tests.integration.test_sync import FAST, SIMULATED, Served


@pytest.fixture
def configured(app, monkeypatch):
    """configured(code, **sim_options): serve the simulator and point the carrier's settings at it."""
    served: list[Served] = []

    def start(code: str, **options):
        _, factory, credentials, environ = SIMULATED[code]
        served.append(Served(factory(**options)))
        for variable, value in environ.items():
            monkeypatch.setenv(variable, value)
        settings = CarrierSettings(code, CarrierConfig(served[-1].url, credentials, **FAST))
        monkeypatch.setitem(app.config["CARRIERS"], code, settings)
        return served[-1]

    yield start
    for simulator in served:
        simulator.close()


@pytest.mark.parametrize("code", sorted(SIMULATED))
def test_carriers_sync_works_against_each_simulator(app, session, make_actor, configured, code):
    make_actor("carrier", code=code)
    session.execute(sa.update(Carrier).where(Carrier.code == code).values(adapter=code))
    session.commit()
    configured(code, offers=120, seed=5, malformed_rate=0.05)
    runner = app.test_cli_runner()
    first = runner.invoke(main, ["carriers", "sync", code])
    assert first.exit_code == 0, first.output
    assert "succeeded" in first.output and "new=" in first.output and "new=0 " not in first.output
    second = runner.invoke(main, ["carriers", "sync", code])
    assert second.exit_code == 0, second.output
    assert "new=0 changed=0" in second.output and "withdrawn=0" in second.output

    report = runner.invoke(main, ["carriers", "sync-report", code])
    assert report.exit_code == 0, report.output
    assert report.output.count("succeeded") == 2 and "Quarantined by sync" in report.output


def test_a_failed_sync_exits_nonzero_and_unconfigured_carriers_are_named(app, make_actor, configured, monkeypatch):
    make_actor("carrier", code="telecom")
    configured("telecom", offers=5, error_rate=1.0)
    runner = app.test_cli_runner()
    failed = runner.invoke(main, ["carriers", "sync", "telecom"])
    assert failed.exit_code == 1 and "failed" in failed.output and "simulated carrier failure" in failed.output

    unknown = runner.invoke(main, ["carriers", "sync", "nosuch"])
    assert unknown.exit_code == 2 and "No carrier 'nosuch'" in unknown.output
    make_actor("carrier", code="zhixin")
    unconfigured = runner.invoke(main, ["carriers", "sync", "zhixin"])
    assert unconfigured.exit_code == 2 and "no settings" in unconfigured.output
    monkeypatch.delenv("BROKER_CARRIER_TELECOM_TOKEN")
    make_actor("carrier", code="ctc2")
    monkeypatch.setitem(app.config["CARRIERS"], "ctc2", app.config["CARRIERS"]["telecom"])
    missing = runner.invoke(main, ["carriers", "sync", "ctc2"])
    assert missing.exit_code == 2 and "BROKER_CARRIER_TELECOM_TOKEN" in missing.output


def test_the_sync_report_is_the_carriers_own_and_staffs(app, client, make_actor, configured):
    telecom = make_actor("carrier", code="telecom")
    other = make_actor("carrier", code="mobile")
    staff, startup = make_actor("staff"), make_actor("startup")
    configured("telecom", offers=40, seed=2, malformed_rate=0.2)
    assert app.test_cli_runner().invoke(main, ["carriers", "sync", "telecom"]).exit_code == 0

    own = client.get("/api/v1/carriers/telecom/syncs", headers=telecom.headers)
    assert own.status_code == 200 and len(own.json) == 1
    sync = own.json[0]
    assert sync["source"] == "pull" and sync["status"] == "succeeded" and sync["complete"] is True
    assert sync["counts"]["new"] + sync["counts"]["quarantined"] >= 40 and sync["counts"]["quarantined"] > 0
    assert sync["started_at"].endswith("+08:00")
    assert client.get("/api/v1/carriers/telecom/syncs", headers=staff.headers).json == own.json
    assert client.get("/api/v1/carriers/telecom/syncs", headers=other.headers).status_code == 403
    assert client.get("/api/v1/carriers/telecom/syncs", headers=startup.headers).status_code == 403
    assert client.get("/api/v1/carriers/nosuch/syncs", headers=staff.headers).status_code == 404

    quarantined = client.get(f"/api/v1/carriers/telecom/syncs/{sync['id']}/quarantined", headers=telecom.headers)
    assert quarantined.status_code == 200 and len(quarantined.json) == sync["counts"]["quarantined"]
    assert all(q["reason"] and "raw" in q for q in quarantined.json)
    conflicts = f"/api/v1/carriers/telecom/syncs/{sync['id']}/conflicts"
    assert client.get(conflicts, headers=staff.headers).json == []
    assert client.get(conflicts, headers=telecom.headers).json == []  # its own sync's conflicts
    assert client.get(conflicts, headers=other.headers).status_code == 403
    assert client.get(f"/api/v1/carriers/mobile/syncs/{sync['id']}", headers=other.headers).status_code == 404
    assert "sim-telecom-token" not in json.dumps(own.json) + json.dumps(quarantined.json)


def test_no_credential_reaches_a_report_an_error_or_the_log(app, client, make_actor, configured, caplog):
    make_actor("carrier", code="telecom")
    staff = make_actor("staff")
    configured("telecom", offers=5, token="not-the-broker-token")  # the carrier refuses our token
    caplog.set_level("DEBUG")
    result = app.test_cli_runner().invoke(main, ["carriers", "sync", "telecom"])
    assert result.exit_code == 1 and "401" in result.output
    report = app.test_cli_runner().invoke(main, ["carriers", "sync-report", "telecom"])
    api = client.get("/api/v1/carriers/telecom/syncs", headers=staff.headers).get_data(as_text=True)
    for text in (result.output, report.output, api, caplog.text):
        assert "sim-telecom-token" not in text
