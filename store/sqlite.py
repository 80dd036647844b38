"""The embedded store: one SQLite database in WAL mode under the data directory.

Store implements store.base.StoreProtocol (its transaction and snapshot rules are there):
a writing method is one SQLite transaction, a snapshot is one read transaction (WAL:
readers never wait for the writer), and one connection per thread.
"""

from __future__ import annotations

import bisect
import json
import math
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pue_monitor.pue.lazynp import np

from pue_monitor.store import (accounts, central, days, events, kept, recent, series,
                               sqlite_windows)
from pue_monitor.store.sqlite_rows import insert_rows
from pue_monitor.store.base import (
    BLOCK_METRICS,
    NEAR_READINGS,
    PRUNE_CHUNK_S,
    BlockTotal,
    DeviceHealth,
    ProgressFn,
    near_time,
    whole_span,
)
from pue_monitor.store.model import HealthState, Identified, PollResult, Reading, labels_key
from pue_monitor.store.series import SERIES_ID
from pue_monitor.store.sqlite_windows import SQL_NEAR_CHUNK

if TYPE_CHECKING:  # pandas is imported where a frame is built: `report` never needs it
    import pandas as pd

log = logging.getLogger(__name__)

DB_FILE = "pue-monitor.sqlite3"
SCHEMA_VERSION = series.SCHEMA_VERSION  # store.series: readings, versions
BUSY_TIMEOUT_S = 5.0
# Page cache of the connection that writes poll results (SQLite's default is 2 MiB): see
# Store.write_polls. At most this much memory, used only as pages are read.
POLL_WRITER_CACHE_KIB = 16 * 1024
HEALTH_COLUMNS_ADDED = (("degraded", "INTEGER NOT NULL DEFAULT 0"),)
# The flag counts of a block (pue.quality.COUNTED beyond resets), in row order.
FLAG_COLUMNS = days.FLAG_COLUMNS
BLOCK_COLUMNS_ADDED = (("resets", "INTEGER NOT NULL DEFAULT 0"), ("counter_kwh", "REAL"),
                      ("power_kwh", "REAL"),
                      *((c, "INTEGER NOT NULL DEFAULT 0") for c in FLAG_COLUMNS))
SQL_IN_CHUNK = 500  # values per "IN (...)" list, well under SQLite's variable limit
# What a caller catches when the store cannot be used now (locked past the busy timeout).
BUSY_ERRORS: tuple[type[Exception], ...] = (sqlite3.OperationalError,)
DEVICE_PROFILE_KEY = "device_profile:"  # meta key prefix: what an auto device was identified as
SETTINGS_KEY = "block_settings:"  # meta key prefix: the settings a device's blocks were made with

SCHEMA = """
-- meta, series and readings: store.series
CREATE TABLE IF NOT EXISTS device_health (
    device TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    up INTEGER NOT NULL,
    last_poll_ts REAL,
    last_ok_ts REAL,
    last_duration_s REAL,
    last_error_kind TEXT,
    last_error TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    polls_total INTEGER NOT NULL DEFAULT 0,
    degraded INTEGER NOT NULL DEFAULT 0  -- the last poll answered with undecodable readings
);
CREATE TABLE IF NOT EXISTS monitor_runs (  -- the monitor's run log (pue.runlog)
    run TEXT PRIMARY KEY,
    started REAL NOT NULL,
    last_seen REAL NOT NULL,     -- its last heartbeat, or its stop
    stopped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS monitor_runs_started ON monitor_runs (started);
CREATE TABLE IF NOT EXISTS poll_errors (
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (device, kind)
);
CREATE TABLE IF NOT EXISTS interval_energy (
    device TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    energy_kwh REAL,             -- NULL when the meter measured nothing in the interval
    covered_s REAL NOT NULL,
    method TEXT NOT NULL,
    resets INTEGER NOT NULL DEFAULT 0,   -- counter resets or wraps inside the block
    counter_kwh REAL,            -- counter and integrated power over the time both measured,
    power_kwh REAL,              -- for the counter-against-power check (NULL: not both)
    step_backs INTEGER NOT NULL DEFAULT 0,   -- flags ending inside the block
    wraps INTEGER NOT NULL DEFAULT 0,
    stuck INTEGER NOT NULL DEFAULT 0,
    implausible INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device, start)
);
"""


