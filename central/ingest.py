"""The central's ingest: a data center's batch of points in, stored once; its site
definition in, recorded with who sent it and when; its clock compared with ours.

Idempotent by design: a reading already stored with the same value is skipped, so an
edge that resends a batch (its outbox retries until the central confirmed it) stores
nothing twice. The check and the write are one transaction of the store (store.ingest),
under one lock per process and, on PostgreSQL, a lock per site in the database, so
several central processes given the same batch at once still store it once. Readings
that arrive for blocks already closed (an edge back from an outage) make those blocks
stale: they are deleted in that transaction and recomputed in the same request, as
`pue-monitor import` does.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter

from pue_monitor.central.lineproto import LineError
from pue_monitor.central.points import Batch, read_batch
from pue_monitor.central.sitedef import (FORMAT, DefinitionError, fingerprint,
                                         identified_profiles, site_from_definition)
from pue_monitor.config.history import check_history
from pue_monitor.config.metrics import NO_ENERGY_ROLES
from pue_monitor.config.model import Config, Site
from pue_monitor.exchange.importer import affected_blocks, conflict_reason
from pue_monitor.figures.periods import align_store
from pue_monitor.figures.rollup import SETTLE_S, rollup_range
from pue_monitor.figures.settings import refresh_settings
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import BLOCK_METRICS, CentralToken, SiteDefinitionRecord
from pue_monitor.store.ingest import IngestBatch

log = logging.getLogger(__name__)

# Line errors quoted in one 400 answer (the rest are counted).
MAX_ERRORS_SHOWN = 10
_BLOCK_METRICS = frozenset(BLOCK_METRICS)


@dataclass(frozen=True)
class WriteResult:
    status: int  # 204, 400, 403
    message: str = ""
    stored: int = 0
    duplicates: int = 0
    refused: int = 0


@dataclass
class EdgeClock:
    """The last batch of one data center: when, and how far its clock was from ours."""

    last_batch_ts: float
    skew_s: float | None  # edge minus central; None: the edge sent no clock
    flagged: bool


@dataclass
class Counters:
    readings_stored: int = 0
    readings_duplicate: int = 0
    lines_refused: int = 0
    batches: dict[int, int] = field(default_factory=dict)  # by HTTP status
    definitions_recorded: int = 0


class Central:
    """The ingest service over a store; ``config`` is the central's own, its sites rebuilt
    from the definitions received (``on_config`` callbacks hear of every change)."""

    def __init__(self, store, base: Config, clock: Callable[[], float] = time.time) -> None:
        if base.ingest is None:
            raise ValueError("the central's config needs an ingest: section (data_centers)")
        self.store, self.base, self.clock, self.service = store, base, clock, base.ingest
        self.lock = threading.Lock()
        self.clocks: dict[str, EdgeClock] = {}
        # An edge not heard from since this process started is silent since then: the
        # /metrics gauge of its last batch starts here (PueEdgeSilent fires on it too).
        self.started_ts = clock()
        self.counters = Counters()
        self.on_config: list[Callable[[Config], None]] = []
        # {device: (second latest, latest) time stored by this process}
        self._recent: dict[str, tuple[float, float]] = {}
        self.config = self._rebuild()

    # -- site definitions -------------------------------------------------------------

    def _latest(self) -> dict[str, SiteDefinitionRecord]:
        latest: dict[str, SiteDefinitionRecord] = {}
        for record in self.store.site_definitions():
            latest[record.site] = record  # by time received: the last one wins
        return latest

    def _rebuild(self) -> Config:
        """The config with the sites of the latest definitions, in data-center order;
        the store's day summary, settings fingerprints and device sites brought in step."""
        latest = self._latest()
        sites: list[Site] = []
        for dc in self.service.data_centers:
            for sid in dc.sites:
                if sid in latest:
                    doc = json.loads(latest[sid].definition)
                    sites.append(site_from_definition(doc, dc.id, f"site {sid}"))
                    for device, found in identified_profiles(doc).items():
                        self.store.set_device_profile(device, found.profile,
                                                      found.sys_object_id, found.reason,
                                                      found.ts)
        config = self.base.model_copy(update={"sites": sites})
        self.store.set_sites({d.id: s.id for s, d in config.devices()})
        align_store(self.store, config)
        refresh_settings(self.store, config)
        return config

    def define(self, token: CentralToken, doc: object, edge_ts: float | None) -> WriteResult:
        """Record a data center's site definition (every site in it); 204, 400 or 403."""
        now = self.clock()
        self._clock_seen(token.data_center, edge_ts, now)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            return WriteResult(400, f"a site definition is a JSON object with format {FORMAT}")
        changed = doc.get("changed_ts")
        if not isinstance(changed, (int, float)) or isinstance(changed, bool):
            return WriteResult(400, "changed_ts: must be unix seconds (a number)")
        sites = doc.get("sites")
        if not isinstance(sites, list) or not sites:
            return WriteResult(400, "sites: must be a non-empty list")
        ids = [s.get("id") if isinstance(s, dict) else None for s in sites]
        for i, sid in enumerate(ids):
            if sid is not None and ids.index(sid) != i:
                # one row per site and time received: a second entry would not be kept
                return WriteResult(400, f"sites[{i}]: site {sid!r} is also "
                                   f"sites[{ids.index(sid)}]")
        foreign = [str(sid) for sid in ids if self.service.owner(str(sid)) != token.data_center]
        if foreign:
            return WriteResult(403, f"data center {token.data_center!r} may not define "
                               f"site(s) {', '.join(foreign)}")
        devices: dict[str, str] = {}
        for i, site_doc in enumerate(sites):
            try:
                site = site_from_definition(site_doc, token.data_center, f"sites[{i}]")
            except DefinitionError as exc:
                return WriteResult(400, str(exc))
            # The dated settings changes, checked as the edge's loader checks them (on a
            # 15-minute boundary in the site's zone, in order, a valid device throughout).
            issues = check_history(self.base.model_copy(update={"sites": [site]}))
            if issues:
                return WriteResult(400, str(issues[0]).replace("sites[0]", f"sites[{i}]", 1))
            for device in site.devices:
                if devices.setdefault(device.id, site.id) != site.id:
                    return WriteResult(400, f"sites[{i}]: device {device.id!r} is also in "
                                       f"site {devices[device.id]!r}")
            unknown = [d.profile for d in site.devices if d.profile != "auto"
                       and d.profile not in self.base.profiles]
            if unknown:
                return WriteResult(400, f"sites[{i}]: profile(s) {', '.join(unknown)} unknown "
                                   "here: give the central the edge's profiles_dir")
        kept = 0
        with self.lock:
            for site_doc in sites:
                record = SiteDefinitionRecord(
                    site_doc["id"], now, float(changed), token.data_center, token.label,
                    fingerprint([site_doc]), json.dumps(site_doc, sort_keys=True,
                                                        ensure_ascii=False))
                kept += self.store.record_site_definition(record)
            if kept:
                self.config = self._rebuild()
                self.counters.definitions_recorded += kept
                log.info("site definition from %s: %d site(s) changed", token.data_center, kept)
                for callback in self.on_config:
                    callback(self.config)
        return WriteResult(204)

    # -- readings ---------------------------------------------------------------------

    def write(self, token: CentralToken, body: str, precision: str,
              edge_ts: float | None) -> WriteResult:
        """Store a batch of line protocol from a data center's edge."""
        now = self.clock()
        self._clock_seen(token.data_center, edge_ts, now)
        try:
            batch = read_batch(body, precision)
        except ValueError as exc:
            return self._done(WriteResult(400, str(exc)))
        foreign = sorted(s for s in batch.site_ids() if self.service.owner(s) != token.data_center)
        if foreign:
            return self._done(WriteResult(403, f"data center {token.data_center!r} may not "
                                          f"write site(s) {', '.join(foreign)}"))
        self._check(batch, now)
        with self.lock:
            stored, duplicates = self._store(batch, now)
        refused = len(batch.errors)
        self.counters.lines_refused += refused
        if refused:
            shown = sorted(batch.errors, key=lambda e: e.line)[:MAX_ERRORS_SHOWN]
            more = f" (and {refused - len(shown)} more)" if refused > len(shown) else ""
            return self._done(WriteResult(
                400, f"{refused} line(s) refused, {stored} reading(s) stored: "
                + "; ".join(str(e) for e in shown) + more, stored, duplicates, refused))
        return self._done(WriteResult(204, "", stored, duplicates))

    def _done(self, result: WriteResult) -> WriteResult:
        self.counters.batches[result.status] = self.counters.batches.get(result.status, 0) + 1
        return result

    def _check(self, batch: Batch, now: float) -> None:
        """Refuse (as line errors) readings from the future, of a device defined under
        another site, and a second value for one reading; keep one of identical ones."""
        home = {d.id: s.id for s, d in self.config.devices()}
        limit = now + self.service.max_clock_skew_s
        if self._all_good(batch, home, limit):
            self._check_runs(batch, now, limit)
            return
        keep = []
        seen: dict[tuple, float] = {}
        for i, (ts, device, site) in enumerate(zip(batch.ts, batch.devices, batch.sites)):
            line = batch.lines[i]
            if ts > limit:
                batch.errors.append(LineError(line, f"reading from the future: "
                                    f"{ts - now:.0f} s ahead of the central's clock"))
                continue
            if home.get(device, site) != site:
                batch.errors.append(LineError(line, f"device {device!r} belongs to site "
                                    f"{home[device]!r}, not {site!r}"))
                continue
            key = (ts, device, batch.metrics[i], batch.keys[i])
            if key in seen:
                if seen[key] != batch.values[i]:
                    batch.errors.append(LineError(line, "the same reading with another value "
                                                  "earlier in the batch"))
                continue
            seen[key] = batch.values[i]
            keep.append(i)
        if len(keep) < len(batch.ts):
            batch.keep(keep)
        self._check_runs(batch, now, limit)

    @staticmethod
    def _all_good(batch: Batch, home: dict[str, str], limit: float) -> bool:
        """Whether _check would keep every reading (the usual batch), in a few passes
        in C instead of one Python step per reading."""
        n = len(batch.ts)
        return not n or (max(batch.ts) <= limit and all(
            home.get(device, site) == site for device, site in set(zip(batch.devices,
                                                                         batch.sites)))
            and len(set(zip(batch.ts, batch.devices, batch.metrics, batch.keys))) == n)

    @staticmethod
    def _check_runs(batch: Batch, now: float, limit: float) -> None:
        runs = []
        for run, line in zip(batch.runs, batch.run_lines):
            if run[2] > limit:
                batch.errors.append(LineError(line, f"run mark from the future: "
                                              f"{run[2] - now:.0f} s ahead of the central's "
                                              "clock"))
            else:
                runs.append(run)
        batch.runs = runs

    def _store(self, batch: Batch, now: float) -> tuple[int, int]:
        """Write the new readings and the run marks; (stored, duplicates)."""
        stored = duplicates = 0
        if batch.ts:
            self.store.set_sites(dict(zip(batch.devices, batch.sites)))
            rows = IngestBatch(batch.sites, batch.ts, batch.devices, batch.metrics,
                               batch.keys, batch.values)
            blocks: dict[str, tuple[float, float]] = {}

            def stale(new: list[int]) -> list[tuple[str, tuple[float, float]]]:
                touching = self._may_touch_closed(batch, new, now)
                if touching:
                    # with the configuration: new IT power or a run made longer also
                    # changes other meters' blocks (the stuck-counter and stuck-power rules)
                    blocks.update(affected_blocks([batch.reading(i) for i in touching],
                                                  self.store, now, self.config))
                return list(blocks.items())

            done = self.store.ingest_readings(rows, stale)
            for i, there in sorted(done.conflicts.items()):
                batch.errors.append(LineError(batch.lines[i],
                                              conflict_reason(batch.reading(i), there)))
            if done.new:
                self._recompute(blocks)
                self._remember(batch, done.new)
            stored, duplicates = len(done.new), done.same
            self.counters.readings_stored += stored
            self.counters.readings_duplicate += duplicates
        if batch.runs:
            self.store.mark_edge_runs(batch.runs)
        return stored, duplicates

    def _may_touch_closed(self, batch: Batch, new: list[int], now: float) -> list[int]:
        """The new readings that may change a closed block (those of the other devices
        cannot, and cost no query): a device whose two latest readings stored by this
        process are both after the settled horizon and before all its new ones appends
        after it, so the readings the roll-up interpolates from (two on each side) are
        all unsettled. Another process storing readings of the device meanwhile only
        moves those neighbours later, so the shortcut holds with several processes."""
        settled = math.floor((now - SETTLE_S) / BLOCK_S) * BLOCK_S
        pairs = zip(batch.devices, batch.ts) if len(new) == len(batch.ts) else \
            ((batch.devices[i], batch.ts[i]) for i in new)
        # {device: its first new time}: the latest times first, the earliest written last
        first = dict(sorted(pairs, key=itemgetter(1), reverse=True))
        safe = {d for d, ts in first.items() if (known := self._recent.get(d)) is not None
                and settled < known[0] <= known[1] < ts}
        return [i for i in new if batch.devices[i] not in safe]

    def _remember(self, batch: Batch, new: list[int]) -> None:
        """The two latest times stored per device of the readings blocks are made of
        (device totals of BLOCK_METRICS, as StoreProtocol.neighbour_times counts them):
        as if each new time were taken in turn, a later one than the latest known
        shifting the pair (an equal or earlier one changes nothing)."""
        keys, metrics, devices, times = batch.keys, batch.metrics, batch.devices, batch.ts
        if len(new) == len(times) and not any(keys) and _BLOCK_METRICS.issuperset(metrics):
            pairs = list(zip(devices, times))  # the usual batch: every reading counts
        else:
            pairs = [(devices[i], times[i]) for i in new
                     if not keys[i] and metrics[i] in BLOCK_METRICS]
        by_time = itemgetter(1)
        latest = dict(sorted(pairs, key=by_time))  # {device: its latest new time}
        # {device: its latest new time before that one}
        second = dict(sorted((p for p in pairs if p[1] < latest[p[0]]), key=by_time))
        recent, none = self._recent, (-math.inf, -math.inf)
        for device, ts in latest.items():
            known = recent.get(device, none)[1]
            if ts > known:
                before = second.get(device, -math.inf)
                recent[device] = (before if before > known else known, ts)

    def _recompute(self, blocks: dict[str, tuple[float, float]]) -> None:
        devices = {d.id: (s, d) for s, d in self.config.devices()}
        for device, (start, end) in blocks.items():
            if device in devices and devices[device][1].role not in NO_ENERGY_ROLES:
                rollup_range(self.store, self.config, *devices[device], start, end)

    # -- clocks ---------------------------------------------------------------------

    def _clock_seen(self, data_center: str, edge_ts: float | None, now: float) -> None:
        skew = None if edge_ts is None else edge_ts - now
        flagged = skew is not None and abs(skew) > self.service.max_clock_skew_s
        before = self.clocks.get(data_center)
        if flagged and (before is None or not before.flagged):
            log.warning("the clock of data center %s is %+.0f s from the central's (more "
                        "than %.0f s): its readings' times are suspect", data_center, skew,
                        self.service.max_clock_skew_s)
        elif not flagged and before is not None and before.flagged:
            log.info("the clock of data center %s agrees with the central's again", data_center)
        self.clocks[data_center] = EdgeClock(now, skew, flagged)


__all__ = ["Central", "EdgeClock", "WriteResult"]
