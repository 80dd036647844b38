"""The dependency lock files (`make lock`): requirements.lock pins the application's
dependencies and theirs to exact versions (the Docker image installs with it),
requirements-test.lock adds the test tools and the PDF extra (`make install` installs
with it).

Checked offline: every requirement of pyproject.toml is pinned, at a version its range
admits; the two files agree; and the environment running these tests holds exactly the
pinned versions, so CI tests what is locked. Their vulnerability audit is .ci/audit.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)$")


def pins(name: str) -> dict[str, str]:
    """Canonical package name -> exact version, from a pip-compile output file."""
    out = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            match = PIN.match(line.strip())
            assert match, f"{name}: not an exact pin: {line!r}"
            out[canonicalize_name(match.group(1))] = match.group(2)
    return out


APP, TEST = pins("requirements.lock"), pins("requirements-test.lock")
REQUIRED = {"requirements.lock": PYPROJECT["dependencies"],
            "requirements-test.lock": PYPROJECT["dependencies"]
            + PYPROJECT["optional-dependencies"]["test"]
            + PYPROJECT["optional-dependencies"]["pdf"]}


@pytest.mark.parametrize("lock", sorted(REQUIRED))
def test_every_requirement_is_pinned_within_its_range(lock):
    locked = pins(lock)
    wrong = []
    for text in REQUIRED[lock]:
        req = Requirement(text)
        got = locked.get(canonicalize_name(req.name))
        if got is None or not req.specifier.contains(got, prereleases=True):
            wrong.append(f"{text}: locked {got}")
    assert not wrong, f"{lock} is out of date with pyproject.toml (run `make lock`): {wrong}"


def test_the_test_lock_holds_the_application_lock():
    assert {name: TEST.get(name) for name in APP} == APP


def test_this_environment_holds_the_locked_versions():
    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    differ = {name: (pinned, installed(name)) for name, pinned in TEST.items()
              if installed(name) != pinned}
    assert not differ, f"(locked, installed) differ; run `make install`: {differ}"
