"""KPIs beside PUE, from hand-computed meter energies."""

from __future__ import annotations

import dataclasses

import pytest

from pue_monitor.pue.kpi import MeterFigure, PueResult
from pue_monitor.pue.kpis import Water, kpis


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
    got = kpis(SITE, water=Water(250.0, 3600.0), emission_factor=(0.6592, 2023))
    assert getattr(got, name) == pytest.approx(expected)


# (name, the PUE's common share of the hour, water: m3 and seconds measured, WUE,
# water coverage). E_IT is over the common time, the water over its meters' own: only
# when both are the whole hour are they of the same time.
WUE_CASES = [
    ("both whole", 1.0, (250.0, 3600.0), 250.0, 1.0),
    # The water meters missed 10 minutes: 240 m3 of 50 minutes against an hour of IT.
    ("water missed time", 1.0, (240.0, 3000.0), None, 3000 / 3600),
    # The PUE's meters missed 10 % (E_IT over 54 minutes), the water an hour's worth.
    ("the PUE missed time", 0.9, (250.0, 3600.0), None, 1.0),
]


@pytest.mark.parametrize(("common", "water", "wue", "water_coverage"),
                         [c[1:] for c in WUE_CASES], ids=[c[0] for c in WUE_CASES])
def test_wue_only_over_a_period_both_measured_whole(common, water, wue, water_coverage):
    got = kpis(dataclasses.replace(SITE, coverage=common), water=Water(*water))
    assert got.wue_l_per_kwh == (None if wue is None else pytest.approx(wue))
    assert got.water_coverage == pytest.approx(water_coverage)


def test_water_use_from_the_water_meters_counters(tmp_path):
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from pue_monitor.config.metrics import WATER_METRIC, Role
    from pue_monitor.figures.report import water_use
    from pue_monitor.store.model import Reading
    from pue_monitor.store.sqlite import Store

    def meter(device, role=Role.WATER, share=1.0, replacements=()):
        return SimpleNamespace(id=device, role=role, share=share, replacements=replacements,
                               counter_width_kwh=None)

    store = Store.open(tmp_path)
    try:
        # 0.1 m3 a minute: "w1" read all hour, "w2" (half of it the site's) from 600 s.
        store.import_readings(
            [Reading(float(t), "w1", WATER_METRIC, 100 + t / 600) for t in range(0, 3601, 60)]
            + [Reading(float(t), "w2", WATER_METRIC, 50 + t / 600)
               for t in range(600, 3601, 60)])
        site = SimpleNamespace(devices=[meter("it", Role.IT), meter("w1")])
        assert water_use(store, site, 0.0, 3600.0) == (pytest.approx(6.0), 3600.0)
        site.devices.append(meter("w2", share=0.5))
        assert water_use(store, site, 0.0, 3600.0) == (pytest.approx(6.0 + 2.5), 3000.0)
        site.devices.append(meter("w3"))  # never read: measured nothing
        assert water_use(store, site, 0.0, 3600.0) == (pytest.approx(8.5), 0.0)
        assert water_use(store, SimpleNamespace(devices=[meter("it", Role.IT)]),
                         0.0, 3600.0) is None
        # "w4" replaced at 1830 s (old final 203.05 m3, new first 1): recorded, the hour is
        # measured whole, 3.05 + 2.95 m3; unrecorded, the step across (1800..1860 s, 0.1
        # m3) is a reset.
        store.import_readings([Reading(float(t), "w4", WATER_METRIC,
                                       200 + t / 600 if t < 1830 else 1 + (t - 1830) / 600)
                               for t in range(0, 3601, 60)])
        swap = SimpleNamespace(at=datetime.fromtimestamp(1830, UTC), old_final_kwh=203.05,
                               new_initial_kwh=1.0)
        site = SimpleNamespace(devices=[meter("w4", replacements=(swap,))])
        assert water_use(store, site, 0.0, 3600.0) == (pytest.approx(6.0), 3600.0)
        assert water_use(store, SimpleNamespace(devices=[meter("w4")]), 0.0, 3600.0) == (
            pytest.approx(6.0 - 0.1), 3540.0)
    finally:
        store.close()


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


@pytest.mark.parametrize(("lang", "shown"), [
    ("vi", "nước 83,3 %, PUE 100,0 %"), ("en", "water 83.3 %, PUE 100.0 %")])
def test_the_report_says_why_wue_is_missing(lang, shown):
    from pue_monitor.web.i18n import t
    from pue_monitor.web.report_render import _kpis

    missing = _kpis({"coverage": 1.0, "kpis": {"wue_l_per_kwh": None,
                                               "water_coverage": 3000 / 3600}}, lang)
    assert t("kpi.wue", lang) in missing and shown in missing
    given = _kpis({"coverage": 1.0, "kpis": {"wue_l_per_kwh": 250.0,
                                             "water_coverage": 1.0}}, lang)
    assert shown not in given and ("250,000" if lang == "vi" else "250.000") in given
    # Short of whole by a hair: never shown as a whole 100.0 %.
    almost = _kpis({"coverage": 0.99999, "kpis": {"wue_l_per_kwh": None,
                                                  "water_coverage": 0.99999}}, lang)
    assert ("nước 99,9 %, PUE 99,9 %" if lang == "vi" else "water 99.9 %, PUE 99.9 %") in almost
    # No water meter: no WUE row at all.
    assert _kpis({"coverage": 1.0, "kpis": {"wue_l_per_kwh": None,
                                            "water_coverage": None}}, lang) == ""
