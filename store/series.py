"""The SQLite store's readings keyed by an integer series id, and the schema's version.

A series is one (device, metric, labels key); the ``series`` table gives it an id once
and for ever (rows are never deleted, so an id once seen stays right), and ``readings``
holds (series, ts, value, quality) with indexes on (series, ts) and on (ts). Storing a
reading then inserts a short integer key into the series index instead of a long text
one, at about half the CPU, and each commit rewrites fewer and smaller index pages.

Writers map a series to its id through SeriesIds, an in-memory cache per Store; readers
go through the ``series`` table in SQL (a sub-select or a join), so they see exactly
their snapshot. The PostgreSQL store keeps its own layout (store.pg_schema).

Schema versions (meta key 'schema_version'): 1 kept the readings under text keys
(device, metric, labels, ts); 2 is this layout; 3 adds ``recent``, where poll readings
wait before they are moved into ``readings`` in bulk (store.recent). Opening a version-1
store copies its readings into the new layout in one transaction, a version-2 one gains
the empty ``recent`` table (prepare); a store of a version newer than this code knows is
refused (a version-2 monitor would not see the readings waiting in ``recent``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from pue_monitor.store.model import Quality, Reading, labels_key

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# One statement each: executescript would commit the caller's transaction first.
TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    metric TEXT NOT NULL,
    labels TEXT NOT NULL,        -- 'k=v,k2=v2' sorted; '' for the device total
    UNIQUE (device, metric, labels)
)""",
    """CREATE TABLE IF NOT EXISTS readings (
    series INTEGER NOT NULL,     -- series.id
    ts REAL NOT NULL,            -- unix seconds (UTC)
    value REAL,                  -- NULL unless quality is ok
    quality TEXT NOT NULL
)""",
    # Poll readings waiting to be moved into readings (store.recent): the same columns.
    """CREATE TABLE IF NOT EXISTS recent (
    series INTEGER NOT NULL,
    ts REAL NOT NULL,
    value REAL,
    quality TEXT NOT NULL
)""",
)
READINGS_INDEXES = (
    "CREATE INDEX IF NOT EXISTS readings_series ON readings (series, ts)",
    "CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts)",
)
INDEXES = (
    *READINGS_INDEXES,
    # Only (series, ts): recent is small and read by series (pruning scans it).
    "CREATE INDEX IF NOT EXISTS recent_series ON recent (series, ts)",
)
# A series' id in a statement that reads readings, from (device, metric, labels) args.
SERIES_ID = "(SELECT id FROM series WHERE device = ? AND metric = ? AND labels = ?)"
IN_CHUNK = 500  # values per "IN (...)" list, well under SQLite's variable limit
# Version 1's readings into version 2's (in rowid order, rowids kept: readings of equal
# times stay in the order they were written, as the index gives them).
_MIGRATE = (
    TABLES[1],
    "INSERT INTO series (device, metric, labels) SELECT DISTINCT device, metric, labels "
    "FROM readings ORDER BY device, metric, labels",
    TABLES[2].replace("IF NOT EXISTS readings", "readings_v2"),
    "INSERT INTO readings_v2 (rowid, series, ts, value, quality) SELECT r.rowid, s.id, r.ts, "
    "r.value, r.quality FROM readings AS r JOIN series AS s ON s.device = r.device "
    "AND s.metric = r.metric AND s.labels = r.labels ORDER BY r.rowid",
    "DROP TABLE readings",  # and its indexes
    "ALTER TABLE readings_v2 RENAME TO readings",
    *READINGS_INDEXES,  # prepare creates recent and its index after
)


def ids_of(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]], labels: str
           ) -> dict[tuple[str, str], int]:
    """{(device, metric): series id} of the ``keys`` stored with ``labels`` (a key never
    stored is absent), read on ``conn`` (in its snapshot): a statement per few hundred
    devices, not a sub-select per statement that reads readings."""
    wanted = set(keys)
    devices = list(dict.fromkeys(device for device, _ in keys))
    out: dict[tuple[str, str], int] = {}
    for at in range(0, len(devices), IN_CHUNK):
        chunk = devices[at:at + IN_CHUNK]
        for device, metric, sid in conn.execute(
                "SELECT device, metric, id FROM series WHERE labels = ? AND device IN "
                f"({','.join('?' * len(chunk))})", (labels, *chunk)):
            if (device, metric) in wanted:
                out[device, metric] = sid
    return out


class SchemaError(RuntimeError):
    """The store's file is of a schema this code cannot read."""


