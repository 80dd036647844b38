"""PUE over any period: closed 15-minute blocks where every meter measured all of the
block, exact recomputation from raw readings everywhere else.

A long period (a month, a year) is mostly whole blocks, summed in SQL. Blocks where some
facility or IT meter measured only part of the time, and the ragged ends of a period that
does not start or end on a block boundary, are recomputed from the raw readings with the
exact common-span rule. Both paths give the same energy for the same time (counter
boundaries are interpolated, power is integrated piecewise), so a report equals the
exact computation over the whole period, at a fraction of the cost.
"""

from __future__ import annotations

import math

from config.metrics import RATIO_ROLES, Role
from config.model import Config, Device, Site
from pue.kpi import MeterInfo, MeterPart, Part, PueResult, combine, reduce_part
from pue.periods import BLOCK_S
from store.rollup import SETTLE_S, rollup_range
from store.service import meter_inputs
from store.sqlite import BlockTotal, Store

# A block counts as whole when a meter covered it to within this many seconds.
FULL_EPS_S = 1e-6
NO_ENERGY_ROLES = (Role.MONITOR, Role.WATER)
EMPTY = BlockTotal(None, 0.0, "", 0, None, None)


def energy_meters(site: Site) -> list[Device]:
    return [d for d in site.devices if d.role not in NO_ENERGY_ROLES]


def meter_infos(site: Site) -> list[MeterInfo]:
    return [MeterInfo(d.id, d.role, d.share, d.measurement_point) for d in energy_meters(site)]


def ensure_blocks(store: Store, config: Config, site: Site, start: float, end: float,
                  now: float) -> int:
    """Compute the missing settled blocks of the site's meters in [start, end)."""
    settled = math.floor((now - SETTLE_S) / BLOCK_S) * BLOCK_S
    end = min(end, settled)
    written = 0
    for device in energy_meters(site):
        first = store.first_reading_ts(device.id)
        if first is None:
            continue
        lo = max(start, math.floor(first / BLOCK_S) * BLOCK_S)
        have = set(store.block_starts(device.id, lo, end))
        missing = [b for b in range(int(lo), int(end), BLOCK_S) if float(b) not in have]
        for run_start, run_end in _runs(missing):
            written += rollup_range(store, config, site, device, run_start, run_end)
    return written


def _runs(blocks: list[int]) -> list[tuple[float, float]]:
    runs: list[list[int]] = []
    for b in blocks:
        if runs and runs[-1][1] == b:
            runs[-1][1] = b + BLOCK_S
        else:
            runs.append([b, b + BLOCK_S])
    return [(float(a), float(b)) for a, b in runs]


def period_parts(store: Store, config: Config, site: Site, start: float,
                 end: float) -> list[Part]:
    """The parts of [start, end): ragged ends and partial blocks exact, whole blocks summed."""
    first_block = math.ceil(start / BLOCK_S) * BLOCK_S
    last_block = math.floor(end / BLOCK_S) * BLOCK_S
    if last_block <= first_block:
        return [_exact(store, config, site, start, end)]
    parts = []
    if start < first_block:
        parts.append(_exact(store, config, site, start, first_block))
    parts.extend(_blocks(store, config, site, first_block, last_block))
    if last_block < end:
        parts.append(_exact(store, config, site, last_block, end))
    return parts


def _exact(store: Store, config: Config, site: Site, start: float, end: float) -> Part:
    return reduce_part(meter_inputs(store, config, site, start, end), start, end)


def _blocks(store: Store, config: Config, site: Site, start: float, end: float) -> list[Part]:
    meters = energy_meters(site)
    ratio = [d.id for d in meters if d.role in RATIO_ROLES]
    summary = store.block_coverage(ratio, start, end)
    full = partial = []
    if ratio:
        whole = BLOCK_S - FULL_EPS_S
        complete = summary["n"] == len(ratio)
        full = summary.loc[complete & (summary["min_covered"] >= whole), "start"].tolist()
        partial = summary.loc[complete & (summary["min_covered"] > 0)
                              & (summary["min_covered"] < whole), "start"].tolist()
    full_set = set(full)
    totals = store.block_totals([d.id for d in meters], start, end)
    # Taken back out of the all-block totals: a ratio meter's energy in every block that
    # is not whole (it is not over common time there); and for every meter, whatever it
    # did in the partial blocks, which come back exactly from the recomputed parts. A
    # meter's own covered time, resets and cross-check stay for the blocks that are simply
    # left out of the ratio: it did measure then.
    not_full = sorted(set(summary["start"]) - full_set) if ratio else []
    ratio_out = store.block_totals(ratio, start, end, starts=not_full) if not_full else {}
    partial_out = store.block_totals([d.id for d in meters], start, end,
                                     starts=partial) if partial else {}
    out: dict[str, MeterPart] = {}
    for device in meters:
        total = totals.get(device.id, EMPTY)
        again = partial_out.get(device.id, EMPTY)
        energy = total.energy_kwh
        removed = ratio_out.get(device.id, EMPTY) if device.role in RATIO_ROLES else again
        if energy is not None and removed.energy_kwh is not None:
            energy -= removed.energy_kwh
        if device.role in RATIO_ROLES and not full:
            energy = None
        check = None
        if total.counter_kwh is not None and total.power_kwh is not None:
            check = (total.counter_kwh - (again.counter_kwh or 0.0),
                     total.power_kwh - (again.power_kwh or 0.0))
        out[device.id] = MeterPart(energy, total.covered_s - again.covered_s,
                                   total.methods or "none", total.resets - again.resets,
                                   check)
    parts = [Part(start, end, len(full) * BLOCK_S, out)]
    parts.extend(_exact(store, config, site, b, b + BLOCK_S) for b in partial)
    return parts


def period_result(store: Store, config: Config, site: Site, start: float, end: float,
                  now: float, window: str = "", ensure: bool = True) -> PueResult:
    """The site's PUE over [start, end), computed as described above.

    ``ensure`` first computes any settled block missing from the store (reports do; the
    live view relies on the rollup loop instead, which keeps the blocks current).
    """
    if ensure:
        ensure_blocks(store, config, site, math.floor(start / BLOCK_S) * BLOCK_S,
                      math.ceil(end / BLOCK_S) * BLOCK_S, now)
    return combine(site.id, meter_infos(site), period_parts(store, config, site, start, end),
                   start, end, window=window, threshold=site.pue_threshold,
                   operator=site.threshold_operator,
                   coverage_threshold=site.coverage_threshold)
