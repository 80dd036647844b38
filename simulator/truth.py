"""Ground-truth energy over any span, integrated from the simulator's own physics (pure).

The simulator's registers integrate power tick by tick, and a fault or a restart without
a state file makes them step or start again; a test asking "what did the site really
use between a and b?" needs an answer that none of that touches. The physics is
deterministic in (settings, seed, t), so the true energy of every device and of each
site's facility and IT over [start, end] is the same trapezoid sum the registers make,
on a grid of its own. Alongside, the lowest and highest instantaneous PUE on that grid:
the PUE over any part of the span (a ratio of integrals, so a mean of the instantaneous
ratio weighted by IT power) lies between them, whatever part a monitor measured (to the
grid's resolution: the physics' slowest wobble is 30 s, the grid 1 s).

The physics of the settings in force now is used for the whole span: a site changed at
runtime (PATCH /sites) has no truth for the time before the change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pue_monitor.config.metrics import JOULES_PER_KWH
from pue_monitor.config.model import SiteSimulation
from pue_monitor.simulator.physics import SiteLayout, site_power

# Grid of the integration: the simulator's own tick, coarser only for long spans.
TRUTH_STEP_S = 1.0
MAX_TRUTH_STEPS = 3_600  # bounds one request's work (a few seconds at most)
MAX_TRUTH_SPAN_S = 7 * 86_400.0


@dataclass(frozen=True)
class SiteTruth:
    """True energy of one site over a span, kWh, and the range of its instantaneous PUE."""

    facility_kwh: float
    it_kwh: float
    pue_min: float
    pue_max: float

    @property
    def pue(self) -> float:
        return self.facility_kwh / self.it_kwh


@dataclass(frozen=True)
class EnergyTruth:
    start: float
    end: float
    step_s: float
    sites: dict[str, SiteTruth]
    devices: dict[str, float]  # device id -> kWh its load drew (what its meter should count)

    def as_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "step_s": self.step_s,
                "sites": {sid: {"facility_energy_kwh": s.facility_kwh,
                                "it_energy_kwh": s.it_kwh, "pue": s.pue,
                                "pue_min": s.pue_min, "pue_max": s.pue_max}
                          for sid, s in self.sites.items()},
                "devices": {did: {"energy_kwh": kwh} for did, kwh in self.devices.items()}}


def check_span(start: object, end: object) -> tuple[float, float]:
    """(start, end) as unix seconds.

    :raises ValueError: not numbers, end not after start, or a span longer than
        MAX_TRUTH_SPAN_S.
    """
    try:
        a, b = float(start), float(end)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"start and end must be unix seconds, got {start!r} and {end!r}"
                         ) from None
    if not (math.isfinite(a) and math.isfinite(b)) or b <= a:
        raise ValueError(f"end must come after start, got start={start} end={end}")
    if b - a > MAX_TRUTH_SPAN_S:
        raise ValueError(f"the span is {b - a:.0f} s, longer than the {MAX_TRUTH_SPAN_S:.0f} s "
                         "a truth request may cover")
    return a, b


def grid(start: float, end: float) -> tuple[list[float], float]:
    """Sample times start, start + step, ..., end (the last step may be shorter)."""
    step = max(TRUTH_STEP_S, (end - start) / MAX_TRUTH_STEPS)
    n = max(1, math.ceil((end - start) / step - 1e-9))
    return [start + i * step for i in range(n)] + [end], step


def energy_truth(sims: dict[str, SiteSimulation], layouts: dict[str, SiteLayout], seed: int,
                 start: float, end: float) -> EnergyTruth:
    """True energy of every site and device over [start, end] (trapezoid rule on grid())."""
    times, step = grid(start, end)
    sites: dict[str, SiteTruth] = {}
    devices: dict[str, float] = {}
    for sid, sim in sims.items():
        powers = [site_power(sim, layouts[sid], t, seed) for t in times]
        joules = {"facility": 0.0, "it": 0.0}
        for prev, now in zip(powers, powers[1:]):
            dt = now.t - prev.t
            joules["facility"] += (prev.facility_w + now.facility_w) / 2.0 * dt
            joules["it"] += (prev.it_w + now.it_w) / 2.0 * dt
            for did, load in now.devices.items():
                devices[did] = devices.get(did, 0.0) + (
                    prev.devices[did].power_w + load.power_w) / 2.0 * dt
        ratios = [p.pue for p in powers]
        sites[sid] = SiteTruth(joules["facility"] / JOULES_PER_KWH,
                               joules["it"] / JOULES_PER_KWH, min(ratios), max(ratios))
    return EnergyTruth(start, end, step, sites,
                       {did: j / JOULES_PER_KWH for did, j in devices.items()})
