"""The SQLite store's series_windows: the good readings of many series over many windows,
with the NEAR_READINGS nearest on each side, in a handful of statements.

Every statement reads ``readings`` and then ``recent`` (the poll readings not moved yet,
store.recent) as two arms of a UNION ALL, each an index seek, its arguments given twice;
the nearest readings on a side are at most NEAR_READINGS of each arm, cut in Python (a
compound with its own ORDER BY per statement cost SQLite ten times as much). Equal times
come in the order one table would give them: as written (readings, then recent, each by
rowid), the last written first before a window (as ``ts DESC`` reads an index).
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import sqlite3
from collections.abc import Mapping, Sequence

from pue_monitor.pue.lazynp import np

from pue_monitor.store import recent, series
from pue_monitor.store.base import NEAR_READINGS

SQL_NEAR_CHUNK = 200  # statements per UNION ALL: two arms each, under SQLite's 500 terms
_TIME = operator.itemgetter(0)  # of a (ts, value) row
# The good readings of one series in [start, end], tagged with the pair's number.
_WITHIN = recent.both("SELECT ?, ts, value FROM readings WHERE series = ? "
                      "AND quality = 'ok' AND ts >= ? AND ts <= ?")
# The NEAR_READINGS nearest of one series before / after a time, of each table. Before:
# recent's arm first, so that a stable sort by time, descending, puts the last written
# first among equal times; after: readings' first, as written.
_NEAR_ARM = ("SELECT * FROM (SELECT ?, ts, value FROM {table} WHERE series = ? "
             "AND quality = 'ok' AND ts {op} ? ORDER BY ts {order} "
             f"LIMIT {NEAR_READINGS})")
_BEFORE = " UNION ALL ".join(_NEAR_ARM.format(table=table, op="<", order="DESC")
                             for table in reversed(recent.TABLES))
_AFTER = " UNION ALL ".join(_NEAR_ARM.format(table=table, op=">", order="ASC")
                            for table in recent.TABLES)


def _pairs_array(points: list[tuple]) -> np.ndarray:
    """(ts, value) rows as an n x 2 float array: np.asarray(points, dtype=float), at
    about half its cost for the short series of the exact path."""
    try:
        return np.fromiter(itertools.chain.from_iterable(points), dtype=float,
                           count=2 * len(points)).reshape(-1, 2)
    except TypeError:  # a value that is not a number (None): as np.asarray takes it
        return np.asarray(points, dtype=float).reshape(-1, 2)


def _nearest(before: list, after: list) -> tuple[list, list]:
    """The NEAR_READINGS nearest of the readings ``before`` and ``after`` a window, as
    the statements give them (see _BEFORE, _AFTER): before nearest first, after in
    time order."""
    before.sort(key=_TIME, reverse=True)  # stable, also reversed
    after.sort(key=_TIME)
    return before[:NEAR_READINGS], after[:NEAR_READINGS]


def series_windows(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]],
                   windows: Sequence[tuple[float, float]], labels: str = "",
                   near_s: float = 0.0
                   ) -> list[dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]]:
    """Good readings of each (device, metric) in each window [start, end], plus the
    NEAR_READINGS nearest on each side (interpolation, and the spike / dip rule that
    looks two readings on), as sorted (times, values) arrays, read on ``conn``;
    read together: a handful of statements whatever the number of series and windows
    (a report's exact path asks for every meter of a site over each stretch it
    recomputes). The series' ids are looked up once; each series of each window is
    then an index seek, its rows tagged with the pair's number (no device or metric
    text per row). A series never stored is read as empty without a statement.

    ``near_s`` (StoreProtocol.series_windows): each window is read ``near_s`` wider on
    each side, and the nearest readings are taken from there; a series with fewer
    than NEAR_READINGS there on a side has them sought one by one (two LIMIT seeks,
    as without a hint)."""
    keys = list(dict.fromkeys(keys))
    pairs = [(i, key) for i in range(len(windows)) for key in keys]
    found: list[list] = [[] for _ in pairs]
    wide = near_s > 0 and math.isfinite(near_s)
    margin = near_s if wide else 0.0
    ids = series.ids_of(conn, keys, labels)
    stored = [(j, i, ids[key]) for j, (i, key) in enumerate(pairs) if key in ids]
    statements = [(_WITHIN, (j, sid, windows[i][0] - margin, windows[i][1] + margin))
                  for j, i, sid in stored]
    if not wide:
        statements += [(side, (j, sid, t)) for j, i, sid in stored for side, t in
                       ((_BEFORE, windows[i][0]), (_AFTER, windows[i][1]))]
    _union_into(conn, statements, found)
    if wide:
        found = _nearest_within(conn, pairs, windows, ids, found)
    else:
        found = [_cut(points, *windows[i]) for (i, _), points in zip(pairs, found)]
    out: list[dict] = [{} for _ in windows]
    for (i, key), points in zip(pairs, found):
        data = _pairs_array(points)
        out[i][key] = (data[:, 0], data[:, 1])
    return out


def _cut(points: list, a: float, b: float) -> list:
    """A window's rows as the statements without a hint gave them (inside [a, b], then
    up to NEAR_READINGS of each table before and after) in time order, NEAR_READINGS
    on each side; equal times as one table's statements would give them."""
    inside, before, after = [], [], []
    for p in points:
        (before if p[0] < a else after if p[0] > b else inside).append(p)
    before, after = _nearest(before, after)
    before.sort(key=_TIME)  # stable: equal times stay last written first
    inside.sort(key=_TIME)  # stable: readings' rows, then recent's, each as written
    return before + inside + after


