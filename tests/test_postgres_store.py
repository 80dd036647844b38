"""What only the PostgreSQL store has: versioned migrations, monthly partitions, every
table keyed by site (so Citus can distribute it), and writers in several threads at once
keeping the day summary right."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import psycopg
import pytest

from pue_monitor.store import pg_schema
from pue_monitor.store.model import PollResult, Reading
from pue_monitor.store.postgres import PostgresStore


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


@pytest.fixture
def url(postgres_server):
    return postgres_server.url(postgres_server.create())


def query(url: str, sql: str, args=()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def test_migrations_are_applied_once_and_recorded(url):
    PostgresStore(url).close()
    PostgresStore(url).close()  # a second process starting: nothing to apply
    files = pg_schema.migrations()
    assert [v for v, _, _ in files] == list(range(1, len(files) + 1))
    assert query(url, "SELECT version, name FROM schema_version ORDER BY version") == [
        (v, name) for v, name, _ in files]
    with psycopg.connect(url, autocommit=True) as conn:
        assert pg_schema.migrate(conn) == []


@pytest.mark.parametrize(("name", "ok"), [("0002_add_users.sql", True), ("2_x.sql", False),
                                          ("0003-dash.sql", False), ("0004_Upper.sql", False)])
def test_migration_file_names(name, ok):
    assert bool(pg_schema.MIGRATION_FILE.match(name)) is ok


# (table, partition column): rows of two months and one far away land in their months.
def test_rows_land_in_the_partition_of_their_month(url):
    store = PostgresStore(url, sites={"m1": "site-a"})
    times = [utc(2026, 1, 31, 23, 59, 59), utc(2026, 2, 1), utc(2031, 7, 4, 12)]
    store.import_readings([Reading(t, "m1", "active_power_w", 1.0) for t in times])
    store.write_interval_energy([("m1", utc(2026, 2, 1), utc(2026, 2, 1, 0, 15), 1.0, 900.0,
                                  "power")])
    store.close()
    rows = query(url, "SELECT tableoid::regclass::text, ts FROM readings ORDER BY ts")
    assert rows == [("readings_y2026m01", times[0]), ("readings_y2026m02", times[1]),
                    ("readings_y2031m07", times[2])]
    assert query(url, "SELECT tableoid::regclass::text, site FROM interval_energy") == [
        ("interval_energy_y2026m02", "site-a")]
    # The block's day (UTC midnight, the offset of a fresh store) is in that month too.
    assert query(url, "SELECT tableoid::regclass::text, day FROM day_energy") == [
        ("day_energy_y2026m02", int(utc(2026, 2, 1)))]
    parents = dict(query(url, "SELECT c.relname, p.relname FROM pg_inherits i "
                              "JOIN pg_class c ON c.oid = i.inhrelid "
                              "JOIN pg_class p ON p.oid = i.inhparent "
                              "WHERE c.relname LIKE '%%_y____m__'"))
    assert parents["readings_y2031m07"] == "readings"
    assert parents["day_energy_y2026m01"] == "day_energy"  # a day may start the month before


def test_every_table_of_site_data_is_keyed_by_site_first(url):
    """Citus distributes a table by a column that is in every unique key: site."""
    PostgresStore(url).close()
    keys = dict(query(url, """
        SELECT t.relname, (SELECT a.attname FROM pg_attribute a
                           WHERE a.attrelid = t.oid AND a.attnum = c.conkey[1])
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE c.contype IN ('p', 'u') AND t.relnamespace = 'public'::regnamespace
          AND NOT t.relispartition"""))
    global_tables = {"meta", "schema_version"}  # Citus reference tables (README)
    assert {t: k for t, k in keys.items() if t not in global_tables} == {
        t: "site" for t in ("devices", "device_health", "poll_errors", "device_profiles",
                            "interval_energy", "day_energy",
                            # migration 0002: global rows (users, runs) under site ''
                            "device_settings", "monitor_runs", "users", "api_tokens",
                            # migration 0003: sessions under site '', events per site
                            "web_sessions", "site_events",
                            # migration 0004: the central's tokens under site '', the
                            # definitions and run logs edges sent per site
                            "central_tokens", "site_definitions", "edge_runs",
                            # migration 0006: results kept for reports, and the count
                            # of block changes (per site, '' for every site)
                            "kept_parts", "kept_changes")}
    # migration 0005: why an auto device has its profile, in device_profiles' own rows
    # (its key stays (site, device)).
    assert query(url, "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a ON "
                      "a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) WHERE "
                      "c.conrelid = 'device_profiles'::regclass AND c.contype = 'p' "
                      "ORDER BY a.attnum") == [("site",), ("device",)]
    assert {c for (c,) in query(url, "SELECT column_name FROM information_schema.columns "
                                     "WHERE table_name = 'device_profiles'")} == {
        "site", "device", "profile", "sys_object_id", "reason", "identified_ts"}
    site_column = {t for (t,) in query(url, "SELECT table_name FROM information_schema.columns "
                                            "WHERE column_name = 'site' AND table_schema = "
                                            "'public'")}
    assert "readings" in site_column  # no unique key: distributed by site all the same


def test_a_device_keeps_its_site_in_a_process_not_told(url):
    store = PostgresStore(url)
    store.write_polls([PollResult("m1", "site-b", 100.0, 0.1,
                                  (Reading(100.0, "m1", "active_power_w", 5.0),))])
    store.close()
    other = PostgresStore(url)  # no config: the site comes from the store
    other.write_interval_energy([("m1", 0.0, 900.0, 1.0, 900.0, "power")])
    other.import_readings([Reading(200.0, "m1", "active_power_w", 6.0)])
    other.set_device_profile("m1", "ups_mib", "1.3.6.1.2.1.33", "sysObjectID ...", 300.0)
    other.close()
    for table in ("readings", "interval_energy", "day_energy", "device_profiles"):
        assert query(url, f"SELECT DISTINCT site FROM {table}") == [("site-b",)], table


def test_a_snapshot_sees_one_moment_and_refuses_writes(url):
    store = PostgresStore(url, sites={"m1": "a"})
    store.write_interval_energy([("m1", 0.0, 900.0, 1.0, 900.0, "power")])
    seen: list[int] = []
    with store.snapshot():
        seen.append(len(store.interval_energy(["m1"], 0, 1e6)))
        writer = threading.Thread(target=store.write_interval_energy,
                                  args=([("m1", 900.0, 1800.0, 1.0, 900.0, "power")],))
        writer.start()
        writer.join(30)
        assert not writer.is_alive()  # the reader did not hold the writer up
        seen.append(len(store.interval_energy(["m1"], 0, 1e6)))
        seen.append(store.day_rows(["m1"], 0, 1e6)[0][2])
        with pytest.raises(RuntimeError, match="inside a read snapshot"):
            store.set_device_profile("m1", "x")
    seen.append(len(store.interval_energy(["m1"], 0, 1e6)))
    seen.append(store.day_rows(["m1"], 0, 1e6)[0][2])
    assert seen == [1, 1, 1, 2, 2]
    store.close()


def test_writers_at_once_keep_the_day_summary_right(url):
    """Eight threads upsert blocks of the same two devices and days at once, and
    every day row then equals the sums of its blocks."""
    store = PostgresStore(url, sites={"m1": "a", "m2": "b"}, pool_max=12)
    day0 = utc(2026, 3, 1)
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for i in range(24):
                start = day0 + ((k * 24 + i) % 192) * 900.0
                store.write_interval_energy([("m1", start, start + 900, float(k), 900.0 - k,
                                              "power"),
                                             ("m2", start, start + 900, 1.0, 900.0, "counter")])
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and not any(t.is_alive() for t in threads)
    blocks = store.interval_energy(["m1", "m2"], 0, 2e9)
    assert len(blocks) == 2 * 192
    rows = {(r[0], r[1]): r for r in store.day_rows(["m1", "m2"], 0, 2e9)}
    for (device, day), group in blocks.groupby(
            [blocks["device"], blocks["start"] - blocks["start"] % 86_400]):
        row = rows.pop((device, int(day)))
        assert row[2:4] == (len(group), group["covered_s"].min())
        assert row[4] == pytest.approx(group["energy_kwh"].sum(), rel=1e-12)
    assert rows == {}
    store.close()


def test_a_writer_waits_a_bounded_time_for_another_then_raises(url):
    """Another process holds the device's day-summary lock: the write gives up after the
    lock timeout with an error the commands catch (storage.busy_errors), writing nothing."""
    from pue_monitor.storage import busy_errors

    store = PostgresStore(url, sites={"m1": "a"})
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, hashtext('m1'))",
                      (pg_schema.LOCK_CLASS_DEVICE,))
        with pytest.raises(busy_errors(), match="lock timeout"):
            store.write_interval_energy([("m1", 0.0, 900.0, 1.0, 900.0, "power")])
    assert store.last_interval_end("m1") is None
    store.write_interval_energy([("m1", 0.0, 900.0, 1.0, 900.0, "power")])  # released
    assert store.last_interval_end("m1") == 900.0
    store.close()


def test_a_database_of_the_first_schema_gains_the_flag_counts(url, monkeypatch):
    """0002 on a database 0001 made, with a block already in a month's partition: that
    block counts no flags, a block written after counts its own, in blocks and days."""
    first = pg_schema.migrations()[:1]
    day = utc(2026, 3, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        monkeypatch.setattr(pg_schema, "migrations", lambda: first)
        assert pg_schema.migrate(conn) == [1]
        monkeypatch.undo()
        pg_schema.ensure_months(conn, "interval_energy", {(2026, 3)}, set())
        conn.execute("INSERT INTO interval_energy VALUES ('', 'm', %s, %s, 1.0, 900.0, "
                     "'counter', 1, NULL, NULL)", (day, day + 900))
    store = PostgresStore(url)
    try:
        store.write_interval_energy([("m", day + 900, day + 1800, 2.0, 900.0, "counter",
                                      0, None, None, 1, 2, 3, 4)])
        # The write recomputes the whole day: the day row sums the old block too.
        for by_day in (False, True):
            (total,) = store.block_totals(["m"], day, day + 86400, by_day=by_day).values()
            assert (total.energy_kwh, total.resets, total.step_backs, total.wraps,
                    total.stuck, total.implausible) == (3.0, 1, 1, 2, 3, 4)
    finally:
        store.close()
