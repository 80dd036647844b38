"""The embedded store: one SQLite database in WAL mode under the data directory."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from store.model import PollResult, Quality, Reading, labels_key

DB_FILE = "pue-monitor.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 5.0
BLOCK_COLUMNS_ADDED = (("resets", "INTEGER NOT NULL DEFAULT 0"), ("counter_kwh", "REAL"),
                      ("power_kwh", "REAL"))
SQL_IN_CHUNK = 500  # values per "IN (...)" list, well under SQLite's variable limit
DEVICE_PROFILE_KEY = "device_profile:"  # meta key prefix: what an auto device was identified as

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    ts REAL NOT NULL,            -- unix seconds (UTC)
    device TEXT NOT NULL,
    metric TEXT NOT NULL,
    labels TEXT NOT NULL,        -- 'k=v,k2=v2' sorted; '' for the device total
    value REAL,                  -- NULL unless quality is ok
    quality TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_series ON readings (device, metric, labels, ts);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
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
    polls_total INTEGER NOT NULL DEFAULT 0
);
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
    PRIMARY KEY (device, start)
);
"""


@dataclass(frozen=True)
class DeviceHealth:
    """The latest poll outcome of one device, as stored."""

    device: str
    site: str
    up: bool
    last_poll_ts: float | None
    last_ok_ts: float | None
    last_duration_s: float | None
    last_error_kind: str | None
    last_error: str | None
    consecutive_failures: int
    polls_total: int


class BlockTotal(NamedTuple):
    """Sums over a device's blocks."""

    energy_kwh: float | None
    covered_s: float
    methods: str  # distinct methods joined by '+'
    resets: int
    counter_kwh: float | None  # cross-check: counter and power over the same time
    power_kwh: float | None


def _add(total: float | None, value: float | None) -> float | None:
    return total if value is None else (value if total is None else total + value)


