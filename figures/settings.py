"""The settings a meter's figures are computed with, and keeping stored blocks in step
with them (issue 11, "settings have history").

A stored 15-minute block depends on its meter's settings in force at its time (profile,
declared counter width, replacements, maximum gap, poll interval, data-quality settings;
for a facility meter also the site's IT meters, evidence of a stuck counter). The store
keeps, per device, the time line of the settings its blocks were made with
(block_timeline); when the configuration says otherwise (at start-up, in every command
that opens the store, and by `pue-monitor recompute`), that device's blocks from the
first time that differs on are dropped and computed again from the readings, so a report
equals a fresh import with the same configuration. The record also names the PUE method
the blocks were computed by (pue.kpi.METHOD_VERSION): blocks of another method are stale
over all their time. A report lists every meter's settings
and every change of them within its period, and its digest covers them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import UTC, datetime

from pue_monitor.config.metrics import Role
from pue_monitor.config.history import site_epochs
from pue_monitor.config.model import QUALITY_SETTINGS, Config, Device, Site
from pue_monitor.figures.rollup import has_blocks
from pue_monitor.figures.service import max_gap_s
from pue_monitor.pue.kpi import METHOD_VERSION
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import StoreProtocol

log = logging.getLogger(__name__)
SETTINGS, METHOD = "settings", "method"  # why a device's blocks are stale


def block_settings(config: Config, site: Site, device: Device) -> dict:
    """What a device's stored blocks depend on, JSON-ready (``site`` and ``device`` as in
    force at the blocks' time, config.history). A facility meter's blocks also rest on
    the site's IT meters, whose power is evidence of a stuck counter."""
    out = {
        "profile": device.profile,
        "counter_width_kwh": device.counter_width_kwh,
        "replacements": [[r.at.isoformat(), r.old_final_kwh, r.new_initial_kwh]
                         for r in device.replacements],
        "max_gap_s": max_gap_s(config, site, device),
        "interval_s": config.polling_for(site, device).interval_s,
        **{name: getattr(device, name) for name in QUALITY_SETTINGS},
    }
    if device.role == Role.FACILITY:
        out["stuck_evidence"] = [[d.id, d.share, max_gap_s(config, site, d), d.rated_max_w]
                                 for d in site.devices if d.role == Role.IT]
    return out


def meter_settings(config: Config, site: Site, device: Device) -> dict:
    """Everything a report's figure of this meter rests on: its place in the ratio and
    its blocks' settings."""
    return {"role": device.role.value, "share": device.share,
            "measurement_point": device.measurement_point.value
            if device.measurement_point else None,
            **block_settings(config, site, device)}


def fingerprint(settings: object) -> str:
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def block_timeline(config: Config, site: Site, device: Device) -> list[list]:
    """[[from, block settings], ...] of a device in time order: a new entry wherever a
    change of the site's settings changes what its blocks rest on (``from`` None for the
    beginning of time)."""
    out: list[list] = []
    for start, _, then in site_epochs(config, site, -math.inf, math.inf):
        settings = block_settings(config, then, next(d for d in then.devices
                                                     if d.id == device.id))
        if not out or out[-1][1] != settings:
            out.append([None if start == -math.inf else start, settings])
    return out


def _legacy(config: Config, site: Site, device: Device) -> str:
    """The fingerprint an earlier version recorded (one set of settings per device)."""
    settings = block_settings(config, site, device)
    settings.pop("stuck_evidence", None)
    return fingerprint(settings)


def record_of(timeline: list[list]) -> str:
    """What the store keeps of a device's blocks: the PUE method they were computed by
    (pue.kpi.METHOD_VERSION) and their settings' time line."""
    return json.dumps({"method": METHOD_VERSION, "timeline": timeline}, sort_keys=True,
                      separators=(",", ":"))


def _parse_record(stored: str | None) -> tuple[str | None, object]:
    """(method, time line) of a stored record; the method None for a record of an
    earlier version (the time line alone), the time line None if unreadable."""
    try:
        old = json.loads(stored) if stored is not None else None
    except ValueError:
        return None, None
    if isinstance(old, dict):
        method = old.get("method")
        return (method if isinstance(method, str) else ""), old.get("timeline")
    return None, old


