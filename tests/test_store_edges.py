"""Where a device's data starts and what lies around a stretch: index seeks over the
metrics blocks are made from, never a scan of all the device's rows."""

from __future__ import annotations

import math

import pytest

from pue_monitor.pue.counter import CounterSeries
from pue_monitor.store.base import series_over
from pue_monitor.store.model import Reading

READINGS = [  # (ts, device, metric, labels, value)
    (50.0, "pdu", "outlet_power_w", (("outlet", "1"),), 10.0),  # a labelled series: not a total
    (80.0, "pdu", "temperature_c", (), 24.0),  # another metric: blocks are not made of it
    (100.0, "pdu", "active_power_w", (), 900.0),
    (160.0, "pdu", "active_energy_kwh", (), 5.0),
    (400.0, "pdu", "active_power_w", (), 910.0),
    (700.0, "pdu", "active_energy_kwh", (), 5.2),
    (990.0, "pdu", "temperature_c", (), 25.0),
    (120.0, "ups", "active_power_w", (), 40_000.0),
]


@pytest.fixture
def store(store_factory):
    store = store_factory.open()
    store.import_readings([Reading(ts, d, m, v, labels=lab)
                           for ts, d, m, lab, v in READINGS])
    yield store
    store.close()


@pytest.mark.parametrize(("device", "first"), [("pdu", 100.0), ("ups", 120.0), ("nobody", None)])
def test_first_reading_of_the_block_metrics(store, device, first):
    assert store.first_reading_ts(device) == first


# The fourth reading on each side, NEAR_READINGS (the spike / dip rule looks up to four
# readings on), or the farthest there is; the block-metric totals of pdu are at 100, 160,
# 400 and 700.
@pytest.mark.parametrize(("start", "end", "around"), [
    (150.0, 300.0, (100.0, 700.0)),  # only one before (100); 400 then 700 after
    (100.0, 160.0, (100.0, 700.0)),  # nothing before 100: the start itself
    (450.0, 650.0, (100.0, 700.0)),  # 400, 160, 100 before; only 700 after
    (500.0, 600.0, (100.0, 700.0)),
    (710.0, 900.0, (100.0, 900.0)),  # nothing after (the temperature does not count)
])
def test_neighbours_of_a_stretch(store, start, end, around):
    assert store.neighbour_times({"pdu": (start, end)}) == {"pdu": around}


# Several devices in one call answer what each answers alone (the set-based statement
# of PostgreSQL keeps every device's times apart).
@pytest.mark.parametrize("spans", [
    {"pdu": (150.0, 300.0), "ups": (100.0, 130.0), "nobody": (5.0, 6.0)},
    {"ups": (0.0, 50.0), "pdu": (450.0, 650.0)},
    {"pdu": (710.0, 900.0), "ups": (200.0, 300.0)},
    {},
])
def test_neighbours_of_many_devices_at_once(store, spans):
    alone = {d: store.neighbour_times({d: span})[d] for d, span in spans.items()}
    assert store.neighbour_times(spans) == alone
    assert store.neighbour_times(spans, ["active_power_w"]) == {
        d: store.neighbour_times({d: span}, ["active_power_w"])[d] for d, span in spans.items()}


COUNTER = [(0.0, 0.0), (60.0, 1.0), (120.0, 100.0), (180.0, 2.0), (240.0, 3.0),
           (300.0, 4.0), (360.0, 5.0)]


@pytest.fixture
def counter_store(store_factory):
    store = store_factory.open()
    store.import_readings([Reading(ts, "m", "active_energy_kwh", v) for ts, v in COUNTER])
    yield store
    store.close()


@pytest.mark.parametrize(("start", "end", "times"), [
    (0.0, 0.0, [0.0, 60.0, 120.0, 180.0, 240.0]),  # on the first: four after, not five
    (360.0, 360.0, [120.0, 180.0, 240.0, 300.0, 360.0]),  # on the last: four before
    (30.0, 330.0, [0.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0]),  # one before only
])
def test_near_readings_either_side_of_a_window(counter_store, start, end, times):
    key = ("m", "active_energy_kwh")
    ts, _values = series_over(counter_store, [key], start, end)[key]
    assert ts.tolist() == times


