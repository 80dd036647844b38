"""The SQLite store's readings keyed by series ids (store.series): a store written by an
earlier version (schema version 1, readings under text keys) is migrated on open and
answers every read as a store written afresh with the same readings does; the migration
is all or nothing; the writers' cache of series ids holds only committed ids; a store of
a newer version is refused."""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path

import pytest

from pue_monitor.cli import main
from pue_monitor.store import ingest, series
from pue_monitor.store.model import PollResult, Quality, Reading, labels_key
from pue_monitor.store.sqlite import DB_FILE, Store

# The readings of schema version 1, as store/sqlite.py created them before series ids
# (spelled out here, not imported: the code that made them is gone).
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    ts REAL NOT NULL,            -- unix seconds (UTC)
    device TEXT NOT NULL,
    metric TEXT NOT NULL,
    labels TEXT NOT NULL,        -- 'k=v,k2=v2' sorted; '' for the device total
    value REAL,                  -- NULL unless quality is ok
    quality TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_series ON readings (device, metric, labels, ts);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
"""
T0 = 1_760_000_000.0
SERIES = [("ups-1", "active_energy_kwh", ()), ("ups-1", "active_power_w", ()),
          ("ups-1", "voltage_v", (("line", "1"),)), ("ups-1", "voltage_v", (("line", "2"),)),
          ("pdu-7", "active_energy_kwh", ()), ("pdu-7", "current_a", (("line", "3"),)),
          ("crah-2", "active_power_w", ())]
QUALITIES = [Quality.OK] * 6 + [Quality.NOT_AVAILABLE, Quality.DECODE_ERROR, Quality.CLOCK_BACK]


def cases(seed: int, n: int) -> list[Reading]:
    """Readings of SERIES at ragged times, in a shuffled order of writing, with bad
    qualities, equal times in one series (duplicates, same and other values) and
    readings at the same time in several series."""
    rnd = random.Random(seed)
    out = []
    for k in range(n):
        device, metric, labels = rnd.choice(SERIES)
        ts = T0 + rnd.choice([rnd.uniform(0, 7200), 60.0 * rnd.randrange(120)])
        quality = rnd.choice(QUALITIES)
        value = round(rnd.uniform(0, 500), 3) if quality == Quality.OK else None
        out.append(Reading(ts, device, metric, value, labels, quality))
        if k % 17 == 0:  # a duplicate of (series, ts), with the same or another value
            out.append(Reading(ts, device, metric, rnd.choice([value, 1.5]), labels, quality))
    return out


def v1_store(folder: Path, readings: list[Reading]) -> Path:
    """A store file of schema version 1 holding ``readings`` in that order."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DB_FILE
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)",
                         [(r.ts, r.device, r.metric, labels_key(r.labels),
                           r.value if r.quality == Quality.OK else None, r.quality.value)
                          for r in readings])
    conn.close()
    return path


def fresh_store(folder: Path, readings: list[Reading]) -> Store:
    store = Store.open(folder)
    store.import_readings(readings)
    return store


