"""Many rows in few statements (store.sqlite_rows): how rows are cut into statements,
and that one statement of many rows stores what a statement per row did, upserts of one
key twice in a batch included."""

from __future__ import annotations

import itertools
import random
import sqlite3

import pytest

from pue_monitor.store.sqlite_rows import chunk_sizes, insert_rows

# (rows, at most per statement, rows of each statement)
CHUNKS = [
    (0, 500, []),
    (1, 500, [1]),
    (500, 500, [500]),
    (501, 500, [500, 1]),
    (1000, 500, [500, 500]),
    (1499, 500, [500, 500, 256, 128, 64, 32, 16, 2, 1]),
    (7, 1, [1] * 7),
    (300, 4, [4] * 75),
    (13, 4, [4, 4, 4, 1]),
    (11, 8, [8, 2, 1]),
]


@pytest.mark.parametrize(("n", "cap", "sizes"), CHUNKS)
def test_rows_are_cut_into_full_statements_then_powers_of_two(n, cap, sizes):
    assert chunk_sizes(n, cap) == sizes
    assert sum(sizes) == n


def test_distinct_statements_stay_few():
    # Every batch size up to 5,000 rows uses at most the full size and the powers of two
    # below it: the prepared statements a connection keeps.
    seen = {size for n in range(5001) for size in chunk_sizes(n, 500)}
    assert seen <= {500} | {2 ** k for k in range(9)}


def test_no_room_for_a_row_is_refused():
    with pytest.raises(ValueError, match="at most 0 rows"):
        chunk_sizes(3, 0)


UPSERT = ("INSERT INTO health (device, up, polls, failures)", "(?, ?, 1, ?)",
          "ON CONFLICT(device) DO UPDATE SET up = excluded.up, polls = health.polls + 1, "
          "failures = CASE WHEN excluded.up = 1 THEN 0 ELSE health.failures + 1 END")


def database(variable_limit: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit)
    conn.execute("CREATE TABLE r (series INTEGER, ts REAL, value REAL, quality TEXT)")
    conn.execute("CREATE TABLE health (device TEXT PRIMARY KEY, up INTEGER, polls INTEGER, "
                 "failures INTEGER)")
    return conn


@pytest.mark.parametrize("variable_limit", [4, 9, 999, 32766])
@pytest.mark.parametrize(("seed", "n"), [(1, 0), (2, 1), (3, 37), (4, 2500)])
def test_many_rows_per_statement_store_what_one_per_row_did(variable_limit, seed, n):
    rng = random.Random(seed)
    rows = [(rng.randrange(50), rng.uniform(0, 1e9), rng.choice([None, rng.random() * 1e6]),
             rng.choice(["ok", "not_available"])) for _ in range(n)]
    polls = [(f"d{rng.randrange(5)}", rng.randrange(2), None) for _ in range(n)]
    one, many = database(32766), database(variable_limit)
    one.executemany("INSERT INTO r VALUES (?, ?, ?, ?)", rows)
    one.executemany(f"{UPSERT[0]} VALUES {UPSERT[1]} {UPSERT[2]}", polls)
    insert_rows(many, "INSERT INTO r", "(?, ?, ?, ?)", rows)
    insert_rows(many, *UPSERT[:2], polls, UPSERT[2])
    for table in ("r", "health"):
        sql = f"SELECT * FROM {table} ORDER BY rowid"
        assert many.execute(sql).fetchall() == one.execute(sql).fetchall()
    # Floats round-trip exactly; each device counts every poll of the batch.
    assert [r[1] for r in many.execute("SELECT * FROM r ORDER BY rowid")] == [r[1] for r in rows]
    counted = {d: len(list(g)) for d, g in itertools.groupby(sorted(p[0] for p in polls))}
    assert dict(many.execute("SELECT device, polls FROM health")) == counted
