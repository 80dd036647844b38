"""The central service's tables in the PostgreSQL store (store.postgres): store.central's
rules on PostgreSQL (migration 0004). Tokens belong to no one site: kept under site ''.
A batch of readings goes in through store.ingest, staged with one COPY."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from pue_monitor.store import ingest
from pue_monitor.store.base import CentralToken, SiteDefinitionRecord

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import psycopg

NO_SITE = ""
TOKEN_COLUMNS = "data_center, label, created_ts, revoked_ts"
DEFINITION_COLUMNS = ("site, received_ts, changed_ts, data_center, sender, fingerprint, "
                      "definition")
LOCK_CLASS_DEFINITIONS = 7310  # one writer of a site's definitions at a time
# One ingest of a site's readings at a time, in every process: the check of what is
# stored already and the write are one step across several central processes.
LOCK_CLASS_INGEST = 7311
# COPY's text format: these characters of a text column are written escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = "\\\t\n\r"


class _PgDialect:
    """store.ingest's SQL on PostgreSQL: one COPY in text format into a temporary table
    (created once per connection, emptied at each commit)."""

    def stage(self, conn: psycopg.Connection, rows: ingest.IngestBatch) -> None:
        # The planner knows nothing of the staged rows (a temporary table has no
        # statistics) and would sort the whole readings partition to merge-join them:
        # one index probe per staged row is what the probe needs, whatever the sizes.
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {ingest.STAGE_TABLE} (i integer, "
                     'site text COLLATE "C", ts float8, device text COLLATE "C", '
                     'metric text COLLATE "C", labels text COLLATE "C", value float8) '
                     "ON COMMIT DELETE ROWS; SET LOCAL enable_mergejoin = off; "
                     "SET LOCAL enable_hashjoin = off")
        columns = [rows.sites, rows.devices, rows.metrics, rows.labels]
        distinct = {*rows.sites, *rows.devices, *rows.metrics, *rows.labels}
        if any(c in "".join(distinct) for c in _COPY_SPECIAL):  # rare: escape them
            texts = {t: t.translate(_COPY_ESCAPES) for t in distinct}
            columns = [list(map(texts.__getitem__, column)) for column in columns]
        sites, devices, metrics, labels = columns
        # repr of a float reads back as the same float (PostgreSQL's float8 input rounds
        # correctly), so times and values are stored exactly as the edge sent them.
        data = "\n".join(map("\t".join, zip(
            map(str, range(len(rows.ts))), sites, map(repr, rows.ts), devices, metrics,
            labels, map(repr, rows.values))))
        with conn.cursor().copy(f"COPY {ingest.STAGE_TABLE} FROM STDIN") as copy:
            copy.write(data + "\n")

    def insert(self, conn: psycopg.Connection, skip: list[int]) -> None:
        conn.execute("INSERT INTO readings (site, ts, device, metric, labels, value, quality) "
                     f"SELECT site, ts, device, metric, labels, value, 'ok' FROM "
                     f"{ingest.STAGE_TABLE} WHERE NOT i = ANY(%s::int[])", (skip,))


_DIALECT = _PgDialect()


class PgCentralMixin:
    """store.base.CentralStoreProtocol over PostgresStore's _read / _write transactions."""

    _read: Callable[..., AbstractContextManager[psycopg.Connection]]
    _write: Callable[..., AbstractContextManager[psycopg.Connection]]
    _sites: dict[str, str]
    _ensure: Callable[[str, set], None]
    _remember: Callable[[psycopg.Connection, Iterable[tuple[str, str]]], None]
    _lock_devices: Callable[[psycopg.Connection, Iterable[str]], None]
    _drop_stale: Callable[[psycopg.Connection, ingest.Stale], None]

    def ingest_readings(self, rows: ingest.IngestBatch,
                        stale: Callable[[list[int]], ingest.Stale]) -> ingest.Ingested:
        """Store the rows not stored yet and drop the blocks ``stale`` names, in one
        transaction holding the rows' sites' ingest locks (store.ingest)."""
        from pue_monitor.store.pg_schema import months_of

        if not rows.ts:
            return ingest.Ingested([], 0, {})
        self._ensure("readings", months_of(rows.ts))
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(s)) FROM "
                         "unnest(%s::text[]) WITH ORDINALITY AS u(s, n) ORDER BY n",
                         (LOCK_CLASS_INGEST, sorted(set(rows.sites))))
            self._remember(conn, set(zip(rows.sites, rows.devices)))
            result, blocks = ingest.ingest(conn, _DIALECT, rows, stale)
            if blocks:
                # the day summary's statements plan as everywhere else (stage() turned
                # hash and merge joins off for the probe)
                conn.execute("SET LOCAL enable_mergejoin TO DEFAULT; "
                             "SET LOCAL enable_hashjoin TO DEFAULT")
                self._lock_devices(conn, (d for d, _ in blocks))
                self._drop_stale(conn, blocks)
        return result

    def add_central_token(self, token_hash: str, data_center: str, label: str,
                          created_ts: float) -> None:
        """Record a data center's ingest token (by its hash).

        :raises ValueError: the data center has a live token of that label already."""
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                         (LOCK_CLASS_DEFINITIONS, "token:" + data_center))
            if conn.execute("SELECT 1 FROM central_tokens WHERE site = %s AND data_center = %s "
                            "AND label = %s AND revoked_ts IS NULL",
                            (NO_SITE, data_center, label)).fetchone():
                raise ValueError(f"data center {data_center!r} has a token {label!r} already")
            conn.execute("INSERT INTO central_tokens VALUES (%s, %s, %s, %s, %s, NULL)",
                         (NO_SITE, token_hash, data_center, label, created_ts))

    def central_token(self, token_hash: str) -> CentralToken | None:
        """The live (not revoked) token of this hash, or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {TOKEN_COLUMNS} FROM central_tokens WHERE site = %s "
                               "AND token_hash = %s AND revoked_ts IS NULL",
                               (NO_SITE, token_hash)).fetchone()
        return None if row is None else CentralToken(*row)

    def central_tokens(self) -> list[CentralToken]:
        """Every token, revoked ones too, by data center and label."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {TOKEN_COLUMNS} FROM central_tokens WHERE site = %s "
                                "ORDER BY data_center, label, created_ts", (NO_SITE,)).fetchall()
        return [CentralToken(*row) for row in rows]

    def revoke_central_tokens(self, data_center: str, label: str | None, ts: float) -> int:
        """Revoke a data center's live tokens (only the one of ``label`` if given)."""
        with self._write() as conn:
            return conn.execute(
                "UPDATE central_tokens SET revoked_ts = %s WHERE site = %s AND data_center = %s "
                "AND revoked_ts IS NULL AND (%s::text IS NULL OR label = %s)",
                (ts, NO_SITE, data_center, label, label)).rowcount

    def record_site_definition(self, record: SiteDefinitionRecord) -> bool:
        """Keep a site's definition unless it equals the latest one kept; True if kept."""
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                         (LOCK_CLASS_DEFINITIONS, record.site))
            row = conn.execute("SELECT fingerprint FROM site_definitions WHERE site = %s "
                               "ORDER BY received_ts DESC LIMIT 1", (record.site,)).fetchone()
            if row is not None and row[0] == record.fingerprint:
                return False
            conn.execute(f"INSERT INTO site_definitions ({DEFINITION_COLUMNS}) VALUES "
                         "(%s, %s, %s, %s, %s, %s, %s)", tuple(record))
        return True

    def site_definitions(self) -> list[SiteDefinitionRecord]:
        """Every definition kept, by site and time received (the last is in force)."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {DEFINITION_COLUMNS} FROM site_definitions "
                                "ORDER BY site, received_ts").fetchall()
        return [SiteDefinitionRecord(*row) for row in rows]

    def mark_edge_runs(self, rows: Sequence[tuple[str, str, float, bool]]) -> None:
        """Marks of edges' run logs (site, run, ts, stopped), idempotent and in any order."""
        merged: dict[tuple[str, str], list] = {}
        for site, run, ts, stopped in rows:  # one row per key: ON CONFLICT touches it once
            m = merged.setdefault((site, run), [ts, ts, False])
            m[0], m[1], m[2] = min(m[0], ts), max(m[1], ts), m[2] or bool(stopped)
        if not merged:
            return
        keys = sorted(merged)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO edge_runs SELECT * FROM unnest(%s::text[], %s::text[], "
                "%s::float8[], %s::float8[], %s::bool[]) ON CONFLICT (site, run) DO UPDATE SET "
                "started = least(edge_runs.started, excluded.started), "
                "last_seen = greatest(edge_runs.last_seen, excluded.last_seen), "
                "stopped = edge_runs.stopped OR excluded.stopped",
                [[k[0] for k in keys], [k[1] for k in keys],
                 *([merged[k][i] for k in keys] for i in range(3))])

    def set_sites(self, sites: Mapping[str, str]) -> None:
        """{device: site} of devices defined after the store was opened: the site the
        readings and blocks of a device are keyed by."""
        self._sites.update(sites)
