"""The lock files install what setup.cfg allows, and the suite runs on what the test lock pins."""

from __future__ import annotations

import configparser
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {"config/requirements.lock": "postgres", "config/requirements-test.lock": "test"}


def _declared(extra: str) -> list[Requirement]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = config["options"]["install_requires"].splitlines()
    lines += config["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^ ;\\\n]+)", text, flags=re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_declared_requirement_is_pinned_within_its_range(lock):
    pins = _pins(lock)
    outside = {}
    for requirement in _declared(LOCKS[lock]):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is declared in setup.cfg but not pinned in {lock}"
        if not requirement.specifier.contains(pins[name], prereleases=True):
            outside[requirement.name] = (pins[name], str(requirement.specifier))
    assert not outside, f"{lock} pins versions outside setup.cfg's ranges: {outside}"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_pin_carries_hashes(lock):
    text = (ROOT / lock).read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    unhashed = [b.split(" ")[0] for b in blocks if "==" in b.split("\n")[0] and "--hash=sha256:" not in b]
    assert not unhashed


def test_the_suite_runs_on_the_versions_the_test_lock_pins():
    # README's test command installs from the lock; a venv that drifted from it proves nothing.
    drifted = {}
    for name, version in _pins("config/requirements-test.lock").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a platform-only pin (none today on Linux)
        if installed != version:
            drifted[name] = (installed, version)
    assert not drifted, f"installed vs locked: {drifted}"