# A poll's health row, as (head, row, tail) for insert_rows: many polls in one statement.
_HEALTH_INSERT = """INSERT INTO device_health (device, site, up, last_poll_ts, last_ok_ts,
     last_duration_s, last_error_kind, last_error, consecutive_failures,
     polls_total, degraded)"""
_HEALTH_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
_HEALTH_ON_CONFLICT = """ON CONFLICT(device) DO UPDATE SET degraded = excluded.degraded,
     site = excluded.site, up = excluded.up, last_poll_ts = excluded.last_poll_ts,
     last_ok_ts = COALESCE(excluded.last_ok_ts, device_health.last_ok_ts),
     last_duration_s = excluded.last_duration_s,
     last_error_kind = excluded.last_error_kind, last_error = excluded.last_error,
     consecutive_failures = CASE WHEN excluded.up = 1 THEN 0
         ELSE device_health.consecutive_failures + 1 END,
     polls_total = device_health.polls_total + 1"""
_ERRORS_UPSERT = """INSERT INTO poll_errors VALUES (?, ?, ?) ON CONFLICT(device, kind)
                    DO UPDATE SET count = count + excluded.count"""
def _add(total: float | None, value: float | None) -> float | None:
    return total if value is None else (value if total is None else total + value)


class Store(accounts.UsersMixin, events.EventsMixin, central.CentralMixin):
    """Readings, device health, interval energy and the web view's users (store.accounts).
    Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._series = series.SeriesIds()
        self._mover = recent.Mover()
        conn = self._connect().conn
        series.prepare(conn, self.path)
        conn.executescript(SCHEMA)
        for table, added in (("interval_energy", BLOCK_COLUMNS_ADDED),
                             ("device_health", HEALTH_COLUMNS_ADDED)):
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for column, kind in added:
                if column not in have:  # a store written by an earlier version
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        days.create(conn)
        accounts.create(conn)
        events.create(conn)
        central.create(conn)
        kept.create(conn)
        self._series.load(conn)

    @classmethod
    def open(cls, data_dir: str | Path) -> Store:
        """Open (creating if needed) the store under ``data_dir``."""
        folder = Path(data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder / DB_FILE)

    def _connect(self, immediate: bool = False) -> _Tx:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        if getattr(self._local, "snapshot", False):
            if immediate:
                raise RuntimeError("a write inside a read snapshot")
            return _Joined(conn)
        return _Tx(conn, immediate)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads on this thread inside share one read transaction: one consistent view of
        blocks, day rows and readings while writers go on (WAL readers never wait)."""
        if getattr(self._local, "snapshot", False):
            yield
            return
        with self._connect():
            self._local.snapshot = True
            try:
                yield
            finally:
                self._local.snapshot = False

    def close(self) -> None:
        """Close this thread's connection (it reopens on next use)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            self._local.writes_polls = False

    # -- writing (collectors) -------------------------------------------------------

    def write_polls(self, results: Sequence[PollResult]) -> None:
        """Store readings, health and error counts of many polls in one transaction (the
        readings into ``recent``, moved into ``readings`` in bulk when due: store.recent)."""
        rows, misses = self._series.rows(r for res in results for r in res.readings)
        health, errors = [], []
        for res in results:
            end = res.started + res.duration_s
            health.append((res.device, res.site, int(res.ok), end, end if res.ok else None,
                           res.duration_s, res.error_kind.value if res.error_kind else None,
                           res.error, 0 if res.ok else 1,
                           int(res.state == HealthState.DEGRADED)))
            errors += [(res.device, kind, n) for kind, n in res.error_counts().items()]
        with self._connect() as conn:
            if not getattr(self._local, "writes_polls", False):
                # The connection that writes every poll keeps more of the readings'
                # indexes in memory: with SQLite's default 2 MiB it read the pages of
                # the series index back from the file at each batch (system time).
                conn.execute(f"PRAGMA cache_size = -{POLL_WRITER_CACHE_KIB}")
                self._local.writes_polls = True
            found = self._series.resolve(conn, rows, misses)
            # Many rows per statement (store.sqlite_rows), the health rows in the polls'
            # order: a device polled twice in one batch counts both polls and keeps the
            # later one's state.
            insert_rows(conn, "INSERT INTO recent", "(?, ?, ?, ?)", rows)
            insert_rows(conn, _HEALTH_INSERT, _HEALTH_ROW, health, _HEALTH_ON_CONFLICT)
            conn.executemany(_ERRORS_UPSERT, errors)
        self._committed(found)
        self._wrote_recent(len(rows))

    def _wrote_recent(self, rows: int) -> None:
        """After a committed write of ``rows`` into recent: the move, when due."""
        if not self._mover.wrote(rows) or getattr(self._local, "snapshot", False):
            return
        try:
            self.move_recent()
        except sqlite3.Error as exc:
            # The write is stored (and must not be made again): its readings stay
            # readable in recent, and the move is tried again when next due.
            log.warning("store %s: moving the newest readings into readings failed "
                        "(%s); they stay readable and are moved later", self.path, exc)

    def move_recent(self) -> int:
        """Move the poll readings waiting in ``recent`` into ``readings`` now, in chunks
        of whole series, a transaction each (write_polls does when due; store.recent);
        how many moved."""
        self._mover.started()
        moved, start = 0, recent.FIRST
        while True:
            with self._connect(immediate=True) as conn:
                n, start = recent.move_chunk(conn, start)
            moved += n
            if start is None:
                return moved
            time.sleep(recent.MOVE_PAUSE_S)  # another writer waiting gets the lock

    def prune_readings(self, before: float) -> int:
        """Delete the readings older than ``before``, a day per transaction."""
        with self._connect() as conn:
            firsts = {table: conn.execute(f"SELECT MIN(ts) FROM {table}").fetchone()[0]
                      for table in recent.TABLES}
        oldest = min((t for t in firsts.values() if t is not None), default=None)
        gone = 0
        while oldest is not None and oldest < before:
            upto = min(before, oldest + PRUNE_CHUNK_S)
            with self._connect() as conn:
                for table, first in firsts.items():
                    # recent has no index on ts (a scan of it per day pruned): only the
                    # days it reaches. What is written meanwhile is newer than ``before``
                    # (or waits for the next prune).
                    if first is not None and first < upto:
                        gone += conn.execute(f"DELETE FROM {table} WHERE ts < ?",
                                             (upto,)).rowcount
                kept.changed(conn, -math.inf, upto)
            oldest = upto
        return gone

    def mark_run(self, run: str, ts: float, stopped: bool = False) -> None:
        """Start, heartbeat or clean stop of a monitor run (see StoreProtocol.mark_run)."""
        with self._connect() as conn:
            conn.execute("INSERT INTO monitor_runs VALUES (?, ?, ?, ?) ON CONFLICT(run) DO "
                         "UPDATE SET last_seen = MAX(last_seen, excluded.last_seen), "
                         "stopped = excluded.stopped", (run, ts, ts, int(stopped)))

    def runs(self, start: float, end: float, site: str | None = None
             ) -> list[tuple[float, float, bool]]:
        """(started, last seen, stopped) of the runs overlapping [start, end), by start:
        this monitor's, and with ``site`` its edge's (store.central)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT started, last_seen, stopped FROM (SELECT started, "
                                "last_seen, stopped FROM monitor_runs UNION ALL SELECT started, "
                                "last_seen, stopped FROM edge_runs WHERE site = ?) "
                                "WHERE started < ? AND last_seen >= ? ORDER BY started",
                                (site, end, start)).fetchall()
        return [(a, b, bool(s)) for a, b, s in rows]

    def import_readings(self, readings: Sequence[Reading],
                        stale: Sequence[tuple[str, tuple[float, float]]] = ()) -> None:
        """Historical readings, and the removal of the blocks they make stale (device,
        (start, end)), in one transaction: all of it or none of it."""
        rows, misses = self._series.rows(readings)
        with self._connect() as conn:
            found = self._series.resolve(conn, rows, misses)
            conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", rows)
            self._drop_stale(conn, stale)
        self._committed(found)

    def _committed(self, found: dict[series.Key, int]) -> None:
        """Cache the series ids a write found, now that it has committed (a write that
        joined a snapshot's transaction has not: its ids are read again next time)."""
        if not getattr(self._local, "snapshot", False):
            self._series.publish(found)

    @staticmethod
    def _drop_stale(conn: sqlite3.Connection,
                    stale: Sequence[tuple[str, tuple[float, float]]]) -> None:
        """Delete the blocks (device, (start, end)) new readings make stale, and bring
        the day summary in step, in the caller's transaction."""
        conn.executemany("DELETE FROM interval_energy WHERE device = ? AND start >= ? "
                         "AND start < ?", [(d, a, b) for d, (a, b) in stale])
        if stale:
            kept.changed(conn, min(a for _, (a, _) in stale), max(b for _, (_, b) in stale))
        days.refresh(conn)

    def write_interval_energy(self, rows: Iterable[tuple]) -> None:
        """Upsert (device, start, end, energy_kwh, covered_s, method[, resets, counter_kwh,
        power_kwh]) rows."""
        tails = {6: (0, None, None, 0, 0, 0, 0), 9: (0, 0, 0, 0), 13: ()}
        full = [(*r, *tails[len(r)]) for r in rows]
        with self._connect() as conn:
            conn.executemany("INSERT OR REPLACE INTO interval_energy (device, start, end, "
                             "energy_kwh, covered_s, method, resets, counter_kwh, power_kwh, "
                             f"{', '.join(FLAG_COLUMNS)}) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", full)
            if full:
                kept.changed(conn, min(r[1] for r in full), max(r[2] for r in full))
            days.refresh(conn)  # the days of these blocks, in the same transaction

    def stored_values(self, readings: Sequence[Reading]
                      ) -> dict[int, list[tuple[float | None, str]]]:
        """For an import: {index in ``readings``: [(value, quality), ...] stored at the same
        (device, metric, labels, ts)}; a reading not stored yet is absent. One join of a
        temporary table against the series index, not a query per reading."""
        keys = [(i, r.ts, r.device, r.metric, labels_key(r.labels))
                for i, r in enumerate(readings)]
        out: dict[int, list[tuple[float | None, str]]] = {}
        with self._connect() as conn:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_keys (i INTEGER PRIMARY KEY, "
                         "ts REAL, device TEXT, metric TEXT, labels TEXT)")
            conn.execute("DELETE FROM import_keys")
            conn.executemany("INSERT INTO import_keys VALUES (?, ?, ?, ?, ?)", keys)
            # CROSS JOIN keeps import_keys the outer loop: one probe per key of the
            # series' unique index, then of the readings' (series, ts); readings, then
            # the poll readings not moved yet (store.recent).
            for i, value, quality in conn.execute(recent.both(
                    "SELECT k.i, r.value, r.quality FROM import_keys AS k CROSS JOIN series "
                    "AS s ON s.device = k.device AND s.metric = k.metric "
                    "AND s.labels = k.labels CROSS JOIN readings AS r ON r.series = s.id "
                    "AND r.ts = k.ts")):
                out.setdefault(i, []).append((value, quality))
            conn.execute("DROP TABLE import_keys")
        return out

    # -- reading (web, reports, exporters) -------------------------------------------

    def series_windows(self, keys: Sequence[tuple[str, str]],
                       windows: Sequence[tuple[float, float]], labels: str = "",
                       near_s: float = 0.0
                       ) -> list[dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]]:
        """Good readings of each (device, metric) in each window [start, end], plus the
        NEAR_READINGS nearest on each side, as sorted (times, values) arrays
        (StoreProtocol.series_windows; how they are read: store.sqlite_windows)."""
        with self._connect() as conn:
            return sqlite_windows.series_windows(conn, keys, windows, labels, near_s)

    def series_at(self, points: Sequence[tuple[tuple[str, str], float]], labels: str = ""
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each ((device, metric), ts): series_windows([key], [(ts, ts)]) of it (in the
        process: no round trip to save)."""
        return [self.series_windows([key], [(ts, ts)], labels)[0][key] for key, ts in points]

    def latest(self, since: float, devices: Sequence[str] | None = None) -> pd.DataFrame:
        """The newest reading of every (device, metric, labels) seen since ``since``."""
        import pandas as pd

        # Each series' newest reading off the end of its (series, ts) index: a seek per
        # series, not a scan of every reading since ``since`` (an hour of a large site's
        # readings is millions of rows). Of readings, then of the poll readings not moved
        # yet (store.recent); the later time wins, and of readings at the same time the
        # first written (as a single table's MAX(ts) kept it).
        sql = ("SELECT s.device, s.metric, s.labels, r.ts, r.value, r.quality FROM series "
               "AS s CROSS JOIN {table} AS r ON r.series = s.id AND r.ts = (SELECT MAX(ts) "
               "FROM {table} WHERE series = s.id AND ts >= ?)")
        args: list = [since]
        if devices is not None:
            sql += f" WHERE s.device IN ({','.join('?' * len(devices))})"
            args.extend(devices)
        newest: dict[tuple, tuple] = {}
        with self._connect() as conn:
            for table in recent.TABLES:
                for row in conn.execute(sql.format(table=table), args):
                    there = newest.get(row[:3])
                    if there is None or row[3] > there[3]:
                        newest[row[:3]] = row
        rows = [newest[key] for key in sorted(newest)]
        return pd.DataFrame(rows, columns=["device", "metric", "labels", "ts", "value", "quality"])

    def health(self) -> dict[str, DeviceHealth]:
        """The latest poll outcome of every device polled so far."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT device, site, up, last_poll_ts, last_ok_ts, last_duration_s, "
                "last_error_kind, last_error, consecutive_failures, polls_total, degraded "
                "FROM device_health").fetchall()
        return {r[0]: DeviceHealth(r[0], r[1], bool(r[2]), *r[3:10], degraded=bool(r[10]))
                for r in rows}

    def error_counts(self) -> dict[tuple[str, str], int]:
        """{(device, error kind): count} since the store was created."""
        with self._connect() as conn:
            rows = conn.execute("SELECT device, kind, count FROM poll_errors").fetchall()
        return {(d, k): n for d, k, n in rows}

    def interval_energy(self, devices: Sequence[str], start: float, end: float) -> pd.DataFrame:
        """Stored interval energy rows of these devices starting in [start, end)."""
        import pandas as pd

        sql = ("SELECT device, start, end, energy_kwh, covered_s, method FROM interval_energy "
               f"WHERE device IN ({','.join('?' * len(devices))}) AND start >= ? AND start < ? "
               "ORDER BY device, start")
        with self._connect() as conn:
            rows = conn.execute(sql, (*devices, start, end)).fetchall()
        return pd.DataFrame(rows, columns=["device", "start", "end", "energy_kwh", "covered_s",
                                           "method"])

    def block_starts(self, devices: Sequence[str], start: float, end: float) -> list[float]:
        """Distinct starts of the stored blocks of any of these devices in [start, end)."""
        devices = list(dict.fromkeys(devices))
        if not devices:
            return []
        where = f"device IN ({','.join('?' * len(devices))})"
        with self._connect() as conn:
            rows = conn.execute(f"SELECT DISTINCT start FROM interval_energy WHERE {where} "
                                "AND start >= ? AND start < ?", (*devices, start, end)).fetchall()
        return [r[0] for r in rows]

    def block_counts(self, devices: Sequence[str], start: float, end: float) -> dict[str, int]:
        """Stored blocks per device in [start, end) (devices without any are absent); the
        whole days in between from the day summary when it is complete."""
        devices = list(dict.fromkeys(devices))
        if not devices:
            return {}
        where = f"device IN ({','.join('?' * len(devices))})"
        count = (f"SELECT device, COUNT(*) FROM interval_energy WHERE {where} AND start >= ? "
                 "AND start < ? GROUP BY device")
        out: dict[str, int] = {}
        with self._connect() as conn:
            span = whole_span(days.offset(conn), start, end)
            if span is None or not days.complete(conn):
                return dict(conn.execute(count, (*devices, start, end)).fetchall())
            first, last = span
            parts = [(f"SELECT device, SUM(blocks) FROM day_energy WHERE {where} AND day >= ? "
                      "AND day < ? GROUP BY device", (first, last)),
                     (count, (start, first)), (count, (last, end))]
            for sql, (a, b) in parts:
                for device, n in conn.execute(sql, (*devices, a, b)):
                    out[device] = out.get(device, 0) + n
        return {d: n for d, n in out.items() if n}

    def blocks_below(self, ranges: Sequence[tuple[str, float, float]],
                     covered_s: float) -> list[tuple[str, float, float]]:
        """(device, start, covered seconds) of the blocks covered less than ``covered_s``
        in (device, start, end) ranges, in as few statements as the compound-select limit
        allows."""
        one = ("SELECT device, start, covered_s FROM interval_energy WHERE device = ? AND "
               "start >= ? AND start < ? AND covered_s < ?")
        out: list[tuple[str, float, float]] = []
        with self._connect() as conn:
            for i in range(0, len(ranges), SQL_NEAR_CHUNK):
                chunk = ranges[i:i + SQL_NEAR_CHUNK]
                out += conn.execute(" UNION ALL ".join([one] * len(chunk)),
                                    [x for r in chunk for x in (*r, covered_s)]).fetchall()
        return out

    def block_totals(self, devices: Sequence[str], start: float, end: float,
                     edges: Sequence[float] = (), starts: Sequence[float] | None = None,
                     by_day: bool = False) -> dict[tuple[str, int], BlockTotal]:
        """Per (device, segment), over its blocks in [start, end) (or only those starting
        at ``starts``): energy, covered time, methods, resets and the cross-check sums;
        segment i lies between the i-th and (i+1)-th of start, *edges, end. One scan of
        the blocks for all segments.

        ``by_day``: the same sums from the day summary, over the days starting in
        [start, end) (or at ``starts``); segment edges must not cut those days.
        """
        if not devices:
            return {}
        table, t, method_col = ("day_energy", "day", "methods") if by_day else (
            "interval_energy", "start", "method")
        sql = (f"SELECT device, SUM(energy_kwh), SUM(covered_s), "
               f"GROUP_CONCAT(DISTINCT {method_col}), SUM(resets), SUM(counter_kwh), "
               f"SUM(power_kwh), {', '.join(f'SUM({c})' for c in FLAG_COLUMNS)} "
               f"FROM {table} WHERE device IN ({','.join('?' * len(devices))}) ")
        out: dict[tuple[str, int], list] = {}
        with self._connect() as conn:
            # One statement per segment, each reading its device's rows in time order
            # (the primary key's): a segment number computed per row would make SQLite
            # compare every row with every edge and sort the rows into groups.
            for seg, where, values in _segment_queries(t, start, end, edges, starts):
                for (device, energy, covered, methods, resets, by_counter, by_power,
                     *flags) in conn.execute(sql + where + " GROUP BY device",
                                             [*devices, *values]):
                    acc = out.setdefault((device, seg),
                                         [None, 0.0, set(), 0, None, None, 0, 0, 0, 0])
                    acc[0] = _add(acc[0], energy)
                    acc[1] += covered or 0.0
                    acc[2] |= {m for m in (methods or "").split(",") if m and m != "none"}
                    acc[3] += resets or 0
                    acc[4], acc[5] = _add(acc[4], by_counter), _add(acc[5], by_power)
                    for i, n in enumerate(flags):
                        acc[6 + i] += n or 0
        return {k: BlockTotal(e, c, "+".join(sorted(m)), r, bc, bp, *flags)
                for k, (e, c, m, r, bc, bp, *flags) in out.items()}

    # -- the day summary of the blocks (store.days) --------------------------------------

    @property
    def day_offset_s(self) -> int:
        """Where the summary's days start, in seconds east of UTC."""
        with self._connect() as conn:
            return days.offset(conn)

    def align_days(self, offset_s: int) -> bool:
        """Start the summary's days at ``offset_s`` east of UTC (the sites' local
        midnight); True if that changed, in which case the summary is rebuilt."""
        with self._connect(immediate=True) as conn:
            return days.align(conn, offset_s)

    def rebuild_days(self, progress: ProgressFn | None = None) -> bool:
        """Fill in an incomplete day summary (a store written before it existed, or a new
        offset), one device per transaction so writers wait milliseconds, not seconds;
        ``progress(devices done, devices)`` after each. True if there was anything to do."""
        with self._connect() as conn:
            if days.complete(conn):
                return False
            total = days.device_count(conn) if progress is not None else 0
        device, done = None, 0
        while True:
            with self._connect(immediate=True) as conn:
                device = days.next_device(conn, device)
                if device is None:
                    days.set_complete(conn, True)
                    return True
                days.rebuild(conn, device)
            done += 1
            if progress is not None:
                progress(done, max(total, done))

    def days_complete(self) -> bool:
        """Whether the day summary covers every block (else readers use the blocks)."""
        with self._connect() as conn:
            return days.complete(conn)

    def days_not_whole(self, devices: Sequence[str], start: float, end: float,
                       covered_s: float) -> list[tuple[str, float, int, float]]:
        """(device, day, blocks, least covered) of the days starting in [start, end) on
        which a device lacks a block or has one covered less than ``covered_s``; a day
        without a block at all is (device, day, 0, 0.0)."""
        with self._connect() as conn:
            return days.not_whole(conn, devices, start, end, covered_s)

    def day_rows(self, devices: Sequence[str], start: float, end: float) -> list[tuple]:
        """Day summaries of these devices starting in [start, end) (see store.days.rows)."""
        with self._connect() as conn:
            return days.rows(conn, devices, start, end)

    def last_interval_end(self, device: str) -> float | None:
        """The end of the device's latest block, None without any."""
        # The latest block by start (an index seek; MAX(end) would read every block).
        with self._connect() as conn:
            row = conn.execute("SELECT end FROM interval_energy WHERE device = ? "
                               "ORDER BY start DESC LIMIT 1", (device,)).fetchone()
        return None if row is None else row[0]

    def first_reading_ts(self, device: str, metrics: Sequence[str] = BLOCK_METRICS
                         ) -> float | None:
        """The device's first reading of any of ``metrics`` (device totals)."""
        return self._edge_ts(device, metrics, "MIN", "ts > ?", -math.inf)

    def neighbour_times(self, spans: Mapping[str, tuple[float, float]],
                        metrics: Sequence[str] = BLOCK_METRICS
                        ) -> dict[str, tuple[float, float]]:
        """{device: its NEAR_READINGS-th reading (or the farthest there is) of any of
        ``metrics`` before its start and after its end, or start / end themselves where
        there is none} (SQLite is in the process: a few index seeks per device cost no
        round trip)."""
        # The nearest NEAR_READINGS times of each metric off the series index, then the
        # NEAR_READINGS-th nearest of them all.
        # Of readings and of the poll readings not moved yet (store.recent).
        sql = [f"SELECT ts FROM {table} WHERE series = {SERIES_ID} AND ts {{op}} ? "
               f"ORDER BY ts {{order}} LIMIT {NEAR_READINGS}" for table in recent.TABLES]
        before = [text.format(op="<", order="DESC") for text in sql]
        after = [text.format(op=">", order="ASC") for text in sql]
        out = {}
        with self._connect() as conn:
            for device, (start, end) in spans.items():
                out[device] = tuple(near_time(
                    # Each metric's NEAR_READINGS nearest over both tables (each table
                    # gives its own: with readings at equal times, more of them would
                    # count where the readings are split between the two).
                    (t for metric in metrics for t in sorted(
                        (t for text in texts
                         for (t,) in conn.execute(text, (device, metric, "", bound))),
                        reverse=back)[:NEAR_READINGS]), bound, back)
                    for texts, bound, back in ((before, start, True), (after, end, False)))
        return out  # type: ignore[return-value]

    def _edge_ts(self, device: str, metrics: Sequence[str], agg: str, where: str,
                 bound: float) -> float | None:
        # One index seek per metric: with the series given, SQLite reads MIN/MAX(ts) off
        # the (series, ts) index's end instead of scanning the series' rows.
        # Of readings and of the poll readings not moved yet (store.recent).
        sql = [f"SELECT {agg}(ts) FROM {table} WHERE series = {SERIES_ID} AND {where}"
               for table in recent.TABLES]
        with self._connect() as conn:
            found = [conn.execute(text, (device, metric, "", bound)).fetchone()[0]
                     for metric in metrics for text in sql]
        found = [t for t in found if t is not None]
        if not found:
            return None
        return min(found) if agg == "MIN" else max(found)

    def set_device_profile(self, device: str, name: str, sys_object_id: str = "",
                           reason: str = "", ts: float | None = None) -> None:
        """Record the profile an auto device was identified as, and why (a meta key per
        device holding a JSON object)."""
        record = {"profile": name, "sys_object_id": sys_object_id, "reason": reason, "ts": ts}
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                         (DEVICE_PROFILE_KEY + device, json.dumps(record)))

    def device_profiles(self) -> dict[str, str]:
        """{device id: identified profile name} of the auto devices identified so far."""
        return {device: found.profile for device, found in self.device_identifications().items()}

    def device_identifications(self) -> dict[str, Identified]:
        """{device id: profile, sysObjectID, reason and time recorded}. A store written
        before the reason was kept holds the bare profile name (a JSON string)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
                                (len(DEVICE_PROFILE_KEY), DEVICE_PROFILE_KEY)).fetchall()
        out = {}
        for key, value in rows:
            record = json.loads(value)
            out[key[len(DEVICE_PROFILE_KEY):]] = (
                Identified(record) if isinstance(record, str) else Identified(
                    record["profile"], record.get("sys_object_id") or "",
                    record.get("reason") or "", record.get("ts")))
        return out


    def kept_parts(self, site: str, start: float, end: float
                   ) -> tuple[int, dict[float, tuple[float, str, str]]]:
        """The site's kept results starting in [start, end) and the changes counted so
        far (store.kept)."""
        with self._connect() as conn:
            return kept.read(conn, site, start, end)

    def keep_parts(self, site: str, seen: int,
                   rows: Sequence[tuple[float, float, float, float, str, str]]) -> bool:
        """Keep these results of the site unless a change was counted since ``seen``
        (store.kept); whether they were kept."""
        with self._connect(immediate=True) as conn:
            return kept.keep(conn, site, seen, rows)

    def settings_fingerprints(self) -> dict[str, str]:
        """{device id: fingerprint of the settings its stored blocks were computed with}."""
        with self._connect() as conn:
            rows = conn.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
                                (len(SETTINGS_KEY), SETTINGS_KEY)).fetchall()
        return {key[len(SETTINGS_KEY):]: value for key, value in rows}

    def replace_settings(self, fingerprints: Mapping[str, str],
                         drop_blocks: bool = True,
                         since: Mapping[str, float] | None = None) -> None:
        """Record these devices' settings and delete their blocks (from ``since``, see
        StoreProtocol; their days follow), in one transaction: the blocks are recomputed
        with the new settings."""
        with self._connect(immediate=True) as conn:
            for device, value in fingerprints.items():
                start = -math.inf if since is None else since.get(device)
                if drop_blocks and start is not None:
                    conn.execute("DELETE FROM interval_energy WHERE device = ? AND start >= ?",
                                 (device, max(start, -1e300)))
                    kept.changed(conn, start, math.inf)
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             (SETTINGS_KEY + device, value))
            days.refresh(conn)


class _Joined:
    """Context manager: a statement inside the thread's open snapshot transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        return None


