"""Results kept for reports (the SQLite side; store.pg_kept is the PostgreSQL one).

figures.keptparts keeps the exact result of each run of partial blocks it recomputed from
raw readings; here those are opaque rows (site, start, end, lo, hi, fingerprint, payload).
A row is dropped in the transaction that writes or drops any block starting in its
[lo, hi) (the roll-up, an import, late data at the central, a settings change), or
prunes readings in it (retention); the same transaction counts a change
(``kept_changes``), so a reader that computed a result from an older snapshot keeps it
only if nothing changed since it read (keep). This store does not know which site a
device belongs to: a change drops the rows of every site and counts under site ''.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

# Bounds standing for "no bound" (SQLite compares them like any REAL).
FAR = 1e300
ALL_SITES = ""

SCHEMA = """
CREATE TABLE IF NOT EXISTS kept_parts (
    site TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    lo REAL NOT NULL,            -- a block written or dropped in [lo, hi) drops the row
    hi REAL NOT NULL,
    fingerprint TEXT NOT NULL,   -- what it was computed with (figures.keptparts)
    payload TEXT NOT NULL,
    PRIMARY KEY (site, start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kept_changes (
    site TEXT PRIMARY KEY,       -- '' for changes of every site
    changes INTEGER NOT NULL
) WITHOUT ROWID;
"""


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def changed(conn: sqlite3.Connection, lo: float, hi: float) -> None:
    """Blocks in [lo, hi) were written or dropped (or readings before ``hi`` pruned), in
    the caller's transaction: the rows that rest on them go, and the change is counted."""
    conn.execute("DELETE FROM kept_parts WHERE lo < ? AND hi > ?",
                 (min(hi, FAR), max(lo, -FAR)))
    conn.execute("INSERT INTO kept_changes VALUES (?, 1) ON CONFLICT(site) DO UPDATE SET "
                 "changes = changes + 1", (ALL_SITES,))


def read(conn: sqlite3.Connection, site: str, start: float, end: float
         ) -> tuple[int, dict[float, tuple[float, str, str]]]:
    """(changes so far, {start: (end, fingerprint, payload)}) of the site's rows starting
    in [start, end)."""
    rows = conn.execute("SELECT start, end, fingerprint, payload FROM kept_parts "
                        "WHERE site = ? AND start >= ? AND start < ?",
                        (site, start, end)).fetchall()
    return changes(conn, site), {float(a): (float(b), f, p) for a, b, f, p in rows}


def changes(conn: sqlite3.Connection, site: str) -> int:
    row = conn.execute("SELECT coalesce(sum(changes), 0) FROM kept_changes "
                       "WHERE site IN (?, ?)", (site, ALL_SITES)).fetchone()
    return int(row[0])


def keep(conn: sqlite3.Connection, site: str, seen: int,
         rows: Sequence[tuple[float, float, float, float, str, str]]) -> bool:
    """Upsert (start, end, lo, hi, fingerprint, payload) rows of the site, in the caller's
    write transaction, if no change was counted since ``seen``; whether they were."""
    if changes(conn, site) != seen:
        return False
    conn.executemany("INSERT OR REPLACE INTO kept_parts VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [(site, *row) for row in rows])
    return True
