"""Figures the robustness suites (fuzz, faults, soak) collect while they run, printed once
at the end of the test session by tests/conftest.py's ``pytest_terminal_summary``.

A suite calls ``record("fuzz: CSV importer", inputs_tried=500, crashes=0)``; recording the
same suite again adds the numbers up (a test parametrized per engine records once per run).
"""

from __future__ import annotations

from collections import defaultdict

# suite -> figure name -> value, in the order suites first recorded something
FIGURES: dict[str, dict[str, int]] = defaultdict(dict)


def record(suite: str, **figures: int) -> None:
    """Add ``figures`` (counts) to what ``suite`` recorded so far."""
    seen = FIGURES[suite]
    for name, value in figures.items():
        seen[name] = seen.get(name, 0) + value


def lines() -> list[str]:
    """One line a suite: ``fuzz: CSV importer: inputs tried 500, crashes 0``."""
    return [f"{suite}: " + ", ".join(f"{name.replace('_', ' ')} {value:,}"
                                     for name, value in figures.items())
            for suite, figures in FIGURES.items()]
