"""The monitor's alert history (store.base.EventStoreProtocol) in the PostgreSQL store
(store.postgres; table site_events, migration 0003), answering as store.events does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pue_monitor.store.base import SiteEvent

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import psycopg

_COLUMNS = "site, ts, kind, subject, state, value, detail"


class PgEventsMixin:
    """store.base.EventStoreProtocol over PostgresStore's _read / _write transactions."""

    _read: Callable[..., AbstractContextManager[psycopg.Connection]]
    _write: Callable[..., AbstractContextManager[psycopg.Connection]]

    def record_events(self, events: Sequence[SiteEvent]) -> None:
        """Store events (one transaction); an event at the same site, kind, subject and
        time as a stored one replaces it."""
        if not events:
            return
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO site_events ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (site, kind, subject, ts) DO UPDATE SET state = EXCLUDED.state, "
                "value = EXCLUDED.value, detail = EXCLUDED.detail",
                [(e.site, float(e.ts), e.kind, e.subject, e.state, e.value, e.detail)
                 for e in events])

    def events(self, site: str, start: float, end: float, limit: int = 100
               ) -> list[SiteEvent]:
        """The site's events in [start, end), newest first, at most ``limit``."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM site_events WHERE site = %s AND "
                                "ts >= %s AND ts < %s ORDER BY ts DESC, kind, subject "
                                "LIMIT %s", (site, start, end, limit)).fetchall()
        return [SiteEvent(*row) for row in rows]

    def latest_events(self) -> dict[tuple[str, str, str], SiteEvent]:
        """The latest event of each (site, kind, subject): the state last recorded."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT DISTINCT ON (site, kind, subject) {_COLUMNS} FROM "
                                "site_events ORDER BY site, kind, subject, ts DESC").fetchall()
        return {(r[0], r[2], r[3]): SiteEvent(*r) for r in rows}
