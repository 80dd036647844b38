"""Is the calendar year on course to exceed the threshold? (pure)

The year's PUE is ΣE_DC / ΣE_IT over the year, so the projection adds, for each month
still to come, the IT energy expected at this year's daily rate and the facility energy
that IT energy will cost at that month's expected PUE. The expected PUE of a month follows
the site's own seasonal pattern: last year's PUE of that month, scaled by how this year's
months so far compare with the same months last year (Bắc Ninh's summers cost more
cooling than its winters, so a cool first half alone says little). Without last year's
month, this year's PUE so far stands in for it, and the method says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from pue_monitor.pue.kpi import OK, judge


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
    method: str  # "seasonal" (last year's months) or "flat" (this year's PUE so far)
    threshold: float
    operator: str


def _pue(months: list[MonthEnergy]) -> float | None:
    it = sum(m.it_kwh for m in months)
    return sum(m.facility_kwh for m in months) / it if it > 0 else None


def year_risk(year: int, so_far: list[MonthEnergy], remaining_days: dict[int, float],
              last_year: dict[int, MonthEnergy], *, threshold: float = 1.4,
              operator: str = "<=") -> YearRisk:
    """Project the year from ``so_far`` over ``remaining_days`` {month: days left}."""
    pue_so_far = _pue(so_far)
    days_so_far = sum(m.days for m in so_far)
    if pue_so_far is None or days_so_far <= 0:
        return YearRisk(year, None, None, pue_so_far, "none", threshold, operator)
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
                    "seasonal" if seasonal else "flat", threshold, operator)
