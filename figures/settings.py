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
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from pue_monitor.config.metrics import Role
from pue_monitor.config.history import site_epochs
from pue_monitor.config.model import QUALITY_SETTINGS, Config, Device, Site
from pue_monitor.figures.rollup import has_blocks
from pue_monitor.figures.service import max_gap_s
from pue_monitor.pue.kpi import METHOD_VERSION
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import StoreProtocol

log = logging.getLogger(__name__)
SETTINGS, METHOD_CHANGE = "settings", "method"  # why a device's blocks are stale
# The method blocks are recorded as computed by: its version alone, so rewording its
# description changes no record.
METHOD = METHOD_VERSION.split()[0]
# A record of the form before the method was kept (the time line alone) was written by
# version 4 (its blocks may be older still: they are taken as version 4's).
LEGACY_METHOD = "pue-monitor/4"
# After a method change, blocks whose readings retention deleted stay the earlier
# method's up to this long after the oldest reading: a block is judged with the readings
# before it (NEAR_READINGS; runs of equal readings), which must still be there.
METHOD_CUT_MARGIN_S = 3600.0


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


def record_of(timeline: list[list], earlier: list[list] | tuple = ()) -> str:
    """What the store keeps of a device's blocks: the PUE method they are computed by
    (METHOD), their settings' time line and, where blocks of an earlier method were
    kept, [[method, until], ...]: blocks starting before ``until`` are that method's."""
    record: dict = {"method": METHOD, "timeline": timeline}
    if earlier:
        record["earlier"] = [list(e) for e in earlier]
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def _parse_record(stored: str | None) -> tuple[str | None, object, list[list]]:
    """(method, time line, earlier) of a stored record: a record of the form before the
    method was kept (the time line alone) is LEGACY_METHOD's; the method and time line
    None if unreadable."""
    try:
        old = json.loads(stored) if stored is not None else None
    except ValueError:
        return None, None, []
    if isinstance(old, list):
        return LEGACY_METHOD, old, []
    if not isinstance(old, dict):
        return None, None, []
    method = old.get("method")
    earlier = [e for e in old.get("earlier") or []
               if isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)
               and isinstance(e[1], int | float)]
    return (method if isinstance(method, str) else None), old.get("timeline"), earlier


def earlier_methods(store: StoreProtocol, devices: Iterable[str]) -> dict[str, list[list]]:
    """Each of ``devices``' blocks kept as computed by an earlier PUE method (their
    readings were deleted by retention before the method changed, see refresh_settings):
    {device: [[method, until], ...]}, the blocks before ``until`` being that method's."""
    stored = store.settings_fingerprints()
    out = {}
    for device in devices:
        earlier = _parse_record(stored.get(device))[2]
        if earlier:
            out[device] = earlier
    return out


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


class Stale(NamedTuple):
    """Why a device's stored blocks are stale, and what to record of them."""

    timeline: list[list]
    earlier: list[list]  # the earlier methods' kept blocks, as recorded
    since: float  # from when its blocks are stale (-inf: all; NaN: none, only rewritten)
    why: str  # SETTINGS or METHOD_CHANGE
    was: str | None  # the method the blocks were computed by

    @property
    def record(self) -> str:
        return record_of(self.timeline, self.earlier)


def stale_devices(store: StoreProtocol, config: Config) -> dict[str, Stale]:
    """The devices whose blocks were made with other settings over some of their time,
    or by another PUE method (then all of it), or whose record is only to be rewritten
    (an earlier version's form of the same)."""
    stored = store.settings_fingerprints()
    out = {}
    for site, device in config.devices():
        if not has_blocks(config, site, device):
            continue
        timeline = block_timeline(config, site, device)
        was = stored.get(device.id)
        method, old, earlier = _parse_record(was)
        if was == record_of(timeline, earlier):
            continue
        if (was is not None and len(timeline) == 1
                and was == _legacy(config, site, device)):
            # An earlier version's fingerprint of the same settings: as a record of the
            # time line alone, LEGACY_METHOD's.
            method, old = LEGACY_METHOD, timeline
        if method is not None and method != METHOD:
            out[device.id] = Stale(timeline, earlier, -math.inf, METHOD_CHANGE, method)
            continue
        since = first_difference(old, timeline)
        # None: the same method and time line, written in another form: rewritten only.
        out[device.id] = Stale(timeline, earlier, math.nan if since is None else since,
                               SETTINGS, method)
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
        store.replace_settings({d: s.record for d, s in stale.items()}, drop_blocks=False)
        return {}
    spans: dict[str, tuple[float, float] | None] = {}
    since = {d: s.since for d, s in stale.items() if not math.isnan(s.since)}
    for device, t in sorted(since.items()):
        first, end = store.first_reading_ts(device), store.last_interval_end(device)
        begins = math.inf if first is None else math.floor(first / BLOCK_S) * BLOCK_S
        if end is not None and store.block_starts([device], t, min(begins, end)):
            # Blocks from the change on, older than the oldest reading: retention pruned
            # what they were made from, so recomputing would empty them.
            entry = stale[device]
            when = ("its last block" if first is None
                    else f"{datetime.fromtimestamp(first, UTC):%Y-%m-%d %H:%M} UTC")
            if entry.why == SETTINGS:
                # Kept, with their earlier settings on record (told at every start).
                log.error("device %s: its settings changed, but its readings before %s "
                          "were deleted by retention (retention.readings_days): its "
                          "blocks are kept as computed with the earlier settings",
                          device, when)
                del stale[device], since[device]
                continue
            # A new method: the blocks whose readings are gone stay the earlier method's,
            # on record as such; from a margin after the oldest reading (the rules judge
            # a step by the readings before it) they are computed again.
            cut = end if first is None else min(
                end, math.ceil((first + METHOD_CUT_MARGIN_S) / BLOCK_S) * BLOCK_S)
            log.warning("device %s: the PUE method is now %s; its blocks before %s were "
                        "computed by %s and are kept (retention deleted their readings), "
                        "those after are computed again", device, METHOD,
                        datetime.fromtimestamp(cut, UTC).strftime("%Y-%m-%d %H:%M UTC"),
                        entry.was)
            stale[device] = entry._replace(earlier=[*entry.earlier, [entry.was, cut]],
                                           since=cut)
            since[device] = t = cut
        lo = None if first is None else max(math.floor(first / BLOCK_S) * BLOCK_S, t)
        spans[device] = None if lo is None or end is None or end <= lo else (lo, end)
    if stale:
        store.replace_settings({d: s.record for d, s in stale.items()},
                               since={d: t for d, t in since.items()})
    # An earlier version's record of the same settings is only rewritten.
    return spans
