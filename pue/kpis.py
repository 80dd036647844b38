"""KPIs beside PUE (ISO/IEC 30134 family), each only when its meters exist.

  DCiE  = 100 / PUE (%)
  pPUE  = (E_IT + E_subsystem) / E_IT, for cooling and power distribution
  REF   = E_renewable / E_DC            (ISO/IEC 30134-3)
  ERF   = E_reuse / E_DC                (ISO/IEC 30134-6)
  WUE   = site water (L) / E_IT (kWh)   (ISO/IEC 30134-9), only over a period that the
          water meters and the PUE's meters all measured whole: E_IT is taken over the
          PUE's common time, the water over the water meters' own, and until the water
          is taken over the same spans (it has no 15-minute blocks) a period where either
          misses time would divide water of one time by IT energy of another.
  CUE   = CO2 of the grid energy / E_IT (ISO/IEC 30134-8), with the grid emission factor
          of the year; renewable energy metered on site or contracted is not charged.
Energy balance: E_DC against E_IT plus every sub-meter; an unexplained share beyond the
site's tolerance is flagged (an unmetered load, a mis-assigned meter, a wrong share).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from pue_monitor.config.metrics import LITRES_PER_M3, SUBMETER_ROLES, Role
from pue_monitor.pue.kpi import INVALID, PueResult


@dataclass(frozen=True)
class Balance:
    """E_DC against E_IT + Σ sub-meters."""

    submetered_kwh: float  # E_IT + every sub-meter
    unexplained_kwh: float  # E_DC - submetered
    unexplained_share: float  # of E_DC
    flagged: bool


# A period measured whole: its covered share at least this (float rounding of sums).
WHOLE_SHARE = 1.0 - 1e-9


class Water(NamedTuple):
    """The site's water over a period: volume and the time every water meter measured
    (the least of them)."""

    m3: float
    covered_s: float


@dataclass(frozen=True)
class Kpis:
    dcie_pct: float | None = None
    ppue_cooling: float | None = None
    ppue_power_distribution: float | None = None
    ref: float | None = None
    erf: float | None = None
    wue_l_per_kwh: float | None = None
    water_coverage: float | None = None  # share of the period the water meters measured
    cue_kg_per_kwh: float | None = None
    emission_factor_kg_per_kwh: float | None = None
    emission_factor_year: int | None = None
    balance: Balance | None = None


def _role_energy(result: PueResult, role: Role) -> float | None:
    values = [m.energy_kwh for m in result.meters if m.role == role.value
              and m.energy_kwh is not None]
    return sum(values) if values else None


def _has(result: PueResult, role: Role) -> bool:
    return any(m.role == role.value for m in result.meters)


def kpis(result: PueResult, *, water: Water | None = None,
         emission_factor: tuple[float, int] | None = None,
         balance_tolerance: float = 0.10, coverage_threshold: float = 0.95) -> Kpis:
    """Every KPI the result's meters allow; None where a meter or a figure is missing.

    A partial PUE needs every meter of its subsystem to have measured at least
    ``coverage_threshold`` of the time the PUE was taken over: a cooling meter that
    missed a week would otherwise make the cooling overhead look smaller than it was.
    WUE needs the whole period measured by the water meters and the PUE's meters alike
    (module docstring); ``water_coverage`` says how much the water meters measured.
    """
    e_dc, e_it = result.facility_energy_kwh, result.it_energy_kwh
    # An invalid figure (PUE < 1, E_IT > E_DC) is a metering error: nothing derived from it.
    usable = result.pue is not None and e_it > 0 and e_dc > 0 and result.status != INVALID
    if not usable:
        return Kpis()

    common = result.coverage * (result.end - result.start)

    def partial(role: Role) -> float | None:
        energy = _role_energy(result, role)
        # By device: a meter whose share changed in the period is one figure per share,
        # and its figures' common time adds up.
        measured: dict[str, float] = {}
        for m in result.meters:
            if m.role == role.value:
                measured[m.device] = measured.get(m.device, 0.0) + m.common_s
        if energy is None or any(s < coverage_threshold * common for s in measured.values()):
            return None
        return (e_it + energy) / e_it

    span = result.end - result.start
    water_coverage = None if water is None else min(water.covered_s / span, 1.0)
    wue = None
    if (water is not None and water_coverage >= WHOLE_SHARE  # type: ignore[operator]
            and result.coverage >= WHOLE_SHARE):
        wue = water.m3 * LITRES_PER_M3 / e_it
    renewable = _role_energy(result, Role.RENEWABLE)
    reuse = _role_energy(result, Role.REUSE)
    cue = factor = year = None
    if emission_factor is not None:
        factor, year = emission_factor
        grid_kwh = max(0.0, e_dc - (renewable or 0.0))
        cue = factor * grid_kwh / e_it
    balance = None
    subs = [m for m in result.meters if m.role in {r.value for r in SUBMETER_ROLES}]
    if subs:
        submetered = e_it + sum(m.energy_kwh or 0.0 for m in subs)
        unexplained = e_dc - submetered
        share = unexplained / e_dc
        balance = Balance(submetered, unexplained, share, abs(share) > balance_tolerance)
    return Kpis(
        dcie_pct=100.0 / result.pue if result.pue else None,  # type: ignore[operator]
        ppue_cooling=partial(Role.COOLING) if _has(result, Role.COOLING) else None,
        ppue_power_distribution=partial(Role.POWER_DISTRIBUTION)
        if _has(result, Role.POWER_DISTRIBUTION) else None,
        ref=None if renewable is None else renewable / e_dc,
        erf=None if reuse is None else reuse / e_dc,
        wue_l_per_kwh=wue, water_coverage=water_coverage,
        cue_kg_per_kwh=cue, emission_factor_kg_per_kwh=factor, emission_factor_year=year,
        balance=balance)
