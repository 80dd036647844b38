"""PUE over any period: whole days and closed 15-minute blocks where every meter
measured all of the time, exact recomputation from raw readings everywhere else; all
read through store.base.StoreProtocol.

A long period (a month, a year) is mostly whole days, summed from the day summary of
the blocks (store.days); days where some facility or IT meter missed a block, or that a
period edge cuts, are summed from their blocks by the store. Blocks where some
facility or IT meter measured only part of the time, and the ragged ends of a period that
does not start or end on a block boundary, are recomputed from the raw readings with the
exact common-span rule. Both paths give the same energy for the same time (counter
boundaries are interpolated, power is integrated piecewise), so a report equals the
exact computation over the whole period, at a fraction of the cost.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import replace
from typing import NamedTuple
from datetime import datetime
from zoneinfo import ZoneInfo

from pue_monitor.config.metrics import NO_ENERGY_ROLES, RATIO_ROLES
from pue_monitor.config.history import site_epochs
from pue_monitor.config.model import Config, Device, Site
from pue_monitor.figures import keptparts
from pue_monitor.figures.blockcache import BlockCache
from pue_monitor.figures.rollup import has_blocks, rollup_range, settle_s
from pue_monitor.figures.service import meter_inputs_over
from pue_monitor.pue.kpi import MeterInfo, MeterPart, Part, PueResult, combine, reduce_part
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import DAY_S, BlockTotal, ProgressFn, StoreProtocol, whole_span

# A block counts as whole when a meter covered it to within this many seconds.
FULL_EPS_S = 1e-6
# Differences of sums below this share of the sums are float rounding (see _less).
ROUNDING_SHARE = 1e-9
EMPTY = BlockTotal(None, 0.0, "", 0, None, None)


def day_offset(config: Config) -> int:
    """Where the store's summary days should start: local midnight of the time zone most
    sites use, at its standard (smallest) offset, so a DST change does not move it."""
    zone = ZoneInfo(Counter(s.timezone for s in config.sites).most_common(1)[0][0]
                    if config.sites else "UTC")
    year = datetime.now(zone).year
    offsets = [datetime(year, month, 1, tzinfo=zone).utcoffset() for month in (1, 7)]
    return int(min(o.total_seconds() for o in offsets if o is not None))


def align_store(store: StoreProtocol, config: Config,
                progress: ProgressFn | None = None) -> StoreProtocol:
    """The store with its summary days aligned to the config's sites (rebuilt if that
    changed, or if an earlier version left the summary incomplete)."""
    store.align_days(day_offset(config))
    store.rebuild_days(progress)
    return store


def energy_meters(site: Site) -> list[Device]:
    return [d for d in site.devices if d.role not in NO_ENERGY_ROLES]


def meter_infos(site: Site) -> list[MeterInfo]:
    return [MeterInfo(d.id, d.role, d.share, d.measurement_point) for d in energy_meters(site)]


def ensure_blocks(store: StoreProtocol, config: Config, site: Site, start: float, end: float,
                  now: float) -> int:
    """Compute the missing settled blocks of the site's meters in [start, end)."""
    settled = math.floor((now - settle_s(config, site, site.devices)) / BLOCK_S) * BLOCK_S
    end = min(end, settled)
    written = 0
    if end <= start:
        return written
    # The usual case first, in one query: a meter with every block of [start, end) has
    # every block from its first reading on too.
    every = round((end - start) / BLOCK_S)
    counts = store.block_counts([d.id for d in site.devices], start, end)
    for device in site.devices:
        if counts.get(device.id, 0) == every or not has_blocks(config, site, device):
            continue
        first = store.first_reading_ts(device.id)
        if first is None:
            continue
        lo = max(start, math.floor(first / BLOCK_S) * BLOCK_S)
        if lo >= end:
            continue
        have = store.block_counts([device.id], lo, end).get(device.id, 0)
        if have == round((end - lo) / BLOCK_S):
            continue  # all there from its first reading on: no need to list them
        for run_start, run_end in _runs(_missing_blocks(store, device.id, lo, end)):
            written += rollup_range(store, config, site, device, run_start, run_end)
    return written


def _runs(blocks: list[int] | list[float]) -> list[tuple[float, float]]:
    """Contiguous runs of block starts, as (start, end)."""
    runs: list[list[float]] = []
    for b in sorted(blocks):
        if runs and runs[-1][1] == b:
            runs[-1][1] = b + BLOCK_S
        else:
            runs.append([b, b + BLOCK_S])
    return [(float(a), float(b)) for a, b in runs]


