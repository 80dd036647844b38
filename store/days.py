"""A per-meter day summary of the 15-minute blocks, so long periods read days, not blocks.

A year of one meter is 35 040 blocks but 365 days. Each day row holds what a period needs
from that day's blocks: how many there are, the least covered one (is the day whole?),
and the sums the report adds up (energy, covered time, methods, resets, cross-check).

The summary is derived data, kept right by the writers: triggers on ``interval_energy``
mark a (device, day) when one of its blocks is written, replaced or deleted, and the
writing transaction recomputes the marked days from their blocks before it commits
(Store.write_interval_energy, Store.import_readings). So every snapshot a reader sees
has day rows that agree with its blocks, and readers never write.

Days are fixed 86 400 s chunks starting at the store's day offset (seconds east of UTC):
with the offset of the sites' time zone, a day row is a local day and a local month is
a run of whole day rows. Where a period edge falls inside a day (another zone, a DST
change), the reader simply uses that day's blocks. A store written before the summary
existed, or whose offset changed, is rebuilt device by device (short transactions);
until that is done the summary is marked incomplete and readers use the blocks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import DAY_S, day_starts

BLOCKS_PER_DAY = DAY_S // BLOCK_S
OFFSET_KEY = "day_offset_s"
# The day a block starting at `start` belongs to, in SQL (integers: blocks start on
# whole seconds; the offset keeps the dividend positive for any real timestamp).
_DAY_OF = ("(CAST({t} AS INTEGER) - (CAST({t} AS INTEGER) + (SELECT CAST(value AS INTEGER) "
           "FROM meta WHERE key = '" + OFFSET_KEY + "')) % " + str(DAY_S) + ")")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS day_energy (
    device TEXT NOT NULL,
    day INTEGER NOT NULL,        -- unix seconds of the day's start (the store's day offset)
    blocks INTEGER NOT NULL,     -- blocks stored that day
    min_covered_s REAL NOT NULL, -- the least covered of them
    energy_kwh REAL,
    covered_s REAL NOT NULL,
    methods TEXT NOT NULL,       -- distinct methods, comma separated
    resets INTEGER NOT NULL,
    counter_kwh REAL,
    power_kwh REAL,
    step_backs INTEGER NOT NULL DEFAULT 0,  -- flag counts of the day's blocks
    wraps INTEGER NOT NULL DEFAULT 0,
    stuck INTEGER NOT NULL DEFAULT 0,
    implausible INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS day_dirty (
    device TEXT NOT NULL,
    day INTEGER NOT NULL,
    PRIMARY KEY (device, day)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS blocks_inserted AFTER INSERT ON interval_energy BEGIN
    INSERT OR IGNORE INTO day_dirty VALUES (NEW.device, {_DAY_OF.format(t="NEW.start")});
END;
CREATE TRIGGER IF NOT EXISTS blocks_deleted AFTER DELETE ON interval_energy BEGIN
    INSERT OR IGNORE INTO day_dirty VALUES (OLD.device, {_DAY_OF.format(t="OLD.start")});
END;
CREATE TRIGGER IF NOT EXISTS blocks_updated AFTER UPDATE ON interval_energy BEGIN
    INSERT OR IGNORE INTO day_dirty VALUES (OLD.device, {_DAY_OF.format(t="OLD.start")});
    INSERT OR IGNORE INTO day_dirty VALUES (NEW.device, {_DAY_OF.format(t="NEW.start")});
END;
"""

COMPLETE_KEY = "day_summary_complete"
# The flag counts of a block beyond its resets (pue.quality.COUNTED), which a day sums;
# the same columns in interval_energy (store.sqlite).
FLAG_COLUMNS = ("step_backs", "wraps", "stuck", "implausible")
_SUMS = ("COUNT(*), MIN(e.covered_s), SUM(e.energy_kwh), SUM(e.covered_s), "
         "COALESCE(GROUP_CONCAT(DISTINCT e.method), ''), SUM(e.resets), SUM(e.counter_kwh), "
         "SUM(e.power_kwh), " + ", ".join(f"SUM(e.{c})" for c in FLAG_COLUMNS))
_REFRESH = (
    "DELETE FROM day_energy WHERE (device, day) IN (SELECT device, day FROM day_dirty)",
    f"INSERT INTO day_energy SELECT d.device, d.day, {_SUMS} FROM day_dirty d "
    f"JOIN interval_energy e ON e.device = d.device AND e.start >= d.day "
    f"AND e.start < d.day + {DAY_S} GROUP BY d.device, d.day",
    "DELETE FROM day_dirty",
)
_REBUILD = (
    "DELETE FROM day_energy WHERE device = ?",
    f"INSERT INTO day_energy SELECT e.device, {_DAY_OF.format(t='e.start')} AS day, {_SUMS} "
    "FROM interval_energy e WHERE e.device = ? GROUP BY day",
)


