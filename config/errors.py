"""Configuration errors that carry a path and the offending value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file, at a path like ``sites[1].devices[3].profile``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """All problems found in one configuration, reported together."""

    def __init__(self, issues: list[ConfigIssue], source: str = "") -> None:
        self.issues = issues
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + f"{len(issues)} configuration error(s)\n" + "\n".join(
            f"  {issue}" for issue in issues))


def join_path(parts: tuple | list) -> str:
    """Render a pydantic-style location tuple as ``a.b[2].c``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
