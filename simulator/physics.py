"""Power flows of a simulated data center and per-device canonical readings (pure).

Time is always passed in (unix seconds + time-zone name); nothing here reads a clock,
so every number is reproducible from (config, seed, t).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from pue_monitor.config.metrics import JOULES_PER_KWH, Role
from pue_monitor.config.model import Site, SiteSimulation
from pue_monitor.simulator.climate import local_hour, local_time, outdoor_temperature_c

Key = tuple[str, tuple[tuple[str, str], ...]]

PHASES = ("L1", "L2", "L3")
LINES = ("1", "2", "3")
COP_MIN, COP_MAX = 1.5, 8.0
COP_REFERENCE_C = 25.0
# Standard double-conversion UPS loss model, as shares of the unit's rating.
UPS_NO_LOAD = 0.015  # magnetics, control, fans: paid even at zero load
UPS_PROPORTIONAL = 0.015  # switching losses, proportional to load
UPS_SQUARE = 0.01  # I²R losses, proportional to load² / rating
IT_PEAK_HOUR = 16.0  # afternoon business peak; the trough falls 12 h later, at 04:00
NOISE_AMPLITUDE = 0.0006  # per sinusoid; three of them stay below 0.2 %
NOMINAL_VOLTAGE = 230.0
NOMINAL_FREQUENCY = 50.0
RACK_KW_RANGE = (3.0, 7.0)


def key(metric: str, **labels: str) -> Key:
    """The canonical-values dict key: metric plus sorted label pairs."""
    return metric, tuple(sorted(labels.items()))


def _rng(seed: int, *names: str) -> random.Random:
    # String seeds hash through SHA-512: stable across runs and Python versions.
    return random.Random(":".join((str(seed), *names)))


# ---- the site model --------------------------------------------------------------------

def it_load_factor(t: float, tz: str, daily_swing: float, weekend_dip: float) -> float:
    """IT load relative to the weekday mean: daily wave plus a weekend dip."""
    hour = local_hour(t, tz)
    daily = 1.0 + daily_swing * math.cos(2 * math.pi * (hour - IT_PEAK_HOUR) / 24.0)
    weekend = 1.0 - weekend_dip if local_time(t, tz).weekday() >= 5 else 1.0
    return daily * weekend


def noise_factor(seed: int, name: str, t: float) -> float:
    """1 ± <0.2 %: three seeded slow sinusoids, smooth and deterministic."""
    rng = _rng(seed, "noise", name)
    total = 0.0
    for period in (rng.uniform(30, 60), rng.uniform(90, 240), rng.uniform(600, 1800)):
        total += NOISE_AMPLITUDE * math.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
    return 1.0 + total


def ups_loss_w(load_w: float, rating_w: float) -> float:
    """Loss of one UPS unit carrying load_w: no-load + proportional + quadratic terms."""
    return (UPS_NO_LOAD * rating_w + UPS_PROPORTIONAL * load_w
            + UPS_SQUARE * load_w * load_w / rating_w)


def cooling_cop(sim: SiteSimulation, outdoor_c: float) -> float:
    """Plant COP falls as the outdoor air warms; clamped to what real plants reach."""
    cop = sim.cooling_cop - sim.cop_slope_per_c * (outdoor_c - COP_REFERENCE_C)
    return min(COP_MAX, max(COP_MIN, cop))


def split(total: float, weights: tuple[float, ...]) -> list[float]:
    """Split total by weights; the last part takes the remainder so the sum is exact."""
    parts = [total * w for w in weights[:-1]]
    return [*parts, total - sum(parts)]


def _weights(rng: random.Random, n: int, spread: float) -> tuple[float, ...]:
    raw = [rng.uniform(1 - spread, 1 + spread) for _ in range(n)]
    return tuple(w / sum(raw) for w in raw)


@dataclass(frozen=True)
class SiteLayout:
    """Which device measures what, fixed when the simulator starts."""

    site_id: str
    timezone: str
    incomers: tuple[str, ...]
    ups: tuple[str, ...]
    it_pdus: dict[str, float]  # device -> share of the whole IT load (sums to 1)
    racks: dict[str, float]  # device -> mean rack kW: watched, counted nowhere
    cooling: tuple[str, ...]


def build_layout(site: Site, sim: SiteSimulation, seed: int) -> SiteLayout:
    """Assign every device of the site a place in the power flow."""
    roles = {d.id: d.role for d in site.devices}
    it_pdus = [p for p in sim.pdus if roles.get(p) == Role.IT]
    weights = _weights(_rng(seed, site.id, "pdu-weights"), len(it_pdus), 0.3) if it_pdus else ()
    placed = {*sim.incomers, *sim.ups, *sim.cooling, *it_pdus}
    # Non-IT PDUs and any device the simulation does not name carry one rack each.
    racks = {d.id: _rng(seed, d.id, "rack").uniform(*RACK_KW_RANGE)
             for d in site.devices if d.id not in placed}
    return SiteLayout(site.id, site.timezone, tuple(sim.incomers), tuple(sim.ups),
                      dict(zip(it_pdus, weights)), racks, tuple(sim.cooling))


@dataclass(frozen=True)
class DeviceLoad:
    """What one device sees: its total active power, and its rating if it is a UPS."""

    power_w: float
    ups_rating_w: float | None = None


@dataclass(frozen=True)
class SitePower:
    """Instantaneous power flows of one site, W."""

    t: float
    outdoor_c: float
    cop: float
    it_w: float
    ups_loss_w: float
    ups_input_w: float
    chiller_w: float
    fans_w: float
    lighting_w: float
    distribution_w: float
    facility_w: float
    devices: dict[str, DeviceLoad] = field(default_factory=dict)

    @property
    def cooling_w(self) -> float:
        return self.chiller_w + self.fans_w

    @property
    def pue(self) -> float:
        return self.facility_w / self.it_w


def site_power(sim: SiteSimulation, layout: SiteLayout, t: float, seed: int) -> SitePower:
    """Compute the site's power flows at time t."""
    tz = layout.timezone
    pattern = it_load_factor(t, tz, sim.daily_swing, sim.weekend_dip)
    it_w = sim.it_load_kw * 1000.0 * pattern * noise_factor(seed, layout.site_id, t)

    devices: dict[str, DeviceLoad] = {}
    rating_w = sim.ups_rating_kw * 1000.0
    if layout.ups:
        per_unit = split(it_w, (1.0 / len(layout.ups),) * len(layout.ups))
        losses = [ups_loss_w(p, rating_w) for p in per_unit]
        for dev, p in zip(layout.ups, per_unit):
            devices[dev] = DeviceLoad(p, rating_w)
        loss_w = sum(losses)
    else:
        loss_w = 0.0  # IT fed straight from the switchboard
    ups_input_w = it_w + loss_w

    outdoor = outdoor_temperature_c(t, tz)
    cop = cooling_cop(sim, outdoor)
    lighting_w = sim.lighting_kw * 1000.0
    chiller_w = (it_w + loss_w + lighting_w) / cop  # every watt inside becomes heat
    fans_w = sim.fans_kw * 1000.0
    subtotal = ups_input_w + chiller_w + fans_w + lighting_w
    facility_w = subtotal / (1.0 - sim.distribution_loss)  # loss is a share of the total

    if layout.it_pdus:
        for dev, p in zip(layout.it_pdus, split(it_w, tuple(layout.it_pdus.values()))):
            devices[dev] = DeviceLoad(p)
    for dev, mean_kw in layout.racks.items():
        devices[dev] = DeviceLoad(mean_kw * 1000.0 * pattern * noise_factor(seed, dev, t))
    for group, total in ((layout.incomers, facility_w), (layout.cooling, chiller_w + fans_w)):
        for dev, p in zip(group, split(total, (1.0 / len(group),) * len(group)) if group else ()):
            devices[dev] = DeviceLoad(p)
    return SitePower(t, outdoor, cop, it_w, loss_w, ups_input_w, chiller_w, fans_w,
                     lighting_w, facility_w - subtotal, facility_w, devices)


