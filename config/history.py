"""Settings with history: which settings of a meter are in force at a time.

A device's own fields hold from the beginning of its history; each entry of its
``changes:`` (model.SettingsChange) overrides the keys it gives from its ``from`` on. The
time line is cut into *epochs*, each with one effective Device (its fields as in force
then, ``changes`` empty), so the figures compute every block and every stretch of a
period with the settings of its time. Change times lie on 15-minute boundaries: every
stored block has one set of settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from pue_monitor.config.errors import ConfigIssue
from pue_monitor.config.metrics import MeasurementPoint, Role
from pue_monitor.config.model import Config, Device, Site
from pue_monitor.pue.periods import BLOCK_S

# Roles a meter cannot change into or out of: water is counted in m³, not kWh.
FIXED_ROLES = (Role.WATER,)


@dataclass(frozen=True)
class Epoch:
    """[start, end) with one set of settings: ``device`` as in force then (start -inf for
    the first epoch, end +inf for the last); ``changed``: {setting: (old, new)} at start."""

    start: float
    end: float
    device: Device
    changed: dict[str, tuple[object, object]] = field(default_factory=dict)


def change_ts(value: datetime | date, tz: str) -> float:
    """A change's ``from`` as unix seconds: a date is local midnight in the site's zone."""
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime(value.year, value.month, value.day, tzinfo=ZoneInfo(tz)).timestamp()


def _shown(value: object) -> object:
    """A setting's value as JSON would show it (enums by value)."""
    return value.value if isinstance(value, Role | MeasurementPoint) else value


def settings_of(config: Config, site: Site, device: Device) -> dict[str, object]:
    """The history-able settings of an effective device, JSON-ready (the interval is the
    polling interval in force, the device's, else the site's, else the config's)."""
    return {"role": device.role.value, "share": device.share,
            "measurement_point": _shown(device.measurement_point),
            "counter_width_kwh": device.counter_width_kwh, "max_gap_s": device.max_gap_s,
            "interval_s": config.polling_for(site, device).interval_s,
            "reset_below_fraction": device.reset_below_fraction,
            "rated_max_w": device.rated_max_w, "stuck_power_polls": device.stuck_power_polls}


def _apply(config: Config, site: Site, device: Device, given: dict[str, object],
           base: Device) -> Device:
    """``device`` with the settings of one change written over it (not validated); a
    null interval returns to ``base``'s (the device's own, before any change)."""
    update = {k: v for k, v in given.items() if k != "interval_s"}
    if "role" in given and given["role"] != Role.IT and "measurement_point" not in given:
        update["measurement_point"] = None  # no longer an IT meter: no IT point
    if "interval_s" in given:
        polling = config.polling_for(site, device)
        interval = given["interval_s"]
        update["polling"] = (polling.model_copy(update={"interval_s": interval})
                             if interval is not None else base.polling)
    if update.get("share", 1.0) is None:
        update["share"] = 1.0
    return device.model_copy(update=update)


def device_epochs(config: Config, site: Site, device: Device) -> tuple[Epoch, ...]:
    """The device's epochs in time order (one, from -inf to +inf, without changes)."""
    base = device.model_copy(update={"changes": []}) if device.changes else device
    if not device.changes:
        return (Epoch(-math.inf, math.inf, base),)
    out: list[Epoch] = []
    start, current, changed = -math.inf, base, {}
    for change in device.changes:
        at = change_ts(change.from_, site.timezone)
        out.append(Epoch(start, at, current, changed))
        before = settings_of(config, site, current)
        current = _apply(config, site, current, change.given(), base)
        after = settings_of(config, site, current)
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        start = at
    out.append(Epoch(start, math.inf, current, changed))
    return tuple(out)


def device_at(config: Config, site: Site, device: Device, ts: float) -> Device:
    """The device with the settings in force at ``ts``."""
    if not device.changes:
        return device
    return next(e.device for e in device_epochs(config, site, device) if e.start <= ts < e.end)


def site_at(config: Config, site: Site, ts: float) -> Site:
    """The site with every device's settings as in force at ``ts``."""
    if not any(d.changes for d in site.devices):
        return site
    return site.model_copy(update={"devices": [device_at(config, site, d, ts)
                                               for d in site.devices]})


def change_times(config: Config, site: Site, start: float, end: float) -> list[float]:
    """Sorted times in (start, end) at which some device of the site changes settings."""
    return sorted({e.start for d in site.devices if d.changes
                   for e in device_epochs(config, site, d)[1:] if start < e.start < end})


def site_epochs(config: Config, site: Site, start: float, end: float
                ) -> list[tuple[float, float, Site]]:
    """[start, end) cut where settings change: (from, to, the site as in force then)."""
    cuts = [start, *change_times(config, site, start, end), end]
    return [(a, b, site_at(config, site, a)) for a, b in zip(cuts, cuts[1:])]


def changes_within(config: Config, site: Site, start: float, end: float) -> list[dict]:
    """Every change of a meter's settings in [start, end): device, time, and each
    setting's old and new value (JSON-ready, in time order)."""
    out = []
    for device in site.devices:
        for epoch in device_epochs(config, site, device)[1:]:
            if start <= epoch.start < end and epoch.changed:
                out.append({"device": device.id, "from": epoch.start,
                            "changed": {k: {"old": old, "new": new}
                                        for k, (old, new) in epoch.changed.items()}})
    return sorted(out, key=lambda c: (c["from"], c["device"]))


def check_history(config: Config) -> list[ConfigIssue]:
    """Every problem of the configured changes, with its path and value: ``from`` off a
    15-minute boundary or not after the change before, a change setting nothing, a
    water meter changing role, a settings combination a device may not have."""
    issues: list[ConfigIssue] = []
    for s, site in enumerate(config.sites):
        for d, device in enumerate(site.devices):
            current = device.model_copy(update={"changes": []})
            last = -math.inf
            for c, change in enumerate(device.changes):
                path = f"sites[{s}].devices[{d}].changes[{c}]"
                at = change_ts(change.from_, site.timezone)
                shown = change.from_.isoformat()
                if at % BLOCK_S:
                    issues.append(ConfigIssue(f"{path}.from", f'"{shown}" is not on a '
                                              "15-minute boundary (a stored block has one "
                                              "set of settings)"))
                if at <= last:
                    issues.append(ConfigIssue(f"{path}.from", f'"{shown}" is not after the '
                                              "change before it (changes go in date order)"))
                last = max(last, at)
                given = change.given()
                if not given:
                    issues.append(ConfigIssue(path, "a change sets no setting (give one of "
                                              "role, share, measurement_point, "
                                              "counter_width_kwh, max_gap_s, interval_s, "
                                              "reset_below_fraction, rated_max_w, "
                                              "stuck_power_polls)"))
                    continue
                new_role = given.get("role", current.role)
                if "role" in given and given["role"] is None:
                    issues.append(ConfigIssue(f"{path}.role", "a role cannot be null"))
                    continue
                if (new_role in FIXED_ROLES) != (current.role in FIXED_ROLES):
                    issues.append(ConfigIssue(f"{path}.role", f'"{_shown(new_role)}": a '
                                              "water meter stays a water meter (m³, not kWh)"))
                    continue
                merged = _apply(config, site, current, given, device)
                try:
                    # its own class: a device known from an edge's definition has no address
                    current = type(current).model_validate(merged.model_dump(by_alias=True))
                except ValidationError as exc:
                    reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
                    issues.append(ConfigIssue(path, "the settings from here on are not a "
                                              f"valid device: {reason}"))
                    current = merged
    return issues
