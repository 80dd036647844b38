"""Audit reports: a site's figures over a period as one JSON-ready dict.

Every report carries the inputs its PUE was computed from (per meter: role, share,
energy, covered time) and a SHA-256 digest of them, so an auditor can recompute the
figure from the report alone and check that nothing was altered.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import multiprocessing as mp
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import datetime
from zoneinfo import ZoneInfo

from pue_monitor.config.metrics import WATER_METRIC, Role
from pue_monitor.config.history import changes_within, site_at
from pue_monitor.config.model import Config, Site
from pue_monitor.figures.periods import segmented_results
from pue_monitor.figures.service import swaps_of
from pue_monitor.figures.settings import earlier_methods, meter_settings
from pue_monitor.pue.energy import CounterSeries
from pue_monitor.pue.kpi import METHOD_VERSION, PueResult
from pue_monitor.pue.kpis import Kpis, Water, kpis
from pue_monitor.pue.periods import months_between, parse_period
from pue_monitor.pue.province import province_figure
from pue_monitor.pue.runlog import Run, outages
from pue_monitor.store.base import ProgressFn, StoreProtocol, series_over

REPORT_SCHEMA_VERSION = 1
# Periods longer than this also list their calendar months.
MONTHLY_FROM_S = 40 * 86400


def iso(ts: float, tz: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).isoformat(timespec="seconds")


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def water_use(store: StoreProtocol, site: Site, start: float, end: float) -> Water | None:
    """Site water over [start, end) from its water meters' counters, with the time the
    least covered of them measured (one without a reading measured none); None without
    a water meter."""
    total, covered = 0.0, math.inf
    for device in site.devices:
        if device.role != Role.WATER:
            continue
        key = (device.id, WATER_METRIC)
        # A water meter's counter follows the counter rules, its swaps and width included
        # (the fields say kWh; for a water meter they hold m3).
        series = CounterSeries.from_arrays(
            *series_over(store, [key], start, end)[key], width_kwh=device.counter_width_kwh,
            replacements=swaps_of(device))
        spans = series.spans(start, end)
        covered = min(covered, sum(b - a for a, b in spans))
        if spans:
            total += series.energy(spans) * device.share
    return None if covered == math.inf else Water(total, covered)


def inputs_of(result: PueResult, site: Site, settings: dict | None = None,
              changes: list[dict] | None = None, earlier: list[dict] | None = None) -> dict:
    """What the PUE was computed from, canonical: enough to recompute it by hand, and
    the settings of every meter it rests on (figures.settings) with their changes within
    the period (config.history), so the digest covers them; and, only where there are
    any, the blocks kept as an earlier PUE method computed them (earlier_in), so that
    other reports' digests stay as they were."""
    inputs = {
        "settings": settings or {},
        "settings_changes": changes or [],
        "site": site.id,
        "start": result.start,
        "end": result.end,
        "method": METHOD_VERSION,
        "threshold": result.threshold,
        "operator": result.operator,
        "coverage_threshold": site.coverage_threshold,
        "covered_s": result.coverage * (result.end - result.start),
        "meters": [{"device": m.device, "role": m.role, "share": m.share,
                    "energy_kwh": _num(m.energy_kwh), "covered_s": m.covered_s,
                    "common_s": m.common_s, "method": m.method,
                    "flags": dict(m.counted)} for m in result.meters],
    }
    if earlier:
        inputs["earlier_methods"] = earlier
    return inputs


def digest(inputs: dict) -> str:
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def figure(result: PueResult, tz: str) -> dict:
    return {
        "start": iso(result.start, tz), "end": iso(result.end, tz),
        "category": result.category_label, "pue": _num(result.pue),
        "facility_energy_kwh": _num(result.facility_energy_kwh),
        "it_energy_kwh": _num(result.it_energy_kwh), "coverage": _num(result.coverage),
        "status": result.status, "threshold": result.threshold, "operator": result.operator,
        "compliant": result.compliant,
    }


def earlier_in(store: StoreProtocol, result: PueResult, start: float, end: float
               ) -> list[dict]:
    """The meters of ``result`` with stored blocks in [start, end) that an earlier PUE
    method computed (figures.settings.earlier_methods): device, method, and the span
    [from, until) of that method's blocks (from None: all before until). Each method's span
    begins where the one before it on record ended."""
    kept = earlier_methods(store, dict.fromkeys(m.device for m in result.meters))
    out = []
    for device, methods in kept.items():
        since = None
        for method, until in methods:
            a, b = start if since is None else max(start, since), min(end, until)
            if a < b and store.block_counts([device], a, b):
                out.append({"device": device, "method": method, "from": since,
                            "until": until})
            since = until
    return out


