"""Live figures for the web view and the exporters: site status, device health and the
live windows' PUE, from the store's readings (through StoreProtocol) through pue/; also
each meter's energy source over a span (meter_energy), which the roll-up uses too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pue_monitor.pue.lazynp import np

from pue_monitor.config.metrics import ENERGY_METRIC, NO_ENERGY_ROLES, POWER_METRIC, Role
from pue_monitor.config.history import change_times, site_at, site_epochs
from pue_monitor.config.model import Config, Device, Site, quality_settings
from pue_monitor.figures.blockcache import BlockCache
from pue_monitor.pue.energy import DEFAULT_GAP_POLLS, CounterSeries, MeterEnergy, PowerSeries
from pue_monitor.pue.instant import InstantPue, PowerReading, instantaneous_pue
from pue_monitor.pue.kpi import (
    MeterInput,
    PueResult,
    combine,
    info,
    interval_pue,
    reduce_part,
)
from pue_monitor.pue.quality import (
    DEFAULT_STUCK_POWER_POLLS,
    IMPLAUSIBLE_COUNTER,
    IMPLAUSIBLE_POWER,
    RESET,
    STEP_BACK,
    STUCK_COUNTER,
    STUCK_POWER,
    equal_runs,
    moving_times,
)
from pue_monitor.pue.periods import BLOCK_S, window_bounds
from pue_monitor.store.base import NEAR_READINGS, StoreProtocol, series_over
from pue_monitor.store.model import HealthState, parse_labels

if TYPE_CHECKING:  # only the live view builds frames; `report` starts without pandas
    import pandas as pd

DEFAULT_WINDOWS = ("15m", "24h", "today")
# Live windows long enough to read from the closed blocks (figures.periods.recent_results)
# rather than a day of raw readings per meter; the short ones stay raw (their meters'
# quality flags tell whether a device is degraded).
BLOCK_WINDOWS = ("24h", "today")
# A power reading older than this many poll intervals is too old for the live PUE.
FRESH_POLLS = 3
# The latest readings shown per device are taken from this far back.
LATEST_LOOKBACK_S = 3600.0
# The live window whose flags make an answering device degraded.
HEALTH_WINDOW = "15m"
# A reset or a step-back leaves an interval unmeasured, like a stuck or implausible span:
# the device is degraded while one lies in the health window, so the operator looks at the
# meter (a restarted or replaced meter, a glitching gateway). A wrap is a counter doing
# what it was declared to do, and degrades nothing.
DEGRADING_FLAGS = (STUCK_COUNTER, STUCK_POWER, IMPLAUSIBLE_COUNTER, IMPLAUSIBLE_POWER,
                   RESET, STEP_BACK)
# A run of equal counter readings is read whole (whole_runs) up to this far beyond a window.
RUN_LOOKBACK_S = 86400.0
# Roles whose devices meter no energy: neither blocks nor evidence that the site moved.


@dataclass(frozen=True)
class DeviceStatus:
    """Health and latest values of one device."""

    device: Device
    site_id: str
    up: bool | None  # None: never polled yet
    last_ok_ts: float | None
    last_poll_ts: float | None
    last_duration_s: float | None
    last_error_kind: str | None
    last_error: str | None
    errors: dict[str, int]
    values: dict[tuple[str, str], tuple[float | None, float, str]]  # (metric, labels) -> v, ts, q
    # up | degraded | down | unknown (store.model.HealthState): degraded when the last
    # poll had undecodable readings or the live window flags the meter stuck/implausible.
    state: str = HealthState.UNKNOWN.value
    # Stuck and implausible flags of the meter in the HEALTH_WINDOW, by kind.
    flags: dict[str, int] = field(default_factory=dict)
    # Every method-3 flag of the meter in the HEALTH_WINDOW, each kind listed (resets and
    # step-backs too, which do not make it degraded); None if it meters nothing.
    quality_flags: dict[str, int] | None = None


@dataclass(frozen=True)
class SiteStatus:
    """Everything the live view and /metrics show for one site."""

    site: Site
    now: float
    instant: InstantPue
    windows: dict[str, PueResult]
    devices: tuple[DeviceStatus, ...]
    power_by_role_w: dict[str, float] = field(default_factory=dict)


def max_gap_s(config: Config, site: Site, device: Device) -> float:
    return device.max_gap_s or DEFAULT_GAP_POLLS * config.polling_for(site, device).interval_s


def meter_inputs(store: StoreProtocol, config: Config, site: Site, start: float,
                 end: float) -> list[MeterInput]:
    """Every metered device of a site with its energy source over [start, end]."""
    return meter_inputs_over(store, config, site, [(start, end)])[0]


def meter_inputs_over(store: StoreProtocol, config: Config, site: Site,
                      windows: list[tuple[float, float]]) -> list[list[MeterInput]]:
    """meter_inputs for each of several windows, their readings read together. Each
    window takes the settings in force at its start (config.history): a window must not
    span a change of settings (site_epochs cuts periods there)."""
    sites = [site_at(config, site, start) for start, _ in windows]
    meters = {d.id: (s, d) for s in sites for d in s.devices
              if d.role not in NO_ENERGY_ROLES}
    ids = sorted(meters)
    # The nearest readings beyond a window usually lie within NEAR_READINGS polls and a
    # half (a store may read that much more rather than seek them series by series): of
    # the most often polled meter, so that no series is read much further than it needs
    # (a meter polled less often has its nearest readings sought, as without the hint).
    near_s = (NEAR_READINGS + 0.5) * min(
        (config.polling_for(s, d).interval_s for s, d in meters.values()), default=0.0)
    every = store.series_windows([(d, m) for d in ids
                                  for m in (ENERGY_METRIC, POWER_METRIC)], windows,
                                 near_s=near_s)
    return [[MeterInput(device=device.id, role=device.role, share=device.share,
                        measurement_point=device.measurement_point,
                        energy=meter_energy(store, config, now_site, device, start, end,
                                            series))
             for device in now_site.devices if device.role not in NO_ENERGY_ROLES]
            for (start, end), series, now_site in zip(windows, every, sites)]


def meter_energy(store: StoreProtocol, config: Config, site: Site, device: Device, start: float,
                 end: float, series: dict | None = None) -> MeterEnergy:
    """A meter's counter and power over [start, end], with its declared width and swaps.

    ``series``: its readings, as series_over gives them, if already read.
    """
    keys = [(device.id, ENERGY_METRIC), (device.id, POWER_METRIC)]
    # A facility meter's stuck counter is also judged against the site's IT power.
    feeds = [d for d in site.devices if d.role == Role.IT] if device.role == Role.FACILITY \
        else []
    wanted = keys + [(d.id, POWER_METRIC) for d in feeds]
    missing = [k for k in wanted if series is None or k not in series]
    if missing:
        series = {**(series or {}), **series_over(store, missing, start, end)}
    assert series is not None
    read_ts = series[keys[0]][0]
    counter_ts, kwh = whole_runs(store, keys[0], *series[keys[0]], start, end)
    lo, hi = start, end  # the span the power was read for
    if counter_ts.size > len(read_ts):
        # A run of equal counter readings crossing the window is judged whole (the
        # stuck-counter rule): its evidence, the power, is read over all of it too.
        lo, hi = min(start, float(counter_ts[0])), max(end, float(counter_ts[-1]))
        series = {**series, **series_over(store, wanted[1:], lo, hi)}
    elif _run_outside(counter_ts, kwh, start, end):
        # One among the readings beyond the window (NEAR_READINGS) is judged too, as the
        # steps next to it may lie in the window: the power over those readings (at most
        # RUN_LOOKBACK_S beyond, as whole_runs reads).
        lo = max(min(start, float(counter_ts[0])), start - RUN_LOOKBACK_S)
        hi = min(max(end, float(counter_ts[-1])), end + RUN_LOOKBACK_S)
        series = {**series, **series_over(store, wanted[1:], lo, hi)}
    last = float(kwh[-1]) if kwh.size else 0.0
    profile = config.known_profile(device)
    if profile is None:  # profile auto: the model it was identified as, if it has been
        profile = config.profiles.get(store.device_profiles().get(device.id, ""))
    width = profile.counter_width(ENERGY_METRIC) if profile is not None else None
    rules = quality_settings(device, profile)
    polls = int(rules["stuck_power_polls"] or DEFAULT_STUCK_POWER_POLLS)
    # A run of equal power values is judged whole too (the stuck-power rule), against
    # the site's other meters over it.
    power_ts, watts = whole_power(store, keys[1], *series[keys[1]], lo, hi)
    span = stuck_candidates(power_ts, watts, polls)
    moving = None if span is None else site_moving(store, site, device, span, series,
                                                   start, end)
    power = PowerSeries.from_arrays(power_ts, watts, max_gap_s(config, site, device),
                                    rated_max_w=rules["rated_max_w"], stuck_polls=polls,
                                    moving_ts=moving)
    counter = CounterSeries.from_arrays(
        counter_ts, kwh, width_kwh=device.counter_width_kwh or width,
        replacements=swaps_of(device),
        resolution_kwh=profile.counter_resolution_kwh(ENERGY_METRIC, last)
        if profile is not None else 0.0,
        reset_below_fraction=rules["reset_below_fraction"], rated_max_w=rules["rated_max_w"],
        power=power,
        # made only if the counter has a run of equal readings to judge
        site_power=lambda: tuple((_it_power(store, config, site, d, series), d.share)
                                 for d in feeds))
    return MeterEnergy(counter, power)


def swaps_of(device: Device) -> tuple[tuple[float, float, float], ...]:
    """The device's recorded meter swaps as the counter takes them: (time, old final,
    new initial)."""
    return tuple((r.at.timestamp(), r.old_final_kwh, r.new_initial_kwh)
                 for r in device.replacements)


def _run_outside(ts: np.ndarray, values: np.ndarray, start: float, end: float) -> bool:
    """Whether a run of equal readings has a reading outside [start, end]."""
    return any(ts[a] < start or ts[b] > end for a, b in equal_runs(values))


def power_polls(config: Config, store: StoreProtocol, device: Device) -> int:
    """The device's ``stuck_power_polls`` (its own, its profile's, else the default)."""
    profile = config.known_profile(device) or config.profiles.get(
        store.device_profiles().get(device.id, ""))
    return int(quality_settings(device, profile)["stuck_power_polls"]
               or DEFAULT_STUCK_POWER_POLLS)


def whole_power(store: StoreProtocol, key: tuple[str, str], ts: np.ndarray,
                watts: np.ndarray, start: float | None = None, end: float | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """A power series as read for a window, extended over a run of equal values that
    the window cuts (whole_runs), so a block and a period cut elsewhere judge the same
    run. A run at 0 W is a feed that is off, never stuck: not read further."""
    ts, watts = np.asarray(ts, dtype=float), np.asarray(watts, dtype=float)
    if ts.size >= 2 and ((watts[0] == watts[1] and watts[0] != 0)
                         or (watts[-1] == watts[-2] and watts[-1] != 0)):
        return whole_runs(store, key, ts, watts, start, end)
    return ts, watts


def stuck_candidates(ts: np.ndarray, watts: np.ndarray, polls: int
                     ) -> tuple[float, float] | None:
    """From the first to the last reading of the runs of ``polls`` or more equal non-zero
    values (those the stuck-power rule judges), or None: then the site's other meters
    need not be read."""
    runs = [(float(ts[a]), float(ts[b])) for a, b in equal_runs(watts)
            if b - a + 1 >= polls and watts[a] != 0]
    return (runs[0][0], runs[-1][1]) if runs else None


def site_moving(store: StoreProtocol, site: Site, device: Device, span: tuple[float, float],
                series: dict, start: float, end: float) -> np.ndarray:
    """When the site's other energy meters (counter or power) changed value, over
    ``span``: from ``series`` (read for [start, end]) when it holds them all there, else
    read over ``span`` (with the reading before it: a change is seen against it)."""
    keys = [(d.id, m) for d in site.devices if d.id != device.id and d.role not in NO_ENERGY_ROLES
            for m in (ENERGY_METRIC, POWER_METRIC)]
    if not (start <= span[0] and span[1] <= end and all(k in series for k in keys)):
        series = series_over(store, keys, *span)
    return moving_times([series[k] for k in keys])


def whole_runs(store: StoreProtocol, key: tuple[str, str], ts: np.ndarray,
               values: np.ndarray, start: float | None = None, end: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """A counter's readings as read for a window, extended outwards while the readings at
    an end are equal (a run the window cut), to the first reading that differs: the
    stuck-counter rule judges a run whole, so every window sees the same runs (a block
    and a period cut elsewhere agree). At most RUN_LOOKBACK_S further each way: a run
    longer than that is judged on its last day (a bound, so an idle meter does not make
    every live window read weeks). ``start``, ``end``: the window the readings were read
    for (with NEAR_READINGS beyond each side): fewer beyond it means the data ends there,
    and nothing more is asked of the store (a live window ending now)."""
    ts, values = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
    # Whether the data goes on beyond the window, counted in the readings as read, and
    # only at an end that is a run (the usual end is not: nothing to count).
    read = ts
    run_after = ts.size >= 2 and values[-1] == values[-2]
    if ts.size >= 2 and values[0] == values[1] and (
            start is None or int((read < start).sum()) >= NEAR_READINGS):
        more_ts, more = _run_beyond(store, key, float(ts[0]), float(values[0]), -1)
        ts, values = np.concatenate((more_ts, ts)), np.concatenate((more, values))
    if run_after and (end is None or int((read > end).sum()) >= NEAR_READINGS):
        more_ts, more = _run_beyond(store, key, float(ts[-1]), float(values[-1]), 1)
        ts, values = np.concatenate((ts, more_ts)), np.concatenate((values, more))
    return ts, values


def _run_beyond(store: StoreProtocol, key: tuple[str, str], edge: float, value: float,
                way: int) -> tuple[np.ndarray, np.ndarray]:
    """The readings beyond ``edge`` (way -1 before it, +1 after) that continue a run of
    ``value``, and the first that differs; read a block's worth first, then wider."""
    span = float(BLOCK_S)
    while True:
        lo, hi = (edge - span, edge) if way < 0 else (edge, edge + span)
        more_ts, more = series_over(store, [key], lo, hi)[key]
        keep = more_ts < edge if way < 0 else more_ts > edge
        more_ts, more = more_ts[keep], more[keep]
        other = np.flatnonzero(more != value)
        if other.size:
            cut = int(other[-1]) if way < 0 else int(other[0]) + 1
            return (more_ts[cut:], more[cut:]) if way < 0 else (more_ts[:cut], more[:cut])
        if span >= RUN_LOOKBACK_S or not more_ts.size or (
                way < 0 and more_ts[0] > lo) or (way > 0 and more_ts[-1] < hi):
            return more_ts, more  # the run reaches the bound, or the data's end
        span = min(4 * span, RUN_LOOKBACK_S)


