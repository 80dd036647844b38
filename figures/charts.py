"""Series for the web view's charts: a site's PUE and power by role over a fixed range,
the months of a year, a device's power, and the site's checks (partial PUE, energy
balance, counter against power).

Every figure here comes from the stored 15-minute blocks and their day summary
(figures.periods, store.block_totals), never from raw readings, so a year costs what a
day does. Ranges are fixed names (RANGES); each ends on the last closed block, so a
series changes only when a block closes and callers may cache it until then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pue_monitor.config.metrics import Role
from pue_monitor.config.history import site_at
from pue_monitor.config.model import Config, Device, Site
from pue_monitor.figures.periods import energy_meters, segmented_results
from pue_monitor.pue.kpi import PueResult
from pue_monitor.pue.kpis import kpis
from pue_monitor.pue.periods import BLOCK_S, months_between
from pue_monitor.store.base import DAY_S, StoreProtocol

HOUR_S = 3600
# range name -> the step of its points ("block" 15 min, "hour", "day", "month").
RANGES = {"day": "block", "week": "hour", "month": "day", "year": "month"}
# How far back each range reaches (the year range is the 12 calendar months to now).
RANGE_SPAN_S = {"day": 86400, "week": 7 * 86400, "month": 30 * 86400}
# The roles a stacked power chart shows, bottom to top (facility is the total, a line).
STACK_ROLES = (Role.IT, Role.COOLING, Role.POWER_DISTRIBUTION, Role.LIGHTING, Role.OTHER,
               Role.EXCLUDE)


def last_block(now: float) -> float:
    """Where every range ends: the last closed 15-minute block boundary."""
    return math.floor(now / BLOCK_S) * BLOCK_S


def range_bounds(name: str, now: float, tz: str) -> list[float]:
    """Point boundaries of a range ending on the last block boundary (the last point of a
    day, month or year range may be shorter: it ends now)."""
    if name not in RANGES:
        raise ValueError(f"unknown range {name!r} (known: {', '.join(RANGES)})")
    end = last_block(now)
    zone = ZoneInfo(tz)
    if name == "day":
        return [float(t) for t in range(int(end - RANGE_SPAN_S["day"]), int(end) + 1, BLOCK_S)]
    if name == "week":
        top = math.floor(end / HOUR_S) * HOUR_S
        bounds = [float(t) for t in range(int(top - RANGE_SPAN_S["week"]), int(top) + 1, HOUR_S)]
        return bounds + ([end] if end > top else [])
    if name == "month":
        today = datetime.fromtimestamp(end, zone).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)
        days = [(today - timedelta(days=n)).replace(tzinfo=zone).timestamp()
                for n in range(29, -1, -1)]
        return days + ([end] if end > days[-1] else [])
    local = datetime.fromtimestamp(end, zone)
    first = datetime(local.year - 1, local.month, 1, tzinfo=zone).timestamp()
    months = months_between(first, end, tz)[1:]  # the 12 months ending with this one
    return [a for _, _, a, _ in months] + [end]


@dataclass(frozen=True)
class Point:
    """One point of a series: [start, end) and its figure."""

    start: float
    end: float
    result: PueResult


def pue_series(store: StoreProtocol, config: Config, site: Site, name: str,
               now: float) -> list[Point]:
    """The site's PUE per point of a range, from stored blocks and day summaries."""
    bounds = range_bounds(name, now, site.timezone)
    if len(bounds) < 2:
        return []
    results, _ = segmented_results(store, config, site, bounds, now,
                                   [name] * len(bounds), ensure=False)
    return [Point(a, b, r) for a, b, r in zip(bounds, bounds[1:], results)]


def year_months(store: StoreProtocol, config: Config, site: Site, year: int,
                now: float) -> tuple[list[tuple[int, float, float, PueResult | None]],
                                     PueResult | None]:
    """Each month of ``year`` (month, start, end, figure; None for a month not begun) and
    the year so far, up to the last closed block."""
    zone = ZoneInfo(site.timezone)
    end = last_block(now)
    starts = [datetime(year, m, 1, tzinfo=zone).timestamp() for m in range(1, 13)]
    ends = starts[1:] + [datetime(year + 1, 1, 1, tzinfo=zone).timestamp()]
    begun = [(m, a, min(b, end)) for m, a, b in zip(range(1, 13), starts, ends) if a < end]
    if not begun:
        return [(m, a, b, None) for m, a, b in zip(range(1, 13), starts, ends)], None
    bounds = [a for _, a, _ in begun] + [begun[-1][2]]
    results, whole = segmented_results(store, config, site, bounds, now,
                                       [f"{year:04d}-{m:02d}" for m, _, _ in begun]
                                       + [f"{year:04d}"], ensure=False)
    out: list[tuple[int, float, float, PueResult | None]] = [
        (m, a, b, r) for (m, a, b), r in zip(begun, results)]
    out += [(m, a, b, None) for m, a, b in zip(range(1, 13), starts, ends)][len(begun):]
    return out, whole