def first_difference(old: object, timeline: list[list]) -> float | None:
    """From when blocks made under the ``old`` time line differ from ``timeline``'s:
    -inf for all time (also for a time line that cannot be read), None if nowhere."""
    if not isinstance(old, list):
        return -math.inf
    points = sorted({-math.inf if e[0] is None else e[0] for e in old + timeline})
    for point in points:
        if _at(old, point) != _at(timeline, point):
            return point
    return None


def _at(timeline: list[list], ts: float) -> object:
    held = None
    for start, settings in timeline:
        if start is None or start <= ts:
            held = settings
    return held


def stale_devices(store: StoreProtocol, config: Config) -> dict[str, tuple[str, float, str]]:
    """{device: (its new record, from when its blocks are stale, why)} of the devices
    whose blocks were made with other settings over some of their time, or by another
    PUE method (then all of it: -inf). NaN: the same settings and method, only the
    record to be rewritten (an earlier version's form of it)."""
    stored = store.settings_fingerprints()
    out = {}
    for site, device in config.devices():
        if not has_blocks(config, site, device):
            continue
        timeline = block_timeline(config, site, device)
        record = record_of(timeline)
        was = stored.get(device.id)
        if was == record:
            continue
        if (was is not None and len(timeline) == 1
                and was == _legacy(config, site, device)):
            out[device.id] = (record, math.nan, SETTINGS)  # an earlier version's record
            continue
        method, old = _parse_record(was)
        if method is not None and method != METHOD_VERSION:
            out[device.id] = (record, -math.inf, METHOD)
            continue
        since = first_difference(old, timeline)
        if since is None:
            # The same time line: the store's record is of an earlier form (no method:
            # the blocks are taken as made by this one, as a store that kept no record
            # at all is, see refresh_settings), or written differently.
            out[device.id] = (record, math.nan if method is None else -math.inf, SETTINGS)
        else:
            out[device.id] = (record, since, SETTINGS)
    return out


def refresh_settings(store: StoreProtocol, config: Config
                     ) -> dict[str, tuple[float, float] | None]:
    """Drop the blocks of every device whose settings changed, from the first time they
    changed (they are recomputed from the readings when next needed): {device: the
    block-aligned span of the dropped blocks, None if there were none}, by device."""
    stale = stale_devices(store, config)
    if not store.settings_fingerprints():
        # A store of an earlier version, which kept no fingerprints: its blocks were made
        # with the configuration it ran with, taken to be this one (dropping them all
        # would make an upgrade recompute years of blocks). Only recorded.
        store.replace_settings({d: r for d, (r, _, _) in stale.items()}, drop_blocks=False)
        return {}
    spans: dict[str, tuple[float, float] | None] = {}
    since = {d: t for d, (_, t, _) in stale.items() if not math.isnan(t)}
    for device, t in sorted(since.items()):
        first, end = store.first_reading_ts(device), store.last_interval_end(device)
        begins = math.inf if first is None else math.floor(first / BLOCK_S) * BLOCK_S
        if end is not None and store.block_starts([device], t, min(begins, end)):
            # Blocks from the change on, older than the oldest reading: retention pruned
            # what they were made from, so recomputing would empty them. Kept, with their
            # earlier settings on record.
            why = stale[device][2]
            log.error("device %s: %s, but its readings before %s were deleted by "
                      "retention (retention.readings_days): its blocks are kept as "
                      "computed with %s", device,
                      "its settings changed" if why == SETTINGS
                      else f"the PUE method is now {METHOD_VERSION.split()[0]}",
                      "its last block" if first is None
                      else f"{datetime.fromtimestamp(first, UTC):%Y-%m-%d %H:%M} UTC",
                      "the earlier settings" if why == SETTINGS else "the earlier method")
            del stale[device], since[device]
            continue
        lo = None if first is None else max(math.floor(first / BLOCK_S) * BLOCK_S, t)
        spans[device] = None if lo is None or end is None or end <= lo else (lo, end)
    if stale:
        store.replace_settings({d: r for d, (r, _, _) in stale.items()},
                               since={d: t for d, t in since.items()})
    # An earlier version's record of the same settings is only rewritten.
    return spans
