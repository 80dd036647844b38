"""The simulator's physics and climate, pure: hand-computed tables, balances, patterns."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pue_monitor.config import load_config
from pue_monitor.config.model import SiteSimulation
from pue_monitor.simulator.climate import (
    diurnal_offset_c,
    outdoor_temperature_c,
    seasonal_mean_c,
)
from pue_monitor.simulator.physics import (
    EnergyCounter,
    build_layout,
    cooling_cop,
    it_load_factor,
    site_power,
    split,
    ups_loss_w,
)
from pue_monitor.simulator.runner import Simulator
from tests.simulator_support import DEMO

TZ = "Asia/Ho_Chi_Minh"
CONFIG = load_config(DEMO, env={})
SEED = CONFIG.simulation.seed
SITES = [s.id for s in CONFIG.sites]


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """Unix seconds of a local wall-clock time in Bắc Ninh."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(TZ)).timestamp()


def flows(site_id: str, t: float, seed: int = SEED, **changes):
    sim = CONFIG.simulation.sites[site_id].model_copy(update=changes)
    layout = build_layout(CONFIG.site(site_id), sim, seed)
    return sim, layout, site_power(sim, layout, t, seed)


# ---- energy ------------------------------------------------------------------------------

@pytest.mark.parametrize("initial, samples, expected_kwh", [
    (0.0, [], 0.0),
    (12.5, [(0, 9999.0)], 12.5),  # one sample: nothing to integrate yet
    (0.0, [(0, 1000.0), (3600, 1000.0)], 1.0),
    (0.0, [(0, 0.0), (3600, 2000.0)], 1.0),  # trapezoid, not rectangle
    (5.0, [(0, 1000.0), (1800, 3000.0), (3600, 3000.0)], 7.5),
    (0.0, [(0, 1000.0), (3600, 1000.0), (1800, 5000.0), (7200, 1000.0)], 2.0),  # late sample
    (0.0, [(0, 1000.0), (0, 3000.0), (3600, 3000.0)], 3.0),  # same instant: latest power wins
    (0.0, [(100, 36.0), (200, 36.0)], 0.001),
])
def test_energy_counter_integrates_by_the_trapezoid_rule(initial, samples, expected_kwh):
    counter = EnergyCounter(initial)
    reading = initial
    for t, watts in samples:
        reading = counter.advance(t, watts)
    assert reading == pytest.approx(expected_kwh, abs=1e-12)
    assert counter.kwh == reading


def test_energy_counter_reset_restarts_at_zero_and_keeps_integrating():
    counter = EnergyCounter(500.0)
    counter.advance(0, 2000.0)
    counter.advance(3600, 2000.0)
    counter.reset()
    assert counter.kwh == 0.0
    assert counter.advance(5400, 2000.0) == pytest.approx(1.0)  # half an hour at 2 kW


# ---- small formulas ----------------------------------------------------------------------

@pytest.mark.parametrize("load_w, rating_w, expected_w", [
    (0.0, 100_000.0, 1500.0),  # the no-load share is paid at zero load
    (50_000.0, 100_000.0, 1500.0 + 750.0 + 250.0),
    (100_000.0, 100_000.0, 1500.0 + 1500.0 + 1000.0),
    (20_000.0, 40_000.0, 600.0 + 300.0 + 100.0),
])
def test_ups_loss(load_w, rating_w, expected_w):
    assert ups_loss_w(load_w, rating_w) == pytest.approx(expected_w)


@pytest.mark.parametrize("outdoor_c, expected_cop", [
    (25.0, 4.5), (35.0, 3.7), (15.0, 5.3), (60.0, 1.7),
    (80.0, 1.5),  # clamped: no plant does worse
    (-50.0, 8.0),  # clamped: no plant does better
])
def test_cooling_cop_falls_with_outdoor_temperature(outdoor_c, expected_cop):
    sim = SiteSimulation(incomers=[], cooling_cop=4.5, cop_slope_per_c=0.08)
    assert cooling_cop(sim, outdoor_c) == pytest.approx(expected_cop)


