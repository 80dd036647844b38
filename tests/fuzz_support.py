"""What every fuzz module shares: Hypothesis settings for bounded, repeatable runs and the
counting of inputs tried and crashes (printed at the end of the run, tests/suite_figures.py)."""

from __future__ import annotations

from contextlib import contextmanager

from hypothesis import HealthCheck

from tests import suite_figures

# derandomize: the same inputs on every run, so CI is not flaky; no example database, so
# a run does not depend on what an earlier one found; no deadline, as CI machines are slow.
FUZZ = dict(derandomize=True, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@contextmanager
def trying(name: str, **more: int):
    """Count one input of the fuzz target ``name``, and whether it raised: crashes counts
    every failing input Hypothesis ran, shrinking included. ``more`` adds other figures."""
    try:
        yield
    except BaseException:
        suite_figures.count(f"fuzz: {name}", inputs_tried=1, crashes=1, **more)
        raise
    suite_figures.count(f"fuzz: {name}", inputs_tried=1, crashes=0, **more)
