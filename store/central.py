"""What the central service keeps beside the readings, in the SQLite store: the data
centers' ingest tokens (hashes only), the site definitions edges sent (every change, who
sent it and when) and the edges' run logs, per site (store.pg_central is the PostgreSQL
twin; central/ makes and checks the token hashes). A batch of readings goes in through
store.ingest.

Persistence only; each method is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from pue_monitor.store import ingest, recent
from pue_monitor.store.base import CentralToken, SiteDefinitionRecord

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

SCHEMA = """
CREATE TABLE IF NOT EXISTS central_tokens (
    token_hash TEXT PRIMARY KEY,  -- sha256 of a random token: the token itself is not kept
    data_center TEXT NOT NULL,
    label TEXT NOT NULL,
    created_ts REAL NOT NULL,
    revoked_ts REAL               -- NULL while the token may write
);
CREATE TABLE IF NOT EXISTS site_definitions (
    site TEXT NOT NULL,
    received_ts REAL NOT NULL,    -- the central's clock when it was recorded
    changed_ts REAL NOT NULL,     -- the edge's clock when its definition changed
    data_center TEXT NOT NULL,    -- whose token sent it
    sender TEXT NOT NULL,         -- that token's label
    fingerprint TEXT NOT NULL,    -- sha256 of the canonical definition
    definition TEXT NOT NULL,     -- JSON (central.sitedef)
    PRIMARY KEY (site, received_ts)
);
CREATE TABLE IF NOT EXISTS edge_runs (  -- the edges' run logs, per site they collect for
    site TEXT NOT NULL,
    run TEXT NOT NULL,
    started REAL NOT NULL,
    last_seen REAL NOT NULL,
    stopped INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site, run)
);
"""
TOKEN_COLUMNS = "data_center, label, created_ts, revoked_ts"
DEFINITION_COLUMNS = ("site, received_ts, changed_ts, data_center, sender, fingerprint, "
                      "definition")


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


class _SqliteDialect:
    """store.ingest's SQL on SQLite: the temporary table lives on the thread's
    connection, emptied before each batch."""

    def stage(self, conn: sqlite3.Connection, rows: ingest.IngestBatch) -> None:
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {ingest.STAGE_TABLE} (i INTEGER "
                     "PRIMARY KEY, site TEXT, ts REAL, device TEXT, metric TEXT, "
                     "labels TEXT, value REAL)")
        conn.execute(f"DELETE FROM {ingest.STAGE_TABLE}")
        conn.executemany(f"INSERT INTO {ingest.STAGE_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                         zip(range(len(rows.ts)), *rows))

    # ingest.PROBE through the series table (store.series): one probe of its unique
    # index per staged row, then one of the readings' (series, ts); of readings, then of
    # the poll readings not moved yet (store.recent).
    probe = recent.both(
        f"SELECT b.i, r.value, r.quality FROM {ingest.STAGE_TABLE} AS b CROSS JOIN "
        "series AS s ON s.device = b.device AND s.metric = b.metric AND s.labels = "
        "b.labels CROSS JOIN readings AS r ON r.series = s.id AND r.ts = b.ts")

    def insert(self, conn: sqlite3.Connection, skip: list[int]) -> None:
        # The series not stored yet first (the Store's cache of ids learns them when a
        # writer misses them). ORDER BY: rows enter recent in the order the edge sent
        # them, as before.
        args = (json.dumps(skip),)
        fresh = "b.i NOT IN (SELECT value FROM json_each(?))"
        conn.execute("INSERT OR IGNORE INTO series (device, metric, labels) SELECT DISTINCT "
                     f"b.device, b.metric, b.labels FROM {ingest.STAGE_TABLE} AS b "
                     f"WHERE {fresh}", args)
        # Into recent, moved into readings in bulk with the polls' (store.recent): an
        # edge sends a second of readings at a time, one per series, as the sink does.
        conn.execute(f"INSERT INTO recent SELECT s.id, b.ts, b.value, 'ok' FROM "
                     f"{ingest.STAGE_TABLE} AS b JOIN series AS s ON s.device = b.device "
                     f"AND s.metric = b.metric AND s.labels = b.labels WHERE {fresh} "
                     "ORDER BY b.i", args)


_DIALECT = _SqliteDialect()


class CentralMixin:
    """store.base.CentralStoreProtocol over the SQLite store's per-thread connections."""

    _connect: Callable[..., AbstractContextManager[sqlite3.Connection]]
    _local: threading.local
    _drop_stale: Callable[[sqlite3.Connection, ingest.Stale], None]
    _wrote_recent: Callable[[int], None]

    def ingest_readings(self, rows: ingest.IngestBatch,
                        stale: Callable[[list[int]], ingest.Stale]) -> ingest.Ingested:
        """Store the rows not stored yet and drop the blocks ``stale`` names, in one
        transaction (store.ingest); ``stale`` reads inside it, before the write."""
        if not rows.ts:
            return ingest.Ingested([], 0, {})
        with self._connect(immediate=True) as conn:
            # the reads ``stale`` makes on this thread join this transaction (as in a
            # snapshot) instead of opening another on the same connection
            self._local.snapshot = True
            try:
                result, blocks = ingest.ingest(conn, _DIALECT, rows, stale)
            finally:
                self._local.snapshot = False
            self._drop_stale(conn, blocks)
        self._wrote_recent(len(result.new))
        return result

    def add_central_token(self, token_hash: str, data_center: str, label: str,
                          created_ts: float) -> None:
        """Record a data center's ingest token (by its hash).

        :raises ValueError: the data center has a live token of that label already."""
        with self._connect(immediate=True) as conn:
            if conn.execute("SELECT 1 FROM central_tokens WHERE data_center = ? AND label = ? "
                            "AND revoked_ts IS NULL", (data_center, label)).fetchone():
                raise ValueError(f"data center {data_center!r} has a token {label!r} already")
            conn.execute("INSERT INTO central_tokens VALUES (?, ?, ?, ?, NULL)",
                         (token_hash, data_center, label, created_ts))

    def central_token(self, token_hash: str) -> CentralToken | None:
        """The live (not revoked) token of this hash, or None."""
        with self._connect() as conn:
            row = conn.execute(f"SELECT {TOKEN_COLUMNS} FROM central_tokens WHERE "
                               "token_hash = ? AND revoked_ts IS NULL", (token_hash,)).fetchone()
        return None if row is None else CentralToken(*row)

    def central_tokens(self) -> list[CentralToken]:
        """Every token, revoked ones too, by data center and label."""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {TOKEN_COLUMNS} FROM central_tokens "
                                "ORDER BY data_center, label, created_ts").fetchall()
        return [CentralToken(*row) for row in rows]

    def revoke_central_tokens(self, data_center: str, label: str | None, ts: float) -> int:
        """Revoke a data center's live tokens (only the one of ``label`` if given)."""
        with self._connect(immediate=True) as conn:
            return conn.execute(
                "UPDATE central_tokens SET revoked_ts = ? WHERE data_center = ? AND "
                "revoked_ts IS NULL AND (? IS NULL OR label = ?)",
                (ts, data_center, label, label)).rowcount

    def record_site_definition(self, record: SiteDefinitionRecord) -> bool:
        """Keep a site's definition unless it equals the latest one kept (same
        fingerprint); True if kept."""
        with self._connect(immediate=True) as conn:
            row = conn.execute("SELECT fingerprint FROM site_definitions WHERE site = ? "
                               "ORDER BY received_ts DESC LIMIT 1", (record.site,)).fetchone()
            if row is not None and row[0] == record.fingerprint:
                return False
            conn.execute(f"INSERT INTO site_definitions ({DEFINITION_COLUMNS}) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?)", tuple(record))
        return True

    def site_definitions(self) -> list[SiteDefinitionRecord]:
        """Every definition kept, by site and time received (the last is in force)."""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {DEFINITION_COLUMNS} FROM site_definitions "
                                "ORDER BY site, received_ts").fetchall()
        return [SiteDefinitionRecord(*row) for row in rows]

    def mark_edge_runs(self, rows: Sequence[tuple[str, str, float, bool]]) -> None:
        """Marks of edges' run logs (site, run, ts, stopped), in any order and any number
        of times: a run spans its earliest to its latest mark, stopped once any says so."""
        with self._connect(immediate=True) as conn:
            conn.executemany(
                "INSERT INTO edge_runs VALUES (?, ?, ?, ?, ?) ON CONFLICT(site, run) DO UPDATE "
                "SET started = MIN(started, excluded.started), "
                "last_seen = MAX(last_seen, excluded.last_seen), "
                "stopped = MAX(stopped, excluded.stopped)",
                [(s, r, t, t, int(stopped)) for s, r, t, stopped in rows])

    def set_sites(self, sites: Mapping[str, str]) -> None:
        """{device: site} of devices defined after the store was opened (SQLite keys
        nothing by site: nothing to do)."""
