"""The settings a meter's figures are computed with, and keeping stored blocks in step
with them (issue 11, "settings have history": the part without `from:` dates).

A stored 15-minute block depends on its meter's settings (profile, declared counter
width, replacements, maximum gap, poll interval, data-quality settings). The store keeps
a fingerprint of the settings each device's blocks were made with; when the configuration
says otherwise (at start-up, in every command that opens the store, and by
`pue-monitor recompute`), that device's blocks are dropped and computed again from the
readings, so a report equals a fresh import with the same configuration. A report lists
every meter's settings, and its digest covers them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import UTC, datetime

from pue_monitor.config.metrics import Role
from pue_monitor.config.model import QUALITY_SETTINGS, Config, Device, Site
from pue_monitor.figures.service import max_gap_s
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import StoreProtocol

log = logging.getLogger(__name__)

NO_BLOCKS = (Role.MONITOR, Role.WATER)  # devices the roll-up makes no blocks for


def block_settings(config: Config, site: Site, device: Device) -> dict:
    """What a device's stored blocks depend on, JSON-ready."""
    return {
        "profile": device.profile,
        "counter_width_kwh": device.counter_width_kwh,
        "replacements": [[r.at.isoformat(), r.old_final_kwh, r.new_initial_kwh]
                         for r in device.replacements],
        "max_gap_s": max_gap_s(config, site, device),
        "interval_s": config.polling_for(site, device).interval_s,
        **{name: getattr(device, name) for name in QUALITY_SETTINGS},
    }


def meter_settings(config: Config, site: Site, device: Device) -> dict:
    """Everything a report's figure of this meter rests on: its place in the ratio and
    its blocks' settings."""
    return {"role": device.role.value, "share": device.share,
            "measurement_point": device.measurement_point.value
            if device.measurement_point else None,
            **block_settings(config, site, device)}


def fingerprint(settings: dict) -> str:
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def stale_devices(store: StoreProtocol, config: Config) -> dict[str, str]:
    """{device: new fingerprint} of the devices whose blocks were made with other
    settings (or with settings not recorded: a store of an earlier version)."""
    stored = store.settings_fingerprints()
    out = {}
    for site, device in config.devices():
        if device.role in NO_BLOCKS:
            continue
        now = fingerprint(block_settings(config, site, device))
        if stored.get(device.id) != now:
            out[device.id] = now
    return out


def refresh_settings(store: StoreProtocol, config: Config
                     ) -> dict[str, tuple[float, float] | None]:
    """Drop the blocks of every device whose settings changed (they are recomputed from
    the readings when next needed): {device: the block-aligned span its blocks covered,
    None if it had none}, by device."""
    stale = stale_devices(store, config)
    if not store.settings_fingerprints():
        # A store of an earlier version, which kept no fingerprints: its blocks were made
        # with the configuration it ran with, taken to be this one (dropping them all
        # would make an upgrade recompute years of blocks). Only recorded.
        store.replace_settings(stale, drop_blocks=False)
        return {}
    spans: dict[str, tuple[float, float] | None] = {}
    for device in sorted(stale):
        first, end = store.first_reading_ts(device), store.last_interval_end(device)
        begins = math.inf if first is None else math.floor(first / BLOCK_S) * BLOCK_S
        if end is not None and store.block_starts([device], -math.inf, min(begins, end)):
            # Blocks older than its oldest reading: retention pruned what they were made
            # from, so recomputing would empty them. Kept, with their settings on record.
            log.error("device %s: its settings changed, but its readings before %s were "
                      "deleted by retention (retention.readings_days): its blocks are kept "
                      "as computed with the earlier settings", device,
                      "its last block" if first is None
                      else f"{datetime.fromtimestamp(first, UTC):%Y-%m-%d %H:%M} UTC")
            del stale[device]
            continue
        spans[device] = (None if first is None or end is None
                         else (math.floor(first / BLOCK_S) * BLOCK_S, end))
    if stale:
        store.replace_settings(stale)
    return spans
