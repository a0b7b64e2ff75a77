"""`broker demo` as a newcomer runs it: a real process, a real port, the printed token."""

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    port = _free_port()
    env = {**os.environ, "BROKER_INSTANCE_PATH": str(tmp_path)}
    env.pop("BROKER_DATABASE_URL", None)
    env.pop("BROKER_CARRIERS_FILE", None)
    env.pop("BROKER_WEBHOOK_ALLOWED_HOSTS", None)
    for code in ("TELECOM", "MOBILE", "UNICOM"):  # the carriers' simulators, on ports of their own
        env[f"BROKER_CARRIER_{code}_BASE_URL"] = f"http://127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "broker", "demo", "--port", str(port)],
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