def _totals(store: StoreProtocol, devices: list[str], bounds: list[float]
            ) -> dict[tuple[str, int], tuple[float | None, float]]:
    """(energy kWh, covered s) per (device, point) of ``bounds``. Where the points are
    whole days of the store's day summary (the month and year ranges), the days come from
    it (a year is 365 rows a meter, not 35,040 blocks) and only today from the blocks."""
    start, end = bounds[0], bounds[-1]
    offset = store.day_offset_s
    today = math.floor((end + offset) / DAY_S) * DAY_S - offset
    on_days = all((b + offset) % DAY_S == 0 for b in bounds[:-1]) and today > start
    if not on_days or not store.days_complete():
        return {k: (t.energy_kwh, t.covered_s) for k, t in
                store.block_totals(devices, start, end, bounds[1:-1]).items()}
    edges = [b for b in bounds[1:-1] if b < today]
    out = {k: (t.energy_kwh, t.covered_s) for k, t in
           store.block_totals(devices, start, today, edges, by_day=True).items()}
    last = len(bounds) - 2  # today lies in the last point
    for (device, _), t in store.block_totals(devices, today, end).items():
        energy, covered = out.get((device, last), (None, 0.0))
        out[(device, last)] = (t.energy_kwh if energy is None else
                               energy + (t.energy_kwh or 0.0), covered + t.covered_s)
    return out


def _mean_kw(energy_kwh: float | None, covered_s: float) -> float | None:
    if energy_kwh is None or covered_s <= 0:
        return None
    return energy_kwh / (covered_s / HOUR_S)


def power_series(store: StoreProtocol, site: Site, name: str, now: float,
                 config: Config | None = None
                 ) -> tuple[list[float], dict[str, list[float | None]]]:
    """Mean power per role (kW, shares applied) over each point of a range: the point's
    boundaries and {role: values}. A role is a gap (None) where any of its meters has no
    block; each meter's mean is over the time it measured. With ``config``, each point
    takes the roles and shares in force at its start (config.history)."""
    bounds = range_bounds(name, now, site.timezone)
    points = len(bounds) - 1
    held = [site_at(config, site, a) if config is not None else site for a in bounds[:-1]]
    ids = sorted({d.id for s in held for d in energy_meters(s)})
    totals = _totals(store, ids, bounds)
    out: dict[str, list[float | None]] = {}
    for index, then in enumerate(held):
        roles: dict[str, list[Device]] = {}
        for device in energy_meters(then):
            roles.setdefault(device.role.value, []).append(device)
        for role, devices in roles.items():
            kw = [_mean_kw(*t) if t else None
                  for t in (totals.get((d.id, index)) for d in devices)]
            out.setdefault(role, [None] * points)[index] = (
                None if any(v is None for v in kw)
                else sum(v * d.share for v, d in zip(kw, devices)))  # type: ignore[operator]
    return bounds, out


def device_power(store: StoreProtocol, device: Device, tz: str, name: str,
                 now: float) -> tuple[list[float], list[float | None], list[float]]:
    """A meter's own mean power (kW, share not applied) over each point of a range, and
    the share of each point it measured: boundaries, kW, coverage."""
    bounds = range_bounds(name, now, tz)
    totals = _totals(store, [device.id], bounds)
    kw, coverage = [], []
    for index, (a, b) in enumerate(zip(bounds, bounds[1:])):
        total = totals.get((device.id, index))
        kw.append(_mean_kw(*total) if total else None)
        coverage.append(min(1.0, total[1] / (b - a)) if total and b > a else 0.0)
    return bounds, kw, coverage


@dataclass(frozen=True)
class SiteChecks:
    """The site's checks over the trailing 30 days (from blocks): partial PUE, energy
    balance and each meter's counter against its integrated power."""

    start: float
    end: float
    ppue: dict[str, float | None]
    balance: dict | None
    cross_checks: list[dict]


def site_checks(store: StoreProtocol, config: Config, site: Site, now: float) -> SiteChecks:
    end = last_block(now)
    start = end - RANGE_SPAN_S["month"]
    _, result = segmented_results(store, config, site, [start, end], now, ["", "30d"],
                                  ensure=False)
    year = datetime.fromtimestamp(start, ZoneInfo(site.timezone)).year
    extra = kpis(result, emission_factor=config.emission_factor(year),
                 balance_tolerance=site.balance_tolerance,
                 coverage_threshold=site.coverage_threshold)
    balance = None if extra.balance is None else {
        "submetered_kwh": extra.balance.submetered_kwh,
        "unexplained_kwh": extra.balance.unexplained_kwh,
        "unexplained_share": extra.balance.unexplained_share,
        "flagged": extra.balance.flagged}
    checks = [{"device": m.device, "counter_kwh": m.cross_check[0],
               "power_kwh": m.cross_check[1], "difference_share": m.cross_check[2],
               "flagged": m.cross_check[2] is not None
               and m.cross_check[2] > site.counter_power_tolerance}
              for m in result.meters if m.cross_check is not None]
    return SiteChecks(start, end, {"cooling": extra.ppue_cooling,
                                   "power_distribution": extra.ppue_power_distribution},
                      balance, checks)


__all__ = ["RANGES", "STACK_ROLES", "Point", "SiteChecks", "device_power", "last_block",
           "power_series", "pue_series", "range_bounds", "site_checks", "year_months"]
