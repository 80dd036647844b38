"""The closed blocks late readings change, found for all the devices of a batch at once
(exchange.importer.affected_blocks: a few set statements), are those found device by
device, on both backends: runs of equal values crossing the ends, devices without any
stored reading, readings on both sides of the stored ones."""

from __future__ import annotations

import math

import pytest

from pue_monitor.exchange.importer import affected_blocks
from pue_monitor.figures.rollup import SETTLE_S
from pue_monitor.figures.service import whole_runs
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import series_over
from pue_monitor.store.model import Reading

T0 = 1_735_664_400.0  # 2025-01-01 00:00 in Hà Nội
NOW = T0 + 30 * 86400.0  # every block below settled
E, P = "active_energy_kwh", "active_power_w"


def _stored() -> list[Reading]:
    out = []
    for k in range(0, 240):  # four hours a minute apart
        t = T0 + 60.0 * k
        out += [Reading(t, "rising", E, 100.0 + k), Reading(t, "rising", P, 5000.0 + k % 7)]
        # a counter stuck (equal) from 60 to 150 and a power flat from 100 to 200
        out += [Reading(t, "stuck", E, 10.0 + (min(max(k, 60), 150) if k < 200 else k)),
                Reading(t, "stuck", P, 700.0 if 100 <= k < 200 else 700.0 + k)]
        if k % 15 == 0:  # a sparse meter: a reading every quarter hour
            out.append(Reading(t, "sparse", E, float(k)))
    return out


# (device, minute offsets of the late readings: between stored ones, k + 0.5)
LATE = [
    [("rising", [10.5, 11.5]), ("stuck", [120.5]), ("sparse", [7.5, 200.5])],
    [("stuck", [59.5, 150.5]), ("rising", [239.5]), ("nobody", [3.5])],
    [("stuck", [99.5]), ("stuck", [199.5]), ("sparse", [-30.0])],
    [("rising", [-5.0, 300.0])],
]


def one_by_one(readings: list[Reading], store, now: float) -> dict[str, tuple[float, float]]:
    """affected_blocks as it was, a device and a statement at a time (series_windows)."""
    settled = math.floor((now - SETTLE_S) / BLOCK_S) * BLOCK_S
    out = {}
    for device in sorted({r.device for r in readings}):
        times = [r.ts for r in readings if r.device == device]
        lo, hi = store.neighbour_times({device: (min(times), max(times))})[device]
        ends = []
        for metric in (E, P):
            key = (device, metric)
            for at, end in ((lo, 0), (hi, -1)):
                ts, _ = whole_runs(store, key, *series_over(store, [key], at, at)[key])
                ends.append(float(ts[end]) if ts.size else at)
        a, b = min(lo, ends[0], ends[2]), max(hi, ends[1], ends[3])
        start = math.floor(a / BLOCK_S) * BLOCK_S
        end = min(math.ceil(b / BLOCK_S) * BLOCK_S, settled)
        if end > start:
            out[device] = (float(start), float(end))
    return out


@pytest.fixture
def store(store_factory):
    store = store_factory.open()
    store.import_readings(_stored())
    yield store
    store.close()


@pytest.mark.parametrize("late", LATE)
def test_all_devices_at_once_equal_each_device_alone(store, late):
    readings = [Reading(T0 + 60.0 * k, device, metric, 1.0) for device, ks in late
                for k in ks for metric in (E, P)]
    together = affected_blocks(readings, store, NOW)
    alone: dict[str, tuple[float, float]] = {}
    for device in dict.fromkeys(d for d, _ in late):
        alone.update(affected_blocks([r for r in readings if r.device == device], store, NOW))
    assert together == alone == one_by_one(readings, store, NOW)
    assert together  # every case changes some closed block