# Many series, each at its own time (a time may fall on a reading or between two; one
# series asked twice), in one call: each what series_windows gives for it alone.
@pytest.mark.parametrize("points", [
    [(("m", "active_energy_kwh"), 200.0), (("m", "active_energy_kwh"), 60.0),
     (("m", "active_power_w"), 100.0), (("nobody", "active_energy_kwh"), 0.0)],
    [(("m", "active_energy_kwh"), -5.0), (("m", "active_energy_kwh"), 400.0),
     (("m", "active_energy_kwh"), 360.0), (("m", "active_energy_kwh"), 0.0)],
    [],
])
def test_series_at_many_times_is_series_windows_of_each(counter_store, points):
    alone = [series_over(counter_store, [key], at, at)[key] for key, at in points]
    found = counter_store.series_at(points)
    assert [(ts.tolist(), v.tolist()) for ts, v in found] == \
        [(ts.tolist(), v.tolist()) for ts, v in alone]


def test_a_spike_before_a_window_is_a_step_back_not_a_reset(counter_store):
    # 1 -> 100 -> 2 kWh: the 100 is out of line (back to at least the reading before
    # it), so 60..180 is a step-back. Read with one reading before the window [170, 240]
    # only (120, 180, 240), the fall 100 -> 2 looked like a reset (2 < 10 % of 100).
    key = ("m", "active_energy_kwh")
    counter = CounterSeries.from_arrays(*series_over(counter_store, [key], 170.0, 240.0)[key])
    assert [(f.start, f.end, f.kind) for f in counter.flags] == [(60.0, 180.0, "step_back")]


def test_block_totals_over_a_century_of_month_edges(tmp_path):
    """A 100-year report cuts its period at 1200 month edges: every segment is summed
    (a segment number computed in SQL as a flat sum of that many comparisons would pass
    SQLite's expression depth limit of 1000)."""
    from pue_monitor.store.sqlite import Store

    store = Store.open(tmp_path / "data")
    try:
        # one 900 s block of 1 kWh every 10 days for 1200 "segments" of 10 days each
        step = 10 * 86400.0
        store.write_interval_energy([("m", k * step, k * step + 900.0, 1.0, 900.0, "counter")
                                     for k in range(1200)])
        edges = [k * step for k in range(1, 1200)]
        totals = store.block_totals(["m"], 0.0, 1200 * step, edges)
        assert sorted(seg for _, seg in totals) == list(range(1200))
        assert {t.energy_kwh for t in totals.values()} == {1.0}
    finally:
        store.close()


# block_totals against sums worked out here from the blocks written: segment i holds the
# blocks with i of the edges at or before their start, in [start, end) or only those
# starting at ``starts``. Edges unsorted, repeated, before the start, after the end, on a
# block's start; starts outside the range, repeated across segments.
H = 3600.0
TOTALS_CASES = {  # name: (start, end, edges, starts)
    "no edges": (0.0, 48 * H, [], None),
    "edges on block starts": (0.0, 48 * H, [10 * H, 24 * H], None),
    "edges inside blocks": (0.0, 48 * H, [10.5 * H, 30.25 * H], None),
    "unsorted and repeated": (0.0, 48 * H, [30 * H, 5 * H, 30 * H, 12 * H], None),
    "edges outside the range": (6 * H, 40 * H, [-5 * H, 2 * H, 20 * H, 45 * H, 99 * H], None),
    "every block its own segment": (0.0, 48 * H, [k * H for k in range(1, 48)], None),
    "starts, no edges": (0.0, 48 * H, [], [3 * H, 7 * H, 30 * H]),
    "starts across segments": (0.0, 48 * H, [10 * H, 24 * H], [0.0, 9 * H, 10 * H, 47 * H]),
    "starts outside the range": (5 * H, 20 * H, [12 * H], [H, 5 * H, 12 * H, 19 * H, 20 * H]),
    "empty range": (10 * H, 10 * H, [5 * H], None),
}
BLOCKS = [(device, k * H, k * H + 900.0, 0.5 + k + (0.25 if device == "b" else 0.0), 900.0,
           "counter" if k % 3 else "power") for device in ("a", "b") for k in range(48)]


