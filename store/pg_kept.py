"""Results kept for reports in PostgreSQL: store.kept's rules, by site.

A write that changes blocks counts the change on its sites' ``kept_changes`` rows before
it drops their kept rows: the row lock orders it against keep, which locks the same rows
before it checks the count and inserts. So either keep sees the new count and keeps
nothing, or the writer's delete (a later statement of its transaction, READ COMMITTED)
sees the kept rows and drops them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import psycopg

from pue_monitor.store.kept import ALL_SITES, FAR


def changed(conn: psycopg.Connection, sites: Iterable[str] | None, lo: float,
            hi: float) -> None:
    """Blocks of ``sites`` (None: of every site) in [lo, hi) were written or dropped, or
    readings there pruned, in the caller's transaction."""
    if sites is not None:
        sites = set(sites)
        if ALL_SITES in sites:  # a device of no known site: it may be any site's
            sites = None
    ordered = [ALL_SITES] if sites is None else sorted(sites)
    conn.execute("INSERT INTO kept_changes (site, changes) SELECT s, 1 FROM "
                 "unnest(%s::text[]) AS u(s) ON CONFLICT (site) DO UPDATE SET "
                 "changes = kept_changes.changes + 1", (ordered,))
    bounds = (min(hi, FAR), max(lo, -FAR))
    if sites is None:
        conn.execute("DELETE FROM kept_parts WHERE lo < %s AND hi > %s", bounds)
    else:
        conn.execute("DELETE FROM kept_parts WHERE site = ANY(%s::text[]) AND lo < %s "
                     "AND hi > %s", (ordered, *bounds))


def sites_of(conn: psycopg.Connection, devices: Iterable[str]) -> list[str] | None:
    """The recorded sites of these devices; None (every site) if one has none."""
    wanted = sorted(set(devices))
    found = conn.execute("SELECT device, site FROM devices WHERE device = ANY(%s::text[])",
                         (wanted,)).fetchall()
    if {d for d, _ in found} != set(wanted):
        return None
    return sorted({s for _, s in found})


def read(conn: psycopg.Connection, site: str, start: float, end: float
         ) -> tuple[int, dict[float, tuple[float, str, str]]]:
    """(changes so far, {start: (end, fingerprint, payload)}) of the site's rows starting
    in [start, end)."""
    rows = conn.execute('SELECT start, "end", fingerprint, payload FROM kept_parts '
                        "WHERE site = %s AND start >= %s AND start < %s",
                        (site, start, end)).fetchall()
    seen = conn.execute("SELECT coalesce(sum(changes), 0) FROM kept_changes "
                        "WHERE site IN (%s, %s)", (site, ALL_SITES)).fetchone()[0]
    return int(seen), {float(a): (float(b), f, p) for a, b, f, p in rows}


def keep(conn: psycopg.Connection, site: str, seen: int,
         rows: Sequence[tuple[float, float, float, float, str, str]]) -> bool:
    """Upsert the rows if no change was counted since ``seen``, holding the count rows."""
    conn.execute("INSERT INTO kept_changes (site, changes) VALUES (%s, 0) "
                 "ON CONFLICT (site) DO NOTHING", (site,))
    now = conn.execute("SELECT changes FROM kept_changes WHERE site IN (%s, %s) "
                       "ORDER BY site FOR UPDATE", (site, ALL_SITES)).fetchall()
    if sum(int(n) for (n,) in now) != seen:
        return False
    conn.cursor().executemany(
        'INSERT INTO kept_parts (site, start, "end", lo, hi, fingerprint, payload) '
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (site, start) DO UPDATE SET "
        '"end" = excluded."end", lo = excluded.lo, hi = excluded.hi, '
        "fingerprint = excluded.fingerprint, payload = excluded.payload",
        [(site, *(float(v) for v in row[:4]), *row[4:]) for row in rows])
    return True
