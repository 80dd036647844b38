"""Many rows in few statements: the SQLite store's writes of every poll (write_polls).

Why: ``executemany`` runs its statement once per row, and Python's sqlite3 lets go of the
interpreter lock around each run. A batch of 500 polls (5,000 readings and 500 health
rows) handed the lock between the store's writer thread and the event loop's thousands
of times, and the loop's thread paid for each hand-over. One INSERT of many VALUES rows
runs once: the whole poll path measured 0.213-0.228 ms against 0.237-0.251 ms of CPU per
poll, five runs of each alternated (README, SNMP collection, Speed). SQLite applies an
upsert's ON CONFLICT row by row in VALUES order, so a device polled twice in one batch
still counts both polls and keeps the later one's state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain

# Bound values per statement: under SQLite's own limit (32,766 since 3.32; the
# connection's limit is asked, older builds allow 999), large enough that a batch of
# polls takes a few statements.
VARIABLES_PER_STATEMENT = 8000


def chunk_sizes(n: int, cap: int) -> list[int]:
    """Rows per statement for ``n`` rows, at most ``cap`` in each: full statements, then
    the rest in powers of two, so that few distinct statements are ever prepared (sqlite3
    keeps each prepared one in its cache)."""
    if cap < 1:
        raise ValueError(f"at most {cap} rows per statement")
    sizes = [cap] * (n // cap)
    rest = n % cap
    bit = 1 << rest.bit_length()
    while rest:
        bit >>= 1
        if rest & bit:
            sizes.append(bit)
            rest -= bit
    return sizes


@lru_cache(maxsize=64)
def _statement(head: str, row: str, tail: str, size: int) -> str:
    return f"{head} VALUES {', '.join([row] * size)} {tail}"


def insert_rows(conn: sqlite3.Connection, head: str, row: str, rows: Sequence[tuple],
                tail: str = "") -> None:
    """``head VALUES row, row, ... tail`` over ``rows`` (tuples of as many values as
    ``row`` has ``?``), in as few statements as the variable limit allows."""
    width = row.count("?")
    limit = min(VARIABLES_PER_STATEMENT,
                conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    at = 0
    for size in chunk_sizes(len(rows), max(1, limit // width)):
        conn.execute(_statement(head, row, tail, size),
                     list(chain.from_iterable(rows[at:at + size])))
        at += size


__all__ = ["VARIABLES_PER_STATEMENT", "chunk_sizes", "insert_rows"]