def run_bounds(store: StoreProtocol, key: tuple[str, str], lo: float, hi: float
               ) -> tuple[float, float]:
    """[lo, hi] widened over the runs of equal counter readings crossing its ends, with
    the reading beyond each (what whole_runs reads for a window with these ends)."""
    return runs_bounds(store, [(key, lo, hi)])[0]


def runs_bounds(store: StoreProtocol, asks: Sequence[tuple[tuple[str, str], float, float]]
                ) -> list[tuple[float, float]]:
    """run_bounds of each (key, lo, hi), the readings at both ends of every one read in
    one statement (store.series_at); a run cut at an end is read on as whole_runs does."""
    found = store.series_at([(key, lo) for key, lo, _ in asks]
                            + [(key, hi) for key, _, hi in asks])
    out = []
    for j, (key, lo, hi) in enumerate(asks):
        edges = []
        for (ts, values), end, at in ((found[j], 0, lo), (found[len(asks) + j], -1, hi)):
            ts, _ = whole_runs(store, key, ts, values)
            edges.append(float(ts[end]) if ts.size else at)
        out.append((min(lo, edges[0]), max(hi, edges[1])))
    return out


def _it_power(store: StoreProtocol, config: Config, site: Site, device: Device,
              series: dict) -> PowerSeries:
    """An IT meter's power as evidence that energy flowed (its own gap and rated-maximum
    rules applied)."""
    ts, watts = series[(device.id, POWER_METRIC)]
    profile = config.known_profile(device) or config.profiles.get(
        store.device_profiles().get(device.id, ""))
    return PowerSeries.from_arrays(ts, watts, max_gap_s(config, site, device),
                                   rated_max_w=quality_settings(device, profile)["rated_max_w"])


