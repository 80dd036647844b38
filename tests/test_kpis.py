"""KPIs beside PUE, from hand-computed meter energies."""

from __future__ import annotations

import pytest

from pue_monitor.pue.kpi import MeterFigure, PueResult
from pue_monitor.pue.kpis import kpis


def result(meters: dict[str, tuple[str, float]], e_dc: float, e_it: float,
           common_s: dict[str, float] | None = None) -> PueResult:
    """An hour, all of it common time; ``common_s``: meters that measured less of it."""
    figures = tuple(MeterFigure(device=d, role=role, share=1.0, method="counter",
                                energy_kwh=kwh, covered_s=3600.0,
                                common_s=(common_s or {}).get(d, 3600.0))
                    for d, (role, kwh) in meters.items())
    return PueResult(site="s", start=0.0, end=3600.0, window="", category=1, pue=e_dc / e_it,
                     facility_energy_kwh=e_dc, it_energy_kwh=e_it, coverage=1.0, status="ok",
                     threshold=1.4, operator="<=", compliant=e_dc / e_it <= 1.4, meters=figures)


# E_DC 1500, E_IT 1000 (PUE 1.5); cooling 300, distribution 60, lighting 40 (sub-meters
# 400 + IT 1000 = 1400: 100 kWh, 6.67 % of E_DC unexplained); renewable 300, reuse 150.
SITE = result({"in": ("facility", 1500.0), "it": ("it", 1000.0), "c": ("cooling", 300.0),
               "pd": ("power_distribution", 60.0), "l": ("lighting", 40.0),
               "pv": ("renewable", 300.0), "heat": ("reuse", 150.0)}, 1500.0, 1000.0)

CASES = [
    ("dcie_pct", 100 / 1.5),
    ("ppue_cooling", 1300 / 1000),
    ("ppue_power_distribution", 1060 / 1000),
    ("ref", 300 / 1500),
    ("erf", 150 / 1500),
    ("wue_l_per_kwh", 250 * 1000 / 1000),  # 250 m3 = 250 000 L over 1000 kWh of IT
    ("cue_kg_per_kwh", 0.6592 * (1500 - 300) / 1000),  # renewable energy is not charged
    ("emission_factor_year", 2023),
]


@pytest.mark.parametrize(("name", "expected"), CASES)
def test_kpis(name, expected):
    got = kpis(SITE, water_m3=250.0, emission_factor=(0.6592, 2023))
    assert getattr(got, name) == pytest.approx(expected)


@pytest.mark.parametrize(("tolerance", "flagged"), [(0.05, True), (0.10, False)])
def test_energy_balance(tolerance, flagged):
    balance = kpis(SITE, balance_tolerance=tolerance).balance
    assert balance.submetered_kwh == pytest.approx(1400.0)
    assert balance.unexplained_kwh == pytest.approx(100.0)
    assert balance.unexplained_share == pytest.approx(100 / 1500)
    assert balance.flagged is flagged


def test_only_kpis_whose_meters_exist():
    bare = kpis(result({"in": ("facility", 1400.0), "it": ("it", 1000.0)}, 1400.0, 1000.0))
    assert bare.dcie_pct == pytest.approx(100 / 1.4)
    assert (bare.ppue_cooling, bare.ref, bare.erf, bare.wue_l_per_kwh, bare.cue_kg_per_kwh,
            bare.balance) == (None, None, None, None, None, None)


def test_no_kpis_from_an_invalid_figure():
    # 800 / 1000: PUE 0.8 is a mis-assigned meter, not a DCiE of 125 %.
    bad = result({"in": ("facility", 800.0), "it": ("it", 1000.0), "c": ("cooling", 50.0)},
                 800.0, 1000.0)
    bad = type(bad)(**{**bad.__dict__, "status": "invalid", "compliant": None})
    got = kpis(bad, emission_factor=(0.6592, 2023))
    assert (got.dcie_pct, got.ppue_cooling, got.cue_kg_per_kwh, got.balance) == (None,) * 4


# (seconds of the hour the cooling meter measured, threshold, partial PUE given?)
@pytest.mark.parametrize(("cooling_s", "threshold", "given"), [
    (3600.0, 0.95, True),
    (0.96 * 3600, 0.95, True),
    (0.94 * 3600, 0.95, False),  # it missed more than 5 % of the time: no cooling pPUE
    (0.94 * 3600, 0.90, True),
])
def test_partial_pue_needs_its_meters_over_the_time(cooling_s, threshold, given):
    site = result({"in": ("facility", 1500.0), "it": ("it", 1000.0), "c": ("cooling", 300.0),
                   "pd": ("power_distribution", 60.0)}, 1500.0, 1000.0, {"c": cooling_s})
    got = kpis(site, coverage_threshold=threshold)
    assert (got.ppue_cooling is not None) is given
    assert got.ppue_power_distribution == pytest.approx(1060 / 1000)  # complete: given


def test_a_cooling_meter_whose_share_changed_is_one_meter_over_the_time():
    # The chiller counted at 0.6 for the first half hour (120 kWh) and 0.5 after (100 kWh):
    # two figures of one device, each over 1800 s of the hour; together the whole hour, so
    # the partial PUE is given: (1000 + 220) / 1000.
    figures = (
        MeterFigure("in", "facility", 1.0, "counter", 1500.0, 3600.0, common_s=3600.0),
        MeterFigure("it", "it", 1.0, "counter", 1000.0, 3600.0, common_s=3600.0),
        MeterFigure("ch", "cooling", 0.6, "counter", 120.0, 1800.0, common_s=1800.0),
        MeterFigure("ch", "cooling", 0.5, "counter", 100.0, 1800.0, common_s=1800.0))
    site = PueResult(site="s", start=0.0, end=3600.0, window="", category=1, pue=1.5,
                     facility_energy_kwh=1500.0, it_energy_kwh=1000.0, coverage=1.0,
                     status="ok", threshold=1.4, operator="<=", compliant=False,
                     meters=figures)
    assert kpis(site).ppue_cooling == pytest.approx(1220 / 1000, rel=1e-9)
