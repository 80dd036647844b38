"""The PostgreSQL store's schema: versioned migrations and the monthly time partitions.

Migrations are the files store/migrations/postgres/NNNN_name.sql, applied in order, each
in its own transaction and recorded in ``schema_version``; a file already recorded is
never run again, and an advisory lock lets several processes start at once.

The time-ordered tables (readings by ts, interval_energy by start, day_energy by day) are
range-partitioned, one partition per UTC month. A writer attaches the months its rows
fall in before its own transaction (``ensure_months``): a partition is created as a plain
table and then attached, which takes only a SHARE UPDATE EXCLUSIVE lock on the parent, so
readers in their snapshots and other writers go on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations" / "postgres"
MIGRATION_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# pg_advisory_xact_lock(class, key) classes this store takes (any int4 pair is free to use).
LOCK_CLASS_SCHEMA = 7301  # migrations and partition creation: one process at a time
LOCK_CLASS_DAYS = 7302  # key 0: shared by writers of blocks, exclusive to align_days
LOCK_CLASS_DEVICE = 7303  # key hashtext(device): one day-summary writer per device
# The partitioned tables and their partition column.
PARTITIONED = {"readings": "ts", "interval_energy": "start", "day_energy": "day"}
DAY_S = 86400


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration, in order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            raise ValueError(f"{path}: a migration is named NNNN_words.sql")
        found.append((int(match.group(1)), path.name, path.read_text(encoding="utf-8")))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{MIGRATIONS_DIR}: two migrations share a version: {versions}")
    return found


def migrate(conn) -> list[int]:
    """Apply the migrations not applied yet (``conn`` in autocommit); their versions."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                 "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
    applied = []
    for version, name, sql in migrations():
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_CLASS_SCHEMA,))
            done = conn.execute("SELECT 1 FROM schema_version WHERE version = %s",
                                (version,)).fetchone()
            if done is None:
                conn.execute(sql)
                conn.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                             (version, name))
                applied.append(version)
    return applied


def month_of(ts: float) -> tuple[int, int]:
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return moment.year, moment.month


def month_bounds(year: int, month: int) -> tuple[int, int]:
    """[start, end) of a UTC month in unix seconds."""
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    return (int(datetime(year, month, 1, tzinfo=timezone.utc).timestamp()),
            int(datetime(*nxt, 1, tzinfo=timezone.utc).timestamp()))


def months_of(times: Iterable[float]) -> set[tuple[int, int]]:
    """The UTC months ``times`` fall in (through their distinct days: cheap for many)."""
    values = np.fromiter(times, dtype=float)
    if values.size == 0:
        return set()
    days = np.unique(np.floor(values / DAY_S))
    return {month_of(float(d) * DAY_S) for d in days}


def partition_name(table: str, year: int, month: int) -> str:
    return f"{table}_y{year:04d}m{month:02d}"


def ensure_months(conn, table: str, months: Iterable[tuple[int, int]], known: set) -> None:
    """Attach ``table``'s partitions for ``months`` that do not exist yet (``conn`` in
    autocommit; ``known``: the (table, month) this process has seen exist, updated)."""
    wanted = sorted(m for m in set(months) if (table, m) not in known)
    if not wanted:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_CLASS_SCHEMA,))
        for year, month in wanted:
            name = partition_name(table, year, month)
            there = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0]
            if there is None:
                lo, hi = month_bounds(year, month)
                conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
                conn.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} "
                             f"FOR VALUES FROM ({lo}) TO ({hi})")
    known.update((table, m) for m in wanted)


def block_months(starts: Iterable[float]) -> tuple[set, set]:
    """(months of the blocks, months of their days): a block's day starts at most a day
    before it (the day offset), so its day may fall in the month before."""
    starts = list(starts)
    return months_of(starts), months_of([*starts, *(s - DAY_S for s in starts)])
