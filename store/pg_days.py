"""The day summary of the blocks in PostgreSQL: store.days' rules, without triggers.

What a day row holds and why is in store.days. Here the writer knows which days it
touched (the starts it upserted, the starts a stale import deleted: ``RETURNING``), so it
recomputes exactly those (device, day) pairs in its own transaction, under the device's
advisory lock (store.postgres), instead of marking them by trigger.
"""

from __future__ import annotations

from collections.abc import Sequence

from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import DAY_S, day_starts, whole_span

BLOCKS_PER_DAY = DAY_S // BLOCK_S
OFFSET_KEY = "day_offset_s"
COMPLETE_KEY = "day_summary_complete"
# The flag counts of a block beyond its resets, which a day sums (store.days, migration 0002).
FLAG_COLUMNS = ("step_backs", "wraps", "stuck", "implausible")
# Float sums in block order, as SQLite adds them (along its (device, start) index): the
# same blocks give the same day rows, to the last bit, on both backends and every time
# (a heap's row order changes with updates and vacuum).
_SUMS = ("count(*), min(e.covered_s), sum(e.energy_kwh ORDER BY e.start), "
         "sum(e.covered_s ORDER BY e.start), "
         "coalesce(string_agg(DISTINCT e.method, ',' ORDER BY e.method), ''), sum(e.resets), "
         "sum(e.counter_kwh ORDER BY e.start), sum(e.power_kwh ORDER BY e.start), "
         + ", ".join(f"sum(e.{c})" for c in FLAG_COLUMNS))
# The day a block starting at e.start belongs to (whole seconds, as store.days).
_DAY_OF = "(trunc(e.start)::bigint - ((trunc(e.start)::bigint + %(offset)s) %% " + str(DAY_S) + "))"


def day_of(start: float, offset_s: int) -> int:
    """The start of the day (at ``offset_s``) the block starting at ``start`` is in."""
    whole = int(start)
    return whole - (whole + offset_s) % DAY_S


def offset(conn) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = %s", (OFFSET_KEY,)).fetchone()[0])


def complete(conn) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = %s", (COMPLETE_KEY,)).fetchone()
    return row is not None and row[0] == "1"


def state(conn) -> tuple[int, bool]:
    """(day offset, summary complete) in one statement."""
    found = dict(conn.execute("SELECT key, value FROM meta WHERE key = ANY(%s::text[])",
                              ([OFFSET_KEY, COMPLETE_KEY],)).fetchall())
    return int(found[OFFSET_KEY]), found.get(COMPLETE_KEY) == "1"


def set_complete(conn, done: bool) -> None:
    conn.execute("UPDATE meta SET value = %s WHERE key = %s", ("1" if done else "0", COMPLETE_KEY))


def align(conn, offset_s: int) -> bool:
    """Start days at ``offset_s`` east of UTC (the caller holds the exclusive days lock);
    True if that changed: the summary is emptied and marked incomplete."""
    if offset_s % BLOCK_S:
        raise ValueError(f"day offset {offset_s} s is not on a 15-minute block boundary")
    offset_s = int(offset_s) % DAY_S
    if offset(conn) == offset_s:
        return False
    conn.execute("UPDATE meta SET value = %s WHERE key = %s", (str(offset_s), OFFSET_KEY))
    conn.execute("DELETE FROM day_energy")
    set_complete(conn, False)
    return True


def refresh(conn, dirty: set[tuple[str, int]]) -> None:
    """Recompute the (device, day) rows from their blocks (in the writer's transaction,
    under the devices' locks)."""
    if not dirty:
        return
    keys = sorted(dirty)
    pairs = ([d for d, _ in keys], [day for _, day in keys])
    conn.execute("DELETE FROM day_energy d USING unnest(%s::text[], %s::bigint[]) AS "
                 "k(device, day) WHERE d.device = k.device AND d.day = k.day", pairs)
    conn.execute(f"INSERT INTO day_energy SELECT e.site, e.device, k.day, {_SUMS} FROM "
                 "unnest(%s::text[], %s::bigint[]) AS k(device, day) JOIN interval_energy e "
                 f"ON e.device = k.device AND e.start >= k.day AND e.start < k.day + {DAY_S} "
                 "GROUP BY e.site, e.device, k.day", pairs)