# ---- energy ----------------------------------------------------------------------------

class EnergyCounter:
    """A kWh register that integrates power exactly by the trapezoid rule."""

    def __init__(self, initial_kwh: float = 0.0) -> None:
        self.kwh = initial_kwh
        self.last_t: float | None = None
        self.last_w = 0.0

    def advance(self, t: float, power_w: float) -> float:
        """Add (P_prev + P_now) / 2 * dt since the previous sample; return the reading."""
        if self.last_t is not None and t > self.last_t:
            self.kwh += (self.last_w + power_w) / 2.0 * (t - self.last_t) / JOULES_PER_KWH
        if self.last_t is None or t >= self.last_t:
            self.last_t, self.last_w = t, power_w
        return self.kwh

    def reset(self) -> None:
        """Restart the register at zero (a meter reset); integration continues."""
        self.kwh = 0.0


def initial_energy_kwh(seed: int, device_id: str, is_rack: bool) -> float:
    """A plausible reading for a meter that has been in service a few years."""
    rng = _rng(seed, device_id, "energy0")
    return rng.uniform(2_000, 20_000) if is_rack else rng.uniform(10_000, 90_000)


# ---- per-device readings ---------------------------------------------------------------

@dataclass(frozen=True)
class DeviceTraits:
    """Fixed per-device imperfections: phase imbalance, voltage offsets, power factor."""

    phase_weights: tuple[float, float, float]
    volt_offsets: tuple[float, float, float]  # relative, about ±1 %
    power_factor: float
    battery_c: float