def _union_into(conn: sqlite3.Connection, statements: list[tuple[str, tuple]],
                found: list[list]) -> None:
    """Run (sql, args) statements giving (j, ts, value) rows, a few hundred to a UNION
    ALL, each row appended to ``found[j]`` in the order they come. Each statement has
    two arms (readings, recent): its args go in twice."""
    for at in range(0, len(statements), SQL_NEAR_CHUNK):
        chunk = statements[at:at + SQL_NEAR_CHUNK]
        sql = " UNION ALL ".join(text for text, _ in chunk)
        for j, ts, value in conn.execute(sql, [x for _, args in chunk for x in args + args]):
            found[j].append((ts, value))


def _nearest_within(conn: sqlite3.Connection, pairs: list[tuple[int, tuple[str, str]]],
                    windows: Sequence[tuple[float, float]],
                    ids: Mapping[tuple[str, str], int],
                    found: list[list]) -> list[list]:
    """Each (window, series) of ``pairs`` read wider (series_windows' ``near_s``) cut
    to its readings in the window and the NEAR_READINGS nearest on each side, sorted
    by time, equal times in the order the statements without a hint give them:
    before the window the last written first (``ts DESC`` reads the index that
    way), in and after it as written. A side with fewer than NEAR_READINGS in the
    wider read is sought as without a hint (a series of ``ids`` only: the others
    have no readings)."""
    sides: list[list[list]] = []
    ask = []
    for j, ((i, key), points) in enumerate(zip(pairs, found)):
        a, b = windows[i]
        points.sort(key=_TIME)  # stable: readings' rows, then recent's, each as written
        times = [p[0] for p in points]
        lo, hi = bisect.bisect_left(times, a), bisect.bisect_right(times, b)
        before, after = points[:lo], points[hi:]
        sid = ids.get(key)
        if len(before) >= NEAR_READINGS:
            before = before[:-NEAR_READINGS - 1:-1]  # nearest first, as ts DESC
        else:
            if sid is not None:
                ask.append((_BEFORE, (j, sid, a)))
            before = []
        if len(after) >= NEAR_READINGS:
            after = after[:NEAR_READINGS]
        else:
            if sid is not None:
                ask.append((_AFTER, (j, sid, b)))
            after = []
        sides.append([before, points[lo:hi], after])
    if ask:
        asked: list[list] = [[] for _ in pairs]
        _union_into(conn, ask, asked)
        for j, points in enumerate(asked):
            if not points:
                continue
            a = windows[pairs[j][0]][0]
            side = sides[j]
            # A side sought has no rows yet: those of both tables, cut to the nearest.
            more_before = [p for p in points if p[0] < a]
            more_after = [p for p in points if p[0] >= a]
            more_before, more_after = _nearest(more_before, more_after)
            side[0] += more_before
            side[2] += more_after
    out = []
    for before, inside, after in sides:
        before.sort(key=_TIME)  # stable: equal times stay last written first
        out.append(before + inside + after)
    return out


__all__ = ["SQL_NEAR_CHUNK", "series_windows"]
