"""Reports from a read replica (issue 14: "read replicas for reports"): a real PostgreSQL
15 primary and a hot standby streaming from it (tests/pg_server.py, pg_basebackup -R).
A store with ``read_url`` reads the standby once it has replayed the process's own
writes and the primary before that (replay paused on the standby: the reads still see
every write); a report is the same document either way and its reads land on the
standby; a ``read_url`` that is not a standby of the primary is refused; an unreachable
one leaves the reads to the primary."""

from __future__ import annotations

import json
import time

import pytest

from pue_monitor.cli import main
from pue_monitor.store.model import PollResult, Reading
from pue_monitor.store.pg_replica import ReplicaMismatch, lsn_value
from pue_monitor.store.postgres import PostgresStore
from tests.conftest import free_port
from tests.test_settings_history import CONFIG, readings

CATCH_UP_S = 30.0  # the standby replays a write of the primary within this (loopback)


@pytest.fixture(scope="module")
def servers():
    from tests.pg_server import PgServer

    primary = PgServer()
    try:
        standby = PgServer(standby_of=primary)
    except BaseException:
        primary.stop()
        raise
    try:
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()


def database(primary, standby) -> tuple[str, str]:
    """A new database on the primary, and its URL on both servers once the standby has
    it (its creation replayed)."""
    name = primary.create()
    wait_for_replay(primary, standby)
    return primary.url(name), standby.url(name)


def wait_for_replay(primary, standby) -> None:
    import psycopg

    with psycopg.connect(primary.url(), autocommit=True) as conn:
        (text,) = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    deadline = time.monotonic() + CATCH_UP_S
    with psycopg.connect(standby.url(), autocommit=True) as conn:
        while True:
            (seen,) = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
            if lsn_value(seen) >= lsn_value(text):
                return
            assert time.monotonic() < deadline, f"the standby stands at {seen}, not {text}"
            time.sleep(0.05)


def replay(standby, paused: bool) -> None:
    import psycopg

    with psycopg.connect(standby.url(), autocommit=True) as conn:
        conn.execute(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")


def polls(t0: float, n: int) -> list[PollResult]:
    return [PollResult("m1", "site-a", t0 + i, 0.01,
                       (Reading(t0 + i, "m1", "active_power_w", 1000.0 + i),))
            for i in range(n)]


def test_the_replica_serves_reads_only_once_it_has_replayed_the_writes(servers):
    primary, standby = servers
    url, read_url = database(primary, standby)
    store = PostgresStore(url, sites={"m1": "site-a"}, read_url=read_url)
    try:
        store.write_polls(polls(1000.0, 5))
        wait_for_replay(primary, standby)
        before = dict(store.replica.reads)
        assert len(store.latest(0.0)) == 1
        assert store.replica.reads["replica"] == before["replica"] + 1
        # Replay paused: the standby lacks the next write, so the reads go to the primary
        # and still see it.
        replay(standby, paused=True)
        try:
            store.write_polls(polls(2000.0, 5))
            before = dict(store.replica.reads)
            latest = store.latest(0.0)
            assert latest["value"].tolist() == [1004.0] and latest["ts"].tolist() == [2004.0]
            assert store.replica.reads == {"replica": before["replica"],
                                           "primary": before["primary"] + 1}
        finally:
            replay(standby, paused=False)
        wait_for_replay(primary, standby)
        before = dict(store.replica.reads)
        assert store.latest(0.0)["ts"].tolist() == [2004.0]
        assert store.replica.reads["replica"] == before["replica"] + 1
    finally:
        store.close()


def _tuples_read(standby, name: str) -> int:
    import psycopg

    with psycopg.connect(standby.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute("SELECT tup_returned + tup_fetched FROM pg_stat_database "
                            "WHERE datname = %s", (name,)).fetchone()[0]


def test_a_report_read_from_the_replica_is_the_report_from_the_primary(servers, tmp_path):
    primary, standby = servers
    url, read_url = database(primary, standby)
    name = url.rsplit("/", 1)[1]
    data = readings(tmp_path / "readings.csv")
    text = CONFIG.format(chiller="", office="", it="")

    def conf(extra: str) -> str:
        path = tmp_path / f"c{len(extra)}.yaml"
        path.write_text(text + f"store: {{url: '{url}'{extra}}}\n", encoding="utf-8")
        return str(path)

    plain, replicated = conf(""), conf(f", read_url: '{read_url}'")
    assert main(["import", "-c", plain, "--data-dir", str(tmp_path / "d"), str(data)]) == 0

    def report(config: str) -> dict:
        out = tmp_path / "r.json"
        assert main(["report", "-c", config, "--data-dir", str(tmp_path / "d"), "--site",
                     "hist", "--period", "2025-03-14", "-o", str(out)]) == 0
        return json.loads(out.read_text(encoding="utf-8"))

    want = report(plain)  # the blocks are made (written to the primary) here
    wait_for_replay(primary, standby)
    read_before = _tuples_read(standby, name)
    got = report(replicated)
    assert got == want
    assert want["facility_energy_kwh"] > 0 and want["pue"] is not None
    # the report's reads ran on the standby (its own statistics say so)
    assert _tuples_read(standby, name) - read_before > 1000


def test_a_read_url_that_is_not_a_standby_is_refused(servers):
    primary, standby = servers
    url, _ = database(primary, standby)
    with pytest.raises(ReplicaMismatch, match=r"store\.read_url: PostgreSQL 127\.0\.0\.1:"
                                              r"\d+/postgres is not a standby of store\.url's "
                                              r"server .*not in recovery: a primary"):
        PostgresStore(url, read_url=primary.url())


def test_an_unreachable_replica_leaves_the_reads_to_the_primary(servers, caplog):
    primary, standby = servers
    url, _ = database(primary, standby)
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    store = PostgresStore(url, sites={"m1": "site-a"}, read_url=nowhere)
    try:
        store.write_polls(polls(1000.0, 3))
        assert store.latest(0.0)["ts"].tolist() == [1002.0]
        assert store.replica.reads == {"replica": 0, "primary": 1}
        assert "the read replica PostgreSQL 127.0.0.1:" in caplog.text
        assert "reads go to the primary" in caplog.text
    finally:
        store.close()
