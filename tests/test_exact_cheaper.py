"""The exact path's helpers made cheaper give what they gave before, bit for bit: each is
checked against the former formulation (np.diff and friends, kept here as references)
over a table of cases, edge cases included (no reading, one, equal times, gaps, NaN,
infinities, signed zeros)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pue_monitor.pue.counter import CounterSeries
from pue_monitor.pue.power import PowerSeries
from pue_monitor.pue.quality import equal_runs
from pue_monitor.pue.spans import clean_series

INF, NAN = math.inf, math.nan


def ref_equal_runs(values):
    if values.size < 2:
        return []
    same = np.diff(values) == 0
    edges = np.diff(np.concatenate(([0], same.astype(np.int8), [0])))
    first, stop = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(first.tolist(), stop.tolist()))


RUNS = [
    ("empty", []),
    ("one", [5.0]),
    ("moving", [1.0, 2.0, 3.0, 2.5]),
    ("two equal", [4.0, 4.0]),
    ("run at the start", [4.0, 4.0, 4.0, 5.0, 6.0]),
    ("run at the end", [1.0, 2.0, 7.0, 7.0]),
    ("two runs", [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 4.0]),
    ("zeros, signed", [0.0, -0.0, 0.0, 1.0]),
    ("infinities are not a run", [INF, INF, 1.0, -INF, -INF]),
    ("NaN never equal", [NAN, NAN, 1.0]),
    ("tiny differences", [1.0, 1.0 + 2**-52, 1.0 + 2**-52, 5e-324, 5e-324, 0.0]),
]


@pytest.mark.parametrize(("name", "values"), RUNS, ids=[r[0] for r in RUNS])
def test_equal_runs_as_before(name, values):
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):  # inf - inf, in both
        assert equal_runs(values) == ref_equal_runs(values)


def ref_clean_series(ts, values):
    ts, values = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
    keep = ~(np.isnan(ts) | np.isnan(values))
    if not keep.all():
        ts, values = ts[keep], values[keep]
    if ts.size > 1 and not (np.diff(ts) > 0).all():
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        last = np.append(ts[1:] != ts[:-1], True)
        ts, values = ts[last], values[last]
    return ts, values


SERIES = [
    ("empty", [], []),
    ("one", [3.0], [1.0]),
    ("sorted", [0.0, 60.0, 120.0], [1.0, 2.0, 3.0]),
    ("unsorted", [120.0, 0.0, 60.0], [3.0, 1.0, 2.0]),
    ("equal times: the last kept", [0.0, 60.0, 60.0, 120.0], [1.0, 2.0, 9.0, 3.0]),
    ("NaN value dropped", [0.0, 60.0, 120.0], [1.0, NAN, 3.0]),
    ("NaN time dropped", [0.0, NAN, 120.0], [1.0, 2.0, 3.0]),
    ("adjacent doubles", [1.0, 1.0 + 2**-52, 1.0 + 2**-51], [1.0, 2.0, 3.0]),
    ("infinite time", [0.0, INF, INF], [1.0, 2.0, 3.0]),
]


@pytest.mark.parametrize(("name", "ts", "values"), SERIES, ids=[s[0] for s in SERIES])
def test_clean_series_as_before(name, ts, values):
    with np.errstate(invalid="ignore"):  # inf - inf, in both
        got, want = clean_series(ts, values), ref_clean_series(ts, values)
    for a, b in zip(got, want):
        assert a.tobytes() == b.tobytes()


def ref_stretches(ts, max_gap_s):
    if ts.size < 2:
        return []
    good = np.diff(ts) <= max_gap_s
    edges = np.diff(np.concatenate(([0], good.astype(np.int8), [0])))
    first, stop = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(ts[first].tolist(), ts[stop].tolist()))


STRETCHES = [
    ("no reading", []),
    ("one reading", [0.0]),
    ("no gap", [0.0, 60.0, 120.0, 180.0]),
    ("a gap in the middle", [0.0, 60.0, 600.0, 660.0]),
    ("every step a gap", [0.0, 600.0, 1200.0]),
    ("gap at the ends", [0.0, 600.0, 660.0, 720.0, 1500.0]),
    ("exactly the limit", [0.0, 180.0, 360.0]),
]


@pytest.mark.parametrize(("name", "ts"), STRETCHES, ids=[s[0] for s in STRETCHES])
def test_power_stretches_and_energy_as_before(name, ts):
    ts = np.asarray(ts, dtype=float)
    watts = 1000.0 + np.arange(ts.size) * 7.5
    power = PowerSeries.from_arrays(ts, watts, 180.0)
    got = power.spans(-1e12, 1e12)
    assert got == ref_stretches(ts, 180.0)
    assert all(type(a) is float and type(b) is float for a, b in got)
    if ts.size >= 2:
        steps = (watts[1:] + watts[:-1]) * np.diff(ts) / 2.0
        assert power._lists[2] == np.concatenate(([0.0], np.cumsum(steps))).tolist()


def test_site_power_made_only_for_a_run_of_equal_readings():
    """A facility counter's IT evidence (site_power) may be given as a function: called
    once if the counter has a run of equal readings to judge, never otherwise; the
    result is the same as given the evidence itself."""
    it = PowerSeries.from_arrays(np.arange(0.0, 3001.0, 60.0), np.full(51, 48_000.0),
                                 180.0)
    frozen = ([0.0, 600.0, 1200.0, 1800.0, 2400.0, 3000.0],
              [100.0, 110.0, 110.0, 110.0, 140.0, 150.0])
    moving = (frozen[0], [100.0, 110.0, 120.0, 130.0, 140.0, 150.0])
    for (ts, kwh), calls_wanted in ((frozen, 1), (moving, 0)):
        calls = []

        def evidence():
            calls.append(1)
            return ((it, 1.0),)

        lazy = CounterSeries.from_arrays(np.asarray(ts), np.asarray(kwh),
                                         resolution_kwh=0.1, site_power=evidence)
        given = CounterSeries.from_arrays(np.asarray(ts), np.asarray(kwh),
                                          resolution_kwh=0.1, site_power=((it, 1.0),))
        assert len(calls) == calls_wanted
        assert lazy.flags == given.flags
        assert lazy.cumulative.tobytes() == given.cumulative.tobytes()


COUNTERS = [
    # (name, kWh readings a minute apart, rated_max_w)
    ("counting", [10.0, 11.0, 12.5, 14.0], None),
    ("a reset", [10.0, 11.0, 0.5, 1.5], None),
    ("a step back", [10.0, 11.0, 10.9, 12.0], None),
    ("a spike", [10.0, 11.0, 50.0, 12.0, 13.0], None),
    ("a rise beyond the rated maximum", [10.0, 11.0, 50.0, 51.0], 100_000.0),
    ("within the rated maximum", [10.0, 11.0, 12.0], 100_000.0),
    ("a reset with a rated maximum", [10.0, 11.0, 0.5, 1.5], 100_000.0),
]


@pytest.mark.parametrize(("name", "kwh", "rated"), COUNTERS, ids=[c[0] for c in COUNTERS])
def test_counter_rules_with_and_without_a_rated_maximum(name, kwh, rated):
    """Without a rated maximum no rise is refused (no limit array is built for it); the
    flags and the energy are what the rules say either way."""
    ts = np.arange(len(kwh)) * 60.0
    counter = CounterSeries.from_arrays(ts, np.asarray(kwh), rated_max_w=rated)
    kinds = [f.kind for f in counter.flags]
    want = {"counting": [], "a reset": ["reset"], "a step back": ["step_back"],
            "a spike": ["step_back"],
            "a rise beyond the rated maximum": ["implausible_counter"],
            "within the rated maximum": [], "a reset with a rated maximum": ["reset"]}[name]
    assert kinds == want


def ref_whole_runs(store, key, ts, values, start=None, end=None):
    """figures.service.whole_runs as it was (both counts taken first)."""
    from pue_monitor.figures.service import _run_beyond
    from pue_monitor.store.base import NEAR_READINGS

    ts, values = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
    more_before = start is None or int((ts < start).sum()) >= NEAR_READINGS
    more_after = end is None or int((ts > end).sum()) >= NEAR_READINGS
    if more_before and ts.size >= 2 and values[0] == values[1]:
        more_ts, more = _run_beyond(store, key, float(ts[0]), float(values[0]), -1)
        ts, values = np.concatenate((more_ts, ts)), np.concatenate((more, values))
    if more_after and ts.size >= 2 and values[-1] == values[-2]:
        more_ts, more = _run_beyond(store, key, float(ts[-1]), float(values[-1]), 1)
        ts, values = np.concatenate((ts, more_ts)), np.concatenate((values, more))
    return ts, values


# A counter read every minute: moving, then a run of 110 from 600 s to 1800 s, moving,
# a run of 150 from 3000 s to the data's end at 3600 s.
RUN_COUNTER = [(t, 100.0 + t / 60 if t < 600 else 110.0 if t <= 1800 else
                110.0 + (t - 1800) / 30 if t < 3000 else 150.0) for t in range(0, 3601, 60)]


@pytest.mark.parametrize(("start", "end"), [
    (100.0, 400.0),  # no run at either end
    (700.0, 1500.0),  # inside the run: read on both ways
    (300.0, 900.0),  # the run at the end of the window
    (1500.0, 2400.0),  # the run at the start
    (3100.0, 3300.0),  # the last run: the data ends after it
    (3500.0, 3600.0),  # fewer than two readings after: nothing more asked
    (0.0, 30.0),  # fewer than two before
    (None, None),  # no window given (runs_bounds)
])
def test_whole_runs_as_before(tmp_path, start, end):
    from pue_monitor.figures.service import whole_runs
    from pue_monitor.store.base import series_over
    from pue_monitor.store.model import Reading
    from pue_monitor.store.sqlite import Store

    store = Store.open(tmp_path / "data")
    try:
        key = ("m", "active_energy_kwh")
        store.import_readings([Reading(float(t), *key, v) for t, v in RUN_COUNTER])
        a, b = (start, end) if start is not None else (1200.0, 1200.0)
        ts, values = series_over(store, [key], a, b)[key]
        got = whole_runs(store, key, ts, values, start, end)
        want = ref_whole_runs(store, key, ts, values, start, end)
        assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
    finally:
        store.close()


BLAS_PROBE = """
import json, os
before = len(os.listdir('/proc/self/task'))
from pue_monitor.pue.lazynp import np
np.ndarray
print(json.dumps({"env": os.environ.get("OPENBLAS_NUM_THREADS"),
                  "new_threads": len(os.listdir('/proc/self/task')) - before}))
