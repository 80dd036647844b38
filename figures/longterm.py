"""Long live figures: trailing 30 days and 12 months, and whether the year is at risk.

They come from the closed 15-minute blocks (figures.periods), end on the last block
boundary, and change slowly: callers cache them (the web view keeps them a minute).
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pue_monitor.config.history import device_epochs
from pue_monitor.config.model import Config, Site
from pue_monitor.figures.periods import period_result, segmented_results
from pue_monitor.pue.atrisk import MonthEnergy, YearRisk, year_risk
from pue_monitor.pue.kpi import PueResult
from pue_monitor.pue.periods import BLOCK_S, months_between, window_bounds
from pue_monitor.store.base import StoreProtocol

LONG_WINDOWS = ("30d", "12m")
DAY_S = 86400.0


@dataclass(frozen=True)
class LongFigures:
    windows: dict[str, PueResult]
    year_risk: YearRisk


def long_window_bounds(window: str, now: float, tz: str) -> tuple[float, float]:
    """A long live window, ending on the last block boundary (the blocks it reads)."""
    if window not in LONG_WINDOWS:
        raise ValueError(f"unknown long window {window!r}")
    return window_bounds(window, math.floor(now / BLOCK_S) * BLOCK_S, tz)


def _months(store: StoreProtocol, config: Config, site: Site, start: float, end: float,
            now: float) -> tuple[list[MonthEnergy], PueResult | None]:
    """Each month's energies, and the figure of the whole span (None if no month)."""
    months = months_between(start, end, site.timezone)
    if not months:
        return [], None
    bounds = [start, *(a for _, _, a, _ in months[1:]), end]
    results, whole = segmented_results(store, config, site, bounds, now,
                                       [""] * (len(months) + 1), ensure=False)
    out = []
    for (_, month, a, b), result in zip(months, results):
        covered = result.coverage * (b - a)
        if covered > 0 and result.it_energy_kwh > 0:
            out.append(MonthEnergy(month, result.facility_energy_kwh, result.it_energy_kwh,
                                   covered / DAY_S))
    return out, whole


def site_year_risk(store: StoreProtocol, config: Config, site: Site, now: float) -> YearRisk:
    """Project the current calendar year of the site (its own time zone)."""
    tz = ZoneInfo(site.timezone)
    local = datetime.fromtimestamp(now, tz)
    year = local.year
    year_start = datetime(year, 1, 1, tzinfo=tz).timestamp()
    cut = math.floor(now / BLOCK_S) * BLOCK_S
    # basis: the year so far as one figure; only an ok one of 30 measured days is projected.
    so_far, basis = (_months(store, config, site, year_start, cut, now) if cut > year_start
                     else ([], None))
    last_year = {m.month: m for m in _months(
        store, config, site, datetime(year - 1, 1, 1, tzinfo=tz).timestamp(), year_start,
        now)[0]}
    month_days = calendar.monthrange(year, local.month)[1]
    month_end = datetime(year, local.month, month_days, tzinfo=tz).timestamp() + DAY_S
    remaining = {local.month: max(0.0, (month_end - cut) / DAY_S)}
    remaining.update({m: float(calendar.monthrange(year, m)[1])
                      for m in range(local.month + 1, 13)})
    return year_risk(year, so_far, remaining, last_year, basis, threshold=site.pue_threshold,
                     operator=site.threshold_operator)


def site_long_figures(store: StoreProtocol, config: Config, site: Site, now: float) -> LongFigures:
    windows = {w: period_result(store, config, site, *long_window_bounds(w, now, site.timezone),
                                now, window=w, ensure=False) for w in LONG_WINDOWS}
    return LongFigures(windows, site_year_risk(store, config, site, now))


def energy_totals(store: StoreProtocol, site: Site,
                  config: Config | None = None) -> dict[str, float]:
    """kWh per role since each meter's first closed block, share applied (a counter).
    With ``config``, a meter whose settings changed counts each stretch of its blocks
    under the role and share it had then (config.history)."""
    epochs = {d.id: device_epochs(config, site, d) for d in site.devices
              if config is not None and d.changes}
    meters = [d for d in site.devices if d.id in epochs
              or d.role.value not in ("monitor", "water")]
    # The day summary holds the same sums per day: a year is 365 rows a meter, not 35,040
    # blocks (the first overview after start-up summed every block of every site).
    plain = [d.id for d in meters if d.id not in epochs]
    totals = {device: total for (device, _), total in store.block_totals(
        plain, -math.inf, math.inf, by_day=store.days_complete()).items()} if plain else {}
    out: dict[str, float] = {}

    def add(role: str, energy: float | None, share: float) -> None:
        if energy is not None and role not in ("monitor", "water"):
            out[role] = out.get(role, 0.0) + energy * share

    for device in meters:
        if device.id in epochs:
            for e in epochs[device.id]:
                total = store.block_totals([device.id], e.start, e.end).get((device.id, 0))
                add(e.device.role.value, None if total is None else total.energy_kwh,
                    e.device.share)
        else:
            total = totals.get(device.id)
            add(device.role.value, None if total is None else total.energy_kwh, device.share)
    return out