def site_report(store: StoreProtocol, config: Config, site: Site, start: float, end: float,
                now: float, label: str = "") -> dict:
    """One site over [start, end): figures, KPIs, meters, months, inputs and digest."""
    tz = site.timezone
    span = end - start
    months = months_between(start, end, tz) if span > MONTHLY_FROM_S else []
    bounds = [start, *(a for _, _, a, _ in months[1:]), end] if months else [start, end]
    month_results, result = segmented_results(
        store, config, site, bounds, now, [f"{y:04d}-{m:02d}" for y, m, _, _ in months]
        + [label])
    year = datetime.fromtimestamp(start, ZoneInfo(tz)).year
    extra: Kpis = kpis(result, water=water_use(store, site, start, end),
                       emission_factor=config.emission_factor(year),
                       balance_tolerance=site.balance_tolerance,
                       coverage_threshold=site.coverage_threshold)
    names = {d.id: d for d in site.devices}
    common = result.coverage * span
    # Every meter's settings as in force at the period's start, and every change of
    # them within it (config.history): both under the digest.
    at_start = site_at(config, site, start)
    settings = {d.id: meter_settings(config, at_start, d) for d in at_start.devices
                if any(m.device == d.id for m in result.meters)}
    changes = [{**c, "from": iso(c["from"], tz)}
               for c in changes_within(config, site, start, end) if c["device"] in settings]
    earlier = earlier_in(store, result, start, end)
    inputs = inputs_of(result, site, settings, changes, earlier)
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "site": site.id,
        "site_name": {"vi": site.name.vi, "en": site.name.en},
        "kind": site.kind,
        "period": {"label": label, "start": iso(start, tz), "end": iso(end, tz),
                   "timezone": tz},
        **{k: v for k, v in figure(result, tz).items() if k not in ("start", "end")},
        "dcie_pct": _num(extra.dcie_pct),
        "kpis": {k: (_num(v) if isinstance(v, float) else v)
                 for k, v in asdict(extra).items() if k != "balance"},
        "balance": None if extra.balance is None else asdict(extra.balance),
        "meters": [{
            "device": m.device, "name": names[m.device].plain_name,
            "names": names[m.device].display_name, "role": m.role,
            "measurement_point": m.measurement_point,
            "share": m.share, "method": m.method, "energy_kwh": _num(m.energy_kwh),
            "covered_s": m.covered_s, "coverage": m.covered_s / span,
            "common_s": m.common_s, "resets": m.resets,
            # Flags of method 3 ending in the period (reset, step_back, wrap, stuck,
            # implausible), whether read from stored blocks or recomputed.
            "flags": dict(m.counted),
            # Of the time the PUE was taken over, the share this meter measured.
            "common_coverage": _num(m.common_s / common) if common > 0 else None,
            "counter_power_check": None if m.cross_check is None else {
                "counter_kwh": _num(m.cross_check[0]), "power_kwh": _num(m.cross_check[1]),
                "difference_share": _num(m.cross_check[2]),
                "flagged": m.cross_check[2] is not None
                and m.cross_check[2] > site.counter_power_tolerance},
        } for m in result.meters],
        "method": METHOD_VERSION,
        # Blocks of this period computed by an earlier method: their readings were gone
        # when the method changed, so they could not be computed again.
        "earlier_methods": [{**e, "from": None if e["from"] is None else iso(e["from"], tz),
                             "until": iso(e["until"], tz)} for e in earlier],
        "settings": settings,
        "settings_changes": changes,
        "inputs": inputs,
        "digest": {"algorithm": "sha256", "value": digest(inputs),
                   "over": "the 'inputs' object as JSON, keys sorted, no spaces, ASCII"},
    }
    report["monitor_outages"] = monitor_outages(store, start, end, now, tz, site.id)
    if months:
        report["months"] = [{"month": month.window, **figure(month, tz)}
                            for month in month_results]
    return report


def monitor_outages(store: StoreProtocol, start: float, end: float, now: float,
                    tz: str, site: str | None = None) -> dict:
    """When in the period the monitor was not collecting, from its run log (pue.runlog):
    visible even where a counter bridged the gap and the coverage is whole. Data imported
    for a time the monitor did not run shows as such. At the central service the runs are
    those of the edge that collects ``site``."""
    found = outages([Run(*r) for r in store.runs(start, end, site)], start, end, now)
    return {"runs": found.runs, "seconds": found.seconds,
            "share": found.seconds / (end - start),
            "spans": [{"start": iso(a, tz), "end": iso(b, tz), "seconds": b - a}
                      for a, b in found.spans]}