def create(conn: sqlite3.Connection) -> None:
    """Tables and triggers. A store that has blocks but no summary yet is marked
    incomplete (Store.rebuild_days fills it in)."""
    new = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'day_energy'").fetchone() \
        is None
    conn.execute("INSERT OR IGNORE INTO meta VALUES (?, '0')", (OFFSET_KEY,))
    conn.executescript(SCHEMA)
    have = {row[1] for row in conn.execute("PRAGMA table_info(day_energy)")}
    for column in FLAG_COLUMNS:
        # A summary written before blocks kept flags: their blocks' counts are 0 too.
        if column not in have:
            conn.execute(f"ALTER TABLE day_energy ADD COLUMN {column} "
                         "INTEGER NOT NULL DEFAULT 0")
    has_blocks = conn.execute("SELECT 1 FROM interval_energy LIMIT 1").fetchone() is not None
    conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                 (COMPLETE_KEY, "0" if new and has_blocks else "1"))
    refresh(conn)  # marks left by an earlier version, which recomputed days on read


def offset(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = ?", (OFFSET_KEY,)).fetchone()[0])


def complete(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (COMPLETE_KEY,)).fetchone()
    return row is not None and row[0] == "1"


def set_complete(conn: sqlite3.Connection, done: bool) -> None:
    conn.execute("UPDATE meta SET value = ? WHERE key = ?", ("1" if done else "0", COMPLETE_KEY))


def align(conn: sqlite3.Connection, offset_s: int) -> bool:
    """Start days at ``offset_s`` east of UTC; True if that changed, in which case the
    summary is emptied and marked incomplete until it is rebuilt."""
    if offset_s % BLOCK_S:
        raise ValueError(f"day offset {offset_s} s is not on a 15-minute block boundary")
    offset_s = int(offset_s) % DAY_S
    if offset(conn) == offset_s:
        return False
    conn.execute("UPDATE meta SET value = ? WHERE key = ?", (str(offset_s), OFFSET_KEY))
    conn.execute("DELETE FROM day_energy")
    conn.execute("DELETE FROM day_dirty")
    set_complete(conn, False)
    return True


def refresh(conn: sqlite3.Connection) -> None:
    """Recompute the marked days from their blocks (inside the writer's transaction)."""
    if conn.execute("SELECT 1 FROM day_dirty LIMIT 1").fetchone() is None:
        return
    for statement in _REFRESH:
        conn.execute(statement)


def rebuild(conn: sqlite3.Connection, device: str) -> None:
    """Recompute every day of one device from its blocks."""
    for statement in _REBUILD:
        conn.execute(statement, (device,))
    conn.execute("DELETE FROM day_dirty WHERE device = ?", (device,))


def next_device(conn: sqlite3.Connection, after: str | None) -> str | None:
    """The device after ``after`` among those with blocks (an index seek, not a scan)."""
    row = conn.execute("SELECT device FROM interval_energy WHERE device > ? ORDER BY device "
                       "LIMIT 1", ("" if after is None else after,)).fetchone()
    return None if row is None else row[0]


def device_count(conn: sqlite3.Connection) -> int:
    """How many devices have blocks (an index seek per device, like next_device)."""
    n, device = 0, next_device(conn, None)
    while device is not None:
        n, device = n + 1, next_device(conn, device)
    return n


def rows(conn: sqlite3.Connection, devices: Sequence[str], start: float, end: float
         ) -> list[tuple]:
    """(device, day, blocks, min_covered_s, energy_kwh, covered_s, methods, resets,
    counter_kwh, power_kwh) of the days starting in [start, end)."""
    if not devices:
        return []
    sql = ("SELECT device, day, blocks, min_covered_s, energy_kwh, covered_s, methods, resets, "
           f"counter_kwh, power_kwh FROM day_energy WHERE device IN "
           f"({','.join('?' * len(devices))}) AND day >= ? AND day < ?")
    return conn.execute(sql, (*devices, start, end)).fetchall()


def not_whole(conn: sqlite3.Connection, devices: Sequence[str], start: float, end: float,
              covered_s: float) -> list[tuple[str, float, int, float]]:
    """See Store.days_not_whole: short days from their rows, days without a row from
    the devices whose row count falls short of the days in the range."""
    if not devices:
        return []
    where = (f"device IN ({','.join('?' * len(devices))}) AND day >= ? AND day < ?")
    out = [(d, float(day), n, least) for d, day, n, least in conn.execute(
        f"SELECT device, day, blocks, min_covered_s FROM day_energy WHERE {where} "
        "AND (blocks < ? OR min_covered_s < ?)",
        (*devices, start, end, BLOCKS_PER_DAY, covered_s))]
    span = day_starts(offset(conn), start, end)
    counts = dict(conn.execute(f"SELECT device, COUNT(*) FROM day_energy WHERE {where} "
                               "GROUP BY device", (*devices, start, end)).fetchall())
    for device in dict.fromkeys(devices):
        if counts.get(device, 0) < len(span):
            have = {r[0] for r in conn.execute(
                "SELECT day FROM day_energy WHERE device = ? AND day >= ? AND day < ?",
                (device, start, end))}
            out += [(device, float(day), 0, 0.0) for day in span if day not in have]
    return out