class Store:
    """Readings, device health and interval energy. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        conn = self._connect().conn
        conn.executescript(SCHEMA)
        have = {row[1] for row in conn.execute("PRAGMA table_info(interval_energy)")}
        for column, kind in BLOCK_COLUMNS_ADDED:
            if column not in have:  # a store written by an earlier version
                conn.execute(f"ALTER TABLE interval_energy ADD COLUMN {column} {kind}")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))

    @classmethod
    def open(cls, data_dir: str | Path) -> Store:
        """Open (creating if needed) the store under ``data_dir``."""
        folder = Path(data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder / DB_FILE)

    def _connect(self) -> _Tx:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return _Tx(conn)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- writing (collectors) -------------------------------------------------------

    def write_polls(self, results: Sequence[PollResult]) -> None:
        """Store readings, health and error counts of many polls in one transaction."""
        rows = [(r.ts, r.device, r.metric, labels_key(r.labels),
                 r.value if r.quality == Quality.OK else None, r.quality.value)
                for res in results for r in res.readings]
        with self._connect() as conn:
            conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)", rows)
            for res in results:
                self._write_health(conn, res)

    @staticmethod
    def _write_health(conn: sqlite3.Connection, res: PollResult) -> None:
        end = res.started + res.duration_s
        conn.execute(
            """INSERT INTO device_health VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
               ON CONFLICT(device) DO UPDATE SET
                 site = excluded.site, up = excluded.up, last_poll_ts = excluded.last_poll_ts,
                 last_ok_ts = COALESCE(excluded.last_ok_ts, device_health.last_ok_ts),
                 last_duration_s = excluded.last_duration_s,
                 last_error_kind = excluded.last_error_kind, last_error = excluded.last_error,
                 consecutive_failures = CASE WHEN excluded.up = 1 THEN 0
                     ELSE device_health.consecutive_failures + 1 END,
                 polls_total = device_health.polls_total + 1""",
            (res.device, res.site, int(res.ok), end, end if res.ok else None, res.duration_s,
             res.error_kind.value if res.error_kind else None, res.error, 0 if res.ok else 1))
        counts = dict(res.point_errors)
        if res.error_kind is not None:
            counts[res.error_kind.value] = counts.get(res.error_kind.value, 0) + 1
        for kind, n in counts.items():
            conn.execute("""INSERT INTO poll_errors VALUES (?, ?, ?) ON CONFLICT(device, kind)
                            DO UPDATE SET count = count + excluded.count""", (res.device, kind, n))

    def import_readings(self, readings: Sequence[Reading],
                        stale: Sequence[tuple[str, tuple[float, float]]] = ()) -> None:
        """Historical readings, and the removal of the blocks they make stale (device,
        (start, end)), in one transaction: all of it or none of it."""
        rows = [(r.ts, r.device, r.metric, labels_key(r.labels),
                 r.value if r.quality == Quality.OK else None, r.quality.value)
                for r in readings]
        with self._connect() as conn:
            conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.executemany("DELETE FROM interval_energy WHERE device = ? AND start >= ? "
                             "AND start < ?", [(d, a, b) for d, (a, b) in stale])

    def write_interval_energy(self, rows: Iterable[tuple]) -> None:
        """Upsert (device, start, end, energy_kwh, covered_s, method[, resets, counter_kwh,
        power_kwh]) rows."""
        full = [(*r, 0, None, None) if len(r) == 6 else tuple(r) for r in rows]
        with self._connect() as conn:
            conn.executemany("INSERT OR REPLACE INTO interval_energy (device, start, end, "
                             "energy_kwh, covered_s, method, resets, counter_kwh, power_kwh) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", full)

    # -- reading (web, reports, exporters) -------------------------------------------

    def series(self, device: str, metric: str, start: float, end: float,
               labels: str = "") -> pd.DataFrame:
        """Good readings in [start, end] plus the nearest one on each side (for interpolation)."""
        sql = """
            SELECT ts, value FROM (SELECT ts, value FROM readings WHERE device = ? AND metric = ?
                AND labels = ? AND quality = 'ok' AND ts < ? ORDER BY ts DESC LIMIT 1)
            UNION ALL
            SELECT ts, value FROM readings WHERE device = ? AND metric = ? AND labels = ?
                AND quality = 'ok' AND ts >= ? AND ts <= ?
            UNION ALL
            SELECT ts, value FROM (SELECT ts, value FROM readings WHERE device = ? AND metric = ?
                AND labels = ? AND quality = 'ok' AND ts > ? ORDER BY ts ASC LIMIT 1)
        """
        key = (device, metric, labels)
        with self._connect() as conn:
            rows = conn.execute(sql, (*key, start, *key, start, end, *key, end)).fetchall()
        frame = pd.DataFrame(rows, columns=["ts", "value"], dtype=float)
        return frame.sort_values("ts", kind="stable").reset_index(drop=True)

    def latest(self, since: float, devices: Sequence[str] | None = None) -> pd.DataFrame:
        """The newest reading of every (device, metric, labels) seen since ``since``."""
        sql = ("SELECT device, metric, labels, MAX(ts) AS ts, value, quality FROM readings "
               "WHERE ts >= ?")
        args: list = [since]
        if devices is not None:
            sql += f" AND device IN ({','.join('?' * len(devices))})"
            args.extend(devices)
        sql += " GROUP BY device, metric, labels"
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return pd.DataFrame(rows, columns=["device", "metric", "labels", "ts", "value", "quality"])

    def health(self) -> dict[str, DeviceHealth]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM device_health").fetchall()
        return {r[0]: DeviceHealth(r[0], r[1], bool(r[2]), *r[3:]) for r in rows}

    def error_counts(self) -> dict[tuple[str, str], int]:
        with self._connect() as conn:
            rows = conn.execute("SELECT device, kind, count FROM poll_errors").fetchall()
        return {(d, k): n for d, k, n in rows}

    def interval_energy(self, devices: Sequence[str], start: float, end: float) -> pd.DataFrame:
        """Stored interval energy rows of these devices starting in [start, end)."""
        sql = ("SELECT device, start, end, energy_kwh, covered_s, method FROM interval_energy "
               f"WHERE device IN ({','.join('?' * len(devices))}) AND start >= ? AND start < ? "
               "ORDER BY device, start")
        with self._connect() as conn:
            rows = conn.execute(sql, (*devices, start, end)).fetchall()
        return pd.DataFrame(rows, columns=["device", "start", "end", "energy_kwh", "covered_s",
                                           "method"])

    def block_starts(self, device: str, start: float, end: float) -> list[float]:
        """Starts of the stored blocks of a device in [start, end)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT start FROM interval_energy WHERE device = ? AND "
                                "start >= ? AND start < ?", (device, start, end)).fetchall()
        return [r[0] for r in rows]

    def block_count(self, device: str, start: float, end: float) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM interval_energy WHERE device = ? AND "
                                "start >= ? AND start < ?", (device, start, end)).fetchone()[0]

    def block_counts(self, devices: Sequence[str], start: float, end: float) -> dict[str, int]:
        """Stored blocks per device in [start, end) (devices without any are absent)."""
        if not devices:
            return {}
        sql = ("SELECT device, COUNT(*) FROM interval_energy WHERE device IN "
               f"({','.join('?' * len(devices))}) AND start >= ? AND start < ? GROUP BY device")
        with self._connect() as conn:
            return dict(conn.execute(sql, (*devices, start, end)).fetchall())

    def blocks_below(self, devices: Sequence[str], start: float, end: float,
                     covered_s: float) -> list[tuple[str, float, float]]:
        """(device, start, covered seconds) of the blocks covered less than ``covered_s``."""
        if not devices:
            return []
        sql = ("SELECT device, start, covered_s FROM interval_energy WHERE device IN "
               f"({','.join('?' * len(devices))}) AND start >= ? AND start < ? "
               "AND covered_s < ?")
        with self._connect() as conn:
            return conn.execute(sql, (*devices, start, end, covered_s)).fetchall()

    def block_totals(self, devices: Sequence[str], start: float, end: float,
                     starts: Sequence[float] | None = None) -> dict[str, BlockTotal]:
        """Per device, over its blocks in [start, end) (or only those starting at
        ``starts``): energy, covered time, methods, resets and the cross-check sums."""
        return {device: total for (device, _), total in
                self.block_totals_by_segment(devices, start, end, (), starts).items()}

    def block_totals_by_segment(self, devices: Sequence[str], start: float, end: float,
                                edges: Sequence[float], starts: Sequence[float] | None = None
                                ) -> dict[tuple[str, int], BlockTotal]:
        """As block_totals, per (device, segment): segment i lies between the i-th and
        (i+1)-th of start, *edges, end. One scan of the blocks for all segments."""
        if not devices:
            return {}
        segment = " + ".join(["0", *("(start >= ?)" for _ in edges)])
        chunks = [None] if starts is None else [
            list(starts[i:i + SQL_IN_CHUNK]) for i in range(0, len(starts), SQL_IN_CHUNK)]
        out: dict[tuple[str, int], list] = {}
        with self._connect() as conn:
            for chunk in chunks:
                if chunk == []:
                    continue
                sql = (f"SELECT device, {segment} AS seg, SUM(energy_kwh), SUM(covered_s), "
                       "GROUP_CONCAT(DISTINCT method), SUM(resets), SUM(counter_kwh), "
                       "SUM(power_kwh) FROM interval_energy "
                       f"WHERE device IN ({','.join('?' * len(devices))}) "
                       "AND start >= ? AND start < ?")
                args: list = [*edges, *devices, start, end]
                if chunk is not None:
                    sql += f" AND start IN ({','.join('?' * len(chunk))})"
                    args.extend(chunk)
                for device, seg, energy, covered, methods, resets, by_counter, by_power in \
                        conn.execute(sql + " GROUP BY device, seg", args):
                    acc = out.setdefault((device, seg), [None, 0.0, set(), 0, None, None])
                    acc[0] = _add(acc[0], energy)
                    acc[1] += covered or 0.0
                    acc[2] |= {m for m in (methods or "").split(",") if m and m != "none"}
                    acc[3] += resets or 0
                    acc[4], acc[5] = _add(acc[4], by_counter), _add(acc[5], by_power)
        return {k: BlockTotal(e, c, "+".join(sorted(m)), r, bc, bp)
                for k, (e, c, m, r, bc, bp) in out.items()}

    def last_interval_end(self, device: str) -> float | None:
        with self._connect() as conn:
            row = conn.execute("SELECT MAX(end) FROM interval_energy WHERE device = ?",
                               (device,)).fetchone()
        return row[0]

    def first_reading_ts(self, device: str) -> float | None:
        with self._connect() as conn:
            row = conn.execute("SELECT MIN(ts) FROM readings WHERE device = ?",
                               (device,)).fetchone()
        return row[0]

    def neighbour_times(self, device: str, start: float, end: float) -> tuple[float, float]:
        """The device's last reading before ``start`` and first after ``end`` (any metric),
        or ``start`` / ``end`` themselves when there is none."""
        with self._connect() as conn:
            before = conn.execute("SELECT MAX(ts) FROM readings WHERE device = ? AND ts < ?",
                                  (device, start)).fetchone()[0]
            after = conn.execute("SELECT MIN(ts) FROM readings WHERE device = ? AND ts > ?",
                                 (device, end)).fetchone()[0]
        return (start if before is None else before, end if after is None else after)

    def meta(self) -> dict[str, str]:
        with self._connect() as conn:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, key: str, value: object) -> None:
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def set_device_profile(self, device: str, name: str) -> None:
        """Record the profile an auto device was identified as (a meta key per device)."""
        self.set_meta(DEVICE_PROFILE_KEY + device, name)

    def device_profiles(self) -> dict[str, str]:
        """{device id: identified profile name} of the auto devices identified so far."""
        with self._connect() as conn:
            rows = conn.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
                                (len(DEVICE_PROFILE_KEY), DEVICE_PROFILE_KEY)).fetchall()
        return {key[len(DEVICE_PROFILE_KEY):]: json.loads(value) for key, value in rows}


class _Tx:
    """Context manager: one explicit transaction on a thread's connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def close(self) -> None:
        self.conn.close()