def province_report(store: StoreProtocol, config: Config,
                    start_end: dict[str, tuple[float, float]], now: float, label: str,
                    workers: int = 1, progress: ProgressFn | None = None) -> dict:
    """`--site all`: one report per site (each in its own time zone's period).

    ``workers`` > 1 computes the sites in that many forked processes (they are
    independent); only for a single-threaded caller such as the command line.
    ``progress(sites done, sites)`` after each site.
    """
    jobs = [(sid, a, b) for sid, (a, b) in start_end.items()]
    if workers > 1 and len(jobs) > 1 and "fork" in mp.get_all_start_methods():
        done = _in_processes(store, config, jobs, now, label, workers)
    else:
        done = (site_report(store, config, config.site(sid), a, b, now, label)
                for sid, a, b in jobs)
    sites = []
    for site in done:
        sites.append(site)
        if progress is not None:
            progress(len(sites), len(jobs))
    return {"schema_version": REPORT_SCHEMA_VERSION, "period": {"label": label},
            "title": {"vi": config.title.vi, "en": config.title.en},
            "province": province_of(sites), "sites": sites}


def province_of(sites: list[dict]) -> dict:
    """The province figure (pue.province) over the site reports: Σ E_DC / Σ E_IT over the
    sites with an ok figure, how many were judged and compliant, the others and why.
    Sites whose periods differ (other time zones) are not combined: ``refused`` says so."""
    results = [PueResult(
        site=s["site"], start=s["inputs"]["start"], end=s["inputs"]["end"],
        window=s["period"]["label"], category=int(s["category"].removeprefix("PUE")),
        pue=s["pue"], facility_energy_kwh=s["facility_energy_kwh"] or 0.0,
        it_energy_kwh=s["it_energy_kwh"] or 0.0, coverage=s["coverage"] or 0.0,
        status=s["status"], threshold=s["threshold"], operator=s["operator"],
        compliant=s["compliant"]) for s in sites]
    empty = {"pue": None, "facility_energy_kwh": None, "it_energy_kwh": None,
             "sites": len(sites), "judged": None, "compliant": None, "not_judged": []}
    try:
        fig = province_figure(results)
    except ValueError as exc:
        return {**empty, "refused": str(exc)}
    tz = sites[0]["period"]["timezone"]
    return {"start": iso(fig.start, tz), "end": iso(fig.end, tz), "pue": _num(fig.pue),
            "facility_energy_kwh": fig.facility_energy_kwh,
            "it_energy_kwh": fig.it_energy_kwh, "sites": fig.sites, "judged": fig.judged,
            "compliant": fig.compliant,
            "not_judged": [{"site": n.site, "status": n.status, "coverage": _num(n.coverage),
                            "pue": _num(n.pue)} for n in fig.not_judged],
            "refused": None}


# What a forked worker computes from: set just before the fork, read in the child.
_FORKED: dict = {}


def _in_processes(store: StoreProtocol, config: Config, jobs: list[tuple[str, float, float]],
                  now: float, label: str, workers: int) -> Iterator[dict]:
    """The site reports in job order, each as soon as it and those before it are done."""
    _FORKED.update(store=store, config=config, now=now, label=label)
    # No open connection across fork: each child opens its own on first use.
    store.close()
    # What exists now is shared with the children, page by page, until written: kept out
    # of the garbage collector's passes, which would write every object's header (and so
    # copy every page) in each child.
    gc.freeze()
    try:
        with ProcessPoolExecutor(min(workers, len(jobs)),
                                 mp_context=mp.get_context("fork")) as pool:
            yield from pool.map(_site_in_child, jobs)
    finally:
        gc.unfreeze()
        _FORKED.clear()


def _site_in_child(job: tuple[str, float, float]) -> dict:
    # The store was closed before the fork: its first use here opens the child's own
    # connection (one inherited through fork must not be used).
    config: Config = _FORKED["config"]
    site_id, start, end = job
    return site_report(_FORKED["store"], config, config.site(site_id), start, end,
                       _FORKED["now"], _FORKED["label"])


def build_report(store: StoreProtocol, config: Config, site: str, period: str, at: float,
                 now: float, workers: int = 1, progress: ProgressFn | None = None) -> dict:
    """The report document for ``site`` (an id, or "all") over ``period`` (parse_period).

    :raises ValueError: unknown site or bad period, with a message for the user (a
        PeriodError, with its Vietnamese text, for the period).
    """
    known = [s.id for s in config.sites]
    if site != "all" and site not in known:
        raise ValueError(f"unknown site {site!r} (known: {', '.join(known)}, or all)")
    sites = config.sites if site == "all" else [config.site(site)]
    bounds = {s.id: parse_period(period, s.timezone, at, config.max_report_years)
              for s in sites}
    if site == "all":
        return province_report(store, config, bounds, now, period, workers, progress)
    return site_report(store, config, sites[0], *bounds[site], now, period)
