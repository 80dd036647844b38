"""Static checks of every Python file of the repository (pyflakes): a name used but
never defined (an import removed or renamed, a typo) fails on the path that reaches it,
which may be one no other test runs (an error path, a rare branch); and no import,
variable or redefinition left over. An import kept on purpose says so (``# noqa: F401``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pyflakes import checker, messages

ROOT = Path(__file__).resolve().parents[1]
NOT_OURS = {".venv", ".git", "build", "node_modules"}


def sources() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py")
                  if not any(part in NOT_OURS or part.endswith(".egg-info")
                             for part in p.relative_to(ROOT).parts))


def problems(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for message in checker.Checker(ast.parse(text, str(path)), filename=str(path)).messages:
        if (isinstance(message, messages.UnusedImport)
                and "noqa: F401" in lines[message.lineno - 1]):
            continue
        found.append(f"{path.relative_to(root)}:{message.lineno}: "
                     f"{message.message % message.message_args}")
    return found


def test_the_check_finds_an_undefined_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f():\n    return NO_SUCH_NAME\n")
    assert sorted(problems(bad, tmp_path)) == ["bad.py:1: 'os' imported but unused",
                                               "bad.py:5: undefined name 'NO_SUCH_NAME'"]


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_undefined_or_unused_names(path):
    assert problems(path) == []
