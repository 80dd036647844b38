"""Per-meter interval energy (15-minute blocks), derived from raw readings as they arrive."""

from __future__ import annotations

import math

from config.metrics import ENERGY_METRIC, POWER_METRIC, Role
from config.model import Config
from pue.energy import CounterSeries, MeterEnergy, PowerSeries, span_seconds
from store.service import max_gap_s
from store.sqlite import Store

INTERVAL_S = 15 * 60
# Wait this long after an interval ends so late readings are in before it is closed.
SETTLE_S = 60.0
# At most this many intervals per meter per pass (a long outage catches up over passes).
MAX_INTERVALS_PER_PASS = 96


def rollup(store: Store, config: Config, now: float) -> int:
    """Close every finished 15-minute interval not yet stored; returns rows written."""
    written = 0
    for site, device in config.devices():
        if device.role == Role.MONITOR:
            continue
        last = store.last_interval_end(device.id)
        if last is None:
            first = store.first_reading_ts(device.id)
            if first is None:
                continue
            last = math.floor(first / INTERVAL_S) * INTERVAL_S
        end_all = math.floor((now - SETTLE_S) / INTERVAL_S) * INTERVAL_S
        if end_all <= last:
            continue
        end_all = min(end_all, last + MAX_INTERVALS_PER_PASS * INTERVAL_S)
        meter = MeterEnergy(
            CounterSeries.from_frame(store.series(device.id, ENERGY_METRIC, last, end_all)),
            PowerSeries.from_frame(store.series(device.id, POWER_METRIC, last, end_all),
                                   max_gap_s(config, site, device)))
        rows = []
        start = last
        while start < end_all:
            end = start + INTERVAL_S
            spans = meter.spans(start, end)
            energy = meter.energy(spans) if spans else None
            rows.append((device.id, start, end, energy, span_seconds(spans), meter.method))
            start = end
        store.write_interval_energy(rows)
        written += len(rows)
    return written
