"""Instantaneous PUE from the latest power readings: reported apart, labelled as such."""

from __future__ import annotations

from dataclasses import dataclass

from pue_monitor.config.metrics import MeasurementPoint, Role
from pue_monitor.pue.kpi import INVALID, NO_DATA, OK, judge, pue_category
from pue_monitor.pue.quality import NEGATIVE_POWER_NOISE_W

STALE = "stale"


@dataclass(frozen=True)
class PowerReading:
    """The latest active power of one meter."""

    device: str
    role: Role
    watts: float | None
    ts: float | None
    share: float = 1.0
    measurement_point: MeasurementPoint | None = None


@dataclass(frozen=True)
class InstantPue:
    """P_DC / P_IT now. Not an audit figure: the standard's PUE is an energy ratio."""

    site: str
    ts: float
    pue: float | None
    facility_power_w: float | None
    it_power_w: float | None
    category: int
    status: str
    threshold: float
    operator: str
    compliant: bool | None
    power_by_role: tuple[tuple[str, float], ...] = ()


def instantaneous_pue(site: str, readings: list[PowerReading], now: float, max_age_s: float,
                      *, threshold: float = 1.4, operator: str = "<=") -> InstantPue:
    """Ratio of the latest facility and IT power, if every such meter is fresh."""
    category = pue_category([r.measurement_point for r in readings if r.role == Role.IT])
    by_role: dict[str, float] = {}
    stale = negative = False
    for r in readings:
        if r.watts is None or r.ts is None or now - r.ts > max_age_s:
            stale |= r.role in (Role.FACILITY, Role.IT, Role.EXCLUDE)
            continue
        # Below 0 W beyond a transducer's noise is a fault, as for energy
        # (pue.power.implausible_power): no ratio.
        negative |= (r.watts < -NEGATIVE_POWER_NOISE_W
                     and r.role in (Role.FACILITY, Role.IT, Role.EXCLUDE))
        by_role[r.role.value] = by_role.get(r.role.value, 0.0) + r.watts * r.share
    has = {r.role for r in readings}
    p_dc = by_role.get(Role.FACILITY.value, 0.0) - by_role.get(Role.EXCLUDE.value, 0.0)
    p_it = by_role.get(Role.IT.value, 0.0)
    pue: float | None = None
    if stale or Role.FACILITY not in has or Role.IT not in has:
        status = STALE if stale else NO_DATA
        p_dc_out = p_it_out = None
    else:
        p_dc_out, p_it_out = p_dc, p_it
        if negative:
            status = INVALID
        elif p_it <= 0 or p_dc < p_it:
            status = INVALID
            pue = p_dc / p_it if p_it > 0 else None
        else:
            status, pue = OK, p_dc / p_it
    return InstantPue(site=site, ts=now, pue=pue, facility_power_w=p_dc_out, it_power_w=p_it_out,
                      category=category, status=status, threshold=threshold, operator=operator,
                      compliant=judge(pue, status, threshold, operator),
                      power_by_role=tuple(sorted(by_role.items())))