def site_windows(store: StoreProtocol, config: Config, site: Site, now: float,
                 windows: tuple[str, ...] = DEFAULT_WINDOWS,
                 kept: BlockCache | None = None) -> dict[str, PueResult]:
    """Interval PUE of a site for each named live window ending at ``now``: the short
    ones from raw readings, the BLOCK_WINDOWS from closed blocks (kept in ``kept`` until
    another block closes) and the raw tail."""
    # figures.periods builds on this module (meter_inputs_over): imported here, not above.
    from pue_monitor.figures.periods import recent_results

    bounds = {w: window_bounds(w, now, site.timezone) for w in windows}
    earliest = min(b[0] for b in bounds.values())
    kw = {"threshold": site.pue_threshold, "operator": site.threshold_operator,
          "coverage_threshold": site.coverage_threshold}
    if not change_times(config, site, earliest, now):
        raw = {w: b for w, b in bounds.items() if w not in BLOCK_WINDOWS}
        out = recent_results(store, config, site, {w: b for w, b in bounds.items()
                                                   if w in BLOCK_WINDOWS}, kept)
        if raw:
            meters = meter_inputs(store, config, site, min(b[0] for b in raw.values()), now)
            out.update({w: interval_pue(site.id, meters, start, end, window=w, **kw)
                        for w, (start, end) in raw.items()})
        return {w: out[w] for w in bounds}
    # Settings changed within the windows (rare): each stretch from raw readings with the
    # settings of its time.
    out = {}
    for w, (start, end) in bounds.items():
        epochs = site_epochs(config, site, start, end)
        inputs = meter_inputs_over(store, config, site, [(a, b) for a, b, _ in epochs])
        parts = [replace(reduce_part(meters, a, b),
                         infos=tuple(info(m) for m in meters))
                 for meters, (a, b, _) in zip(inputs, epochs)]
        out[w] = combine(site.id, [info(m) for m in inputs[0]], parts, start, end, window=w,
                         **kw)
    return out


