"""The province figure from hand-computed site figures."""

from __future__ import annotations

import pytest

from pue_monitor.pue.kpi import PueResult, judge
from pue_monitor.pue.province import NotJudged, province_figure

DAY = 86400.0


def site(name, status, e_dc, e_it, coverage=1.0, start=0.0, end=DAY):
    pue = e_dc / e_it if e_it > 0 else None
    return PueResult(site=name, start=start, end=end, window="", category=1, pue=pue,
                     facility_energy_kwh=e_dc, it_energy_kwh=e_it, coverage=coverage,
                     status=status, threshold=1.4, operator="<=",
                     compliant=judge(pue, status, 1.4, "<="))


A = site("a", "ok", 1300.0, 1000.0)  # 1.30, compliant
B = site("b", "ok", 3000.0, 2000.0)  # 1.50, over the threshold
C = site("c", "incomplete", 1200.0, 1000.0, coverage=0.8)
D = site("d", "invalid", 800.0, 1000.0)  # PUE 0.80: a metering error
E = site("e", "no_data", 0.0, 0.0, coverage=0.0)

# (name, site figures, PUE, E_DC, E_IT, judged, compliant, not judged (site, status))
PROVINCE = [
    # (1300 + 3000) / (1000 + 2000) = 4300 / 3000 = 1.43333: never the mean of 1.3 and 1.5
    # (1.4); C, D and E are left out of the sums and listed with why.
    ("mixed", [A, B, C, D, E], 4300 / 3000, 4300.0, 3000.0, 2, 1,
     [("c", "incomplete"), ("d", "invalid"), ("e", "no_data")]),
    ("one judged", [A, C], 1300 / 1000, 1300.0, 1000.0, 1, 1, [("c", "incomplete")]),
    ("none judged", [C, D], None, 0.0, 0.0, 0, 0, [("c", "incomplete"), ("d", "invalid")]),
]


@pytest.mark.parametrize(("name", "sites", "pue", "e_dc", "e_it", "judged", "compliant",
                          "not_judged"), PROVINCE, ids=[p[0] for p in PROVINCE])
def test_province_figure(name, sites, pue, e_dc, e_it, judged, compliant, not_judged):
    got = province_figure(sites)
    if pue is None:
        assert got.pue is None
    else:
        assert got.pue == pytest.approx(pue, rel=1e-9)
    assert got.facility_energy_kwh == pytest.approx(e_dc, rel=1e-9)
    assert got.it_energy_kwh == pytest.approx(e_it, rel=1e-9)
    assert (got.sites, got.judged, got.compliant) == (len(sites), judged, compliant)
    assert [(n.site, n.status) for n in got.not_judged] == not_judged
    assert (got.start, got.end) == (0.0, DAY)


def test_not_judged_sites_keep_their_coverage_and_figure():
    (c,) = province_figure([A, C]).not_judged
    assert c == NotJudged("c", "incomplete", 0.8, pytest.approx(1.2, rel=1e-9))


@pytest.mark.parametrize("sites", [[], [A, site("x", "ok", 1.0, 1.0, end=2 * DAY)]])
def test_province_needs_figures_of_one_period(sites):
    with pytest.raises(ValueError):
        province_figure(sites)
