"""The province figure: one PUE over every site with a judged figure for the same period.

Province PUE = Σ E_DC / Σ E_IT over the sites whose figure is ``ok`` (never a mean of the
sites' ratios, and never from an incomplete, invalid or empty figure); beside it, how many
sites were judged, how many of those are compliant, and which could not be judged and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from pue_monitor.pue.kpi import OK, PueResult


@dataclass(frozen=True)
class NotJudged:
    """A site without a judged figure: its status (incomplete, invalid, no_data) is why."""

    site: str
    status: str
    coverage: float
    pue: float | None


@dataclass(frozen=True)
class ProvinceFigure:
    start: float
    end: float
    pue: float | None  # None when no site was judged
    facility_energy_kwh: float  # Σ E_DC of the judged sites
    it_energy_kwh: float  # Σ E_IT of the judged sites
    sites: int  # every site given
    judged: int  # sites with an ok figure
    compliant: int  # judged sites meeting their own threshold
    not_judged: tuple[NotJudged, ...] = ()


def province_figure(results: list[PueResult]) -> ProvinceFigure:
    """Combine the sites' figures for one period.

    :raises ValueError: the figures are not all for the same period.
    """
    if not results:
        raise ValueError("no site figures to combine")
    start, end = results[0].start, results[0].end
    for r in results:
        if (r.start, r.end) != (start, end):
            raise ValueError(f"site {r.site} covers {r.start} .. {r.end}, "
                             f"not the period {start} .. {end}")
    judged = [r for r in results if r.status == OK]
    e_dc = sum(r.facility_energy_kwh for r in judged)
    e_it = sum(r.it_energy_kwh for r in judged)
    return ProvinceFigure(
        start=start, end=end, pue=e_dc / e_it if judged and e_it > 0 else None,
        facility_energy_kwh=e_dc, it_energy_kwh=e_it, sites=len(results), judged=len(judged),
        compliant=sum(1 for r in judged if r.compliant),
        not_judged=tuple(NotJudged(r.site, r.status, r.coverage, r.pue)
                         for r in results if r.status != OK))