def dump(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(sql).fetchall()
    conn.close()
    return rows


def version(path: Path) -> str:
    return dump(path, "SELECT value FROM meta WHERE key = 'schema_version'")[0][0]


def answers(store: Store) -> dict:
    """What every read API that reads readings gives for this data set."""
    keys = sorted({(d, m) for d, m, _ in SERIES})
    windows = [(T0 - 100, T0), (T0 + 600, T0 + 1800), (T0 + 3599.5, T0 + 3600),
               (T0 + 5000, T0 + 9000), (T0 + 7300, T0 + 7400)]
    out: dict = {}
    for labels in ("", "line=1", "line=3"):
        for near_s in (0.0, 300.0, 5.0):
            found = store.series_windows(keys, windows, labels, near_s)
            out[("windows", labels, near_s)] = [
                {k: (t.tolist(), v.tolist()) for k, (t, v) in w.items()} for w in found]
    out["at"] = [(t.tolist(), v.tolist()) for t, v in store.series_at(
        [(k, T0 + 60.0 * i) for i, k in enumerate(keys)])]
    for since in (T0, T0 + 3600):
        # as text: a NaN value (a reading not ok) equals no other NaN
        out[("latest", since)] = store.latest(since).to_csv()
        out[("latest", since, "ups")] = store.latest(since, ["ups-1", "nowhere"]).to_csv()
    for device in ("ups-1", "pdu-7", "crah-2", "nowhere"):
        out[("first", device)] = store.first_reading_ts(device)
        out[("first", device, "power")] = store.first_reading_ts(device, ["active_power_w"])
    out["neighbours"] = store.neighbour_times({"ups-1": (T0 + 1000, T0 + 2000),
                                              "pdu-7": (T0, T0 + 7200),
                                              "crah-2": (T0 + 3000, T0 + 3000)})
    probes = cases(99, 200) + [Reading(T0 + 60.0, d, m, 1.0, labels) for d, m, labels in SERIES]
    out["stored"] = store.stored_values(probes)
    return out


@pytest.mark.parametrize(("seed", "n"), [(1, 50), (2, 400), (3, 3000)])
def test_a_migrated_store_answers_as_one_written_afresh(tmp_path, caplog, seed, n):
    readings = cases(seed, n)
    path = v1_store(tmp_path / "old", readings)
    before = dump(path, "SELECT rowid, * FROM readings ORDER BY rowid")
    with caplog.at_level("INFO", logger="pue_monitor.store.series"):
        migrated = Store.open(tmp_path / "old")
    logged = [r.getMessage() for r in caplog.records]
    assert any(f"moving {len(readings)} readings" in m and str(path) in m for m in logged)
    assert any(" moved in " in m for m in logged)
    fresh = fresh_store(tmp_path / "new", readings)
    try:
        assert version(path) == str(series.SCHEMA_VERSION)
        assert {row[1] for row in dump(path, "PRAGMA table_info(readings)")} == {
            "series", "ts", "value", "quality"}
        # every row, its rowid and its order kept
        assert dump(path, "SELECT r.rowid, r.ts, s.device, s.metric, s.labels, r.value, "
                          "r.quality FROM readings AS r JOIN series AS s ON s.id = r.series "
                          "ORDER BY r.rowid") == before
        got = answers(migrated)
        assert got == answers(fresh)
        # and they are answers, not empty ones
        assert any(t for w in got[("windows", "", 0.0)] for t, _ in w.values())
        assert got["stored"] and got[("first", "ups-1")] is not None
        # writes after the migration go to the series it made (its ids, from the table)
        more = cases(seed + 100, 60)
        migrated.write_polls([PollResult(r.device, "site", r.ts, 0.1, (r,)) for r in more])
        fresh.write_polls([PollResult(r.device, "site", r.ts, 0.1, (r,)) for r in more])
        assert answers(migrated) == answers(fresh)
        assert migrated.prune_readings(T0 + 1800) == fresh.prune_readings(T0 + 1800) > 0
        assert answers(migrated) == answers(fresh)
    finally:
        migrated.close()
        fresh.close()
    # opened again: nothing to migrate
    caplog.clear()
    with caplog.at_level("INFO", logger="pue_monitor.store.series"):
        Store.open(tmp_path / "old").close()
    assert not caplog.records


def test_central_ingest_on_a_migrated_store(tmp_path):
    readings = [r for r in cases(5, 300) if r.quality == Quality.OK]
    v1_store(tmp_path / "old", readings)
    migrated, fresh = Store.open(tmp_path / "old"), fresh_store(tmp_path / "new", readings)
    batch = readings[::7] + [Reading(T0 + 9999.0, "new-meter", "active_power_w", 3.0),
                             Reading(T0 + 60.0, "ups-1", "active_power_w", -1.0)]
    rows = ingest.IngestBatch(["site"] * len(batch), [r.ts for r in batch],
                              [r.device for r in batch], [r.metric for r in batch],
                              [labels_key(r.labels) for r in batch], [r.value for r in batch])
    try:
        got = [s.ingest_readings(rows, lambda new: []) for s in (migrated, fresh)]
        assert got[0] == got[1]
        assert got[0].new and got[0].same > 0
        assert answers(migrated) == answers(fresh)
        assert migrated.series_windows([("new-meter", "active_power_w")], [(T0, T0 + 1e5)])[0][
            ("new-meter", "active_power_w")][1].tolist() == [3.0]
    finally:
        migrated.close()
        fresh.close()


@pytest.mark.parametrize("fail_after", range(len(series._MIGRATE)))
def test_a_failed_migration_leaves_the_old_store_as_it_was(tmp_path, monkeypatch, fail_after):
    readings = cases(7, 500)
    path = v1_store(tmp_path, readings)
    schema = dump(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    rows = dump(path, "SELECT rowid, * FROM readings ORDER BY rowid")
    steps = list(series._MIGRATE)
    steps.insert(fail_after + 1, "INSERT INTO no_such_table VALUES (1)")  # fails there
    monkeypatch.setattr(series, "_MIGRATE", tuple(steps))
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        Store.open(tmp_path)
    assert version(path) == "1"
    assert dump(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema
    assert dump(path, "SELECT rowid, * FROM readings ORDER BY rowid") == rows
    monkeypatch.undo()
    store = Store.open(tmp_path)  # and it migrates once the cause is gone
    try:
        assert version(path) == str(series.SCHEMA_VERSION)
        assert len(dump(path, "SELECT * FROM readings")) == len(readings)
    finally:
        store.close()


def test_a_fresh_store_is_version_3(tmp_path):
    Store.open(tmp_path).close()
    path = tmp_path / DB_FILE
    assert version(path) == "3"
    assert set(dump(path, "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' "
                          "AND tbl_name IN ('readings', 'recent')")) == {
        ("readings", "readings_series"), ("readings", "readings_ts"),
        ("recent", "recent_series")}


@pytest.mark.parametrize(("stored", "message"), [
    ("4", "has schema version 4; this pue-monitor reads versions up to 3"),
    ("12", "has schema version 12"),
    ("two", "schema_version 'two' is not a number"),
])
def test_a_store_it_cannot_read_is_refused(tmp_path, stored, message):
    Store.open(tmp_path).close()
    path = tmp_path / DB_FILE
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (stored,))
    conn.close()
    with pytest.raises(series.SchemaError, match=message) as refused:
        Store.open(tmp_path)
    assert str(path) in str(refused.value)
    assert version(path) == stored  # left alone


@pytest.mark.parametrize("command", [["report", "--site", "reset", "--period", "2025-03"],
                                     ["recompute"]])
def test_a_command_refuses_a_newer_store_in_one_line(tmp_path, capsys, command):
    Store.open(tmp_path).close()
    path = tmp_path / DB_FILE
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()
    config = Path(__file__).parent / "data" / "scenarios" / "config.yaml"
    assert main([command[0], "-c", str(config), "--data-dir", str(tmp_path),
                 *command[1:]]) == 1
    err = capsys.readouterr().err
    assert err == (f"pue-monitor {command[0]}: store {path} has schema version 4; this "
                   "pue-monitor reads versions up to 3 (use a newer one)\n")


def _fail_health(store: Store) -> None:
    """Make the next write_polls of device 'bad' fail after its readings went in."""
    with sqlite3.connect(store.path) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON device_health WHEN "
                     "NEW.device = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END")
    conn.close()


@pytest.mark.parametrize("how", ["write_polls", "import_readings"])
def test_a_rolled_back_write_leaves_no_series_id_cached(tmp_path, monkeypatch, how):
    store = Store.open(tmp_path)
    other = Store.open(tmp_path)  # another writer of the same file (its own cache)
    lost = Reading(T0, "bad", "active_power_w", 1.0)
    try:
        if how == "write_polls":
            _fail_health(store)
            with pytest.raises(sqlite3.IntegrityError, match="refused"):
                store.write_polls([PollResult("bad", "site", T0, 0.1, (lost,))])
        else:
            def fail(conn, stale):
                raise RuntimeError("refused")
            monkeypatch.setattr(store, "_drop_stale", fail)
            with pytest.raises(RuntimeError, match="refused"):
                store.import_readings([lost])
            monkeypatch.undo()
        assert dump(store.path, "SELECT * FROM series") == []
        assert store.series_windows([("bad", "active_power_w")], [(0, 2 * T0)])[0][
            ("bad", "active_power_w")][0].size == 0
        # The other writer takes the id the rolled-back series had; the first writer's
        # readings of that series must not land under it.
        other.import_readings([Reading(T0, "good", "active_power_w", 2.0)])
        store.import_readings([Reading(T0 + 1, "bad", "active_power_w", 3.0)])
        found = store.series_windows([("bad", "active_power_w"), ("good", "active_power_w")],
                                     [(0, 2 * T0)])[0]
        assert found[("bad", "active_power_w")][1].tolist() == [3.0]
        assert found[("good", "active_power_w")][1].tolist() == [2.0]
        assert dump(store.path, "SELECT device, COUNT(*) FROM readings JOIN series ON "
                                "series.id = readings.series GROUP BY device") == [
            ("bad", 1), ("good", 1)]
    finally:
        store.close()
        other.close()


def test_threads_writing_new_series_at_once(tmp_path):
    store = Store.open(tmp_path)
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for i in range(20):  # every thread: its own series and ones all share
                readings = tuple(Reading(T0 + i, f"dev-{j}", "active_power_w", k * 100 + i)
                                 for j in (k, 100 + i % 5))
                store.write_polls([PollResult(f"dev-{k}", "site", T0 + i, 0.1, readings)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        for k in range(6):
            times, values = store.series_windows([(f"dev-{k}", "active_power_w")],
                                                 [(0, 2 * T0)])[0][(f"dev-{k}", "active_power_w")]
            assert values.tolist() == [k * 100 + i for i in range(20)]
        for m in range(5):  # written by all six threads at the times i with i % 5 == m
            key = (f"dev-{100 + m}", "active_power_w")
            _, values = store.series_windows([key], [(0, 2 * T0)])[0][key]
            assert sorted(values.tolist()) == sorted(k * 100 + i for k in range(6)
                                                     for i in range(m, 20, 5))
        assert len(dump(store.path, "SELECT * FROM series")) == 6 + 5
    finally:
        store.close()