def _segment_queries(t: str, start: float, end: float, edges: Sequence[float],
                     starts: Sequence[float] | None) -> Iterator[tuple[int, str, list]]:
    """(segment, WHERE clause continued, its values) for each non-empty segment of
    block_totals: segment i holds the times with i of ``edges`` at or before them, in
    [start, end), or only those of ``starts`` (each list at most SQL_IN_CHUNK long)."""
    cuts = sorted(edges)
    if starts is None:
        bounds = [start, *(min(max(c, start), end) for c in cuts), end]
        for seg in range(len(bounds) - 1):
            if bounds[seg] < bounds[seg + 1]:
                yield seg, f"AND {t} >= ? AND {t} < ?", [bounds[seg], bounds[seg + 1]]
        return
    # The list alone, no range: with a range beside it SQLite scans the range.
    by_seg: dict[int, list[float]] = {}
    for x in starts:
        if start <= x < end:
            by_seg.setdefault(bisect.bisect_right(cuts, x), []).append(x)
    for seg, xs in sorted(by_seg.items()):
        for i in range(0, len(xs), SQL_IN_CHUNK):
            chunk = xs[i:i + SQL_IN_CHUNK]
            yield seg, f"AND {t} IN ({','.join('?' * len(chunk))})", chunk


class _Tx:
    """Context manager: one explicit transaction on a thread's connection."""

    def __init__(self, conn: sqlite3.Connection, immediate: bool = False) -> None:
        self.conn = conn
        # IMMEDIATE: a transaction that reads and then writes takes the write lock first,
        # so it waits (busy timeout) instead of failing when another writer got in between.
        self.begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(self.begin)
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def close(self) -> None:
        self.conn.close()