def rebuild(conn, device: str) -> None:
    """Recompute every day of one device from its blocks."""
    conn.execute("DELETE FROM day_energy WHERE device = %s", (device,))
    conn.execute(f"INSERT INTO day_energy SELECT e.site, e.device, {_DAY_OF} AS day, "
                 f"{_SUMS} FROM interval_energy e WHERE e.device = %(device)s "
                 "GROUP BY e.site, e.device, day", {"offset": offset(conn), "device": device})


def next_device(conn, after: str | None) -> str | None:
    """The device after ``after`` among those with blocks (an index seek, not a scan)."""
    row = conn.execute("SELECT device FROM interval_energy WHERE device > %s ORDER BY device "
                       "LIMIT 1", ("" if after is None else after,)).fetchone()
    return None if row is None else row[0]


def device_count(conn) -> int:
    n, device = 0, next_device(conn, None)
    while device is not None:
        n, device = n + 1, next_device(conn, device)
    return n


def rows(conn, devices: Sequence[str], start: float, end: float) -> list[tuple]:
    """(device, day, blocks, min_covered_s, energy_kwh, covered_s, methods, resets,
    counter_kwh, power_kwh) of the days starting in [start, end)."""
    if not devices:
        return []
    return [tuple(r) for r in conn.execute(
        "SELECT device, day, blocks, min_covered_s, energy_kwh, covered_s, methods, resets, "
        "counter_kwh, power_kwh FROM day_energy WHERE device = ANY(%s::text[]) AND day >= %s "
        "AND day < %s ORDER BY device, day", (list(devices), start, end))]


def not_whole(conn, devices: Sequence[str], start: float, end: float, covered_s: float
              ) -> list[tuple[str, float, int, float]]:
    """See StoreProtocol.days_not_whole: short days from their rows, days without a row
    from the devices whose row count falls short of the days in the range."""
    if not devices:
        return []
    where = "device = ANY(%s::text[]) AND day >= %s AND day < %s"
    args = (list(devices), start, end)
    out = [(d, float(day), n, least) for d, day, n, least in conn.execute(
        f"SELECT device, day, blocks, min_covered_s FROM day_energy WHERE {where} "
        "AND (blocks < %s OR min_covered_s < %s) ORDER BY device, day",
        (*args, BLOCKS_PER_DAY, covered_s))]
    span = day_starts(offset(conn), start, end)
    counts = dict(conn.execute(f"SELECT device, count(*) FROM day_energy WHERE {where} "
                               "GROUP BY device", args).fetchall())
    for device in dict.fromkeys(devices):
        if counts.get(device, 0) < len(span):
            have = {r[0] for r in conn.execute(
                "SELECT day FROM day_energy WHERE device = %s AND day >= %s AND day < %s",
                (device, start, end))}
            out += [(device, float(day), 0, 0.0) for day in span if day not in have]
    return out


def block_counts(conn, devices: list[str], start: float, end: float) -> dict[str, int]:
    """Blocks per device in [start, end): whole days from their rows when the summary is
    complete, the ragged ends from the blocks."""
    if not devices:
        return {}
    count = ("SELECT device, count(*) FROM interval_energy WHERE device = ANY(%s::text[]) "
             "AND start >= %s AND start < %s GROUP BY device")
    offset_s, done = state(conn)
    span = whole_span(offset_s, start, end)
    if span is None or not done:
        return dict(conn.execute(count, (devices, start, end)).fetchall())
    first, last = span
    out: dict[str, int] = {}
    # The whole days from their rows and the ragged ends from the blocks, in one statement.
    sql = ("SELECT device, sum(blocks) FROM day_energy WHERE device = ANY(%s::text[]) "
           "AND day >= %s AND day < %s GROUP BY device UNION ALL " + count
           + " UNION ALL " + count)
    for device, n in conn.execute(sql, (devices, first, last, devices, start, first,
                                        devices, last, end)):
        out[device] = out.get(device, 0) + int(n)
    return {d: n for d, n in out.items() if n}
