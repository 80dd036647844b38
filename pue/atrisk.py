"""Is the calendar year on course to exceed the threshold? (pure)

The year's PUE is ΣE_DC / ΣE_IT over the year, so the projection adds, for each month
still to come, the IT energy expected at this year's daily rate and the facility energy
that IT energy will cost at that month's expected PUE. The expected PUE of a month follows
the site's own seasonal pattern: last year's PUE of that month, scaled by how this year's
months so far compare with the same months last year (Bắc Ninh's summers cost more
cooling than its winters, so a cool first half alone says little). Without last year's
month, this year's PUE so far stands in for it, and the method says so.

Forecasts need data (method 3): nothing is projected before the year so far has a
judged figure (status ok) covering at least MIN_BASIS_DAYS of measured time, nor from
an incomplete or invalid one; a projection carries the coverage it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass

from pue_monitor.pue.kpi import OK, PueResult, judge

# Measured (common) days the year's judged figure must cover before anything is projected.
MIN_BASIS_DAYS = 30.0
DAY_S = 86400.0
# Why a year is not projected (YearRisk.refused).
NO_FIGURE, NOT_JUDGED, TOO_SHORT = "no_figure", "not_judged", "too_short"


@dataclass(frozen=True)
class MonthEnergy:
    """One calendar month of one year: energies over its measured time."""

    month: int  # 1..12
    facility_kwh: float
    it_kwh: float
    days: float  # days of the month the energies cover (less for the current month)


@dataclass(frozen=True)
class YearRisk:
    year: int
    at_risk: bool | None  # None: nothing measured this year yet
    projected_pue: float | None
    pue_so_far: float | None
    method: str  # "seasonal" (last year's months), "flat" (this year's PUE so far), "none"
    threshold: float
    operator: str
    # The year-so-far figure the projection rests on: its status, coverage (share of the
    # year so far) and measured days; why nothing was projected, if so.
    basis_status: str | None = None
    basis_coverage: float | None = None
    basis_days: float | None = None
    refused: str | None = None


def _pue(months: list[MonthEnergy]) -> float | None:
    it = sum(m.it_kwh for m in months)
    return sum(m.facility_kwh for m in months) / it if it > 0 else None


def refusal(basis: PueResult | None, min_days: float = MIN_BASIS_DAYS) -> str | None:
    """Why ``basis`` (the year so far) cannot carry a projection, or None if it can."""
    if basis is None:
        return NO_FIGURE
    if basis.status != OK:
        return NOT_JUDGED
    if basis.coverage * (basis.end - basis.start) < min_days * DAY_S:
        return TOO_SHORT
    return None


def year_risk(year: int, so_far: list[MonthEnergy], remaining_days: dict[int, float],
              last_year: dict[int, MonthEnergy], basis: PueResult | None, *,
              threshold: float = 1.4, operator: str = "<=",
              min_days: float = MIN_BASIS_DAYS) -> YearRisk:
    """Project the year from ``so_far`` over ``remaining_days`` {month: days left}.

    ``basis``: the site's figure for the year so far (None if there is none); the year
    is projected only from an ok figure covering at least ``min_days`` measured days.
    """
    pue_so_far = _pue(so_far)
    days_so_far = sum(m.days for m in so_far)
    why = refusal(basis, min_days)
    facts = {} if basis is None else {
        "basis_status": basis.status, "basis_coverage": basis.coverage,
        "basis_days": basis.coverage * (basis.end - basis.start) / DAY_S}
    if why is None and (pue_so_far is None or days_so_far <= 0):
        why = NO_FIGURE
    if why is not None:
        return YearRisk(year, None, None, pue_so_far, "none", threshold, operator,
                        refused=why, **facts)
    it_per_day = sum(m.it_kwh for m in so_far) / days_so_far
    same_last = [last_year[m.month] for m in so_far if m.month in last_year]
    last_pue_same = _pue(same_last) if len(same_last) == len(so_far) else None
    seasonal = last_pue_same is not None and all(
        m in last_year and last_year[m].it_kwh > 0 for m, d in remaining_days.items() if d > 0)
    facility = sum(m.facility_kwh for m in so_far)
    it = sum(m.it_kwh for m in so_far)
    for month, days in remaining_days.items():
        if days <= 0:
            continue
        expected_it = it_per_day * days
        if seasonal:
            month_pue = _pue([last_year[month]]) * pue_so_far / last_pue_same  # type: ignore
        else:
            month_pue = pue_so_far
        facility += expected_it * month_pue
        it += expected_it
    projected = facility / it
    compliant = judge(projected, OK, threshold, operator)
    return YearRisk(year, not compliant, projected, pue_so_far,
                    "seasonal" if seasonal else "flat", threshold, operator, **facts)