def _version(conn: sqlite3.Connection, path: Path) -> int | None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'meta'").fetchone():
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return None
    try:
        return int(row[0])
    except ValueError:
        raise SchemaError(f"store {path}: schema_version {row[0]!r} is not a number") from None


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the store at ``path`` to SCHEMA_VERSION, in one transaction: create a new
    one, migrate a version-1 one (its readings to series ids; a crash or error on the
    way leaves it as it was), refuse a newer one (SchemaError)."""
    conn.execute("BEGIN IMMEDIATE")  # two processes opening one old store: one migrates
    try:
        version = _version(conn, path)
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaError(f"store {path} has schema version {version}; this pue-monitor "
                              f"reads versions up to {SCHEMA_VERSION} (use a newer one)")
        columns = {row[1] for row in conn.execute("PRAGMA table_info(readings)")}
        if "device" in columns:  # text-keyed readings: version 1
            if version == SCHEMA_VERSION:
                raise SchemaError(f"store {path}: schema version {version} but readings "
                                  "keyed by text (version 1)")
            migrate(conn, path)
        for statement in (*TABLES, *INDEXES):
            conn.execute(statement)
        if version != SCHEMA_VERSION:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if "device" in columns:  # the WAL holds the whole copy: back into the file, truncated
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Version 1's readings (text keys) into series ids, in the caller's transaction."""
    count = conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    log.info("store %s: schema version 1 -> %d: moving %d readings to series ids, in one "
                "transaction (about a minute per 10 million readings)", path, SCHEMA_VERSION,
                count)
    started = time.monotonic()
    for statement in _MIGRATE:
        conn.execute(statement)
    log.info("store %s: %d readings in %d series moved in %.1f s", path, count,
                conn.execute("SELECT COUNT(*) FROM series").fetchone()[0],
                time.monotonic() - started)


# The readings table's quality text, and whether the value is kept, per quality.
_QUALITY_ROW = {q: (q.value, q == Quality.OK) for q in Quality}
# labels_key of the label sets seen, for the readings written on every poll (a few per
# series); cleared when it grows past this many, so odd labels cannot grow it for ever.
_LABEL_KEYS_MAX = 100_000
_label_keys: dict[tuple, str] = {}

Key = tuple[str, str, str]  # (device, metric, labels key)
Misses = list[tuple[int, Key]]  # (row index, series) of rows whose id is not cached


class SeriesIds:
    """{(device, metric, labels key): series id} of one Store, for its writers; safe to
    share between threads. Holds committed ids only: a writer resolves the series it
    misses inside its transaction (resolve) and hands them over after the commit
    (publish), so a rolled-back transaction leaves no id of a row that never was."""

    def __init__(self) -> None:
        self._ids: dict[Key, int] = {}
        self._lock = threading.Lock()

    def load(self, conn: sqlite3.Connection) -> None:
        """Take every series stored (outside a write: they are committed)."""
        ids = {(d, m, labels): i for i, d, m, labels in
               conn.execute("SELECT id, device, metric, labels FROM series")}
        self.publish(ids)

    def publish(self, ids: dict[Key, int]) -> None:
        """Cache ids whose rows are committed."""
        if ids:
            with self._lock:
                self._ids.update(ids)

    def rows(self, readings: Iterable[Reading]) -> tuple[list[tuple], Misses]:
        """The readings as rows of the readings table, and those whose series id is not
        cached (their rows have None in its place: see resolve)."""
        keys, quality_row, ids = _label_keys, _QUALITY_ROW, self._ids
        rows: list[tuple] = []
        misses: Misses = []
        add = rows.append
        for r in readings:
            labels = r.labels
            key = keys.get(labels) if type(labels) is tuple else None
            if key is None:
                key = labels_key(labels)
                if type(labels) is tuple:
                    if len(keys) >= _LABEL_KEYS_MAX:
                        keys.clear()
                    keys[labels] = key
            quality, ok = quality_row[r.quality]
            series = (r.device, r.metric, key)
            sid = ids.get(series)  # a dict read: atomic under the interpreter lock
            if sid is None:
                misses.append((len(rows), series))
            add((sid, r.ts, r.value if ok else None, quality))
        return rows, misses

    @staticmethod
    def resolve(conn: sqlite3.Connection, rows: list[tuple], misses: Misses
                ) -> dict[Key, int]:
        """Fill in the missed ids of ``rows``, inside the writing transaction on
        ``conn`` (new series inserted there); the ids found, to publish once it has
        committed."""
        found: dict[Key, int] = {}
        if not misses:
            return found
        new = list(dict.fromkeys(series for _, series in misses))
        conn.executemany("INSERT OR IGNORE INTO series (device, metric, labels) "
                         "VALUES (?, ?, ?)", new)
        for series in new:
            found[series] = conn.execute("SELECT id FROM series WHERE device = ? AND "
                                         "metric = ? AND labels = ?", series).fetchone()[0]
        for i, series in misses:
            rows[i] = (found[series], *rows[i][1:])
        return found