def site_status(store: StoreProtocol, config: Config, site: Site, now: float,
                latest: pd.DataFrame | dict[str, dict] | None = None,
                windows: tuple[str, ...] = DEFAULT_WINDOWS,
                kept: BlockCache | None = None) -> SiteStatus:
    """Live PUE (instantaneous and per window), power by role and device health of a site.

    ``latest``: the latest readings (store.latest), or them by device (_values_by_device)
    when several sites share one read; ``kept``: see site_windows."""
    if latest is None:
        latest = store.latest(now - LATEST_LOOKBACK_S, [d.id for d in site.devices])
    live_site = site
    site = site_at(config, site, now)  # roles and shares as in force now
    health = store.health()
    errors = store.error_counts()
    values = latest if isinstance(latest, dict) else _values_by_device(latest)
    live = site_windows(store, config, live_site, now, windows, kept)
    flagged = device_flags(live.get(HEALTH_WINDOW))
    every_flag = meter_flags(live.get(HEALTH_WINDOW))
    devices, power = [], []
    for device in site.devices:
        h = health.get(device.id)
        flags = flagged.get(device.id, {})
        devices.append(DeviceStatus(
            device=device, site_id=site.id, up=None if h is None else h.up,
            last_ok_ts=h.last_ok_ts if h else None, last_poll_ts=h.last_poll_ts if h else None,
            last_duration_s=h.last_duration_s if h else None,
            last_error_kind=h.last_error_kind if h else None,
            last_error=h.last_error if h else None,
            errors={k: n for (d, k), n in errors.items() if d == device.id},
            values=values.get(device.id, {}),
            state=device_state(None if h is None else h.state, flags).value, flags=flags,
            quality_flags=every_flag.get(device.id)))
        if device.role != Role.MONITOR:
            v = values.get(device.id, {}).get((POWER_METRIC, ""))
            ok = v is not None and v[0] is not None and v[2] == "ok"
            power.append(PowerReading(device=device.id, role=device.role,
                                      watts=v[0] if ok else None, ts=v[1] if ok else None,
                                      share=device.share,
                                      measurement_point=device.measurement_point))
    fresh = FRESH_POLLS * max(config.polling_for(site, d).interval_s for d in site.devices)
    instant = instantaneous_pue(site.id, power, now, fresh, threshold=site.pue_threshold,
                                operator=site.threshold_operator)
    return SiteStatus(site=site, now=now, instant=instant,
                      windows=live,
                      devices=tuple(devices), power_by_role_w=dict(instant.power_by_role))


