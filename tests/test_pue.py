"""PUE from hand-computed scenarios: every expected number is worked out in the comment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pue_monitor.config.metrics import MeasurementPoint as MP
from pue_monitor.config.metrics import Role
from pue_monitor.pue.energy import CounterSeries, MeterEnergy, PowerSeries
from pue_monitor.pue.instant import PowerReading, instantaneous_pue
from pue_monitor.pue.kpi import MeterInput, interval_pue, pue_category


def frame(points):
    return pd.DataFrame(points, columns=["ts", "value"], dtype=float)


def counter(points, **kw):
    return MeterEnergy(CounterSeries.from_frame(frame(points), **kw), None)


def power(points, max_gap_s=180.0):
    return MeterEnergy(None, PowerSeries.from_frame(frame(points), max_gap_s))


def linear_counter(kw, times, start_kwh=0.0):
    """A counter reading start + kw * t / 3600 at each time."""
    return counter([(t, start_kwh + kw * t / 3600) for t in times])


def constant_power(kw, times, max_gap_s=180.0):
    return power([(t, kw * 1000) for t in times], max_gap_s)


def whole(meter, start, end):
    return meter.energy(meter.spans(start, end))


# --- one meter -------------------------------------------------------------------------

def test_counter_boundaries_are_interpolated():
    # 100 kWh at 0 s, 110 at 600 s, 130 at 1200 s. At 300 s: 105; at 900 s: 120 -> 15 kWh.
    meter = counter([(0, 100), (600, 110), (1200, 130)])
    assert whole(meter, 300, 900) == pytest.approx(15.0)
    assert meter.spans(300, 900) == [(300, 900)]


def test_counter_reset_leaves_its_step_unmeasured():
    # 100 -> 110 (+10), reset (5 < 10 % of 110), 5 -> 15 (+10): 20 kWh, one reset.
    # Method 2 counted the 5 kWh since the reset as the step's energy (25 kWh); method 3
    # does not know the energy from 110 to the reset: 600..1200 s is a gap.
    meter = counter([(0, 100), (600, 110), (1200, 5), (1800, 15)])
    assert whole(meter, 0, 1800) == pytest.approx(20.0, rel=1e-9)
    assert meter.spans(0, 1800) == [(0, 600), (1200, 1800)]
    assert meter.counter.resets == 1


def test_counter_wrap_is_unwound_with_declared_width():
    # Width 1000 kWh: 990 -> 995 (+5) -> 5 (+10 across the wrap) -> 15 (+10): 25 kWh.
    meter = counter([(0, 990), (600, 995), (1200, 5), (1800, 15)], width_kwh=1000)
    assert whole(meter, 0, 1800) == pytest.approx(25.0)


def test_meter_replacement_continues_the_old_total():
    # Old meter: 400 at 0 s, 460 at 600 s, removed at 1000 s reading 500.
    # New meter installed reading 2; reads 12 at 1200 s, 72 at 1800 s.
    # Energy: (500 - 400) + (72 - 2) = 170 kWh.
    points = [(0, 400), (600, 460), (1200, 12), (1800, 72)]
    fixed = counter(points, replacements=((1000, 500, 2),))
    assert whole(fixed, 0, 1800) == pytest.approx(170.0)
    # Unrecorded, the swap looks like a reset (12 < 10 % of 460): the step 600..1200 s is
    # not measured, 60 + 60 = 120 kWh over the 1200 s left (method 2: 60 + 12 + 60 = 132,
    # as if the whole 1800 s were measured).
    unrecorded = counter(points)
    assert whole(unrecorded, 0, 1800) == pytest.approx(120.0, rel=1e-9)
    assert unrecorded.spans(0, 1800) == [(0, 600), (1200, 1800)]


def test_counter_gap_inside_period_loses_nothing():
    # No readings between 300 s and 1500 s: the counter still measured it. 100 -> 106.
    meter = counter([(0, 100), (300, 101), (1500, 105), (1800, 106)])
    assert whole(meter, 0, 1800) == pytest.approx(6.0)
    assert meter.spans(0, 1800) == [(0, 1800)]


def test_power_only_meter_gap_is_missing_not_estimated():
    # 36 kW read every 60 s from 0 to 600 s and from 1500 to 1800 s; the 900 s gap is
    # longer than max_gap (180 s): covered 600 + 300 = 900 s -> 36 kW * 900 s = 9 kWh.
    times = list(range(0, 601, 60)) + list(range(1500, 1801, 60))
    meter = constant_power(36, times)
    assert meter.spans(0, 1800) == [(0, 600), (1500, 1800)]
    assert whole(meter, 0, 1800) == pytest.approx(9.0)


def test_power_integration_is_trapezoidal():
    # 0 W at 0 s rising to 3600 W at 3600 s: the area is 1/2 * 3600 W * 1 h = 1.8 kWh.
    meter = power([(0, 0), (3600, 3600)], max_gap_s=3600)
    assert whole(meter, 0, 3600) == pytest.approx(1.8)
    # Half the span [0, 1800]: 1/2 * 1800 W * 0.5 h = 0.45 kWh.
    assert whole(meter, 0, 1800) == pytest.approx(0.45)


# (readings (t, W), spans, kWh by hand): trapezoids between readings, power linear inside
# a gap between two readings, and several spans at once.
TRAPEZOIDS = [
    ([(0, 1000), (60, 1000), (120, 4000)], [(0, 120)], (60_000 + 150_000) / 3.6e6),
    ([(0, 1000), (60, 1000), (120, 4000)], [(90, 120)], (2500 + 4000) / 2 * 30 / 3.6e6),
    ([(0, 1000), (60, 1000), (120, 4000)], [(30, 60), (60, 90)],
     (30_000 + (1000 + 2500) / 2 * 30) / 3.6e6),
    ([(0, 0), (100, 100), (200, 0)], [(50, 150)], (2 * (50 + 100) / 2 * 50) / 3.6e6),
]


@pytest.mark.parametrize(("points", "spans", "kwh"), TRAPEZOIDS)
def test_power_energy_over_spans(points, spans, kwh):
    series = PowerSeries.from_arrays(*map(np.asarray, zip(*points)), max_gap_s=3600)
    got = series.energy([(np.float64(a), np.float64(b)) for a, b in spans])
    assert got == pytest.approx(kwh, rel=1e-12)
    assert type(got) is float  # numpy scalars must not leak into reports (repr, Decimal)


def test_counter_wins_over_power_and_disagreement_is_measured():
    both = MeterEnergy(CounterSeries.from_frame(frame([(0, 0), (3600, 10)])),
                       PowerSeries.from_frame(frame([(0, 11000), (3600, 11000)]), 3600))
    assert both.method == "counter"
    assert whole(both, 0, 3600) == pytest.approx(10.0)
    assert both.disagreement(0, 3600) == pytest.approx(0.1)  # 11 kWh vs 10 kWh


# (name, counter step kWh, counter readings, window, expected method, expected kWh)
# The meter draws 12 kW; it also reports power (12 kW flat) every 60 s.
COARSE = [
    # 0.1 kWh register over 15 min: 3.0 kWh to +-0.2 kWh (7 %): power is better.
    ("coarse register, short window", 0.1, [(0, 100.0), (900, 103.0)], 900, "power_integration",
     3.0),
    # The same register over a day: 288 kWh to +-0.2 kWh (0.07 %): the counter wins.
    ("coarse register, long window", 0.1, [(0, 100.0), (86400, 388.0)], 86400, "counter", 288.0),
    # A 1 Wh register resolves 15 min easily.
    ("fine register", 0.001, [(0, 100.0), (900, 103.0)], 900, "counter", 3.0),
    # The register stalled while power says 12 kW: do not hide that behind power.
    ("stalled counter is kept", 0.001, [(0, 100.0), (900, 100.0)], 900, "counter", 0.0),
]


@pytest.mark.parametrize(("name", "step", "readings", "end", "method", "kwh"), COARSE,
                         ids=[c[0] for c in COARSE])
def test_coarse_counter_falls_back_to_power_over_short_windows(name, step, readings, end,
                                                               method, kwh):
    both = MeterEnergy(CounterSeries.from_frame(frame(readings), resolution_kwh=step),
                       PowerSeries.from_frame(frame([(t, 12000.0) for t in range(0, end + 1, 60)]),
                                              180))
    chosen = both.for_window(0, end)
    assert chosen.method == method
    assert whole(chosen, 0, end) == pytest.approx(kwh)



def test_coarse_counter_over_a_power_gap_leaves_the_gap():
    # 0.1 kWh register, 12 kW, a 15-minute window; power every 60 s but silent from 300 s
    # to 600 s (longer than its 180 s max gap). The counter's 3.0 kWh is +-0.2 kWh (7 %):
    # not a measurement. Power measures [0, 300] and [600, 900]: 12 kW * 600 s = 2.0 kWh,
    # and [300, 600] is a gap for this meter, not the counter's guess.
    times = [t for t in range(0, 901, 60) if not 300 < t < 600]
    both = MeterEnergy(CounterSeries.from_frame(frame([(0, 100.0), (900, 103.0)]),
                                                resolution_kwh=0.1),
                       PowerSeries.from_frame(frame([(t, 12000.0) for t in times]), 180))
    chosen = both.for_window(0, 900)
    assert chosen.method == "power_integration"
    assert chosen.spans(0, 900) == [(0.0, 300.0), (600.0, 900.0)]
    assert chosen.energy(chosen.spans(0, 900)) == pytest.approx(2.0, rel=1e-9)


def test_a_stuck_counter_s_span_is_not_measured_by_power_either():
    # 0.1 kWh register, 3.6 kW (1 Wh a second), power every 60 s, a 15-minute window. The
    # meter's image froze from 120 s to 300 s, counter and power alike: the counter read
    # 100.1 four times while its power gave 3.6 kW * 180 s = 0.18 kWh (> 0.1 kWh): stuck,
    # 60..360 refused with the steps into and out of the run. Rounding repeats (0 .. 60,
    # 600 .. 660, 720 .. 780: 0.06 kWh each) are not stuck. The register cannot resolve the
    # rest (2 * 0.1 * 2 spans of 0.6 kWh), so power measures, but not across the stall:
    # [0, 60] and [360, 900], 3.6 kW * 600 s = 0.6 kWh (0.9 before, frozen power trusted).
    times = list(range(0, 901, 60))
    read = [100.0, 100.0, 100.1, 100.1, 100.1, 100.1, 100.3, 100.4, 100.4, 100.5, 100.6,
            100.6, 100.7, 100.7, 100.8, 100.9]
    power = PowerSeries.from_frame(frame([(t, 3600.0) for t in times]), 180)
    both = MeterEnergy(CounterSeries.from_arrays(np.array(times, dtype=float), np.array(read),
                                                 resolution_kwh=0.1, power=power), power)
    assert [(f.start, f.end, f.kind) for f in both.counter.flags] == [
        (60.0, 360.0, "stuck_counter")]
    chosen = both.for_window(0, 900)
    assert chosen.method == "power_integration"
    assert chosen.spans(0, 900) == [(0.0, 60.0), (360.0, 900.0)]
    assert chosen.energy(chosen.spans(0, 900)) == pytest.approx(0.6, rel=1e-9)


def test_counter_is_judged_over_the_common_spans_it_is_used_on():
    # Window [0, 900]. Facility: a 0.01 kWh counter and power, both 120 kW, every 60 s.
    # Over the window its 30 kWh resolve to 2 * 0.01 / 30 = 0.07 % (< 0.2 %): the counter.
    # IT: 100 kW every 60 s, silent from 120 s to 840 s (past its 180 s max gap), so the
    # ratio counts [0, 120] and [840, 900] only. There the counter's 6 kWh carry two
    # spans' ends: 2 * 0.01 * 2 / 6 = 0.67 % (> 0.2 %), so the facility's power measures
    # them: 120 kW * 180 s = 6 kWh; IT 100 kW * 180 s = 5 kWh; PUE 1.2, coverage 0.2.
    times = range(0, 901, 60)
    facility = MeterEnergy(
        CounterSeries.from_frame(frame([(t, 100 + 120 * t / 3600) for t in times]),
                                 resolution_kwh=0.01),
        PowerSeries.from_frame(frame([(t, 120000.0) for t in times]), 180))
    it = constant_power(100, [t for t in times if not 120 < t < 840])
    result = site([MeterInput("in", Role.FACILITY, facility),
                   MeterInput("ups", Role.IT, it, measurement_point=MP.UPS_OUTPUT)], 0, 900)
    (meter_in,) = [m for m in result.meters if m.device == "in"]
    assert meter_in.method == "power_integration"
    assert result.facility_energy_kwh == pytest.approx(6.0, rel=1e-9)
    assert result.it_energy_kwh == pytest.approx(5.0, rel=1e-9)
    assert result.pue == pytest.approx(1.2, rel=1e-9)
    assert result.coverage == pytest.approx(180 / 900, rel=1e-9)

# --- a site ----------------------------------------------------------------------------

def site(meters, start=0.0, end=3600.0, **kw):
    return interval_pue("s", meters, start, end, **kw)


def test_same_time_on_both_sides():
    # Facility: counter at 150 kW all hour. IT: 100 kW read every 60 s, but nothing from
    # 1200 s to 2400 s. Only [0, 1200] and [2400, 3600] count on both sides:
    # E_DC = 150 kW * 2400 s = 100 kWh, E_IT = 100 kW * 2400 s = 66.667 kWh, PUE 1.5,
    # coverage 2400/3600 = 0.667 -> incomplete.
    it_times = list(range(0, 1201, 60)) + list(range(2400, 3601, 60))
    result = site([
        MeterInput("in", Role.FACILITY, linear_counter(150, range(0, 3601, 60))),
        MeterInput("ups", Role.IT, constant_power(100, it_times), measurement_point=MP.UPS_OUTPUT),
    ])
    assert result.facility_energy_kwh == pytest.approx(100.0)
    assert result.it_energy_kwh == pytest.approx(200 / 3)
    assert result.pue == pytest.approx(1.5)
    assert result.coverage == pytest.approx(2 / 3)
    assert (result.status, result.compliant, result.category_label) == ("incomplete", None, "PUE1")


def test_readings_not_aligned_to_period():
    # Readings straddle [0, 900]: counter 150 kW -> 37.5 kWh; IT 100 kW -> 25 kWh; PUE 1.5.
    result = site([
        MeterInput("in", Role.FACILITY, linear_counter(150, [-50, 250, 550, 850, 1150])),
        MeterInput("ups", Role.IT, constant_power(100, [-20, 280, 580, 880, 1180], 900),
                   measurement_point=MP.UPS_OUTPUT),
    ], 0, 900)
    assert result.facility_energy_kwh == pytest.approx(37.5)
    assert result.it_energy_kwh == pytest.approx(25.0)
    assert (result.pue, result.coverage, result.status) == (pytest.approx(1.5), 1.0, "ok")
    assert result.compliant is False  # 1.5 > 1.4


HOUR = list(range(0, 3601, 60))


def test_mixed_use_exclusion():
    # Incomer 200 kWh, office inside the boundary 20 kWh, IT 120 kWh: (200-20)/120 = 1.5.
    result = site([
        MeterInput("in", Role.FACILITY, linear_counter(200, HOUR)),
        MeterInput("office", Role.EXCLUDE, linear_counter(20, HOUR)),
        MeterInput("it", Role.IT, linear_counter(120, HOUR), measurement_point=MP.UPS_OUTPUT),
    ])
    assert (result.facility_energy_kwh, result.pue) == (pytest.approx(180.0), pytest.approx(1.5))


def test_shared_chiller_plant_counts_its_share():
    # Incomer 130 kWh + shared chiller plant fed from outside 50 kWh * 0.6 = 30 -> 160;
    # IT 125 kWh -> PUE 1.28, compliant.
    result = site([
        MeterInput("in", Role.FACILITY, linear_counter(130, HOUR)),
        MeterInput("chiller", Role.FACILITY, linear_counter(50, HOUR), share=0.6),
        MeterInput("it", Role.IT, linear_counter(125, HOUR), measurement_point=MP.PDU_OUTPUT),
    ])
    assert result.facility_energy_kwh == pytest.approx(160.0)
    assert result.pue == pytest.approx(1.28)
    assert (result.status, result.compliant, result.category) == ("ok", True, 2)


@pytest.mark.parametrize(("points", "category"), [
    ([MP.UPS_OUTPUT], 1),
    ([MP.UPS_OUTPUT, MP.PDU_OUTPUT], 1),  # mixed: the weakest point decides
    ([MP.PDU_OUTPUT, MP.IT_INPUT], 2),
    ([MP.PDU_OUTPUT], 2),
    ([MP.IT_INPUT, MP.IT_INPUT], 3),
])
def test_category_from_it_measurement_points(points, category):
    assert pue_category(points) == category


def test_pue_below_one_is_invalid_not_a_success():
    # A meter mis-assigned: "facility" 90 kWh, "IT" 100 kWh -> 0.9: a metering error.
    result = site([
        MeterInput("in", Role.FACILITY, linear_counter(90, HOUR)),
        MeterInput("it", Role.IT, linear_counter(100, HOUR), measurement_point=MP.UPS_OUTPUT),
    ])
    assert result.status == "invalid"
    assert result.pue == pytest.approx(0.9)
    assert result.compliant is None


@pytest.mark.parametrize(("it_end", "status", "compliant"), [
    (3600 * 0.949, "incomplete", None),  # coverage 0.949 < 0.95
    (3600 * 0.951, "ok", True),  # coverage 0.951 >= 0.95
])
def test_coverage_threshold(it_end, status, compliant):
    # IT readings stop early; facility 130 kW, IT 100 kW -> PUE 1.3 either way.
    result = site([
        MeterInput("in", Role.FACILITY, linear_counter(130, HOUR)),
        MeterInput("it", Role.IT, constant_power(100, [0, it_end], 3600),
                   measurement_point=MP.UPS_OUTPUT),
    ])
    assert result.coverage == pytest.approx(it_end / 3600)
    assert result.pue == pytest.approx(1.3)
    assert (result.status, result.compliant) == (status, compliant)


@pytest.mark.parametrize(("operator", "compliant"), [("<=", True), ("<", False)])
def test_threshold_operator_at_exactly_the_threshold(operator, compliant):
    # 140 / 100 = 1.4 exactly: "không vượt quá 1,4" passes, "dưới 1,4" does not.
    result = site([
        MeterInput("in", Role.FACILITY, counter([(0, 0), (3600, 140)])),
        MeterInput("it", Role.IT, counter([(0, 0), (3600, 100)]), measurement_point=MP.IT_INPUT),
    ], operator=operator)
    assert result.pue == pytest.approx(1.4)
    assert result.compliant is compliant


# (E_facility kWh, expected compliant): judged on the PUE as published, two decimals.
REPORTED = [(140.0 + 1e-9, True), (140.4, True), (140.5, False), (141.0, False)]


@pytest.mark.parametrize(("facility", "compliant"), REPORTED)
def test_compliance_is_judged_on_the_reported_figure(facility, compliant):
    # 140.4 / 100 = 1.404 is published as "1,40" and meets "<= 1,4"; 1.405 -> "1,41" does not.
    result = site([
        MeterInput("in", Role.FACILITY, counter([(0, 0), (3600, facility)])),
        MeterInput("it", Role.IT, counter([(0, 0), (3600, 100)]), measurement_point=MP.IT_INPUT),
    ])
    assert result.compliant is compliant


def test_no_data_gives_no_figure():
    result = site([
        MeterInput("in", Role.FACILITY, counter([])),
        MeterInput("it", Role.IT, counter([(0, 0), (3600, 100)]), measurement_point=MP.IT_INPUT),
    ])
    assert (result.status, result.pue, result.coverage) == ("no_data", None, 0.0)


# --- instantaneous ---------------------------------------------------------------------

def reading(device, role, watts, ts, mp=None, share=1.0):
    return PowerReading(device, role, watts, ts, share, mp)


def test_instantaneous_pue_is_a_power_ratio_of_fresh_readings():
    now = 1000.0
    result = instantaneous_pue("s", [
        reading("in", Role.FACILITY, 150_000, 995),
        reading("ups-a", Role.IT, 50_000, 996, MP.UPS_OUTPUT),
        reading("ups-b", Role.IT, 50_000, 996, MP.UPS_OUTPUT),
    ], now, max_age_s=30)
    assert (result.pue, result.status, result.compliant) == (pytest.approx(1.5), "ok", False)
    assert result.it_power_w == 100_000


def test_instantaneous_pue_refuses_stale_readings():
    result = instantaneous_pue("s", [
        reading("in", Role.FACILITY, 150_000, 995),
        reading("ups", Role.IT, 100_000, 900, MP.UPS_OUTPUT),  # 100 s old, limit 30 s
    ], 1000.0, max_age_s=30)
    assert (result.pue, result.status) == (None, "stale")


def test_instantaneous_pue_refuses_a_negative_power():
    """-30 kW on the incomer with 20 kW of IT: the sum gave 130 kW and 1.3, compliant."""
    result = instantaneous_pue("s", [
        reading("in-a", Role.FACILITY, 160_000, 995),
        reading("in-b", Role.FACILITY, -30_000, 995),
        reading("ups", Role.IT, 100_000, 996, MP.UPS_OUTPUT),
    ], 1000.0, max_age_s=30)
    assert (result.pue, result.status, result.compliant) == (None, "invalid", None)


def test_instantaneous_pue_takes_a_feed_s_noise_about_zero():
    result = instantaneous_pue("s", [
        reading("in", Role.FACILITY, 150_000, 995),
        reading("ups", Role.IT, 100_000, 996, MP.UPS_OUTPUT),
        reading("idle", Role.IT, -0.3, 996, MP.UPS_OUTPUT),
    ], 1000.0, max_age_s=30)
    assert (round(result.pue, 6), result.status) == (1.500005, "ok")