@pytest.mark.parametrize("total, weights, expected", [
    (10.0, (0.25, 0.75), [2.5, 7.5]),
    (1.0, (1 / 3, 1 / 3, 1 / 3), None),
    (97_674.477, (0.31, 0.29, 0.40), None),
])
def test_split_parts_sum_exactly(total, weights, expected):
    parts = split(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total  # exact: the last part takes the remainder
    if expected is not None:
        assert parts == pytest.approx(expected)


# ---- site power balance ------------------------------------------------------------------

TIMES = {
    "january-night": at(2025, 1, 15, 2),
    "july-afternoon": at(2025, 7, 16, 14),
    "saturday-noon": at(2025, 7, 19, 12),
    "april-morning": at(2025, 4, 9, 8, 30),
}


@pytest.mark.parametrize("when", TIMES)
@pytest.mark.parametrize("site_id", SITES)
def test_power_balances(site_id, when):
    sim, layout, p = flows(site_id, TIMES[when])
    assert p.ups_input_w == pytest.approx(p.it_w + p.ups_loss_w)
    assert p.chiller_w == pytest.approx((p.it_w + p.ups_loss_w + p.lighting_w) / p.cop)
    assert p.facility_w == pytest.approx(
        (p.ups_input_w + p.chiller_w + p.fans_w + p.lighting_w) / (1 - sim.distribution_loss))
    assert p.distribution_w == pytest.approx(p.facility_w * sim.distribution_loss)
    assert p.pue == pytest.approx(p.facility_w / p.it_w) and p.pue > 1.0
    load = {dev: d.power_w for dev, d in p.devices.items()}
    assert layout.ups and sum(load[d] for d in layout.ups) == pytest.approx(p.it_w)
    if layout.it_pdus:
        assert sum(load[d] for d in layout.it_pdus) == pytest.approx(p.it_w)
    assert sum(load[d] for d in layout.incomers) == pytest.approx(p.facility_w)
    assert sum(load[d] for d in layout.cooling) == pytest.approx(p.cooling_w)
    assert set(load) == {d.id for d in CONFIG.site(site_id).devices}
    assert all(w > 0 for w in load.values())


def test_it_pdus_and_watched_racks_are_placed_by_role():
    # Yên Phong meters IT at its PDUs; the provincial DC's PDUs only watch racks.
    assert set(flows("yen-phong-dc", TIMES["july-afternoon"])[1].it_pdus) == {
        "yp-pdu-01", "yp-pdu-02", "yp-pdu-03"}
    layout = flows("bn-provincial", TIMES["july-afternoon"])[1]
    assert layout.it_pdus == {}
    assert set(layout.racks) == {"prov-pdu-01", "prov-pdu-02", "prov-pdu-03"}


@pytest.mark.parametrize("site_id", SITES)
def test_hot_afternoon_costs_more_cooling_than_cool_one(site_id):
    # Same weekday and hour, so the IT load differs only by noise; the season differs.
    _, _, cool = flows(site_id, at(2025, 1, 15, 14))
    _, _, hot = flows(site_id, at(2025, 7, 16, 14))
    assert hot.outdoor_c > cool.outdoor_c + 5
    assert hot.it_w == pytest.approx(cool.it_w, rel=0.01)
    assert hot.cop < cool.cop
    assert hot.chiller_w > cool.chiller_w * 1.1
    assert hot.pue > cool.pue


def test_a_low_cop_raises_pue():
    t = TIMES["july-afternoon"]
    assert flows("que-vo-dc", t, cooling_cop=1.2)[2].pue > flows("que-vo-dc", t)[2].pue + 0.2


# ---- IT load pattern ---------------------------------------------------------------------

@pytest.mark.parametrize("t, expected", [
    (at(2025, 7, 16, 16), 1.12),  # Wednesday at the afternoon peak
    (at(2025, 7, 16, 4), 0.88),  # the trough, 12 hours later
    (at(2025, 7, 16, 10), 1.0),  # a quarter day away: the mean
    (at(2025, 7, 19, 16), 1.12 * 0.95),  # Saturday
    (at(2025, 7, 20, 4), 0.88 * 0.95),  # Sunday night
    (at(2025, 7, 21, 16), 1.12),  # Monday again
])
def test_it_load_factor(t, expected):
    assert it_load_factor(t, TZ, 0.12, 0.05) == pytest.approx(expected)


@pytest.mark.parametrize("site_id", SITES)
def test_site_it_load_has_a_daily_wave_and_a_weekend_dip(site_id):
    def it(t):
        return flows(site_id, t)[2].it_w
    assert it(at(2025, 7, 16, 15)) > it(at(2025, 7, 16, 3)) * 1.15
    assert it(at(2025, 7, 19, 15)) < it(at(2025, 7, 16, 15)) * 0.97  # Saturday vs Wednesday


# ---- climate -----------------------------------------------------------------------------

@pytest.mark.parametrize("t, expected_c", [
    # The spline passes through each monthly mean at mid-month.
    (at(2025, 1, 16, 12), 16.5),
    (at(2025, 2, 15, 0), 17.5),
    (at(2025, 4, 16, 0), 24.0),
    (at(2025, 7, 16, 12), 29.2),
    (at(2025, 12, 16, 12), 18.0),
])
def test_seasonal_mean_at_mid_month(t, expected_c):
    assert seasonal_mean_c(t, TZ) == pytest.approx(expected_c, abs=1e-9)


@pytest.mark.parametrize("hour, expected_c", [(14.0, 3.5), (2.0, -3.5), (8.0, 0.0), (20.0, 0.0)])
def test_diurnal_offset(hour, expected_c):
    assert diurnal_offset_c(hour) == pytest.approx(expected_c, abs=1e-9)


def test_july_afternoon_is_warmer_than_january_night():
    july, january = outdoor_temperature_c(at(2025, 7, 16, 14)), outdoor_temperature_c(
        at(2025, 1, 16, 2))
    assert july == pytest.approx(29.2 + 3.5, abs=0.3)
    assert january == pytest.approx(16.5 - 3.5, abs=0.3)


def test_temperature_is_smooth_across_a_year():
    hourly = [outdoor_temperature_c(at(2025, 1, 1) + h * 3600) for h in range(365 * 24)]
    assert 11.0 < min(hourly) and max(hourly) < 34.0
    assert max(abs(b - a) for a, b in zip(hourly, hourly[1:])) < 1.0  # no jumps at month ends


# ---- determinism -------------------------------------------------------------------------

@pytest.mark.parametrize("site_id", SITES)
def test_same_seed_and_time_give_the_same_flows(site_id):
    t = TIMES["april-morning"]
    assert flows(site_id, t) == flows(site_id, t)
    assert flows(site_id, t, seed=SEED + 1)[2].it_w != flows(site_id, t)[2].it_w


def test_two_simulators_serve_identical_images():
    t = TIMES["july-afternoon"]
    first, second = Simulator(CONFIG, clock=lambda: t), Simulator(CONFIG, clock=lambda: t)
    first.tick()
    second.tick()
    assert first.truth() == second.truth()
    for dev_id, dev in first.devices.items():
        other = second.devices[dev_id]
        if dev.agent is not None:
            assert dev.agent.table == other.agent.table
        else:
            unit = dev.device.modbus.unit
            assert dev.modbus.units[unit].image == other.modbus.units[unit].image
            assert dev.modbus.units[unit].image  # something is served at all
    reseeded = CONFIG.model_copy(update={
        "simulation": CONFIG.simulation.model_copy(update={"seed": SEED + 1})})
    third = Simulator(reseeded, clock=lambda: t)
    third.tick()
    assert third.truth()["sites"] != first.truth()["sites"]