"""


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/task"), reason="Linux /proc")
@pytest.mark.parametrize(("preset", "env", "new_threads"), [
    (None, "1", 0),  # numpy through lazynp: one BLAS thread, the process's own
    ("1", "1", 0),
    ("2", "2", 1),  # the environment's setting is kept (OpenBLAS starts one more thread)
])
def test_numpy_through_lazynp_starts_no_blas_threads(preset, env, new_threads):
    import json
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        environ["OPENBLAS_NUM_THREADS"] = preset
    done = subprocess.run([sys.executable, "-c", BLAS_PROBE], capture_output=True,
                          text=True, env=environ, timeout=120, check=True)
    assert json.loads(done.stdout) == {"env": env, "new_threads": new_threads}


@pytest.mark.parametrize(("intervals", "near_s"), [
    ((60, 60), 270.0),  # NEAR_READINGS (4) and a half polls
    ((60, 300), 270.0),  # of the most often polled meter: none read far beyond its need
    ((10, 300), 45.0),
])
def test_the_exact_path_hints_the_nearest_readings_of_the_fastest_meter(
        tmp_path, intervals, near_s):
    import yaml

    from pue_monitor.config import load_config
    from pue_monitor.figures.service import meter_inputs_over
    from pue_monitor.store.sqlite import Store

    devices = [{"id": f"m{i}", "role": role, "profile": "eastron_sdm630",
                "modbus": {"host": "127.0.0.1", "port": 20001 + i},
                "polling": {"interval_s": s}} | (
                   {"measurement_point": "it_input"} if role == "it" else {})
               for i, (role, s) in enumerate(zip(("facility", "it"), intervals))]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"polling": {"interval_s": 60}, "sites": [
        {"id": "s", "name": {"vi": "s", "en": "s"}, "devices": devices}]}), encoding="utf-8")
    config = load_config(path)
    store = Store.open(tmp_path / "data")
    asked = []

    class Recording:
        def series_windows(self, keys, windows, labels="", near_s=0.0):
            asked.append(near_s)
            return store.series_windows(keys, windows, labels, near_s)

        def __getattr__(self, name):
            return getattr(store, name)

    try:
        meter_inputs_over(Recording(), config, config.sites[0], [(0.0, 900.0)])
        assert asked == [near_s]
    finally:
        store.close()
