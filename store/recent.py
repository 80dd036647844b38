"""The SQLite store's newest poll readings, kept apart and moved into ``readings`` in bulk.

Why: in a store that has run a while, each series' newest readings sit on an index page
of their own, and a batch of polls holds at most one reading per series, so inserting
straight into ``readings`` rewrote a 4 KiB page per reading (into the WAL, then again at
the checkpoint): about 9 kB written and 20-26 µs of CPU per reading (README, Storage).
Polls therefore go into ``recent``, a small table whose (series, ts) index stays in the
page cache, and every MOVE_EVERY_S (or MOVE_ROWS rows) they are copied into ``readings``
in (series, ts) order and ``recent`` is emptied: a series' readings of two minutes then
land on its page at once. The move goes in chunks of whole series (at most
MOVE_CHUNK_SERIES series or about MOVE_CHUNK_ROWS rows, one transaction each, a pause
between), so the write lock is never held for long.

Every statement that reads readings reads ``recent`` too (the arms below); each chunk is
one transaction and holds every reading of its series, so a reader's snapshot sees each
reading exactly once, before or after it. The central's ingest writes into ``recent``
too (an edge sends a second of readings at a time); imports write into ``readings``
directly (they come in bulk, series by series). The table and its index are created by
store.series (schema version 3).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time

TABLE = "recent"
TABLES = ("readings", TABLE)  # every statement that reads readings reads both, in order
# How long a poll's readings may wait in ``recent``, and how many may wait at most. The
# gain is the readings a series brings to its page per move (twelve at a 10 s interval);
# the cost grows with what waits, as each batch of polls touches more of recent's index
# (README, "Every two minutes, in chunks": a store with history, per reading, moves every
# 60 s: 17.0 us and 3.1 kB; 120 s: 14.7 us and 2.0 kB; 180 s: 13.7 us, 1.9 kB; 300 s:
# 13.8 us, 1.8 kB). The row bound is above two minutes of 5,000 devices of 10
# readings (600,000 rows).
MOVE_EVERY_S = 120.0
MOVE_ROWS = 800_000
# A chunk of a move takes at most this many series and about this many rows (whole
# series), and the next waits MOVE_PAUSE_S: a chunk holds the write lock (1.8 s at 5,000
# devices in a store with history, here: its time goes mostly into the series' index
# pages, one or two per series), within other writers' busy timeout
# (store.sqlite BUSY_TIMEOUT_S), and the pause lets a waiting one in. Fewer, larger chunks
# cost less: every chunk rewrites the pages of the ``ts`` index its times fall on.
MOVE_CHUNK_SERIES = 12_500
MOVE_CHUNK_ROWS = 150_000
MOVE_PAUSE_S = 0.05
_READS = re.compile(r"\b(FROM|JOIN) readings(\b)")
# Where the chunk starting at series ``?`` ends (the first series of the next chunk;
# None: the chunk takes the rest): after MOVE_CHUNK_ROWS rows, or after MOVE_CHUNK_SERIES
# series, whichever comes first. The chunk's move: (series, ts, rowid) order, so readings
# of one series at one time keep the order they came in.
_FIRST_SERIES = f"SELECT MIN(series) FROM {TABLE} WHERE series >= ?"
_END_BY_ROWS = (f"SELECT series FROM {TABLE} WHERE series >= ? ORDER BY series "
                f"LIMIT 1 OFFSET ?")
_END_BY_SERIES = (f"SELECT series FROM {TABLE} WHERE series >= ? GROUP BY series "
                  f"ORDER BY series LIMIT 1 OFFSET ?")
_NEXT_SERIES = f"SELECT MIN(series) FROM {TABLE} WHERE series > ?"
_RANGE = "series >= ? AND series < ?"
MOVE = [f"INSERT INTO readings (series, ts, value, quality) SELECT series, ts, value, "
        f"quality FROM {TABLE} WHERE {_RANGE} ORDER BY series, ts, rowid",
        f"DELETE FROM {TABLE} WHERE {_RANGE}"]
# Below and above every series id (SQLite integers are 64-bit).
FIRST, NO_END = -2**63, 2**63 - 1


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

    def started(self) -> None:
        """A move starts: what is written from now on counts towards the next."""
        with self._lock:
            self._rows = 0
            self._since = time.monotonic()


def move_chunk(conn: sqlite3.Connection, start: int) -> tuple[int, int | None]:
    """Move the rows of recent from series ``start`` on, whole series, at most
    MOVE_CHUNK_SERIES of them and about MOVE_CHUNK_ROWS rows, into readings, in the
    caller's write transaction on ``conn``: (how many moved, the series the next
    chunk starts at, or None when this one took the rest)."""
    start = conn.execute(_FIRST_SERIES, (start,)).fetchone()[0]
    if start is None:
        return 0, None
    ends = [row[0] for sql, n in ((_END_BY_ROWS, MOVE_CHUNK_ROWS),
                                  (_END_BY_SERIES, MOVE_CHUNK_SERIES))
            for row in conn.execute(sql, (start, n))]
    end = min(ends, default=None)
    if end == start:  # one series holds more than a chunk's rows: it goes whole
        end = conn.execute(_NEXT_SERIES, (start,)).fetchone()[0]
    bounds = (start, NO_END if end is None else end)
    moved = conn.execute(MOVE[0], bounds).rowcount
    conn.execute(MOVE[1], bounds)
    return moved, end


__all__ = ["FIRST", "MOVE", "MOVE_CHUNK_ROWS", "MOVE_CHUNK_SERIES", "MOVE_EVERY_S",
           "MOVE_PAUSE_S", "MOVE_ROWS", "TABLE", "TABLES", "Mover", "both", "move_chunk"]
