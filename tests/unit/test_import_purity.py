"""The pure parts import pure: the solver and the adapters load neither Flask nor SQLAlchemy,
and the signed-in account lives outside `broker.api`, so the console can use it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB_STACK = ("flask", "werkzeug", "flask_smorest", "sqlalchemy", "alembic", "marshmallow")


def loaded_after(statement: str) -> list[str]:
    """The modules a fresh interpreter holds in sys.modules after running `statement`."""
    probe = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module", ["broker.matching", "adapters.telecom", "adapters.mobile", "adapters.unicom", "adapters.registry"]
)
def test_pure_modules_import_without_the_web_stack(module):
    loaded = {name.split(".")[0] for name in loaded_after(f"import {module}")}
    assert module.split(".")[0] in loaded
    assert [name for name in WEB_STACK if name in loaded] == []


def test_current_account_lives_in_the_shared_auth_module():
    import broker.api.common
    import broker.auth

    assert broker.auth.current_account.__module__ == "broker.auth"
    assert not hasattr(broker.api.common, "current_account")
    loaded = loaded_after("import broker.auth")
    assert {"flask", "sqlalchemy"} <= {name.split(".")[0] for name in loaded}  # the probe sees them when loaded
    assert not [name for name in loaded if name.startswith("broker.api")]