def device_traits(seed: int, device_id: str) -> DeviceTraits:
    rng = _rng(seed, device_id, "traits")
    weights = _weights(rng, 3, 0.04)
    volts = tuple(rng.uniform(-0.01, 0.01) for _ in range(3))
    return DeviceTraits(weights, volts, rng.uniform(0.95, 0.985),  # type: ignore[arg-type]
                        rng.uniform(23.5, 26.5))


def canonical_values(load: DeviceLoad, energy_kwh: float, traits: DeviceTraits,
                     t: float) -> dict[Key, float]:
    """Every canonical reading a profile may ask of this device.

    Per-phase readings carry both label spellings (phase L1.. and line 1..), since a
    meter profile says phase and the UPS-MIB says line.
    """
    wobble = math.sin(2 * math.pi * t / 97.0)  # slow grid wander, shared by V, f, PF
    pf = min(0.999, traits.power_factor + 0.003 * wobble)
    total_w = load.power_w
    out: dict[Key, float] = {
        key("active_power_w"): total_w,
        key("apparent_power_va"): total_w / pf,
        key("power_factor"): pf,
        key("frequency_hz"): NOMINAL_FREQUENCY + 0.03 * wobble,
        key("active_energy_kwh"): energy_kwh,
    }
    currents, volts = [], []
    for i, p in enumerate(split(total_w, traits.phase_weights)):
        v = NOMINAL_VOLTAGE * (1.0 + traits.volt_offsets[i]) + 0.6 * wobble
        amps = p / (v * pf)
        currents.append(amps)
        volts.append(v)
        for labels in ({"phase": PHASES[i]}, {"line": LINES[i]}):
            out[key("active_power_w", **labels)] = p
            out[key("apparent_power_va", **labels)] = p / pf
            out[key("power_factor", **labels)] = pf
            out[key("voltage_v", **labels)] = v
            out[key("current_a", **labels)] = amps
            if load.ups_rating_w:
                out[key("load_pct", **labels)] = p / (load.ups_rating_w / 3.0) * 100.0
    out[key("voltage_v")] = sum(volts) / 3.0
    out[key("current_a")] = sum(currents) / 3.0  # the "current average" meters show
    if load.ups_rating_w:
        out[key("load_pct")] = total_w / load.ups_rating_w * 100.0
        battery = traits.battery_c + 0.3 * wobble
        out[key("temperature_c", sensor="battery")] = battery
        out[key("temperature_c")] = battery
    return out