def segment_parts(store: StoreProtocol, config: Config, site: Site,
                  bounds: list[float]) -> list[list[Part]]:
    """Parts of each segment [bounds[i], bounds[i+1]), all read in one pass.

    Ragged ends (off a block boundary) and blocks where some facility or IT meter measured
    only part of the time are recomputed exactly from raw readings, contiguous ones
    together; whole blocks are summed in SQL, grouped by segment.
    """
    start, end = bounds[0], bounds[-1]
    if any(b % BLOCK_S for b in bounds[1:-1]):
        # A segment edge inside a block (a time zone off the quarter hour): segment by
        # segment, each with its own ragged ends.
        return [segment_parts(store, config, site, [a, b])[0]
                for a, b in zip(bounds, bounds[1:])]
    out: list[list[Part]] = [[] for _ in bounds[:-1]]
    first_block = math.ceil(start / BLOCK_S) * BLOCK_S
    last_block = math.floor(end / BLOCK_S) * BLOCK_S
    ragged = [(start, min(first_block, end)), (max(last_block, start), end)]
    if last_block <= first_block:
        ragged = [(start, end)]
    edges = sorted({start, end, *bounds, *(b for b in bounds
                                          if first_block <= b <= last_block)})
    for a, b in ragged:
        # Split a ragged end at segment edges so each piece belongs to one segment.
        cuts = [a, *(e for e in edges if a < e < b), b]
        for x, y in zip(cuts, cuts[1:]):
            if y > x:
                out[_segment(bounds, x)].append(_exact(store, config, site, x, y))
    if last_block > first_block:
        by_day, rest = _day_parts(store, config, site, first_block, last_block, bounds)
        for index, parts in by_day.items():
            out[index].extend(parts)
        for a, b in rest:
            for index, parts in _block_parts(store, config, site, a, b, bounds).items():
                out[index].extend(parts)
    return out


def _segment(bounds: list[float], t: float) -> int:
    return min(max(bisect.bisect_right(bounds, t) - 1, 0), len(bounds) - 2)


def _exact(store: StoreProtocol, config: Config, site: Site, start: float, end: float) -> Part:
    """[start, end) recomputed from raw readings."""
    return _exact_many(store, config, site, [(start, end)])[0]


def _exact_many(store: StoreProtocol, config: Config, site: Site,
                runs: list[tuple[float, float]]) -> list[Part]:
    """Each run recomputed from raw readings, all read together."""
    if not runs:
        return []
    return [reduce_part(meters, start, end) for meters, (start, end)
            in zip(meter_inputs_over(store, config, site, runs), runs)]


