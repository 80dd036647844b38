"""Poll readings waiting in the SQLite store's ``recent`` table (store.recent): every read
answers the same wherever the readings wait (all in ``recent``, all moved, split at any
point, moved in chunks of any size); a move is due after MOVE_ROWS rows or MOVE_EVERY_S;
a chunk moves whole series and lets go of the write lock before the next; a reader's
snapshot sees each reading once across a move; readings waiting survive a restart; a
version-2 store gains the table; pruning and the central's ingest see both tables."""

from __future__ import annotations

import random
import sqlite3

import pytest

from pue_monitor.store import recent, series
from pue_monitor.store.ingest import IngestBatch
from pue_monitor.store.model import PollResult, Quality, Reading, labels_key
from pue_monitor.store.sqlite import DB_FILE, Store
from tests.test_store_series import T0, answers, cases, dump, fresh_store, version


def counts(store: Store) -> tuple[int, int]:
    """(rows in readings, rows in recent)."""
    return tuple(dump(store.path, f"SELECT COUNT(*) FROM {table}")[0][0]  # type: ignore
                 for table in recent.TABLES)


def polled(folder, readings: list[Reading], moves: str, seed: int) -> Store:
    """A store given ``readings`` by write_polls, in their order, in batches of 1 to 40
    polls, with moves: never, after every batch, at random batches, or once at the end."""
    rnd = random.Random(seed)
    store = Store.open(folder)
    at = 0
    while at < len(readings):
        n = rnd.randint(1, 40)
        store.write_polls([PollResult(r.device, "site", r.ts, 0.1, (r,))
                           for r in readings[at:at + n]])
        at += n
        if moves == "every" or (moves == "random" and rnd.random() < 0.3):
            store.move_recent()
    if moves == "end":
        store.move_recent()
    return store


