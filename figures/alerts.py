"""The alert history: what the monitor records when a device changes state (up,
degraded, down) or a site's PUE crosses its threshold, so each site page can show its
own history (store.base.EventStoreProtocol). One pass runs after each roll-up.

A change is recorded against the state last recorded for the same subject; a subject
with no record yet counts as healthy (up, within the threshold), so the first pass after
installation records only what is wrong, not every healthy device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pue_monitor.config.model import Config
from pue_monitor.figures.periods import recent_results
from pue_monitor.pue.kpi import PueResult
from pue_monitor.pue.periods import BLOCK_S, TRAILING
from pue_monitor.store.base import DeviceHealth, SiteEvent, StoreProtocol
from pue_monitor.store.model import HealthState

DEVICE, PUE = "device", "pue"
# The PUE judged for alerts: the trailing 24 hours ending on the last closed block (a
# day evens out the hour-to-hour swings of cooling; the blocks make it cheap).
ALERT_WINDOW = "24h"
OVER, WITHIN = "over", "within"


def device_events(config: Config, health: Mapping[str, DeviceHealth],
                  last: Mapping[tuple[str, str, str], SiteEvent]) -> list[SiteEvent]:
    """A device whose polled state differs from the one last recorded."""
    out = []
    for site, device in config.devices():
        h = health.get(device.id)
        if h is None:
            continue  # never polled: nothing to tell yet
        state = h.state.value
        before = last.get((site.id, DEVICE, device.id))
        if state == (before.state if before else HealthState.UP.value):
            continue
        at = h.last_poll_ts if h.last_poll_ts is not None else h.last_ok_ts
        if at is None or (before is not None and at <= before.ts):
            continue
        out.append(SiteEvent(site.id, at, DEVICE, device.id, state, None,
                             None if state == HealthState.UP.value else h.last_error_kind))
    return out


def pue_events(figures: Mapping[str, PueResult],
               last: Mapping[tuple[str, str, str], SiteEvent]) -> list[SiteEvent]:
    """A site whose judged PUE crossed its threshold since the state last recorded; a
    figure that is not judged (incomplete, invalid) changes nothing."""
    out = []
    for site_id, fig in figures.items():
        if fig.compliant is None or fig.pue is None:
            continue
        state = WITHIN if fig.compliant else OVER
        before = last.get((site_id, PUE, fig.window))
        if state == (before.state if before else WITHIN):
            continue
        if before is not None and fig.end <= before.ts:
            continue
        out.append(SiteEvent(site_id, fig.end, PUE, fig.window, state, fig.pue,
                             f"{fig.operator} {fig.threshold}"))
    return out


def alert_figures(store: StoreProtocol, config: Config, now: float) -> dict[str, PueResult]:
    """Each site's ALERT_WINDOW figure, ending on the last closed block."""
    end = math.floor(now / BLOCK_S) * BLOCK_S
    span = (end - TRAILING[ALERT_WINDOW], end)
    return {site.id: recent_results(store, config, site, {ALERT_WINDOW: span})[ALERT_WINDOW]
            for site in config.sites}


def record_alerts(store: StoreProtocol, config: Config, now: float) -> list[SiteEvent]:
    """Record what changed since the last pass; the events recorded."""
    last = store.latest_events()
    events = device_events(config, store.health(), last)
    events += pue_events(alert_figures(store, config, now), last)
    store.record_events(events)
    return events
