"""Year-at-risk projection from hand-computed months."""

from __future__ import annotations

import pytest

from pue_monitor.pue.atrisk import MonthEnergy, year_risk
from pue_monitor.pue.kpi import PueResult

DAY = 86400.0


def m(month, pue, it=1000.0, days=30.0):
    return MonthEnergy(month, pue * it, it, days)


# Last year: PUE 1.30 in Jan-Apr, 1.50 in May-Aug, 1.30 in Sep-Dec (1000 kWh IT a month).
LAST = {k: m(k, 1.5 if 5 <= k <= 8 else 1.3) for k in range(1, 13)}
REST = {k: 30.0 for k in range(5, 13)}  # May..Dec still to come, 30 days each


def figure(status="ok", covered_days=120.0, elapsed_days=120.0, pue=1.32):
    """The year so far as one figure: ``covered_days`` measured of ``elapsed_days``."""
    return PueResult(site="s", start=0.0, end=elapsed_days * DAY, window="", category=1,
                     pue=pue, facility_energy_kwh=pue * 1000.0, it_energy_kwh=1000.0,
                     coverage=covered_days / elapsed_days, status=status, threshold=1.4,
                     operator="<=", compliant=None)


# Jan-Apr measured whole: an ok figure of 120 days carries the projection.
BASIS = figure()


def test_seasonal_projection_sees_the_summer_coming():
    # Jan-Apr this year at 1.32: 1.32/1.30 of last year's level. May-Aug are then expected
    # at 1.5 * 1.32/1.3 = 1.52308 and Sep-Dec at 1.32; 12 months of 1000 kWh IT:
    # (4*1.32 + 4*1.52308 + 4*1.32) * 1000 / 12000 = 1.38769 -> "1,39", compliant.
    risk = year_risk(2026, [m(k, 1.32) for k in range(1, 5)], REST, LAST, BASIS)
    assert risk.method == "seasonal"
    assert risk.projected_pue == pytest.approx((4 * 1.32 + 4 * 1.5 * 1.32 / 1.3 + 4 * 1.32) / 12)
    assert risk.at_risk is False


def test_a_warmer_start_puts_the_year_at_risk():
    # Jan-Apr at 1.36: May-Aug 1.5 * 1.36/1.3 = 1.56923; (8*1.36 + 4*1.56923)/12 = 1.42974.
    risk = year_risk(2026, [m(k, 1.36) for k in range(1, 5)], REST, LAST, BASIS)
    assert risk.projected_pue == pytest.approx((8 * 1.36 + 4 * 1.5 * 1.36 / 1.3) / 12)
    assert risk.at_risk is True
    assert risk.pue_so_far == pytest.approx(1.36)


def test_without_last_year_the_pue_so_far_is_projected_flat():
    risk = year_risk(2026, [m(k, 1.36) for k in range(1, 5)], REST, {}, BASIS)
    assert (risk.method, risk.projected_pue, risk.at_risk) == ("flat", pytest.approx(1.36), False)


def test_the_current_month_counts_its_measured_days_only():
    # Jan complete (31 d, IT 3100 kWh, PUE 1.3), Feb 10 days measured (IT 1000, PUE 1.5):
    # 100 kWh IT a day; 18 days of Feb left and Mar..Dec (306 days) at the flat 1.34878.
    so_far = [MonthEnergy(1, 4030.0, 3100.0, 31.0), MonthEnergy(2, 1500.0, 1000.0, 10.0)]
    rest = {2: 18.0, **{k: 30.6 for k in range(3, 13)}}
    risk = year_risk(2026, so_far, rest, {}, figure(covered_days=41.0, elapsed_days=41.0))
    assert risk.projected_pue == pytest.approx(5530 / 4100)
    assert risk.at_risk is False


def test_nothing_measured_yet_is_not_judged():
    risk = year_risk(2026, [], REST, LAST, None)
    assert (risk.at_risk, risk.projected_pue, risk.refused) == (None, None, "no_figure")


# Forecasts need data (method 3). (name, the year-so-far figure, refused as, projected?)
# Every case has the same four months at 1.36, which would project 1.42974, "at risk".
BASES = [
    # 12 minutes measured: status ok, but 12/1440 of a day is not 30 days.
    ("12 minutes", figure(covered_days=12 / 1440, elapsed_days=12 / 1440), "too_short"),
    # 29.99 measured days of 31 elapsed (coverage 0.9674, ok): still short of 30.
    ("29.99 days", figure(covered_days=29.99, elapsed_days=31.0), "too_short"),
    # Exactly 30 measured days of 31 (coverage 0.9677, ok): enough.
    ("30 days", figure(covered_days=30.0, elapsed_days=31.0), None),
    # 100 days measured of 120 (coverage 0.833): incomplete, never a basis.
    ("incomplete", figure("incomplete", covered_days=100.0), "not_judged"),
    # A whole year so far measured but PUE 0.80 (E_IT > E_DC): invalid, never a basis.
    ("invalid", figure("invalid", pue=0.8), "not_judged"),
    ("no figure", None, "no_figure"),
]


@pytest.mark.parametrize(("name", "basis", "refused"), BASES, ids=[b[0] for b in BASES])
def test_forecast_needs_a_judged_figure_of_30_days(name, basis, refused):
    risk = year_risk(2026, [m(k, 1.36) for k in range(1, 5)], REST, LAST, basis)
    assert risk.refused == refused
    if refused is None:
        # (8 * 1.36 + 4 * 1.5 * 1.36 / 1.3) / 12, as in test_a_warmer_start_puts_the_year_...
        assert risk.projected_pue == pytest.approx((8 * 1.36 + 4 * 1.5 * 1.36 / 1.3) / 12,
                                                   rel=1e-9)
        assert risk.at_risk is True
    else:
        assert (risk.at_risk, risk.projected_pue, risk.method) == (None, None, "none")
    if basis is not None:  # the projection, or its refusal, says what it rests on
        assert risk.basis_status == basis.status
        assert risk.basis_coverage == pytest.approx(basis.coverage, rel=1e-9)
        assert risk.basis_days == pytest.approx(basis.coverage * basis.end / DAY, rel=1e-9)