def _day_parts(store: StoreProtocol, config: Config, site: Site, start: float, end: float,
               bounds: list[float]) -> tuple[dict[int, list[Part]], list[tuple[float, float]]]:
    """Parts of the whole days in [start, end) that no segment edge cuts, from the day
    summary, and the runs of time left for _block_parts.

    Each meter's sums come from its day rows. Only the days where some facility, IT or
    exclude meter has a short or missing block go down to blocks, and only to find
    those blocks: they are taken out of the ratio (or, if every ratio meter measured
    some of the block, recomputed exactly), as _block_parts does.
    """
    span = whole_span(store.day_offset_s, start, end)
    if span is None or not store.days_complete():
        return {}, [(start, end)]
    first, last = span
    meters = energy_meters(site)
    ratio = [d.id for d in meters if d.role in RATIO_ROLES]
    interior = sorted(b for b in bounds if first < b < last)
    days = [float(d) for d in range(int(first), int(last), DAY_S)
            if not _cut(interior, d, d + DAY_S)]
    if not days:
        return {}, [(start, end)]
    # Meter-days that are not whole: a short block, a missing block, or no row at all.
    whole = BLOCK_S - FULL_EPS_S
    wanted = set(days)
    short, missing = [], []
    for device, day, blocks, least in store.days_not_whole(ratio, first, last, whole):
        if day in wanted and least < whole:
            short.append((device, day, day + DAY_S))
        if day in wanted and blocks < DAY_S // BLOCK_S:
            missing.append((device, day, day + DAY_S))
    covered = _not_whole(store, site, short, missing)
    every_day = len(days) == (last - first) // DAY_S  # no day cut: a range, not a list
    totals = store.block_totals([d.id for d in meters], first, last, interior,
                                 starts=None if every_day else days, by_day=True)
    blocks_in = Counter(_segment(bounds, day) for day in days)
    parts = _assemble(store, config, site, first, last, bounds, totals, covered,
                      {i: n * (DAY_S // BLOCK_S) for i, n in blocks_in.items()})
    rest, at = [], start
    for day in days:
        if day > at:
            rest.append((at, day))
        at = day + DAY_S
    if end > at:
        rest.append((at, end))
    return parts, rest


def _cut(edges: list[float], a: float, b: float) -> bool:
    """Whether some of the sorted ``edges`` lies strictly inside (a, b): a bisection, as a
    long report has a thousand month edges over tens of thousands of days."""
    i = bisect.bisect_right(edges, a)
    return i < len(edges) and edges[i] < b


def _missing_blocks(store: StoreProtocol, device: str, start: float, end: float) -> list[float]:
    """Starts of the blocks in the block-aligned [start, end) the device has no row for."""
    have = set(store.block_starts([device], start, end))
    return [float(b) for b in range(int(start), int(end), BLOCK_S) if float(b) not in have]


class NotWhole(NamedTuple):
    """The blocks some ratio meter did not cover whole.

    ``covered``: block -> {device: seconds it covered}, for blocks some meter of the site
    has a row for (those rows leave the ratio). ``empty``: block-aligned spans in which
    a block no meter has any row for is not whole either; such blocks are only counted
    (``empty_in``), never listed, so a fresh or long-dead site costs no work per block.
    """

    covered: dict[float, dict[str, float]]
    empty: list[tuple[float, float]]
    occupied: list[float]  # sorted starts, inside ``empty``'s spans, that some meter has

    def empty_in(self, a: float, b: float) -> int:
        """Blocks in [a, b) that no meter of the site has a row for."""
        spans = sum(max(0, round((min(b, y) - max(a, x)) / BLOCK_S)) for x, y in self.empty)
        return spans - (bisect.bisect_left(self.occupied, b)
                        - bisect.bisect_left(self.occupied, a))


def _merged(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(x, y) for x, y in out]


def _not_whole(store: StoreProtocol, site: Site, short: list[tuple[str, float, float]],
               missing: list[tuple[str, float, float]]) -> NotWhole:
    """Blocks some ratio meter did not cover whole: its short rows in the ``short``
    (device, start, end) ranges, and no row at all (0 s) in the ``missing`` ones."""
    covered: dict[float, dict[str, float]] = {}
    for device, block, secs in store.blocks_below(short, BLOCK_S - FULL_EPS_S):
        covered.setdefault(block, {})[device] = secs
    spans = _merged([(a, b) for _, a, b in missing])
    site_ids = [d.id for d in energy_meters(site)]
    occupied = sorted({t for a, b in spans for t in store.block_starts(site_ids, a, b)})
    for device, a, b in missing:
        others = occupied[bisect.bisect_left(occupied, a):bisect.bisect_left(occupied, b)]
        if not others:
            continue  # nobody has a row here: these blocks are counted by empty_in
        have = set(store.block_starts([device], a, b))
        for block in others:
            if block not in have:
                covered.setdefault(block, {})[device] = 0.0
    return NotWhole(covered, spans, occupied)


def _block_parts(store: StoreProtocol, config: Config, site: Site, start: float, end: float,
                 bounds: list[float]) -> dict[int, list[Part]]:
    """Parts of the block-aligned [start, end), summed from its blocks."""
    meters = energy_meters(site)
    ratio = [d.id for d in meters if d.role in RATIO_ROLES]
    expected = round((end - start) / BLOCK_S)
    counts = store.block_counts(ratio, start, end)
    covered = _not_whole(store, site, [(d, start, end) for d in ratio],
                         [(d, start, end) for d in ratio if counts.get(d, 0) < expected])
    interior = [b for b in bounds if start < b < end]
    seg_bounds = [start, *interior, end]
    totals = store.block_totals([d.id for d in meters], start, end, interior)
    offset = _segment(bounds, start)
    blocks = {offset + i: round((b - a) / BLOCK_S)
              for i, (a, b) in enumerate(zip(seg_bounds, seg_bounds[1:]))}
    return _assemble(store, config, site, start, end, bounds, totals, covered, blocks)


def _assemble(store: StoreProtocol, config: Config, site: Site, start: float, end: float,
              bounds: list[float], totals: dict[tuple[str, int], BlockTotal],
              not_whole: NotWhole, blocks: dict[int, int]) -> dict[int, list[Part]]:
    """Parts per segment from the sums over [start, end) (``totals``, per device and
    segment counted from ``start``'s), the blocks some ratio meter did not cover whole
    (``not_whole``) and the blocks per segment.

    Blocks not whole for a ratio meter leave the ratio, for every meter (sub-meters are
    taken over the same time); where every ratio meter with a short row measured some of
    the block they are recomputed exactly from raw readings.
    """
    meters = energy_meters(site)
    ids = [d.id for d in meters]
    ratio = {d.id for d in meters if d.role in RATIO_ROLES}
    covered = not_whole.covered
    not_full = sorted(covered)
    partial = [b for b, secs in covered.items() if all(v > 0 for v in secs.values())]
    interior = [b for b in bounds if start < b < end]
    removed_all = store.block_totals(ids, start, end, interior, starts=not_full)
    partial_out = store.block_totals(ids, start, end, interior, starts=sorted(partial))
    offset = _segment(bounds, start)
    result: dict[int, list[Part]] = {}
    for index, n in sorted(blocks.items()):
        local = index - offset
        a, b = bounds[index], bounds[index + 1]
        full = n - sum(1 for x in not_full if a <= x < b) - not_whole.empty_in(a, b)
        meter_parts: dict[str, MeterPart] = {}
        for device in meters:
            total = totals.get((device.id, local), EMPTY)
            again = partial_out.get((device.id, local), EMPTY)
            removed = removed_all.get((device.id, local), EMPTY)
            # Of the whole blocks (the common time here), a ratio meter measured all; a
            # sub-meter what its blocks say.
            common = float(max(full, 0) * BLOCK_S) if device.id in ratio else max(
                0.0, total.covered_s - removed.covered_s)
            energy = _less(total.energy_kwh, removed.energy_kwh) if common > 0 else None
            check = None
            if total.counter_kwh is not None and total.power_kwh is not None:
                check = (total.counter_kwh - (again.counter_kwh or 0.0),
                         total.power_kwh - (again.power_kwh or 0.0))
            # A meter's own covered time, resets and cross-check stay for blocks left out
            # of the ratio (it did measure then); the partial blocks come back below,
            # recomputed over the common time.
            meter_parts[device.id] = MeterPart(
                energy, total.covered_s - again.covered_s, total.methods or "none",
                total.resets - again.resets, check, common,
                counted={"reset": total.resets - again.resets,
                         "step_back": total.step_backs - again.step_backs,
                         "wrap": total.wraps - again.wraps,
                         "stuck": total.stuck - again.stuck,
                         "implausible": total.implausible - again.implausible})
        result[index] = [Part(max(a, start), min(b, end), max(full, 0) * BLOCK_S,
                              meter_parts)]
    # The partial blocks come back recomputed, every run of them from one read.
    runs = [(x, y) for index in result for x, y in _runs(
        [b for b in partial if bounds[index] <= b < bounds[index + 1]])]
    for (x, _), part in zip(runs, _exact_runs(store, config, site, runs)):
        result[_segment(bounds, x)].append(part)
    return result


def _exact_runs(store: StoreProtocol, config: Config, site: Site,
                runs: list[tuple[float, float]]) -> list[Part]:
    """_exact_many of runs of whole blocks, taken from (and noted for) the results kept in
    the store when a report keeps them (figures.keptparts)."""
    keeper = keptparts.active()
    if keeper is None or not runs:
        return _exact_many(store, config, site, runs)
    return keeper.exact(config, site, runs,
                        lambda missing: _exact_many(store, config, site, missing),
                        lambda: rolled_up_until(store, site))


def _less(total: float | None, removed: float | None) -> float | None:
    """total - removed, where both are sums of the same blocks' energies in different
    orders: a leftover of float rounding is zero, not a tiny negative that would make the
    whole figure invalid."""
    if total is None or removed is None:
        return total
    left = total - removed
    return 0.0 if abs(left) <= ROUNDING_SHARE * (abs(total) + abs(removed)) else left


def period_result(store: StoreProtocol, config: Config, site: Site, start: float, end: float,
                  now: float, window: str = "", ensure: bool = True) -> PueResult:
    """The site's PUE over [start, end).

    ``ensure`` first computes any settled block missing from the store (reports do; the
    live view relies on the rollup loop instead, which keeps the blocks current).
    """
    return segmented_results(store, config, site, [start, end], now, [window], ensure)[1]


def segmented_results(store: StoreProtocol, config: Config, site: Site, bounds: list[float],
                      now: float, labels: list[str], ensure: bool = True
                      ) -> tuple[list[PueResult], PueResult]:
    """PUE of each segment of ``bounds`` and of the whole, from one pass over the blocks.

    ``labels``: the segments' window names, then (one more) the whole's.
    """
    start, end = bounds[0], bounds[-1]
    if ensure:
        ensure_blocks(store, config, site, math.floor(start / BLOCK_S) * BLOCK_S,
                      math.ceil(end / BLOCK_S) * BLOCK_S, now)
    epochs = site_epochs(config, site, start, end)
    # Blocks, days and readings as of one moment; the exact results of partial blocks
    # kept between reports are written after it.
    with keptparts.keeping(store), store.snapshot():
        if len(epochs) == 1:
            parts = segment_parts(store, config, epochs[0][2], bounds)
        else:
            parts = _epoch_parts(store, config, bounds, epochs)
    infos = meter_infos(epochs[0][2])
    kw = {"threshold": site.pue_threshold, "operator": site.threshold_operator,
          "coverage_threshold": site.coverage_threshold}
    segments = [combine(site.id, infos, p, a, b, window=label, **kw)
                for p, a, b, label in zip(parts, bounds, bounds[1:], labels)]
    whole = combine(site.id, infos, [x for p in parts for x in p], start, end,
                    window=labels[-1], **kw)
    return segments, whole


def rolled_up_until(store: StoreProtocol, site: Site) -> float:
    """Up to when every energy meter of the site has its blocks (the roll-up's frontier):
    the earliest of the meters' last block ends. A meter with readings but no block yet
    (the roll-up has not reached it) holds the frontier at its first reading; a meter with
    neither has nothing to add and does not count."""
    frontier = math.inf
    for device in energy_meters(site):
        last = store.last_interval_end(device.id)
        if last is None:
            first = store.first_reading_ts(device.id)
            if first is None:
                continue
            last = math.floor(first / BLOCK_S) * BLOCK_S
        frontier = min(frontier, last)
    return frontier


def recent_results(store: StoreProtocol, config: Config, site: Site,
                   windows: dict[str, tuple[float, float]],
                   kept: BlockCache | None = None) -> dict[str, PueResult]:
    """PUE of recent windows (the live "24h", "today"): the blocks the roll-up has closed,
    then raw readings only after them (a few minutes while the roll-up keeps up).

    The same energy as recomputing each window from raw readings (the two paths agree,
    see the module docstring), without reading a day of raw readings per meter.
    ``kept``: the parts of the whole blocks are kept there, keyed by the blocks they
    span, so a window recomputed every second reads only its two ragged ends (the
    start, which moves with the clock, and the time after the last rolled-up block).
    """
    infos = meter_infos(site)
    kw = {"threshold": site.pue_threshold, "operator": site.threshold_operator,
          "coverage_threshold": site.coverage_threshold}
    out = {}
    with store.snapshot():
        frontier = rolled_up_until(store, site)
        for name, (start, end) in windows.items():
            cut = min(end, frontier)
            cut = math.floor(cut / BLOCK_S) * BLOCK_S if math.isfinite(cut) else end
            first = math.ceil(start / BLOCK_S) * BLOCK_S
            head, tail = (start, min(first, cut)), (max(start, cut), end)
            if kept is None or first >= cut:
                head, parts = (start, start), [] if cut <= start else segment_parts(
                    store, config, site, [start, cut])[0]
            else:
                parts = kept.get(("recent", site.id, first, cut),
                                 lambda a=first, b=cut: segment_parts(store, config, site,
                                                                      [a, b])[0])
            ragged = _exact_many(store, config, site, [(a, b) for a, b in (head, tail)
                                                       if b > a])
            if head[1] > head[0]:  # in time order, as segment_parts gives them
                parts = [ragged.pop(0), *parts]
            out[name] = combine(site.id, infos, [*parts, *ragged], start, end, window=name,
                                **kw)
    return out


def _epoch_parts(store: StoreProtocol, config: Config, bounds: list[float],
                 epochs: list[tuple[float, float, Site]]) -> list[list[Part]]:
    """segment_parts where some meter's settings change within the period: each epoch
    (config.history) with the settings in force then, its parts saying so (Part.infos)
    so that combine puts each part's energy on the side its meter had then."""
    out: list[list[Part]] = [[] for _ in bounds[:-1]]
    for a, b, site in epochs:
        inner = [a, *(x for x in bounds if a < x < b), b]
        held = tuple(meter_infos(site))
        for x, parts in zip(inner, segment_parts(store, config, site, inner)):
            out[_segment(bounds, x)].extend(replace(p, infos=held) for p in parts)
    return out