@pytest.mark.parametrize("case", TOTALS_CASES)
def test_block_totals_per_segment_as_summed_by_hand(store_factory, case):
    start, end, edges, starts = TOTALS_CASES[case]
    expected: dict = {}
    for device, t, _, energy, covered, method in BLOCKS:
        if start <= t < end and (starts is None or t in starts):
            seg = sum(1 for e in edges if e <= t)
            acc = expected.setdefault((device, seg), [0.0, 0.0, set()])
            acc[0] += energy
            acc[1] += covered
            acc[2].add(method)
    store = store_factory.open()
    try:
        store.write_interval_energy(BLOCKS)
        got = store.block_totals(["a", "b", "nobody"], start, end, edges, starts)
    finally:
        store.close()
    assert sorted(got) == sorted(expected)
    for key, (energy, covered, methods) in expected.items():
        assert got[key].energy_kwh == pytest.approx(energy, rel=1e-12)
        assert got[key].covered_s == covered
        assert got[key].methods == "+".join(sorted(methods))


# series_windows with a ``near_s`` hint: the same answer as without one, on both
# backends, whether the hint covers the nearest readings, misses them (a gap: they are
# sought as without it) or reaches far beyond them.
HINTED = [(t, "m", "active_energy_kwh", (), 100.0 + t / 60) for t in
          (0.0, 60.0, 120.0, 180.0, 240.0, 420.0, 480.0, 540.0, 600.0)]  # gap 240..420
HINTED += [(t, "m", "active_power_w", (), 1000.0 + t % 7) for t in range(30, 600, 60)]
HINTED += [(t, "far", "active_power_w", (), 5.0) for t in (-5000.0, 100.0, 9000.0)]
WINDOWS = [(100.0, 200.0), (250.0, 400.0), (420.0, 420.0), (-100.0, -50.0), (700.0, 800.0),
           (0.0, 600.0), (260.0, 270.0)]
KEYS = [("m", "active_energy_kwh"), ("m", "active_power_w"), ("far", "active_power_w"),
        ("nobody", "active_power_w")]


@pytest.fixture
def hinted_store(store_factory):
    store = store_factory.open()
    store.import_readings([Reading(ts, d, m, v, labels=lab) for ts, d, m, lab, v in HINTED])
    yield store
    store.close()


def plain(found):
    return [{k: (ts.tolist(), v.tolist()) for k, (ts, v) in w.items()} for w in found]


@pytest.mark.parametrize("near_s", [0.0, 1.0, 61.0, 150.0, 400.0, 1e9, math.inf, -5.0])
def test_series_windows_with_a_hint_is_without_one(hinted_store, near_s):
    want = plain(hinted_store.series_windows(KEYS, WINDOWS))
    assert plain(hinted_store.series_windows(KEYS, WINDOWS, near_s=near_s)) == want
    # worked by hand: the energy over [250, 400] is the gap with four readings each side
    assert want[1][KEYS[0]][0] == [60.0, 120.0, 180.0, 240.0, 420.0, 480.0, 540.0, 600.0]
    assert want[0][KEYS[2]][0] == [-5000.0, 100.0, 9000.0]  # inside, and the one each side
    assert want[3][KEYS[0]][0] == [0.0, 60.0, 120.0, 180.0]  # nothing before the series
    assert want[4][KEYS[0]][0] == [420.0, 480.0, 540.0, 600.0]  # nothing after it
    assert want[0][KEYS[3]] == ([], [])


def test_equal_times_keep_their_order_with_a_hint(tmp_path):
    """Readings at the same time (a store of an earlier version may hold an import
    twice): the same ones, in the same order, with and without a hint (SQLite keeps
    them; the nearest before a window are the last ones written, as ``ts DESC`` gives
    them)."""
    from pue_monitor.store.sqlite import Store

    store = Store.open(tmp_path / "data")
    try:
        key = ("m", "active_power_w")
        rows = [(t, v) for t in (0.0, 60.0, 120.0, 180.0, 240.0) for v in (1.0, 2.0, 3.0)]
        store.import_readings([Reading(t, *key, v) for t, v in rows])
        for windows in ([(100.0, 150.0)], [(60.0, 180.0)], [(120.0, 120.0)],
                        [(130.0, 170.0), (0.0, 0.0)]):
            want = plain(store.series_windows([key], windows))
            for near_s in (30.0, 60.0, 130.0, 1e6):
                assert plain(store.series_windows([key], windows, near_s=near_s)) == want
    finally:
        store.close()
