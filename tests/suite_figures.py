"""Figures the fuzz, fault and soak suites gather while they run, printed at the end of the
pytest run (conftest.pytest_terminal_summary), so CI output shows them even with -q:
``count("fuzz: CSV importer", inputs_tried=500, crashes=0)`` prints
``fuzz: CSV importer: inputs tried: 500, crashes: 0``.

Counts add up over the tests that record them; measurements keep their last value. A
figure is recorded only after the assertions that back it passed, so a failed test never
adds to "survived".
"""

from __future__ import annotations

from collections import defaultdict

# suite -> figure -> value
COUNTS: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
MEASURED: dict[str, dict[str, str]] = defaultdict(dict)
# The headline figures, printed first in a suite's line: what was tried, then what broke.
HEADLINE = ("inputs tried", "faults injected", "faults survived", "readings lost", "crashes")


def count(suite: str, **figures: int) -> None:
    """Add to a suite's counts (keyword names: spaces as underscores)."""
    for name, value in figures.items():
        COUNTS[suite][name.replace("_", " ")] += value


def fault(kind: str, injected: int = 1, lost: int = 0) -> None:
    """``injected`` faults of ``kind`` survived: the monitor kept running and collecting,
    and ``lost`` acknowledged readings were lost (the test asserted how many)."""
    count("fault suite", faults_injected=injected, faults_survived=injected,
          readings_lost=lost, crashes=0)
    COUNTS["fault suite: by kind"][kind] += injected


def measure(suite: str, name: str, value: str) -> None:
    MEASURED[suite][name] = value


def lines() -> list[str]:
    """What the terminal summary prints: a suite's counts on one line, then each of its
    measurements on a line of its own."""
    out = []
    for suite in sorted(set(COUNTS) | set(MEASURED)):
        counts = COUNTS.get(suite, {})
        names = [n for n in HEADLINE if n in counts] + sorted(
            n for n in counts if n not in HEADLINE)
        if names:
            out.append(f"{suite}: " + ", ".join(f"{n}: {counts[n]}" for n in names))
        out += [f"{suite}: {n}: {v}" for n, v in MEASURED.get(suite, {}).items()]
    return out
