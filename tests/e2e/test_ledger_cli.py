"""`broker ledger reconcile`, run as the operator runs it: exit 0 and the balances when every stored
total is what the rows say, exit 1 naming the difference when one is not."""

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal

import pytest
import sqlalchemy as sa

from broker.clock import utcnow
from broker.db import get_db
from broker.models import Role
from broker.services import accounts, policy
from tests.world import committed_app, session_of

pytestmark = [pytest.mark.slow, pytest.mark.committing]


def _reconcile(url, tmp_path):
    (tmp_path / "carriers.json").write_text('{"carriers": {}}')
    env = {**os.environ, "BROKER_DATABASE_URL": url, "BROKER_INSTANCE_PATH": str(tmp_path),
           "BROKER_CARRIERS_FILE": str(tmp_path / "carriers.json")}
    return subprocess.run([sys.executable, "-m", "broker", "ledger", "reconcile"], env=env, capture_output=True,
                          text=True, timeout=120)


def test_reconcile_prints_the_balances_and_fails_on_a_difference(databases, tmp_path):
    url = databases.create()
    app = committed_app(url, str(tmp_path))
    session = session_of(app)
    staff, _, _ = accounts.create_user(session, Role.staff, "审核员")
    policy.create_program(session, staff, {
        "code": "voucher", "name": "算力券", "kinds": ["gpu"], "rate": Decimal("0.3"), "cap_per_startup": Decimal(1000),
        "budget": Decimal("1234567.89"), "funding_document": "沪经信智〔2025〕489号",
        "starts_on": dt.date(2026, 1, 1), "ends_on": dt.date(2027, 1, 1)}, utcnow())
    session.close()

    clean = _reconcile(url, tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert "voucher" in clean.stdout and "1234567.89" in clean.stdout and "Reconciled" in clean.stdout

    with get_db(app).engine.begin() as connection:
        connection.execute(sa.text("UPDATE subsidy_programs SET budget = budget + 1"))
    tampered = _reconcile(url, tmp_path)
    assert tampered.returncode == 1
    assert "DIFFERENCE program voucher budget: stored 1234567.90, from the rows 1234567.89" in tampered.stderr
    get_db(app).engine.dispose()
