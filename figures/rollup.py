"""The roll-up: per-meter interval energy (15-minute blocks) derived from raw readings as
they arrive, and recomputed over a range on demand (reports, imports)."""

from __future__ import annotations

import math

from pue_monitor.config.metrics import ENERGY_METRIC, NO_ENERGY_ROLES, POWER_METRIC
from pue_monitor.config.history import device_epochs
from pue_monitor.config.model import Config, Device, Site
from pue_monitor.figures.service import RUN_LOOKBACK_S, meter_energy, run_bounds
from pue_monitor.pue.energy import span_seconds
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import NEAR_READINGS, StoreProtocol, series_over

# Wait this long after an interval ends so late readings are in before it is closed, and
# at least the time of NEAR_READINGS and a half polls of the meter: the rules judge a
# block's last steps by the readings after it (a dip of a few readings, pue.counter).
SETTLE_S = 60.0
# At most this many intervals per meter per pass (a long outage catches up over passes).
MAX_INTERVALS_PER_PASS = 96
# rollup_range reads raw readings for this many blocks at a time (4 hours).
CHUNK_BLOCKS = 16
# The flag counts a block stores after its resets, in the store's row order
# (StoreProtocol.write_interval_energy: step_backs, wraps, stuck, implausible).
BLOCK_FLAGS = ("step_back", "wrap", "stuck", "implausible")


def settle_s(config: Config, site: Site, devices) -> float:
    """How long after a block ends the blocks of ``devices`` may be closed: SETTLE_S, and
    at least NEAR_READINGS and a half polls of the slowest of them."""
    return max([SETTLE_S] + [(NEAR_READINGS + 0.5) * config.polling_for(site, d).interval_s
                             for d in devices])


def rollup(store: StoreProtocol, config: Config, now: float) -> int:
    """Close every finished 15-minute interval not yet stored; returns rows written."""
    written = 0
    for site, device in config.devices():
        if not has_blocks(config, site, device):
            continue
        last = store.last_interval_end(device.id)
        if last is None:
            first = store.first_reading_ts(device.id)
            if first is None:
                continue
            last = math.floor(first / BLOCK_S) * BLOCK_S
        end_all = math.floor((now - settle_s(config, site, [device])) / BLOCK_S) * BLOCK_S
        if end_all <= last:
            continue
        end_all = min(end_all, last + MAX_INTERVALS_PER_PASS * BLOCK_S)
        start = min(last, _growing_run(store, device.id, last))
        written += rollup_range(store, config, site, device, start, end_all)
    return written


def _growing_run(store: StoreProtocol, device: str, last: float) -> float:
    """Where the blocks before ``last`` must be made again: a run of equal counter
    readings, or of equal non-zero power values, crossing it is judged whole (the stuck
    counter and stuck power rules), and one still growing may have become stuck since
    its first blocks closed. The block of the reading before the run (at most
    RUN_LOOKBACK_S back); ``last`` when no run crosses it."""
    keys = [(device, ENERGY_METRIC), (device, POWER_METRIC)]
    near = series_over(store, keys, last, last)
    lo = last
    for key in keys:
        ts, values = near[key]
        before, after = values[ts < last], values[ts >= last]
        if not before.size or not after.size or before[-1] != after[0]:
            continue
        if key[1] == POWER_METRIC and before[-1] == 0:
            continue  # a feed that is off is not stuck
        lo = min(lo, run_bounds(store, key, last, last)[0])
    if lo == last:
        return last
    return max(math.floor(lo / BLOCK_S) * BLOCK_S,
               last - math.ceil(RUN_LOOKBACK_S / BLOCK_S) * BLOCK_S)


def rollup_range(store: StoreProtocol, config: Config, site: Site, device: Device, start: float,
                 end: float) -> int:
    """(Re)compute the blocks of one meter between two block boundaries; rows written."""
    if start % BLOCK_S or end % BLOCK_S:
        raise ValueError("rollup bounds must lie on 15-minute boundaries")
    # A few hours at a time: a block needs only the readings around it, and each block
    # scans its whole power series, so one long range would cost blocks x readings.
    step = CHUNK_BLOCKS * BLOCK_S
    written = 0
    for chunk in range(int(start), int(end), step):
        written += _rollup_chunk(store, config, site, device, float(chunk),
                                 min(float(chunk + step), end))
    return written


def has_blocks(config: Config, site: Site, device: Device) -> bool:
    """Whether the device measures energy at some time of its history (its blocks do not
    depend on its role: they are kept for all of its time)."""
    return any(e.device.role not in NO_ENERGY_ROLES for e in device_epochs(config, site, device))


def _rollup_chunk(store: StoreProtocol, config: Config, site: Site, device: Device, start: float,
                  end: float) -> int:
    """The blocks of [start, end), each computed with the settings in force at its time."""
    written = 0
    for epoch in device_epochs(config, site, device):
        a, b = max(start, epoch.start), min(end, epoch.end)
        if b > a:
            written += _rollup_epoch(store, config, site, epoch.device, a, b)
    return written


def _rollup_epoch(store: StoreProtocol, config: Config, site: Site, device: Device,
                  start: float, end: float) -> int:
    meter = meter_energy(store, config, site, device, start, end)
    rows = []
    counter = meter.counter if meter.method == "counter" else None
    for block in range(int(start), int(end), BLOCK_S):
        a, b = float(block), float(block + BLOCK_S)
        spans = meter.spans(a, b)
        energy = meter.energy(spans) if spans else None
        check = meter.cross_check(a, b) if counter is not None else None
        # Each flag is counted in the block its end lies in, as reduce_part counts it.
        counted = meter.quality(a, b).ending_in(a, b)
        rows.append((device.id, a, b, energy, span_seconds(spans), meter.method,
                     counter.resets_in(a, b) if counter is not None else 0,
                     *(check or (None, None)),
                     *(counted[name] for name in BLOCK_FLAGS)))
    store.write_interval_energy(rows)
    return len(rows)
