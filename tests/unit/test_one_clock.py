"""One clock and one time zone: only broker/clock.py reads the system clock or builds the zone."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("broker", "adapters", "scheduler", "config")

# Who may read the system clock besides broker/clock.py, and why. Durations (time.monotonic,
# time.perf_counter) are not "now" and are not counted.
ALLOWED_READS = {
    "broker/models/audit.py": "a storage stamp: the audit log's `at` records when the row was written",
    "adapters/mobile.py": "the request signature's timestamp is checked against the carrier's own wall clock",
    "adapters/simulators/common.py": "a simulator stands in for a carrier's own systems and their clock",
    "adapters/simulators/mobile.py": "a simulator stands in for a carrier's own systems and their clock",
    "adapters/simulators/idp.py": "the identity provider simulator stands in for the city's login and its clock "
    "(it stamps the ID tokens' iat and exp)",
}


def system_clock_reads(source: str) -> list[int]:
    """Line numbers of calls that read the system clock: datetime.now/utcnow/today,
    date.today, time.time/time_ns, and utcnow() however it is imported."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in {"utcnow", "time_ns"}:
            lines.append(node.lineno)
        elif isinstance(func, ast.Attribute):
            owner = func.value.attr if isinstance(func.value, ast.Attribute) else getattr(func.value, "id", None)
            if (
                func.attr == "utcnow"
                or (owner in {"datetime", "date"} and func.attr in {"now", "utcnow", "today"})
                or (owner == "time" and func.attr in {"time", "time_ns"})
            ):
                lines.append(node.lineno)
    return lines


def zone_definitions(source: str) -> list[int]:
    """Line numbers that build a UTC+8 or Asia/Shanghai zone: ZoneInfo(...), timezone(timedelta(hours=8))."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name == "ZoneInfo" or (name == "timezone" and node.args and "hours" in ast.dump(node.args[0])):
            lines.append(node.lineno)
    return lines


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative != "broker/clock.py":
                yield relative, path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "snippet",
    [
        "import datetime as dt\ndt.datetime.now(dt.timezone.utc)",
        "from datetime import datetime\ndatetime.now()",
        "import datetime\ndatetime.datetime.utcnow()",
        "from datetime import date\ndate.today()",
        "import datetime as dt\ndt.date.today()",
        "import time\ntime.time()",
        "from broker.db import utcnow\nutcnow()",
        "import broker.clock\nbroker.clock.utcnow()",
    ],
)
def test_the_scanner_sees_every_way_of_reading_the_system_clock(snippet):
    assert system_clock_reads(snippet) == [2]


def test_the_scanner_lets_durations_and_the_app_clock_pass():
    assert system_clock_reads("import time\ntime.monotonic()\ntime.perf_counter()\nnow()\nclock.now(app)") == []
    assert system_clock_reads("mapped_column(default=utcnow, onupdate=utcnow)") == []  # storage stamps, not calls


def test_only_the_clock_module_reads_the_system_clock():
    reads = {
        path: lines for path, source in _modules() if (lines := system_clock_reads(source)) and path not in ALLOWED_READS
    }
    assert reads == {}, "take 'now' from broker.clock.now() or a `now` parameter instead"


def test_the_allow_list_names_files_that_exist():
    assert all((ROOT / path).is_file() for path in ALLOWED_READS)


def test_the_district_zone_is_built_once():
    assert zone_definitions("from zoneinfo import ZoneInfo\nZoneInfo('Asia/Shanghai')") == [2]
    assert zone_definitions("timezone(timedelta(hours=8))") == [1]
    copies = {path: lines for path, source in _modules() if (lines := zone_definitions(source))}
    assert copies == {}, "import SHANGHAI from broker.clock"


def test_the_clock_module_loads_without_flask_or_sqlalchemy():
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('clock_alone', {str(ROOT / 'broker' / 'clock.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(sorted(m for m in ('flask', 'sqlalchemy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
