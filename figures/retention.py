"""Retention of raw readings (configuration ``retention.readings_days``): readings older
than that are deleted, but never one a meter's blocks are not closed over yet, so every
figure of a closed period (made of the blocks and the day summary, kept for ever) stays
what it was.

A settings change recomputes a device's blocks from its readings (figures/settings.py):
where readings were pruned that would empty old blocks, so refresh_settings keeps the
blocks of a pruned device and says so (see there).
"""

from __future__ import annotations

import math

from pue_monitor.config.model import Config
from pue_monitor.config.metrics import NO_ENERGY_ROLES
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import StoreProtocol

SECONDS_PER_DAY = 86_400


def prune_before(store: StoreProtocol, config: Config, now: float) -> float | None:
    """The time before which readings may go: ``readings_days`` before ``now``, and not
    after any meter's last closed block (a meter with readings but no block yet holds
    everything back); None when retention is off or nothing may go yet."""
    days = config.retention.readings_days
    if days is None:
        return None
    cutoff = math.floor((now - days * SECONDS_PER_DAY) / BLOCK_S) * BLOCK_S
    for _site, device in config.devices():
        if device.role in NO_ENERGY_ROLES:
            continue
        closed = store.last_interval_end(device.id)
        if closed is None:
            if store.first_reading_ts(device.id) is None:
                continue  # never read: nothing of it to keep
            return None
        cutoff = min(cutoff, closed)
    return cutoff


def prune(store: StoreProtocol, config: Config, now: float) -> int:
    """Delete the readings retention lets go; how many went."""
    before = prune_before(store, config, now)
    return 0 if before is None else store.prune_readings(before)
