"""The exact results of partial blocks, kept in the store between reports.

A report recomputes each run of partial blocks (a facility or IT meter measured only part
of them) from the raw readings of every meter of its site (figures.periods._assemble):
most of a yearly report's work, and the same at every report. Inside ``keeping``, each
such result is kept in the store (StoreProtocol.keep_parts) with a fingerprint of what
it was computed with, and taken from there by the next report:

- the fingerprint covers the site's meters' settings in force at the run (the ones their
  blocks rest on, figures.settings, with role, share and measurement point), the profile
  each auto device was identified as, the method version and this module's FORMAT: a
  configuration or settings change makes the kept result unused;
- the store drops a kept result when a block of the site starting within REACH_S of it
  is written or dropped (the roll-up, an import, late data at the central, a settings
  change, a recompute) or readings there are pruned: whatever changes the readings a
  result read changes the blocks around them, and a result reads at most two runs of
  equal values of RUN_LOOKBACK_S beyond its run (figures.service.whole_runs);
- only runs that end REACH_S before the roll-up's frontier (periods.rolled_up_until) are
  kept: readings not rolled up yet change no block;
- a result is kept only if no such change was counted since the report's snapshot
  began (kept_parts gives the count, keep_parts checks it), so a result computed from
  readings an import replaced meanwhile is never kept.

A kept result is the same Part, to the last bit, as recomputing it (JSON keeps floats
exactly and ints as ints): a report is the same document with and without them.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

from pue_monitor.pue.lazynp import np

from pue_monitor.config.history import site_at
from pue_monitor.config.metrics import NO_ENERGY_ROLES
from pue_monitor.config.model import Config, Site
from pue_monitor.figures.service import RUN_LOOKBACK_S
from pue_monitor.figures.settings import meter_settings
from pue_monitor.pue.kpi import METHOD_VERSION, MeterPart, Part
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.pue.quality import Flag, MeterQuality
from pue_monitor.store.base import ProgressFn, StoreProtocol

# Changes whenever Part, its encoding or the exact path changes what it gives.
FORMAT = 1
# How far beyond its run a kept result may rest on readings: two runs of equal values
# read whole (the counter's, then the power's over it), and an hour for the readings
# nearest each side.
REACH_S = 2 * RUN_LOOKBACK_S + 4 * BLOCK_S

log = logging.getLogger(__name__)

Runs = list[tuple[float, float]]


class Keeper:
    """The kept results one report reads and the new ones it keeps once its snapshot is
    over (a snapshot reads only)."""

    def __init__(self, store: StoreProtocol) -> None:
        self.store = store
        self.pending: dict[str, tuple[int, list[tuple]]] = {}
        self._identified: dict[str, str] | None = None
        # Fingerprints of sites whose settings have no history (site_at gives the site
        # itself), by id, with the site held so the id stays its own.
        self._prints: dict[int, tuple[Site, str]] = {}

    def exact(self, config: Config, site: Site, runs: Runs,
              compute: Callable[[Runs], list[Part]], frontier: Callable[[], float]
              ) -> list[Part]:
        """``compute(runs)``, each run's result taken from the store where it was kept
        with the same fingerprint; the others computed together and noted for keeping
        (those REACH_S before ``frontier()``)."""
        seen, kept = self.store.kept_parts(site.id, min(a for a, _ in runs),
                                           max(b for _, b in runs))
        prints = [self.fingerprint(config, site, a) for a, _ in runs]
        out: list[Part | None] = []
        for (a, b), mark in zip(runs, prints):
            row = kept.get(a)
            out.append(decode(row[2]) if row is not None and row[0] == b
                       and row[1] == mark else None)
        missing = [i for i, part in enumerate(out) if part is None]
        if missing:
            made = compute([runs[i] for i in missing])
            limit = frontier() - REACH_S
            rows = self.pending.setdefault(site.id, (seen, []))[1]
            for i, part in zip(missing, made):
                out[i] = part
                a, b = runs[i]
                if b <= limit and part.infos is None:
                    rows.append((a, b, a - REACH_S, b + REACH_S, prints[i], encode(part)))
        return [p for p in out if p is not None]

    def fingerprint(self, config: Config, site: Site, at: float) -> str:
        """What a run starting at ``at`` is computed with (the module docstring)."""
        then = site_at(config, site, at)
        held = self._prints.get(id(then))
        if held is not None and held[0] is then:
            return held[1]
        meters = [d for d in then.devices if d.role not in NO_ENERGY_ROLES]
        if self._identified is None:
            self._identified = self.store.device_profiles()
        record = [FORMAT, METHOD_VERSION, then.id,
                  [[d.id, meter_settings(config, then, d),
                    self._identified.get(d.id) if config.known_profile(d) is None else None]
                   for d in meters]]
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=True)
        mark = hashlib.sha256(canonical.encode("ascii")).hexdigest()
        if then is site:
            self._prints[id(site)] = (site, mark)
        return mark

    def flush(self) -> int:
        """Keep the results noted (each site's only if no change was counted since its
        snapshot); how many were kept."""
        done = 0
        for site, (seen, rows) in self.pending.items():
            try:
                if rows and self.store.keep_parts(site, seen, rows):
                    done += len(rows)
            except Exception as exc:  # noqa: BLE001 - the figures are computed already
                # A store busy past its timeout (or any other failure to write) costs
                # the next report the recomputation, never this report.
                log.warning("site %s: exact results of partial blocks not kept: %s",
                            site, exc)
        self.pending.clear()
        return done


_ACTIVE: contextvars.ContextVar[Keeper | None] = contextvars.ContextVar("kept_parts",
                                                                        default=None)


@contextmanager
def keeping(store: StoreProtocol) -> Iterator[Keeper]:
    """Within: exact results of partial blocks are read from and noted for the store (a
    nested use joins the outer one); kept when the outermost ends, after the caller's
    snapshot (enter this first, then the snapshot)."""
    outer = _ACTIVE.get()
    if outer is not None:
        yield outer
        return
    keeper = Keeper(store)
    token = _ACTIVE.set(keeper)
    try:
        yield keeper
    finally:
        _ACTIVE.reset(token)
    keeper.flush()


def active() -> Keeper | None:
    """The Keeper of the enclosing ``keeping``, if any."""
    return _ACTIVE.get()


# How often a running monitor or central keeps the results its sites' yearly figures
# need (keep_years), so that a report run at any time finds them kept.
KEEP_EVERY_S = 3600.0


def keep_years(store: StoreProtocol, config: Config, now: float) -> int:
    """Compute every site's current and previous calendar year month by month, as the
    yearly report and the year chart cut it, keeping the partial blocks' results on the
    way (a site's first pass is a cold report's work; the next ones read what is kept and
    recompute only the runs of the last REACH_S). The yearly report due for the previous
    year then runs warm whenever it is asked for. How many sites were done."""
    done = 0
    for site in config.sites:
        if _meters_energy(site):
            year = _year(site, now)
            _keep(store, config, site, (year - 1, year), now)
            done += 1
    return done


def keep_span(store: StoreProtocol, config: Config, devices: Collection[str], start: float,
              end: float, now: float, progress: ProgressFn | None = None) -> int:
    """After an import or a recompute changed the blocks of ``devices`` in [start, end]:
    each calendar year of that span, of each site of those devices, computed as
    keep_years does (the hourly keep_years of a running monitor reaches back only to
    last year), so that the first report after it finds the results kept. Those of the
    last REACH_S before the roll-up's frontier are not kept (see the module docstring):
    after an import of history, that is its last two days. How many results are kept in
    those site-years afterwards; ``progress(site-years done, site-years)`` after each."""
    jobs = []
    for site in config.sites:
        if _meters_energy(site) and any(d.id in devices for d in site.devices):
            last = min(_year(site, max(start, end - 1.0)), _year(site, now))  # end excluded
            jobs += [(site, year) for year in range(_year(site, start), last + 1)]
    kept = 0
    for done, (site, year) in enumerate(jobs, 1):
        _keep(store, config, site, (year,), now)
        zone = ZoneInfo(site.timezone)
        kept += len(store.kept_parts(site.id, datetime(year, 1, 1, tzinfo=zone).timestamp(),
                                     datetime(year + 1, 1, 1, tzinfo=zone).timestamp())[1])
        if progress is not None:
            progress(done, len(jobs))
    return kept


def _meters_energy(site: Site) -> bool:
    return any(d.role not in NO_ENERGY_ROLES for d in site.devices)


def _year(site: Site, at: float) -> int:
    return datetime.fromtimestamp(at, ZoneInfo(site.timezone)).year


def _keep(store: StoreProtocol, config: Config, site: Site, years: Iterable[int],
          now: float) -> None:
    from pue_monitor.figures.charts import year_months  # charts imports this module

    for year in years:
        year_months(store, config, site, year, now)


def _plain(value: object) -> object:
    """numpy scalars as JSON numbers (ints stay ints, floats keep every bit)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"cannot keep {type(value).__name__}")


def encode(part: Part) -> str:
    meters = {device: [m.energy_kwh, m.covered_s, m.method, m.resets,
                       None if m.cross_check is None else list(m.cross_check), m.common_s,
                       [[f.start, f.end, f.kind] for f in m.quality.flags], m.counted]
              for device, m in part.meters.items()}
    return json.dumps([part.start, part.end, part.common_s, meters], default=_plain,
                      separators=(",", ":"))


def decode(payload: str) -> Part:
    start, end, common_s, meters = json.loads(payload)
    return Part(start, end, common_s, {
        device: MeterPart(energy, covered, method, resets,
                          None if check is None else tuple(check), common,
                          MeterQuality(tuple(Flag(*f) for f in flags)), counted)
        for device, (energy, covered, method, resets, check, common, flags, counted)
        in meters.items()})


__all__ = ["FORMAT", "KEEP_EVERY_S", "REACH_S", "Keeper", "active", "decode", "encode",
           "keep_span", "keep_years", "keeping"]
