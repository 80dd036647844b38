"""A durable on-disk queue of line-protocol points waiting to be written to InfluxDB.

One SQLite file (WAL, ``synchronous=FULL``) under the data directory, apart from the main
store so that a full outbox never locks or bloats the audit data. The writer that fills
and drains it is exchange.influx.InfluxWriter; this module is the persistence. Rules:

* Points get a sequence id (``AUTOINCREMENT``: never reused, even after deletes) and are
  stored as the exact line-protocol text that will be sent, so a retry repeats the same
  bytes: same series, same nanosecond timestamp.
* A batch is acknowledged (deleted, high-water mark raised) only after the server
  confirmed it. Reading skips everything at or below the high-water mark, so an
  acknowledged point is never handed out again even if its row were still there.
* Cursors of sources that are exported incrementally (interval energy) are committed in
  the same transaction as the points they produced: a point is queued exactly once.
* Bounded: beyond ``max_points`` the oldest points not in flight are dropped, counted, and
  logged once per episode. Unbounded would let an InfluxDB outage fill the disk that the
  main store needs.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

OUTBOX_FILE = "influx-outbox.sqlite3"
BUSY_TIMEOUT_S = 5.0
DEFAULT_MAX_POINTS = 10_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL,          -- line protocol, nanosecond timestamp included
    queued REAL NOT NULL         -- unix seconds when it entered the outbox
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
ACKED_KEY = "acked_seq"
CURSOR_PREFIX = "cursor:"


@dataclass(frozen=True)
class OutboxState:
    """A snapshot of the InfluxDB writer for /metrics (the only thing web/ sees of it)."""

    queued_points: int
    oldest_queued_ts: float | None  # unix seconds; None when nothing is queued
    points_written_total: int
    write_errors_total: int
    points_dropped_total: int  # outbox or memory full: oldest points discarded
    # Refused by the server as malformed (HTTP 400/422), or left out by the encoder (a
    # reading whose label line protocol cannot carry).
    points_rejected_total: int
    last_success_ts: float | None


OutboxStateFn = Callable[[], OutboxState]


class Outbox:
    """The queue itself; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path, max_points: int = DEFAULT_MAX_POINTS,
                 clock: Callable[[], float] = time.time) -> None:
        self.path, self.max_points, self.clock = Path(path), max_points, clock
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                     check_same_thread=False)
        # Only takes effect on a new file (so before WAL writes its header): lets a drained
        # backlog give its space back.
        self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives a power cut too, not only a crash of this process.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (ACKED_KEY,)).fetchone()
        self._acked = int(row[0]) if row else 0
        # Kept in memory (one process owns the file): COUNT(*) over millions of rows is slow.
        self._count = self._conn.execute("SELECT COUNT(*) FROM points WHERE seq > ?",
                                         (self._acked,)).fetchone()[0]
        self._inflight_upto = 0  # rows up to here were handed out and must not be dropped
        self.dropped_total = 0
        self._dropping = False

    @classmethod
    def open(cls, data_dir: str | Path, max_points: int = DEFAULT_MAX_POINTS,
             name: str = OUTBOX_FILE) -> Outbox:
        folder = Path(data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder / name, max_points)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def enqueue(self, lines: Sequence[str], cursors: Mapping[str, float] | None = None) -> int:
        """Append points (and move source cursors) in one transaction; returns points dropped."""
        now = self.clock()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT INTO points (line, queued) VALUES (?, ?)",
                                       [(line, now) for line in lines])
                for name, value in (cursors or {}).items():
                    self._set(CURSOR_PREFIX + name, value)
                dropped = self._trim(len(lines))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self._count += len(lines) - dropped
        if dropped:
            self.dropped_total += dropped
            if not self._dropping:
                log.error("InfluxDB outbox full (%d points): dropping the oldest points; "
                          "pue_monitor_influx_points_dropped_total counts them", self.max_points)
                self._dropping = True
        return dropped

    def _trim(self, added: int) -> int:
        excess = self._count + added - self.max_points
        if excess <= 0:
            return 0
        floor = max(self._acked, self._inflight_upto)
        cur = self._conn.execute(
            "DELETE FROM points WHERE seq IN (SELECT seq FROM points WHERE seq > ? "
            "ORDER BY seq LIMIT ?)", (floor, excess))
        return cur.rowcount

    def peek(self, limit: int) -> list[tuple[int, str]]:
        """The oldest unacknowledged points, (seq, line), in order; marks them in flight."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, line FROM points WHERE seq > ? ORDER BY seq LIMIT ?",
                (self._acked, limit)).fetchall()
            if rows:
                self._inflight_upto = max(self._inflight_upto, rows[-1][0])
        return rows

    def ack(self, upto_seq: int) -> None:
        """The server confirmed every point up to ``upto_seq``: forget them for good."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                acked = max(self._acked, upto_seq)
                self._set(ACKED_KEY, acked)
                gone = self._conn.execute("DELETE FROM points WHERE seq <= ?",
                                          (upto_seq,)).rowcount
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self._acked, self._count = acked, self._count - gone
            if self._count == 0:  # drained: return the backlog's pages to the file system
                # executescript steps it to the end; execute() would free a single page
                self._conn.executescript("PRAGMA incremental_vacuum;")
        if self._dropping and self.queued() < self.max_points:
            log.info("InfluxDB outbox has room again")
            self._dropping = False

    def release(self) -> None:
        """The batch in flight failed: its points may be dropped again if the outbox is full."""
        with self._lock:
            self._inflight_upto = self._acked

    def queued(self) -> int:
        with self._lock:
            return self._count

    def oldest_ts(self) -> float | None:
        with self._lock:
            row = self._conn.execute("SELECT queued FROM points WHERE seq > ? ORDER BY seq "
                                     "LIMIT 1", (self._acked,)).fetchone()
        return row[0] if row else None

    def cursor(self, name: str) -> float | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                                     (CURSOR_PREFIX + name,)).fetchone()
        return float(row[0]) if row else None

    def acked_seq(self) -> int:
        with self._lock:
            return self._acked

    def _set(self, key: str, value: object) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