def device_flags(figure: PueResult | None) -> dict[str, dict[str, int]]:
    """{device: {kind: count}} of the degrading flags (DEGRADING_FLAGS) in a live figure."""
    out: dict[str, dict[str, int]] = {}
    for meter in figure.meters if figure is not None else ():
        counts = {k: meter.quality.count(k) for k in DEGRADING_FLAGS}
        if any(counts.values()):
            # (a meter whose role changed in the window is two figures: their flags add)
            have = out.setdefault(meter.device, {})
            for k, n in counts.items():
                if n:
                    have[k] = have.get(k, 0) + n
    return out


def meter_flags(figure: PueResult | None) -> dict[str, dict[str, int]]:
    """{device: {kind: count}} of every flag kind (quality.KINDS) of each meter of a live
    figure, zeros included."""
    return {meter.device: meter.quality.counts()
            for meter in (figure.meters if figure is not None else ())}


def device_state(polled: HealthState | None, flags: dict[str, int]) -> HealthState:
    """The four-state health: the last poll's state (UNKNOWN if never polled), made
    DEGRADED when the device answers but its readings carry a degrading flag (stuck,
    implausible, a reset or a step-back)."""
    if polled is None:
        return HealthState.UNKNOWN
    if polled == HealthState.UP and any(flags.values()):
        return HealthState.DEGRADED
    return polled


def province_status(store: StoreProtocol, config: Config, now: float,
                    windows: tuple[str, ...] = DEFAULT_WINDOWS,
                    kept: BlockCache | None = None) -> list[SiteStatus]:
    """Live status of every site (``kept``: see site_windows)."""
    # One read of the latest readings, split by device once (not once per site).
    latest = _values_by_device(store.latest(now - LATEST_LOOKBACK_S))
    return [site_status(store, config, site, now, latest, windows, kept)
            for site in config.sites]


def _values_by_device(latest: pd.DataFrame) -> dict[str, dict]:
    import pandas as pd

    out: dict[str, dict] = {}
    for row in latest.itertuples(index=False):
        value = None if pd.isna(row.value) else float(row.value)
        out.setdefault(row.device, {})[(row.metric, row.labels)] = (value, float(row.ts),
                                                                     row.quality)
    return out


__all__ = ["DeviceStatus", "SiteStatus", "meter_inputs", "parse_labels", "province_status",
           "site_status", "site_windows"]
