"""The monitor's alert history (store.base.EventStoreProtocol) in the SQLite store: one
row per recorded change of a device's state or of a site's PUE against its threshold.
Persistence only: figures.alerts decides what is worth recording."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pue_monitor.store.base import SiteEvent

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

SCHEMA = """
CREATE TABLE IF NOT EXISTS site_events (
    site TEXT NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,      -- "device" or "pue" (store.base.SiteEvent)
    subject TEXT NOT NULL,   -- the device id, or the PUE window
    state TEXT NOT NULL,
    value REAL,
    detail TEXT,
    PRIMARY KEY (site, kind, subject, ts)
);
CREATE INDEX IF NOT EXISTS site_events_time ON site_events (site, ts);
"""
_COLUMNS = "site, ts, kind, subject, state, value, detail"


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


class EventsMixin:
    """store.base.EventStoreProtocol over the store's per-thread connections."""

    _connect: Callable[..., AbstractContextManager[sqlite3.Connection]]

    def record_events(self, events: Sequence[SiteEvent]) -> None:
        """Store events (one transaction); an event at the same site, kind, subject and
        time as a stored one replaces it."""
        if not events:
            return
        with self._connect(immediate=True) as conn:
            conn.executemany(f"INSERT OR REPLACE INTO site_events ({_COLUMNS}) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [(e.site, e.ts, e.kind, e.subject, e.state, e.value, e.detail)
                              for e in events])

    def events(self, site: str, start: float, end: float, limit: int = 100
               ) -> list[SiteEvent]:
        """The site's events in [start, end), newest first, at most ``limit``."""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM site_events WHERE site = ? AND "
                                "ts >= ? AND ts < ? ORDER BY ts DESC, kind, subject LIMIT ?",
                                (site, start, end, limit)).fetchall()
        return [SiteEvent(*row) for row in rows]

    def latest_events(self) -> dict[tuple[str, str, str], SiteEvent]:
        """The latest event of each (site, kind, subject): the state last recorded."""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM site_events e WHERE ts = (SELECT MAX(ts) FROM "
                "site_events l WHERE l.site = e.site AND l.kind = e.kind "
                "AND l.subject = e.subject)").fetchall()
        return {(r[0], r[2], r[3]): SiteEvent(*r) for r in rows}
