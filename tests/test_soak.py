"""The soak run, short variant (two simulated days in a minute or two; the long one is
benchmarks/soak.py): the demo province polled over real SNMP and Modbus on a stepped,
shared clock (tests/soak_support.py). At the end: memory, open files and store size within
the bounds the README states, no poll failed, and each site's PUE over the whole blocks
equal to the simulator's ground truth, over both days although retention deleted the
first day's raw readings on the way (the figures come from the blocks, kept for ever)."""

from __future__ import annotations

import pytest

from tests import suite_figures
from tests.soak_support import describe, soak

pytestmark = pytest.mark.integration

DAYS = 2.0
STEP_S = 900.0  # one poll per device per 15-minute block: 192 steps
READINGS_DAYS = 1  # retention on: the first day's raw readings go, its blocks stay
# The stated bounds (README, "Reliability and security", Soak).
MAX_RSS_GROWTH_MB = 20.0  # after warm-up, over the run
MAX_OPEN_FILES_GROWTH = 8  # a store connection per worker thread, at most, beyond warm-up
MAX_BYTES_PER_READING = 400  # readings, indexes, blocks and day rows together
PUE_TOLERANCE = 1e-3  # relative; the meters' register steps, nothing else


async def test_two_simulated_days_stay_within_bounds_and_match_ground_truth(tmp_path):
    figures = await soak(tmp_path, DAYS, STEP_S, READINGS_DAYS)
    for what, text in describe(figures):
        print(f"{what}: {text}")
    assert figures.failed_polls == 0
    assert figures.polls == figures.devices * int(DAYS * 86_400 / STEP_S)
    assert figures.rss_mb[-1] - figures.rss_mb[0] <= MAX_RSS_GROWTH_MB
    assert figures.open_files[-1] - figures.open_files[0] <= MAX_OPEN_FILES_GROWTH
    assert figures.db_bytes <= MAX_BYTES_PER_READING * figures.readings
    # Retention deleted raw readings older than a day (behind closed blocks) as it went...
    assert 0.3 * figures.readings < figures.pruned < 0.7 * figures.readings
    # ...and each site's PUE over both days, now from blocks alone for the first, is true.
    assert {s: m is not None and m == pytest.approx(t, rel=PUE_TOLERANCE)
            for s, (m, t) in figures.pue.items()} == {s: True for s in figures.pue}
    for what, text in describe(figures):
        suite_figures.measure("soak (short)", what, text)
