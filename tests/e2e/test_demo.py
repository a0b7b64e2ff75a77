"""`broker demo` as a newcomer runs it: a real process, a real port, the printed token."""

import contextlib
import datetime as dt
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from broker.clock import SHANGHAI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    with _running_demo([sys.executable, "-m", "broker", "demo"], tmp_path) as running:
        yield running


@contextlib.contextmanager
def _running_demo(command: list[str], tmp_path: Path) -> Iterator[tuple[str, str, str, Path]]:
    port = _free_port()
    env = {**os.environ, "BROKER_INSTANCE_PATH": str(tmp_path)}
    env.pop("BROKER_DATABASE_URL", None)
    env.pop("BROKER_CARRIERS_FILE", None)
    env.pop("BROKER_WEBHOOK_ALLOWED_HOSTS", None)
    for code in ("TELECOM", "MOBILE", "UNICOM"):  # the carriers' simulators, on ports of their own
        env[f"BROKER_CARRIER_{code}_BASE_URL"] = f"http://127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "scheduler:" in line:
                break
            assert process.poll() is None, "".join(lines)
        token = re.search(r"(sab_[A-Za-z0-9_-]+)", "".join(lines)).group(1)
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield base, token, "".join(lines), tmp_path
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_demo_serves_the_api_and_docs_with_the_printed_token(demo):
    base, token, output, instance = demo
    assert "上海硅巷资源撮合平台" in output and f"{base}/api/docs" in output
    assert "broker carriers token telecom|mobile|unicom" in output  # how to sign in as a demo carrier
    # All three sides of the console, each with a printed sign-in that lands on its own side.
    for email, password, lands_on, heading in (
            ("staff@demo.broker.local", "changning-demo-2026", "/staff", "工作台"),
            ("founder@demo.broker.local", "changning-founder-2026", "/portal/requests", "我的申请"),
            ("carrier@demo.broker.local", "changning-carrier-2026", "/carrier/catalogue", "资源目录")):
        assert f"{email} / {password}" in output
        browser = requests.Session()
        form = browser.get(f"{base}/sign-in", timeout=5).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        signed_in = browser.post(f"{base}/sign-in", data={"csrf_token": csrf, "email": email, "password": password},
                                 allow_redirects=False, timeout=5)
        assert signed_in.status_code == 303 and signed_in.headers["Location"] == lands_on, email
        page = browser.get(f"{base}{lands_on}", timeout=5)
        assert page.status_code == 200 and re.search(rf"<h1[^>]*>\s*{heading}", page.text), email
    assert (instance / "broker.sqlite3").exists()
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{base}/readyz", timeout=5).json()["status"] == "ok"
    for kind in ("gpu", "cpu", "data_line", "cloud_vm", "storage", "tokens"):
        offers = requests.get(f"{base}/api/v1/offers?kind={kind}&page_size=100", headers=headers, timeout=5).json()
        assert offers, kind
    carriers = {c["code"] for c in requests.get(f"{base}/api/v1/carriers", headers=headers, timeout=5).json()}
    for code in carriers:
        syncs = requests.get(f"{base}/api/v1/carriers/{code}/syncs", headers=headers, timeout=5).json()
        assert syncs[0]["status"] == "succeeded" and syncs[0]["counts"]["new"] > 0, syncs  # through its simulator
    assert len(carriers) == 3
    startups = requests.get(f"{base}/api/v1/startups?page_size=100", headers=headers, timeout=5).json()
    assert len(startups) == 20
    assert {"smart_driving", "energy_management", "smart_healthcare"} <= {s["sector"] for s in startups}
    # This year's two programs, each opened with its budget as a deposit that names its funding document.
    year = dt.datetime.now(SHANGHAI).year
    programs = requests.get(f"{base}/api/v1/subsidy-programs", headers=headers, timeout=5).json()
    assert sorted(p["code"] for p in programs) == [f"compute-voucher-{year}", f"tokens-{year}"]
    deposits = requests.get(f"{base}/api/v1/ledger?kind=deposit", headers=headers, timeout=5).json()
    assert sorted((d["program_id"], d["amount"]) for d in deposits) == sorted((p["id"], p["budget"]) for p in programs)
    assert {d["reference"] for d in deposits} == {"沪经信智〔2025〕489号"}
    requests_ = requests.get(f"{base}/api/v1/requests?status=submitted", headers=headers, timeout=5)
    assert int(requests_.headers["X-Pagination"].split('"total": ')[1].split(",")[0]) > 10
    # A webhook receiver on this machine is allowed in the demo; the metadata service never is.
    local = requests.put(f"{base}/api/v1/me/webhook", json={"url": "http://127.0.0.1:9/hook"}, headers=headers, timeout=5)
    assert local.status_code == 200, local.text
    inside = requests.put(f"{base}/api/v1/me/webhook", json={"url": "http://169.254.169.254/"}, headers=headers, timeout=5)
    assert inside.status_code == 422 and "url" in inside.json()["errors"]["json"]
    docs = requests.get(f"{base}/api/docs", timeout=5)
    assert docs.ok and "swagger-ui" in docs.text
    assert requests.get(f"{base}/api/openapi.json", timeout=5).json()["info"]["title"]


@pytest.mark.slow
def test_demo_runs_the_scheduler_embedded(demo):
    _, _, output, instance = demo
    assert "scheduler:  embedded" in output
    database = sqlite3.connect(instance / "broker.sqlite3")
    deadline = time.monotonic() + 45
    runs = []
    while time.monotonic() < deadline and not runs:
        time.sleep(1)
        runs = database.execute("SELECT job, outcome FROM job_runs WHERE job = 'provision'").fetchall()
    database.close()
    assert runs and runs[0][1] in (None, "ok")  # provisioning fires every twenty seconds


CHECKOUT = Path(__file__).resolve().parents[2]


def _readme_command(marker: str) -> str:
    after = (CHECKOUT / "README.md").read_text().split(f"<!-- {marker} -->", 1)[1]
    return after.split("```sh\n", 1)[1].split("```", 1)[0].strip()


@pytest.mark.slow
@pytest.mark.skipif(
    bool(os.environ.get("BROKER_TEST_DATABASE_URL")),
    reason="the demo keeps its own SQLite whatever the suite's database: one fresh install per CI run is enough",
)
def test_a_newcomer_installs_fresh_from_the_readme_and_the_demo_is_ready(tmp_path):
    """The README's run command as a newcomer runs it, in a copy of the checkout, so its venv is a
    fresh one (never the suite's): the install pieces verbatim, then its last piece, `broker demo`,
    on a free port instead of 5000 (and the simulators on free ports) so it can't meet another."""
    install, _, run = _readme_command("run-command").rpartition(" && ")
    assert run == ".venv/bin/broker demo" and install.startswith("python3 -m venv .venv && ")
    checkout = tmp_path / "checkout"
    shutil.copytree(CHECKOUT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "instance", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "build", "dist",
    ))
    env = {name: value for name, value in os.environ.items() if name not in ("VIRTUAL_ENV", "PYTHONPATH")}
    installed = subprocess.run(["bash", "-c", install], cwd=checkout, env=env, capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    broker = checkout / ".venv" / "bin" / "broker"
    assert broker.exists() and not broker.resolve().is_relative_to(Path(sys.prefix).resolve())
    with _running_demo([str(broker), "demo"], tmp_path / "instance") as (base, _, output, _):
        assert "上海硅巷资源撮合平台" in output
        assert requests.get(f"{base}/readyz", timeout=5).json()["status"] == "ok"
