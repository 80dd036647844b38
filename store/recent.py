"""The SQLite store's newest poll readings, kept apart and moved into ``readings`` in bulk.

Why: in a store that has run a while, each series' newest readings sit on an index page
of their own, and a batch of polls holds at most one reading per series, so inserting
straight into ``readings`` rewrote a 4 KiB page per reading (into the WAL, then again at
the checkpoint): about 9 kB written and 20-26 µs of CPU per reading (README, Storage).
Polls therefore go into ``recent``, a small table whose (series, ts) index stays in the
page cache, and every MOVE_EVERY_S (or MOVE_ROWS rows) one transaction copies them into
``readings`` in (series, ts) order and empties ``recent``: a series' readings of a
minute then land on its page at once.

Every statement that reads readings reads ``recent`` too (the arms below); the move is
one transaction, so a reader's snapshot sees each reading exactly once, before or after
it. The central's ingest writes into ``recent`` too (an edge sends a second of readings
at a time); imports write into ``readings`` directly (they come in bulk, series by
series). The table and its index are created by store.series (schema version 3).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time

TABLE = "recent"
TABLES = ("readings", TABLE)  # every statement that reads readings reads both, in order
# How long a poll's readings may wait in ``recent``, and how many may wait at most. The
# gain is the readings a series brings to its page per move (six at a 10 s interval), so
# the row bound is above a minute of 5,000 devices of 10 readings (300,000 rows); a move
# of that many holds the write lock (other writers wait, up to BUSY_TIMEOUT_S) for one
# to two seconds here, while polling goes on (SQLite lets go of the interpreter lock).
MOVE_EVERY_S = 60.0
MOVE_ROWS = 400_000
_READS = re.compile(r"\b(FROM|JOIN) readings(\b)")
# (series, ts, rowid): readings of one series at one time keep the order they came in.
MOVE = [f"INSERT INTO readings (series, ts, value, quality) SELECT series, ts, value, "
        f"quality FROM {TABLE} ORDER BY series, ts, rowid", f"DELETE FROM {TABLE}"]


def both(sql: str) -> str:
    """``sql`` (one SELECT reading the table ``readings`` once, FROM or JOIN) over
    readings and recent, as a UNION ALL of two arms (readings first); its arguments are
    passed twice."""
    other, n = _READS.subn(rf"\1 {TABLE}\2", sql)
    if n != 1:
        raise ValueError(f"not one read of readings: {sql}")
    return f"{sql} UNION ALL {other}"


class Mover:
    """When the writer of polls moves ``recent`` into ``readings``: after MOVE_EVERY_S
    since the last move, or once MOVE_ROWS were written since; safe between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since = time.monotonic()
        self._rows = 0

    def wrote(self, rows: int) -> bool:
        """Count ``rows`` written into recent; whether a move is due now."""
        with self._lock:
            self._rows += rows
            return self._rows >= MOVE_ROWS or (
                self._rows > 0 and time.monotonic() - self._since >= MOVE_EVERY_S)

    def move(self, conn: sqlite3.Connection) -> int:
        """Move every row of recent into readings, in the caller's write transaction on
        ``conn``; how many moved."""
        with self._lock:
            self._rows = 0
            self._since = time.monotonic()
        moved = conn.execute(MOVE[0]).rowcount
        conn.execute(MOVE[1])
        return moved


__all__ = ["MOVE", "MOVE_EVERY_S", "MOVE_ROWS", "TABLE", "TABLES", "Mover", "both"]
