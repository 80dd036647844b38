"""The data-quality rules of method 4, one table per rule, every answer worked out by hand.

A reading interval is a *step*. Counter readings are (t s, kWh), power readings (t s, W).
The expected energy is the meter's energy over everything it measured; the expected spans
are what it measured (the refused steps are gaps); the flags are what it shows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pue_monitor.config.metrics import MeasurementPoint as MP
from pue_monitor.config.metrics import Role
from pue_monitor.pue.energy import CounterSeries, MeterEnergy, PowerSeries, difference_share
from pue_monitor.pue.kpi import (
    MeterInfo,
    MeterInput,
    MeterPart,
    Part,
    combine,
    info,
    interval_pue,
    reduce_part,
)
from pue_monitor.pue.quality import Flag, MeterQuality, moving_times

REL = 1e-9


def arrays(points):
    ts, values = zip(*points) if points else ((), ())
    return np.asarray(ts, dtype=float), np.asarray(values, dtype=float)


def power_series(points, max_gap_s=180.0, **rules):
    return PowerSeries.from_arrays(*arrays(points), max_gap_s, **rules)


def meter(counter_points, power_points=None, **rules):
    """A meter with a counter (and its own power, if given)."""
    power = power_series(power_points) if power_points else None
    counter = CounterSeries.from_arrays(*arrays(counter_points), power=power, **rules)
    return MeterEnergy(counter, power)


def measured(m: MeterEnergy, start=-1e12, end=1e12):
    spans = m.spans(start, end)
    return m.energy(spans), spans


def every_minute(watts, start, end):
    return [(t, watts) for t in range(start, end + 1, 60)]


# (name, counter readings, settings, own power readings, kWh, measured spans, flags)
COUNTER_RULES = [
    # --- reset: below 10 % of the previous value; its step is a gap ----------------------
    # 100 -> 110 (+10); 5 < 10 % of 110 = 11: reset, 600..1200 unknown; 5 -> 15 (+10): 20.
    ("reset gap", [(0, 100), (600, 110), (1200, 5), (1800, 15)], {}, None,
     10 + 10, [(0, 600), (1200, 1800)], [Flag(600, 1200, "reset")]),
    # The same with the meter's own power, 12 kW read every minute: it measures the reset's
    # step, 12 kW x 600 s = 2 kWh: 10 + 2 + 10 = 22 over the whole 1800 s.
    ("reset covered by own power", [(0, 100), (600, 110), (1200, 5), (1800, 15)], {},
     every_minute(12_000, 0, 1800), 10 + 12 * 600 / 3600 + 10, [(0, 1800)],
     [Flag(600, 1200, "reset")]),
    # 50 is 45 % of 110: not a reset by default (a step-back, below) but one with
    # reset_below_fraction 0.5 (50 < 55). Either way the step is a gap: 10 + 10 = 20.
    ("reset below a configured fraction", [(0, 100), (600, 110), (1200, 50), (1800, 60)],
     {"reset_below_fraction": 0.5}, None, 10 + 10, [(0, 600), (1200, 1800)],
     [Flag(600, 1200, "reset")]),
    # --- step-back: any other decrease; not measured, counted, the counter goes on --------
    # The demo restart of issue 11: 70 744.07 -> 70 743.77. Method 2 added 70 743.77 kWh
    # (the whole register). Now: 0.07 (0..600), gap, then 70 743.77 -> 70 743.91 (0.14).
    ("step-back", [(0, 70_744.00), (600, 70_744.07), (1200, 70_743.77), (1800, 70_743.84),
                   (2400, 70_743.91)], {}, None,
     (70_744.07 - 70_744.00) + (70_743.91 - 70_743.77), [(0, 600), (1200, 2400)],
     [Flag(600, 1200, "step_back")]),
    ("step-back, not a reset, by default", [(0, 100), (600, 110), (1200, 50), (1800, 60)],
     {}, None, 10 + 10, [(0, 600), (1200, 1800)], [Flag(600, 1200, "step_back")]),
    # 150 at 600 s is out of line: 105 after it is back above 100, the reading before it.
    # The rise into it is not measured either: only 105 -> 110 (+5) over 1200..1800.
    ("spike reading", [(0, 100), (600, 150), (1200, 105), (1800, 110)], {}, None,
     5, [(1200, 1800)], [Flag(0, 1200, "step_back")]),
    # A read of 0 between 1000 and 1002: not a reset (method 2 counted 1002 kWh in 600 s):
    # the low reading is out of line, both its steps are a gap; 1002 -> 1004 (+2).
    ("dip reading", [(0, 1000), (600, 0), (1200, 1002), (1800, 1004)], {}, None,
     2, [(1200, 1800)], [Flag(0, 1200, "step_back")]),
    # Two, then three, reads of 0 between 1000 and 1002 (a module answering 0 for a few
    # polls): counted as a reset and the climb back, they made 1002 kWh (the review of 3
    # December). Out of line: the fall, the steps between and the climb back are a gap.
    ("two dip readings", [(0, 1000), (600, 0), (1200, 0), (1800, 1002), (2400, 1004)], {},
     None, 2, [(1800, 2400)], [Flag(0, 1800, "step_back")]),
    ("three dip readings, rising", [(0, 1000), (600, 3), (1200, 4), (1800, 5), (2400, 1002),
                                    (3000, 1004)], {}, None,
     2, [(2400, 3000)], [Flag(0, 2400, "step_back")]),
    # Four are more than OUT_OF_LINE_READINGS: the fall is judged as the rules below say
    # (a reset), and the climb back, 0 -> 1002 in 600 s, is measured: with no rated
    # maximum nothing says it cannot be. A rated maximum (below) would refuse it.
    ("four dip readings", [(0, 1000), (600, 0), (1200, 0), (1800, 0), (2400, 0),
                           (3000, 1002)], {}, None,
     1002, [(600, 3000)], [Flag(0, 600, "reset")]),
    # A 32-bit Wh counter (W 4 294 967.296 kWh) near its top reading 0 twice: not a wrap.
    ("two dip readings near the top of the width",
     [(0, 4_080_000), (600, 0), (1200, 0), (1800, 4_080_005), (2400, 4_080_010)],
     {"width_kwh": 2**32 / 1000}, None, 5, [(1800, 2400)], [Flag(0, 1800, "step_back")]),
    # A reset that counts up again past the old value within three readings (a new meter
    # at 0.3 kWh): step by step, not in one jump back, so a reset still.
    ("a reset counting up past the old value", [(0, 0.2), (600, 0.3), (1200, 0.0),
                                                (1800, 0.1), (2400, 0.2), (3000, 0.31)],
     {}, None, 0.1 + 0.31, [(0, 600), (1200, 3000)], [Flag(600, 1200, "reset")]),
    # One low reading while the load varies: a dip (130 >= 120), not a spike of the two
    # readings before it (105 >= 100 fits that too): the fewer out of line win. 15 + 5 + 1.
    ("a dip where a longer spike fits too", [(0, 100), (600, 115), (1200, 120), (1800, 105),
                                            (2400, 130), (3000, 131)], {}, None,
     15 + 5 + 1, [(0, 1200), (2400, 3000)], [Flag(1200, 2400, "step_back")]),
    # Two readings beyond the rated maximum (100 kW: 16.7 kWh a step) and back: one
    # implausible span, not an implausible rise and a reset. 1 + 1.
    ("two spike readings beyond the rated maximum",
     [(0, 1000), (600, 1001), (1200, 4_294_967), (1800, 4_294_967), (2400, 1003),
      (3000, 1004)], {"rated_max_w": 100_000}, None, 1 + 1, [(0, 600), (2400, 3000)],
     [Flag(600, 2400, "implausible_counter")]),
    # Two high readings, then back above the reading before them: a spike of two.
    ("two spike readings", [(0, 100), (600, 99_999), (1200, 99_999), (1800, 105),
                            (2400, 110)], {}, None, 5, [(1800, 2400)],
     [Flag(0, 1800, "step_back")]),
    # --- wrap: width W, old in the top 10 % of W, new in the bottom 10 % -------------------
    # W 1000: 990 -> 995 (+5) -> 5 (+1000 - 995 + 5 = 10) -> 15 (+10): 25, all measured.
    ("wrap with a value after it", [(0, 990), (600, 995), (1200, 5), (1800, 15)],
     {"width_kwh": 1000}, None, 5 + (1000 - 995 + 5) + 10, [(0, 1800)],
     [Flag(600, 1200, "wrap")]),
    # W 1000 but 510 is not in its top 10 %: no wrap; 5 < 51, a reset: 10 + 10.
    ("decrease outside the wrap bands", [(0, 500), (600, 510), (1200, 5), (1800, 15)],
     {"width_kwh": 1000}, None, 10 + 10, [(0, 600), (1200, 1800)],
     [Flag(600, 1200, "reset")]),
    # --- stuck counter: not moving while its own power says energy flows ----------------
    # 60 kW (10 kWh per 600 s). The register froze at 110 from 600 s to 1800 s and caught
    # up at 2400 s (140): the power gave 60 kW x 1200 s = 20 kWh > the 0.1 kWh register
    # step. The step into the run and the one out of it (which carries the stall's energy)
    # are refused too: 0..2400 is a gap; 140 -> 150 (+10).
    ("stuck counter", [(0, 100), (600, 110), (1200, 110), (1800, 110), (2400, 140),
                       (3000, 150)], {"resolution_kwh": 0.1}, every_minute(60_000, 0, 3000),
     10, [(2400, 3000)], [Flag(0, 2400, "stuck_counter")]),
    # The same register with the load off (0 W): not moving is right; 0 kWh, all measured.
    ("still counter, no load", [(0, 100), (600, 100), (1200, 100)], {"resolution_kwh": 0.1},
     every_minute(0, 0, 1200), 0, [(0, 1200)], []),
    # 300 W for 600 s is 0.05 kWh, under the 0.1 kWh step: a coarse register, not stuck.
    # 100 -> 100 -> 100.1: 0.1 kWh over the 1200 s.
    ("coarse counter, not stuck", [(0, 100), (600, 100), (1200, 100.1)],
     {"resolution_kwh": 0.1}, every_minute(300, 0, 1200), 100.1 - 100, [(0, 1200)], []),
    # A register read may show its value of up to REGISTER_REFRESH_S (2 s) before: the
    # power evidence of a run [a, b] is weighed over [a, b - 2].
    # Polled every second, 36 kW (0.01 kWh a second): the register read 100.01 twice, 1 s
    # apart, before the meter refreshed it: [1, 0] is empty, one image read twice, not
    # stuck (it flagged every fast-polled Modbus meter of the demo). All measured: +0.04.
    ("one register image read twice", [(0, 100.00), (1, 100.01), (2, 100.01), (3, 100.03),
                                       (4, 100.04)], {"resolution_kwh": 0.001},
     [(t, 36_000) for t in range(5)], 100.04 - 100.00, [(0, 4)], []),
    # A 0.1 kWh register at 12 kW steps every 30 s; read every second, and a tick late, it
    # showed 100.0 from 0 s to 31 s: 12 kW x 31 s = 0.103 kWh, over the step, but over
    # [0, 29] 0.097 kWh is not: a coarse register read late, not stuck. +0.1 over 0 .. 33.
    ("a coarse register read a tick late",
     [(t, 100.0) for t in range(32)] + [(32, 100.1), (33, 100.1)],
     {"resolution_kwh": 0.1}, [(t, 12_000) for t in range(34)], 0.1, [(0, 33)], []),
    # The 0.001 kWh register equal over 1 .. 4.5 s: over [1, 2.5], 36 kW x 1.5 s = 0.015
    # kWh, more than a step: stuck, 0 .. 5.5 refused; 100.055 -> 100.065 (+0.01).
    ("a repeat longer than the refresh", [(0, 100.00), (1, 100.01), (2, 100.01),
                                          (4.5, 100.01), (5.5, 100.055), (6.5, 100.065)],
     {"resolution_kwh": 0.001}, [(t / 2, 36_000) for t in range(14)], 100.065 - 100.055,
     [(5.5, 6.5)], [Flag(0, 5.5, "stuck_counter")]),
    # --- implausible: a step beyond the rated maximum (100 kW: 16.667 kWh in 600 s) ------
    # +50 000 kWh in 600 s: refused; the counter goes on from 50 110: 10 + 10.
    ("energy step beyond the rated maximum",
     [(0, 100), (600, 110), (1200, 50_110), (1800, 50_120)], {"rated_max_w": 100_000}, None,
     10 + 10, [(0, 600), (1200, 1800)], [Flag(600, 1200, "implausible_counter")]),
    # A spike to 99 999 and back to 130: one implausible span 600..1800; 10 + 10.
    ("energy spike beyond the rated maximum",
     [(0, 100), (600, 110), (1200, 99_999), (1800, 130), (2400, 140)],
     {"rated_max_w": 100_000}, None, 10 + 10, [(0, 600), (1800, 2400)],
     [Flag(600, 1800, "implausible_counter")]),
    # Without a rated maximum the same spike is out of line (130 >= 110): still refused.
    ("energy spike, no rated maximum",
     [(0, 100), (600, 110), (1200, 99_999), (1800, 130), (2400, 140)], {}, None,
     10 + 10, [(0, 600), (1800, 2400)], [Flag(600, 1800, "step_back")]),
]


@pytest.mark.parametrize(("name", "readings", "settings", "power", "kwh", "spans", "flags"),
                         COUNTER_RULES, ids=[c[0] for c in COUNTER_RULES])
def test_counter_rules(name, readings, settings, power, kwh, spans, flags):
    m = meter(readings, power, **settings)
    energy, got_spans = measured(m)
    assert energy == pytest.approx(kwh, rel=REL, abs=1e-12)
    assert got_spans == spans
    assert list(m.counter.flags) == flags
    quality = m.quality(-1e12, 1e12)
    assert quality.resets == sum(f.kind == "reset" for f in flags)
    assert quality.step_backs == sum(f.kind == "step_back" for f in flags)
    assert quality.wraps == sum(f.kind == "wrap" for f in flags)
    assert quality.stuck == sum(f.kind.startswith("stuck") for f in flags)
    assert quality.implausible == sum(f.kind.startswith("implausible") for f in flags)


def test_meter_swap_is_not_a_decrease():
    # Old meter 400 -> 460 (600 s), its final 500 at the swap (1000 s); the new one starts
    # at 2 and reads 12 at 1200 s, 72 at 1800 s: (500 - 400) + (72 - 2) = 170, no flag.
    m = meter([(0, 400), (600, 460), (1200, 12), (1800, 72)], replacements=((1000, 500, 2),))
    assert measured(m) == (pytest.approx(170, rel=REL), [(0, 1800)])
    assert m.counter.flags == ()


# A meter of 120 000 kWh drawing 60 kW (1 kWh a minute), read every minute from 0 to
# 3600 s, swapped at 1830 s: the old one's final 120 030.5, the new one's first 2.
OLD_FINAL, NEW_FIRST, SWAPPED = 120_030.5, 2.0, 1830
SWAP_READINGS = [(t, 120_000 + t / 60 if t < SWAPPED else NEW_FIRST + (t - SWAPPED) / 60)
                 for t in range(0, 3601, 60)]


# (name, recorded swap time, kWh, measured spans, flags)
SWAP_TIMES = [
    # Recorded right: 30.5 + 29.5 kWh, the whole hour measured.
    ("right", SWAPPED, 60.0, [(0, 3600)], []),
    # Recorded ten minutes late: the fall at the true swap is a reset (1800..1860), and
    # the recorded one's step (2400..2460) would hold the old meter's total, 120 029.5
    # kWh, in a minute: refused. 30 + 9 + 19 kWh of steps in line.
    ("ten minutes late", SWAPPED + 600, 58.0, [(0, 1800), (1860, 2400), (2460, 3600)],
     [Flag(1800, 1860, "reset"), Flag(2400, 2460, "implausible_counter")]),
    # Ten minutes early: the recorded step (1200..1260) refused, then the old meter's
    # readings carried on the new total until the true swap, a reset (1800..1860).
    ("ten minutes early", SWAPPED - 600, 58.0, [(0, 1200), (1260, 1800), (1860, 3600)],
     [Flag(1200, 1260, "implausible_counter"), Flag(1800, 1860, "reset")]),
]


# The same meter replaced by one that starts higher, at 1000 kWh (the old one's final
# 530.5): the jump between the totals is a rise, which no decrease rule sees.
HIGHER_FIRST = 1000.0
HIGHER_READINGS = [(t, 500 + t / 60 if t < SWAPPED else HIGHER_FIRST + (t - SWAPPED) / 60)
                   for t in range(0, 3601, 60)]
SWAP_TIMES_HIGHER = [
    ("right", SWAPPED, 60.0, [(0, 3600)], []),
    # Ten minutes late: the rise at the true swap (1800..1860) carries the jump, 469.5
    # kWh, in a minute: refused; the recorded step is a fall back (2400..2460).
    ("ten minutes late", SWAPPED + 600, 58.0, [(0, 1800), (1860, 2400), (2460, 3600)],
     [Flag(1800, 1860, "implausible_counter"), Flag(2400, 2460, "step_back")]),
    ("ten minutes early", SWAPPED - 600, 58.0, [(0, 1200), (1260, 1800), (1860, 3600)],
     [Flag(1200, 1260, "step_back"), Flag(1800, 1860, "implausible_counter")]),
]


@pytest.mark.parametrize(("readings", "old_final", "new_first", "at", "kwh", "spans", "flags"),
                         [(SWAP_READINGS, OLD_FINAL, NEW_FIRST, *c[1:]) for c in SWAP_TIMES]
                         + [(HIGHER_READINGS, 530.5, HIGHER_FIRST, *c[1:])
                            for c in SWAP_TIMES_HIGHER],
                         ids=[c[0] for c in SWAP_TIMES]
                         + [f"starts higher, {c[0]}" for c in SWAP_TIMES_HIGHER])
def test_a_swap_recorded_at_the_wrong_time_never_counts_the_old_total(
        readings, old_final, new_first, at, kwh, spans, flags):
    m = meter(readings, replacements=((at, old_final, new_first),))
    assert measured(m) == (pytest.approx(kwh, rel=REL), spans)
    assert list(m.counter.flags) == flags


# Two swaps in one afternoon: the meter of 120 000 kWh replaced at 1830 s by one at 2, and
# that one replaced six hours later (at 362 kWh) by one at 0.5, 1 kWh a minute throughout.
def twice_swapped(t):
    if t < SWAPPED:
        return 120_000 + t / 60
    return 2 + (t - SWAPPED) / 60 if t < SWAPPED + 21_600 else 0.5 + (t - SWAPPED - 21_600) / 60


TWICE = [(t, twice_swapped(t)) for t in range(0, 30_001, 60)]
FIRST_SWAP = (SWAPPED, OLD_FINAL, NEW_FIRST)
# A new meter preset to the old one's reading, 0.1 kWh steps, 3 kW, read every 10 s for
# two days but for two hours the monitor was down: nothing is misplaced by the swap.
PRESET = [(t, math.floor((5000 + t / 1200) * 10) / 10)
          for t in range(0, 172_800, 10) if not 40_000 < t < 47_200]

# (name, readings, replacements, resolution, kWh, flags)
SWAP_CASES = [
    # The meter out for half an hour, the load bypassed: the step across (600..2400 s)
    # carries 2 + 3 kWh, less than its 1800 s at the 1 kWh a minute around it.
    ("out for half an hour", [(0, 500), (600, 510), (2400, 3), (3000, 13)],
     ((1000, 512, 0),), 0.0, 10 + 2 + 3 + 10, []),
    # An idle meter whose register counts whole kWh: the steps around are 0; the swap's
    # 1 + 1 kWh (the final read off the old meter's display) is within ten resolutions.
    ("idle, coarse register", [(0, 500), (600, 500), (1200, 1), (1800, 1)],
     ((1000, 501, 0),), 1.0, 2.0, []),
    # The same without a known resolution: 2 kWh is far from the 501 kWh between the two
    # meters' totals, so no misplaced jump: measured.
    ("idle, resolution unknown", [(0, 500), (600, 500), (1200, 1), (1800, 1)], ((1000, 501, 0),),
     0.0, 2.0, []),
    # Idle, swapped at about 200 s but recorded at 1000 s: the fall at the true swap is a
    # reset (more readings low than a dip has), and the jump lands on the step 900..1200 s,
    # where nothing around it moved: refused.
    ("idle, recorded late", [(0, 500), *((t, 1) for t in range(300, 901, 100)), (1200, 1),
                             (1800, 1)], ((1000, 501, 0),), 0.0, 0.0,
     [Flag(0, 300, "reset"), Flag(900, 1200, "implausible_counter")]),
    # A garbage reading next to the misplaced jump (recorded 10 min late) is no measure
    # of the usual step: the jump is still refused, and so are the garbage's steps.
    ("a glitch beside the misplaced jump",
     [(t, 200_000.0 if t == 2520 else v) for t, v in SWAP_READINGS],
     ((SWAPPED + 600, OLD_FINAL, NEW_FIRST),), 0.0, 56.0,
     [Flag(1800, 1860, "reset"), Flag(2400, 2460, "implausible_counter"),
      Flag(2460, 2580, "implausible_counter")]),
    # The second swap's jump (361.5 kWh, recorded an hour late) is judged on its own, not
    # only against the first's (120 028.5).
    ("two swaps, the second recorded an hour late", TWICE,
     (FIRST_SWAP, (SWAPPED + 25_200, 362.0, 0.5)), 0.0, 498.0,
     [Flag(23_400, 23_460, "reset"), Flag(27_000, 27_060, "implausible_counter")]),
    ("two swaps, both recorded right", TWICE, (FIRST_SWAP, (SWAPPED + 21_600, 362.0, 0.5)),
     0.0, 500.0, []),
    # No jump: the two-hour outage's step (6 kWh against 0 or 0.1 around it) is measured.
    ("a new meter preset to the old reading", PRESET,
     ((30_000, 5025.0, 5025.0),), 0.0, PRESET[-1][1] - PRESET[0][1], []),
]


@pytest.mark.parametrize(("points", "replacements", "resolution", "kwh", "flags"),
                         [c[1:] for c in SWAP_CASES], ids=[c[0] for c in SWAP_CASES])
def test_swaps_near_other_events(points, replacements, resolution, kwh, flags):
    m = meter(points, replacements=replacements, resolution_kwh=resolution)
    assert m.energy(m.spans(-1e12, 1e12)) == pytest.approx(kwh, rel=REL)
    assert list(m.counter.flags) == flags


def window(points, start, end):
    """The readings a window [start, end] reads from the store: those inside and the
    NEAR_READINGS nearest on each side (store.base)."""
    from pue_monitor.store.base import NEAR_READINGS
    before = [p for p in points if p[0] < start][-NEAR_READINGS:]
    after = [p for p in points if p[0] > end][:NEAR_READINGS]
    return before + [p for p in points if start <= p[0] <= end] + after


# 1 kWh a minute (60 kW) read every minute for two hours, around a recorded swap at 1830 s
# (old final 120 030.5, new first 2): (name, how the readings differ, recorded time).
def swap_hour(t):
    return 120_000 + t / 60 if t < SWAPPED else NEW_FIRST + (t - SWAPPED) / 60


AROUND_SWAPS = [
    ("right", {}, SWAPPED),
    # One reading of 0 at 600 s (a dip), the new meter's first answer garbage.
    ("dip, then a glitch after the swap", {600: 0.0, 1860: 9_999.0}, SWAPPED),
    ("recorded 10 min late, a dip", {600: 0.0}, SWAPPED + 600),
    ("recorded 10 min early, a spike", {2400: 200_000.0}, SWAPPED - 600),
    ("recorded 7 h late (UTC for local time)", {}, SWAPPED + 7 * 3600),
]


@pytest.mark.parametrize(("changed", "at"), [c[1:] for c in AROUND_SWAPS],
                         ids=[c[0] for c in AROUND_SWAPS])
def test_every_block_judges_a_swap_as_the_whole_series_does(changed, at):
    counter = [(t, changed.get(t, swap_hour(t))) for t in range(0, 7201, 60)]
    power = [(t, 60_000.0) for t in range(0, 7201, 60)]
    rules = {"replacements": ((at, OLD_FINAL, NEW_FIRST),)}
    whole = meter(counter, power, **rules)
    for a in range(0, 7200, 900):
        part = meter(window(counter, a, a + 900), window(power, a, a + 900), **rules)
        assert measured(part, a, a + 900) == measured(whole, a, a + 900), a


# Power readings every 60 s from 0 to 1800 s: 20 000 W + 1 W a minute (never the same
# twice), except 600..900 s, six readings frozen at 20 010 W.
RAMP = [(t, 20_000 + t // 60) for t in range(0, 1801, 60) if not 600 < t <= 900]
FROZEN = sorted(RAMP + [(t, 20_010) for t in range(660, 901, 60)])
# Trapezoids: 0..600 s, 20 000 -> 20 010 W: 20 005 x 600 = 12 003 000 Ws;
# 600..900 s at 20 010 W: 6 003 000 Ws; 900..960 s, 20 010 -> 20 016: 20 013 x 60 =
# 1 200 780 Ws; 960..1800 s, 20 016 -> 20 030: 20 023 x 840 = 16 819 320 Ws.
WS_OUTSIDE = 12_003_000 + 1_200_780 + 16_819_320
WS_FROZEN = 20_010 * 300

# (name, power readings, settings, kWh, measured spans, flags)
POWER_RULES = [
    # Six identical polls >= 5 while another meter moved at 700 s: stuck, 600..900 refused.
    ("stuck power", FROZEN, {"stuck_polls": 5, "moving_ts": np.array([700.0])},
     WS_OUTSIDE / 3.6e6, [(0, 600), (900, 1800)], [Flag(600, 900, "stuck_power")]),
    # Nothing known of the other meters: a steady load may repeat itself; measured.
    ("steady, site unknown", FROZEN, {"stuck_polls": 5, "moving_ts": None},
     (WS_OUTSIDE + WS_FROZEN) / 3.6e6, [(0, 1800)], []),
    # The other meters moved only at 100 s, before the run: the whole site was still.
    ("the site did not move", FROZEN, {"stuck_polls": 5, "moving_ts": np.array([100.0])},
     (WS_OUTSIDE + WS_FROZEN) / 3.6e6, [(0, 1800)], []),
    # Six polls are fewer than the seven configured.
    ("shorter than the setting", FROZEN, {"stuck_polls": 7, "moving_ts": np.array([700.0])},
     (WS_OUTSIDE + WS_FROZEN) / 3.6e6, [(0, 1800)], []),
    # A feed that is off reads 0 W for long: not stuck. 0 kWh over the whole.
    ("off, not stuck", every_minute(0, 0, 1800),
     {"stuck_polls": 5, "moving_ts": np.array([700.0])}, 0.0, [(0, 1800)], []),
    # 20 kW every minute to 600 s, one reading of 9.9 MW at 300 s on a meter rated 50 kW:
    # 240..360 s refused; 20 kW x (600 - 120) s = 9 600 000 Ws.
    ("power beyond the rated maximum",
     [(t, 9_900_000 if t == 300 else 20_000) for t in range(0, 601, 60)],
     {"rated_max_w": 50_000}, 20_000 * 480 / 3.6e6, [(0, 240), (360, 600)],
     [Flag(240, 360, "implausible_power")]),
    # Two such readings in a row (300 s and 360 s) make one span, 240..420 s: 20 kW x 420 s.
    ("two readings beyond the rated maximum",
     [(t, 9_900_000 if t in (300, 360) else 20_000) for t in range(0, 601, 60)],
     {"rated_max_w": 50_000}, 20_000 * 420 / 3.6e6, [(0, 240), (420, 600)],
     [Flag(240, 420, "implausible_power")]),
    # A reading of -20 kW at 300 s, no rated maximum set: 240..360 s refused, as above
    # (integrated, it took 2 x 60 s x 20 kW away: 0.333 kWh less than the 2.667 kWh).
    ("negative power",
     [(t, -20_000 if t == 300 else 20_000) for t in range(0, 601, 60)],
     {}, 20_000 * 480 / 3.6e6, [(0, 240), (360, 600)],
     [Flag(240, 360, "implausible_power")]),
    # -0.0 is zero: measured.
    ("negative zero", [(t, -0.0 if t == 300 else 0.0) for t in range(0, 601, 60)],
     {}, 0.0, [(0, 600)], []),
    # An idle feed's transducer noise about 0 W (-0.3, 0.2, ...): measured as read, not a
    # fault: 10 trapezoids of (0.2 - 0.3) / 2 W x 60 s, -30 Ws in all.
    ("noise about zero", [(t, -0.3 if t // 60 % 2 else 0.2) for t in range(0, 601, 60)],
     {}, 10 * 60 * (-0.05) / 3.6e6, [(0, 600)], []),
    # -10.5 W, beyond the 10 W of noise: a fault.
    ("just beyond the noise", [(t, -10.5 if t == 300 else 0.0) for t in range(0, 601, 60)],
     {}, 0.0, [(0, 240), (360, 600)], [Flag(240, 360, "implausible_power")]),
]


@pytest.mark.parametrize(("name", "readings", "settings", "kwh", "spans", "flags"),
                         POWER_RULES, ids=[c[0] for c in POWER_RULES])
def test_power_rules(name, readings, settings, kwh, spans, flags):
    m = MeterEnergy(None, power_series(readings, **settings))
    energy, got_spans = measured(m)
    assert energy == pytest.approx(kwh, rel=REL, abs=1e-12)
    assert got_spans == spans
    assert list(m.power.flags) == flags
    assert m.quality(0, 1800).stuck == sum(f.kind == "stuck_power" for f in flags)
    assert m.quality(0, 1800).implausible == sum(f.kind == "implausible_power" for f in flags)


def test_moving_times_are_the_other_meters_changes():
    # Meter a: 5, 5, 6 at 0, 60, 120 s (changed at 120); meter b: 1.5, 2.5 (changed at 60).
    got = moving_times([(np.array([0.0, 60.0, 120.0]), np.array([5.0, 5.0, 6.0])),
                        (np.array([0.0, 60.0]), np.array([1.5, 2.5]))])
    assert got.tolist() == [60.0, 120.0]


# (counter kWh, power kWh, difference share): |power - counter| / counter, and 100 % when
# the counter shows 0 and the power does not (method 2 gave null there).
SHARES = [
    (10.0, 11.0, 0.1),  # 1 / 10
    (0.0, 8.48, 1.0),  # issue 11: the frozen facility counter against 8.48 kWh of power
    (0.0, 0.0, 0.0),  # both nothing: they agree
]


@pytest.mark.parametrize(("by_counter", "by_power", "share"), SHARES)
def test_difference_share(by_counter, by_power, share):
    assert difference_share(by_counter, by_power) == pytest.approx(share, rel=REL)


def test_counter_zero_against_power_is_a_full_difference():
    # A 0.1 kWh register that did not move for an hour while the meter drew 50 W: 0.05 kWh,
    # under one register step, so not a stuck counter; but the check says 100 %.
    m = meter([(0, 100), (3600, 100)], every_minute(50, 0, 3600), resolution_kwh=0.1)
    assert m.counter.flags == ()
    assert m.cross_check(0, 3600) == (0.0, pytest.approx(50 * 3600 / 3.6e6, rel=REL))
    assert m.disagreement(0, 3600) == 1.0
    # The same check kept in a stored block reaches the figure as 100 % (method 2: None).
    part = Part(0, 3600, 3600, {
        "in": MeterPart(0.0, 3600, "counter", cross_check=(0.0, 0.05), common_s=3600),
        "it": MeterPart(0.04, 3600, "counter", common_s=3600)})
    result = combine("s", [MeterInfo("in", Role.FACILITY),
                           MeterInfo("it", Role.IT, measurement_point=MP.IT_INPUT)],
                     [part], 0, 3600)
    assert result.meters[0].cross_check == (0.0, 0.05, 1.0)


def reset_site():
    # Facility 150 kW: 100 (0 s), 150 (1200 s), reset: 5 (2400 s) < 15, 55 (3600 s).
    # IT 100 kW as a counter read every minute.
    return [
        MeterInput("in", Role.FACILITY, meter([(0, 100), (1200, 150), (2400, 5), (3600, 55)])),
        MeterInput("it", Role.IT, meter([(t, 100 * t / 3600) for t in range(0, 3601, 60)]),
                   measurement_point=MP.UPS_OUTPUT),
    ]


def test_a_reset_gap_is_left_out_of_both_sides_and_shown():
    # Common time 0..1200 and 2400..3600 (2400 s, coverage 2/3, incomplete).
    # E_DC 50 + 50 = 100; E_IT 100 kW x 2400 s = 66.667; PUE 1.5.
    result = interval_pue("s", reset_site(), 0, 3600)
    assert result.facility_energy_kwh == pytest.approx(100, rel=REL)
    assert result.it_energy_kwh == pytest.approx(100 * 2400 / 3600, rel=REL)
    assert result.pue == pytest.approx(1.5, rel=REL)
    assert result.coverage == pytest.approx(2 / 3, rel=REL)
    assert result.status == "incomplete"
    incomer = result.meters[0]
    assert (incomer.resets, incomer.quality.resets) == (1, 1)
    assert incomer.quality.flags == (Flag(1200, 2400, "reset"),)
    assert incomer.quality.counts() == {"reset": 1, "step_back": 0, "wrap": 0,
                                        "stuck_counter": 0, "stuck_power": 0,
                                        "implausible_counter": 0, "implausible_power": 0}
    assert result.meters[1].quality == MeterQuality()


def test_a_flag_over_two_parts_is_shown_once():
    # Halves 0..1800 and 1800..3600: the reset's step 1200..2400 lies in both; the
    # period shows it once, and counts the reset in the part of its reading after.
    meters = reset_site()
    parts = [reduce_part(meters, 0, 1800), reduce_part(meters, 1800, 3600)]
    assert [p.meters["in"].quality.resets for p in parts] == [1, 1]
    assert [p.meters["in"].resets for p in parts] == [0, 1]
    result = combine("s", [info(m) for m in meters], parts, 0, 3600)
    assert (result.meters[0].resets, result.meters[0].quality.resets) == (1, 1)
    assert result.pue == pytest.approx(1.5, rel=REL)


# (spans, holes, spans less holes, then clipped to 5..25)
SUBTRACT = [
    ([(0, 10), (20, 30)], [(5, 22)], [(0, 5), (22, 30)], [(22, 25)]),
    ([(0, 10)], [(2, 3), (4, 6)], [(0, 2), (3, 4), (6, 10)], [(6, 10)]),
    ([(0, 10)], [(0, 10)], [], []),
    ([(0, 10)], [(10, 20)], [(0, 10)], [(5, 10)]),
]


@pytest.mark.parametrize(("spans", "holes", "left", "clipped"), SUBTRACT)
def test_span_algebra(spans, holes, left, clipped):
    from pue_monitor.pue.spans import clip_spans, subtract_spans
    assert subtract_spans(spans, holes) == left
    assert clip_spans(left, 5, 25) == clipped
