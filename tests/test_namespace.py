"""One installable namespace: everything installs and imports as ``pue_monitor.*``.

The folders stay at the repository root (collectors/, pue/, web/, ...), mapped under
``pue_monitor`` by pyproject's package-dir, so nothing named ``config`` or ``web`` lands in
site-packages to clash with other distributions.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
with (ROOT / "pyproject.toml").open("rb") as _f:
    PACKAGE_DIR: dict[str, str] = tomllib.load(_f)["tool"]["setuptools"]["package-dir"]
# Folders that hold code which imports the project: its packages, the tests, the benchmarks.
CODE_FOLDERS = sorted({*PACKAGE_DIR.values(), "tests", "benchmarks"})
BARE = {folder for name, folder in PACKAGE_DIR.items() if name != "pue_monitor"}


def _python_files() -> list[Path]:
    return [p for folder in CODE_FOLDERS for p in (ROOT / folder).rglob("*.py")]


def _bare_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                  if n.split(".")[0] in BARE]
    return found


def test_every_subpackage_folder_is_mapped_under_pue_monitor():
    assert set(PACKAGE_DIR) >= {f"pue_monitor.{f}" for f in
                                ("collectors", "pue", "web", "config", "store", "simulator")}
    assert all(name == "pue_monitor" or name.startswith("pue_monitor.") for name in PACKAGE_DIR)


def test_nothing_imports_a_folder_by_its_bare_name():
    bad = [hit for path in _python_files() for hit in _bare_imports(path)]
    assert bad == [], "imports that bypass pue_monitor: " + ", ".join(bad)


def test_installed_package_is_pue_monitor_only(tmp_path):
    # Run away from the repository root, so its folders are not on sys.path.
    code = ("import importlib.util as u; import pue_monitor.config, pue_monitor.web.app;"
            "print(sorted(n for n in %r if u.find_spec(n)))" % sorted(BARE))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_wheel_holds_one_top_level_package_and_its_data(tmp_path):
    # Built from a copy: setuptools builds in the source tree and would leave build/ there.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "*.egg-info", "__pycache__", "pue-data", "corpus"))
    # -v: pip shows the build backend's own output, where setuptools prints its warnings.
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v",
                           "-w", str(tmp_path), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    # setuptools' warnings (license table, package data outside `packages`, ...) are
    # Python warnings, "SomethingWarning: ..."; pip's own notices are "WARNING: ...".
    assert re.findall(r"\w+Warning: .*", output) == []
    assert "absent from the `packages` configuration" not in output
    (wheel,) = tmp_path.glob("pue_monitor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"pue_monitor"}
    for needed in ("pue_monitor/config/demo.yaml", "pue_monitor/config/profiles/ups_mib.yaml",
                   "pue_monitor/web/templates/overview.html", "pue_monitor/web/static/live.js",
                   "pue_monitor/web/static/vendor/uPlot.iife.min.js",
                   "pue_monitor/store/migrations/postgres/0001_initial.sql"):
        assert needed in names, needed
    assert not [n for n in names if "/corpus/" in n or n.startswith("pue_monitor/tests")]


@pytest.mark.parametrize("module", sorted(PACKAGE_DIR))
def test_each_package_imports(module):
    __import__(module)
