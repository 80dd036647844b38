"""The central service's tables in the PostgreSQL store (store.postgres): store.central's
rules on PostgreSQL (migration 0004). Tokens belong to no one site: kept under site ''."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from pue_monitor.store.base import CentralToken, SiteDefinitionRecord

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import psycopg

NO_SITE = ""
TOKEN_COLUMNS = "data_center, label, created_ts, revoked_ts"
DEFINITION_COLUMNS = ("site, received_ts, changed_ts, data_center, sender, fingerprint, "
                      "definition")
LOCK_CLASS_DEFINITIONS = 7310  # one writer of a site's definitions at a time


class PgCentralMixin:
    """store.base.CentralStoreProtocol over PostgresStore's _read / _write transactions."""

    _read: Callable[..., AbstractContextManager[psycopg.Connection]]
    _write: Callable[..., AbstractContextManager[psycopg.Connection]]
    _sites: dict[str, str]

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