@pytest.mark.parametrize("chunk_rows", [recent.MOVE_CHUNK_ROWS, 7, 1])
@pytest.mark.parametrize("moves", ["never", "every", "random", "end"])
@pytest.mark.parametrize(("seed", "n"), [(1, 60), (2, 400), (3, 1500)])
def test_every_read_answers_the_same_wherever_the_readings_wait(tmp_path, monkeypatch, moves,
                                                                seed, n, chunk_rows):
    monkeypatch.setattr(recent, "MOVE_CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(recent, "MOVE_PAUSE_S", 0.0)
    readings = cases(seed, n)
    reference = fresh_store(tmp_path / "imported", readings)  # all in readings
    store = polled(tmp_path / "polled", readings, moves, seed)
    try:
        in_readings, waiting = counts(store)
        assert in_readings + waiting == len(readings)
        if moves == "never":
            assert in_readings == 0
        elif moves in ("every", "end"):
            assert waiting == 0
        assert answers(store) == answers(reference)
    finally:
        store.close()
        reference.close()


def test_a_move_keeps_the_written_order_of_equal_times(tmp_path):
    # Three readings of one series at one time, two moved, one waiting: each read gives
    # them in the order written, the nearest before a time last written first.
    key = ("ups-1", "active_power_w")
    store = Store.open(tmp_path)
    try:
        for value in (1.0, 2.0):
            store.write_polls([PollResult("ups-1", "site", T0, 0.1, (Reading(T0, *key, value),))])
        store.move_recent()
        store.write_polls([PollResult("ups-1", "site", T0, 0.1, (Reading(T0, *key, 3.0),))])
        assert counts(store) == (2, 1)
        assert store.series_windows([key], [(T0, T0)])[0][key][1].tolist() == [1.0, 2.0, 3.0]
        for near_s in (0.0, 100.0):
            # the window after T0: the nearest before it, last written first (all three:
            # NEAR_READINGS is four)
            t, v = store.series_windows([key], [(T0 + 10, T0 + 20)], near_s=near_s)[0][key]
            assert (t.tolist(), v.tolist()) == ([T0] * 3, [3.0, 2.0, 1.0])
            # and before T0 - 10, the nearest after it, first written first
            t, v = store.series_windows([key], [(T0 - 20, T0 - 10)], near_s=near_s)[0][key]
            assert (t.tolist(), v.tolist()) == ([T0] * 3, [1.0, 2.0, 3.0])
    finally:
        store.close()


def test_a_move_is_due_after_move_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(recent, "MOVE_ROWS", 25)
    store = Store.open(tmp_path)
    try:
        for k in range(12):  # two readings a poll: the 13th row makes a move due
            store.write_polls([PollResult("pdu-1", "site", T0 + k, 0.1, (
                Reading(T0 + k, "pdu-1", "active_power_w", 1.0),
                Reading(T0 + k, "pdu-1", "current_a", 1.0)))])
        assert counts(store) == (0, 24)
        store.write_polls([PollResult("pdu-1", "site", T0 + 12, 0.1, (
            Reading(T0 + 12, "pdu-1", "active_power_w", 1.0),
            Reading(T0 + 12, "pdu-1", "current_a", 1.0)))])
        assert counts(store) == (26, 0)
    finally:
        store.close()


def test_a_move_is_due_after_move_every_s(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: clock[0])
    store = Store.open(tmp_path)
    one = [PollResult("pdu-1", "site", T0, 0.1, (Reading(T0, "pdu-1", "active_power_w", 1.0),))]
    try:
        clock[0] += recent.MOVE_EVERY_S - 1
        store.write_polls(one)
        assert counts(store) == (0, 1)
        clock[0] += 1
        store.write_polls(one)
        assert counts(store) == (2, 0)
        clock[0] += 10 * recent.MOVE_EVERY_S  # nothing written since: nothing to move
        store.write_polls([PollResult("pdu-1", "site", T0, 0.1, error_kind=None)])
        assert counts(store) == (2, 0)
    finally:
        store.close()


@pytest.mark.parametrize(("chunk_rows", "chunk_series", "chunks"),
                         [(5, 10**6, None), (10**6, 3, 7), (10**6, 1, 20)])
def test_a_move_goes_in_chunks_of_whole_series_letting_go_of_the_lock(
        tmp_path, monkeypatch, chunk_rows, chunk_series, chunks):
    # Series of 1 to 12 rows, chunks of about 5 rows or of at most 3 series (of 20): between
    # two chunks every series is all in readings or all in recent, and another connection
    # can take the write lock at once.
    monkeypatch.setattr(recent, "MOVE_CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(recent, "MOVE_CHUNK_SERIES", chunk_series)
    store = Store.open(tmp_path)
    rows = {f"pdu-{n}": 1 + (7 * n) % 12 for n in range(20)}
    between: list[tuple[int, int]] = []

    def pause(seconds: float) -> None:
        assert seconds == recent.MOVE_PAUSE_S
        other = sqlite3.connect(store.path, timeout=0)  # no waiting: free, or it raises
        try:
            other.execute("BEGIN IMMEDIATE")
            where = other.execute(
                "SELECT s.device, COUNT(r.series), COUNT(c.series) FROM series s "
                "LEFT JOIN readings r ON r.series = s.id LEFT JOIN recent c ON "
                "c.series = s.id GROUP BY s.id").fetchall()
            other.execute("ROLLBACK")
        finally:
            other.close()
        for device, moved, waiting in where:
            assert (moved, waiting) in ((rows[device], 0), (0, rows[device])), device
        between.append(counts(store))

    monkeypatch.setattr("pue_monitor.store.sqlite.time.sleep", pause)
    try:
        for device, n in rows.items():
            store.write_polls([PollResult(device, "site", T0 + k, 0.1, (
                Reading(T0 + k, device, "active_power_w", float(k)),)) for k in range(n)])
        total = sum(rows.values())
        assert store.move_recent() == total
        assert counts(store) == (total, 0)
        if chunks is None:
            assert len(between) >= total // 12  # several chunks, each of whole series
        else:
            assert len(between) == chunks - 1  # a pause between two chunks
        assert [a for a, _ in between] == sorted(a for a, _ in between)
        assert all(0 < moved < total and moved + waiting == total
                   for moved, waiting in between)
        for device, n in rows.items():
            got = store.series_windows([(device, "active_power_w")], [(T0, T0 + 20)])[0]
            assert got[(device, "active_power_w")][1].tolist() == [float(k) for k in range(n)]
    finally:
        store.close()


def test_a_series_longer_than_a_chunk_moves_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(recent, "MOVE_CHUNK_ROWS", 3)
    monkeypatch.setattr(recent, "MOVE_PAUSE_S", 0.0)
    store = Store.open(tmp_path)
    key = ("ups-1", "active_power_w")
    try:
        store.write_polls([PollResult("ups-1", "site", T0 + k // 2, 0.1, (
            Reading(T0 + k // 2, *key, float(k)),)) for k in range(10)])
        with sqlite3.connect(store.path) as conn:
            assert recent.move_chunk(conn, recent.FIRST) == (10, None)
        conn.close()
        assert counts(store) == (10, 0)
        # equal times keep the order they were written in
        assert store.series_windows([key], [(T0, T0 + 9)])[0][key][1].tolist() == [
            float(k) for k in range(10)]
    finally:
        store.close()


def test_a_snapshot_sees_each_reading_once_across_a_move(tmp_path):
    key = ("ups-1", "active_power_w")
    writer, reader = Store.open(tmp_path), Store.open(tmp_path)
    try:
        writer.write_polls([PollResult("ups-1", "site", T0 + k, 0.1,
                                       (Reading(T0 + k, *key, float(k)),)) for k in range(50)])
        with reader.snapshot():
            before = reader.series_windows([key], [(T0, T0 + 100)])[0][key][1].tolist()
            assert writer.move_recent() == 50  # WAL: the reader does not hold it up
            writer.write_polls([PollResult("ups-1", "site", T0 + 50, 0.1,
                                           (Reading(T0 + 50, *key, 50.0),))])
            assert reader.series_windows([key], [(T0, T0 + 100)])[0][key][1].tolist() == before
        assert before == [float(k) for k in range(50)]
        after = reader.series_windows([key], [(T0, T0 + 100)])[0][key][1].tolist()
        assert after == [float(k) for k in range(51)]
        assert counts(writer) == (50, 1)
    finally:
        writer.close()
        reader.close()


def test_readings_waiting_survive_a_restart(tmp_path):
    readings = cases(7, 300)
    store = polled(tmp_path / "polled", readings, "never", 7)
    expected = answers(store)
    store.close()  # as a monitor stopped (or killed) before its next move
    again = Store.open(tmp_path / "polled")
    try:
        assert counts(again) == (0, len(readings))
        assert answers(again) == expected
        assert again.move_recent() == len(readings)
        assert counts(again) == (len(readings), 0)
        assert answers(again) == expected
    finally:
        again.close()


def test_a_version_2_store_gains_recent_and_keeps_its_readings(tmp_path):
    readings = cases(5, 200)
    store = fresh_store(tmp_path, readings)
    expected = answers(store)
    store.close()
    path = tmp_path / DB_FILE
    with sqlite3.connect(path) as conn:  # as schema version 2 left it
        conn.execute("DROP TABLE recent")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    store = Store.open(tmp_path)
    try:
        assert version(path) == str(series.SCHEMA_VERSION) == "3"
        assert counts(store) == (len(readings), 0)
        assert answers(store) == expected
    finally:
        store.close()


@pytest.mark.parametrize("moves", ["never", "random", "end"])
def test_pruning_deletes_from_both_tables(tmp_path, moves):
    readings = cases(11, 800)
    store = polled(tmp_path, readings, moves, 11)
    try:
        cut = T0 + 3600
        gone = store.prune_readings(cut)
        assert gone == sum(1 for r in readings if r.ts < cut)
        left = dump(store.path, "SELECT MIN(ts) FROM (SELECT ts FROM readings UNION ALL "
                                "SELECT ts FROM recent)")[0][0]
        assert left >= cut
        assert sum(counts(store)) == sum(1 for r in readings if r.ts >= cut)
    finally:
        store.close()


@pytest.mark.parametrize("waiting_from_h", [0, 2 * 24, 4 * 24, 4 * 24 + 6, 6 * 24])
def test_pruning_over_days_reaches_recent_only_where_it_has_readings(tmp_path,
                                                                     waiting_from_h):
    # Six days of hourly readings, a day per prune transaction; those from hour
    # ``waiting_from_h`` on wait in recent (an edge's backlog catching up at the central can
    # be days old), the cut half-way through the fifth day.
    key = ("ups-1", "active_power_w")
    store = Store.open(tmp_path)
    try:
        for h in range(6 * 24):
            if h == waiting_from_h:
                store.move_recent()
            store.write_polls([PollResult("ups-1", "site", T0 + h * 3600, 0.1, (
                Reading(T0 + h * 3600, *key, float(h)),))])
        if waiting_from_h == 6 * 24:
            store.move_recent()
        cut = T0 + (4 * 24 + 12) * 3600
        assert store.prune_readings(cut) == 4 * 24 + 12
        left = store.series_windows([key], [(T0 - 86400, T0 + 7 * 86400)])[0][key][0]
        assert left.min() == cut and len(left) == 36
    finally:
        store.close()


def test_the_central_ingest_sees_readings_waiting(tmp_path):
    # A store whose polls wait in recent is given the same readings (and one other value)
    # by the central's ingest: the same are skipped, the other is a conflict, none doubled.
    good = [r for r in cases(3, 200) if r.quality == Quality.OK]
    good = list({(r.device, r.metric, r.labels, r.ts): r for r in good}.values())
    store = Store.open(tmp_path)
    try:
        store.write_polls([PollResult(r.device, "site", r.ts, 0.1, (r,)) for r in good])
        assert counts(store) == (0, len(good))
        values = [r.value for r in good]
        values[0] = values[0] + 1.0
        batch = IngestBatch(["site"] * len(good), [r.ts for r in good],
                            [r.device for r in good], [r.metric for r in good],
                            [labels_key(r.labels) for r in good], values)
        result = store.ingest_readings(batch, lambda new: [])
        assert result.new == []
        assert result.same == len(good) - 1
        assert list(result.conflicts) == [0]
        assert sum(counts(store)) == len(good)
    finally:
        store.close()


def test_a_failed_move_loses_nothing_and_is_tried_again(tmp_path, monkeypatch, caplog):
    # The polls of a batch are committed before their move: a move that fails must not
    # make write_polls fail (the sink would write the batch again); the readings stay
    # readable in recent and a later move takes them.
    monkeypatch.setattr(recent, "MOVE_ROWS", 3)
    store = Store.open(tmp_path)
    key = ("ups-1", "active_power_w")
    with sqlite3.connect(store.path) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON readings BEGIN "
                     "SELECT RAISE(ABORT, 'disk says no'); END")
    conn.close()
    try:
        with caplog.at_level("WARNING", logger="pue_monitor.store.sqlite"):
            store.write_polls([PollResult("ups-1", "site", T0 + k, 0.1,
                                          (Reading(T0 + k, *key, float(k)),)) for k in range(4)])
        assert counts(store) == (0, 4)
        assert [r.getMessage() for r in caplog.records] == [
            f"store {store.path}: moving the newest readings into readings failed (disk says "
            "no); they stay readable and are moved later"]
        assert not any(r.exc_info for r in caplog.records)
        assert store.series_windows([key], [(T0, T0 + 10)])[0][key][1].tolist() == [
            0.0, 1.0, 2.0, 3.0]
        assert store.health()["ups-1"].polls_total == 4  # the batch itself is stored
        with sqlite3.connect(store.path) as conn:
            conn.execute("DROP TRIGGER refuse")
        conn.close()
        store.write_polls([PollResult("ups-1", "site", T0 + 4, 0.1,
                                      (Reading(T0 + 4, *key, 4.0),)) for _ in range(3)])
        assert counts(store) == (7, 0)
        assert store.series_windows([key], [(T0, T0 + 10)])[0][key][1].tolist() == [
            0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 4.0]
    finally:
        store.close()


def test_a_chunk_that_fails_leaves_its_series_waiting_and_the_chunks_before_moved(
        tmp_path, monkeypatch, caplog):
    # Chunks of one series; the third series' move fails (a trigger): the first two are in
    # readings, the rest wait in recent, every reading still read once; a later move
    # takes the rest.
    monkeypatch.setattr(recent, "MOVE_CHUNK_SERIES", 1)
    monkeypatch.setattr(recent, "MOVE_PAUSE_S", 0.0)
    monkeypatch.setattr(recent, "MOVE_ROWS", 20)
    store = Store.open(tmp_path)
    keys = [(f"pdu-{n}", "active_power_w") for n in range(5)]
    try:
        store.write_polls([PollResult(d, "site", T0, 0.1, (Reading(T0, d, m, 1.0),))
                           for d, m in keys])
        third = dump(store.path, "SELECT id FROM series WHERE device = 'pdu-2'")[0][0]
        with sqlite3.connect(store.path) as conn:
            conn.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON readings WHEN NEW.series "
                         f"= {third} BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
        conn.close()
        with caplog.at_level("WARNING", logger="pue_monitor.store.sqlite"):
            store.write_polls([PollResult(d, "site", T0 + k, 0.1, (
                Reading(T0 + k, d, m, 1.0),)) for k in range(1, 4) for d, m in keys])
        assert len(caplog.records) == 1 and not caplog.records[0].exc_info
        assert sorted(dump(store.path, "SELECT s.device, COUNT(*) FROM readings r JOIN "
                                       "series s ON s.id = r.series GROUP BY s.device")) == [
            ("pdu-0", 4), ("pdu-1", 4)]
        assert counts(store) == (8, 12)
        found = store.series_windows(keys, [(T0, T0 + 10)])[0]
        assert {k: v.tolist() for k, (_t, v) in found.items()} == {k: [1.0] * 4 for k in keys}
        with sqlite3.connect(store.path) as conn:
            conn.execute("DROP TRIGGER refuse")
        conn.close()
        assert store.move_recent() == 12
        assert counts(store) == (20, 0)
    finally:
        store.close()


@pytest.mark.parametrize("move_rows", [10**9, 37])
def test_the_central_ingest_waits_in_recent_and_answers_as_imported(tmp_path, monkeypatch,
                                                                  move_rows):
    # The edges' readings, in batches as they come, go the polls' way (recent, moved in
    # bulk when due) and read back as the same readings imported.
    monkeypatch.setattr(recent, "MOVE_ROWS", move_rows)
    good = [r for r in cases(8, 600) if r.quality == Quality.OK]
    good = list({(r.device, r.metric, r.labels, r.ts): r for r in good}.values())
    reference = fresh_store(tmp_path / "imported", good)
    store = Store.open(tmp_path / "central")
    try:
        for at in range(0, len(good), 25):
            part = good[at:at + 25]
            result = store.ingest_readings(IngestBatch(
                ["site"] * len(part), [r.ts for r in part], [r.device for r in part],
                [r.metric for r in part], [labels_key(r.labels) for r in part],
                [r.value for r in part]), lambda new: [])
            assert len(result.new) == len(part)
        in_readings, waiting = counts(store)
        assert in_readings + waiting == len(good)
        assert (waiting == len(good)) == (move_rows > len(good))
        assert answers(store) == answers(reference)
    finally:
        store.close()
        reference.close()
