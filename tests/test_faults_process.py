"""The fault suite, monitor and simulator as real processes on 127.0.0.1: kill -9 while
polling and writing, and a store whose disk is full, then has room again.

"Acknowledged" means committed: a reading the store shows to another connection, and a
poll result the monitor counts in ``collector_results_stored_total`` (it counts only after
the commit). Each must survive whatever happens next.
"""

from __future__ import annotations

import resource
import time

import pytest

from pue_monitor.config.model import DEFAULT_STORE_BACKLOG
from pue_monitor.pue.runlog import HEARTBEAT_MISSES, HEARTBEAT_S, Run, outages
from tests import suite_figures
from tests.conftest import demo_on_free_ports
from tests.fault_support import (
    Monitor,
    committed_readings,
    integrity,
    polls_stored,
    reading,
    reap,
    simulator,
    store_path,
    until,
)
from tests.store_sql import READINGS

pytestmark = pytest.mark.integration

INTERVAL_S = 0.5  # every device twice a second: the sink commits every half second
KILLS = 5
STORED = "pue_monitor_collector_results_stored_total"
POLLS = "pue_monitor_collector_polls_total"
BACKLOG = "pue_monitor_collector_store_backlog_results"
WRITE_ERRORS = "pue_monitor_collector_store_write_errors_total"
DROPPED = "pue_monitor_collector_store_backlog_dropped_total"
PRODUCED = "pue_monitor_collector_poll_duration_seconds_count"  # poll results made
FAULT_TIMEOUT_S = 60.0


@pytest.fixture(autouse=True)
def _reaped():
    yield
    reap()


@pytest.fixture()
def province(tmp_path):
    """(config path, control port) of the demo province on free ports, polled fast."""
    path, raw = demo_on_free_ports(tmp_path, interval_s=INTERVAL_S)
    return path, raw["simulation"]["control_port"]


def test_kill_9_while_polling_and_writing_loses_no_acknowledged_reading(tmp_path, province):
    config, control = province
    data = tmp_path / "data"
    acknowledged: set[tuple] = set()
    results_acknowledged = 0
    kills: list[tuple[float, float]] = []  # (killed at, restarted at), wall clock
    with simulator(config, control, tmp_path / "sim.log"):
        for k in range(KILLS + 1):
            if kills:
                kills[-1] = (kills[-1][0], time.time())  # restarted now
            mon = Monitor(config, data, tmp_path / f"monitor-{k}.log")
            mon.wait_ready()
            if k == KILLS:
                break
            # Let it poll and commit, then read what it has acknowledged and kill it at
            # once: more polls and a batch are in flight by then.
            until("two commits of this run", lambda: mon.metric(STORED) > 40, FAULT_TIMEOUT_S,
                  mon.proc, mon.log, every=0.05)
            results_acknowledged += int(mon.metric(STORED))
            acknowledged |= committed_readings(data)
            mon.kill9()
            kills.append((time.time(), 0.0))
        until("polls after the last restart", lambda: mon.metric(STORED) > 40,
              FAULT_TIMEOUT_S, mon.proc, mon.log)
        assert mon.stop() == 0
    end = time.time()

    assert integrity(data) == "ok"
    lost = acknowledged - committed_readings(data)
    assert len(acknowledged) > 1000 and lost == set()
    assert polls_stored(data) >= results_acknowledged + 40
    with reading(data) as conn:
        runs = [Run(a, b, bool(s)) for a, b, s in conn.execute(
            "SELECT started, last_seen, stopped FROM monitor_runs ORDER BY started")]
    # One run per start; only the last stopped cleanly. A killed run is taken as running
    # until two heartbeats have passed without one (pue.runlog): seen that much later, as
    # a report would, every kill-to-restart interval lies in a "not collecting" span.
    assert [r.stopped for r in runs] == [False] * KILLS + [True]
    later = end + HEARTBEAT_MISSES * HEARTBEAT_S + 1
    gaps = outages(runs, runs[0].started, end, now=later).spans
    assert [any(a <= killed and restarted <= b for a, b in gaps)
            for killed, restarted in kills] == [True] * KILLS
    last = runs[-1]  # collecting from its start to its clean stop
    assert not any(a < last.last_seen and last.started < b for a, b in gaps)
    suite_figures.fault("kill -9 of the monitor", injected=KILLS, lost=len(lost))
    suite_figures.measure("fault suite: kill -9", "acknowledged readings checked",
                          str(len(acknowledged)))


def _file_size_limit(pid: int, limit: int) -> None:
    """The monitor may not write any file past ``limit`` bytes: its writes fail as on a
    full disk (the kernel answers EFBIG; SQLite reports a disk I/O error)."""
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def test_disk_full_keeps_collecting_into_a_bounded_backlog_that_catches_up(tmp_path, province):
    config, control = province
    data = tmp_path / "data"
    with simulator(config, control, tmp_path / "sim.log"):
        mon = Monitor(config, data, tmp_path / "monitor.log")
        mon.wait_ready()
        until("first commits", lambda: mon.metric(STORED) > 40, FAULT_TIMEOUT_S, mon.proc,
              mon.log)
        full_at = time.time()
        _file_size_limit(mon.pid, store_path(data).stat().st_size)
        until("a failed store write", lambda: mon.metric(WRITE_ERRORS) > 0, FAULT_TIMEOUT_S,
              mon.proc, mon.log)
        failing = mon.metrics()
        # The disk stays full while polls go on: the backlog grows, nothing is stored.
        until("polls while the disk is full", lambda: mon.metric(POLLS) > failing[POLLS] + 100,
              FAULT_TIMEOUT_S, mon.proc, mon.log)
        during = mon.metrics()
        assert during[BACKLOG] > failing[BACKLOG]
        assert during[STORED] == failing[STORED]
        assert (f"store write failed, keeping up to {DEFAULT_STORE_BACKLOG} results in memory"
                in mon.output)
        room_at = time.time()
        _file_size_limit(mon.pid, resource.RLIM_INFINITY)
        until("the backlog written", lambda: mon.metric(STORED) > during[STORED] + during[
            BACKLOG], FAULT_TIMEOUT_S, mon.proc, mon.log)
        after = mon.metrics()
        assert mon.stop() == 0  # a clean stop writes what is still in memory
    assert after[DROPPED] == 0
    assert "store writes work again after" in mon.output
    assert integrity(data) == "ok"
    # Every poll result produced up to the last scrape, the full-disk time included, is in
    # the store now (each adds one to its device's polls_total in its own transaction).
    produced = int(after[PRODUCED])
    stored = polls_stored(data)
    assert stored >= produced > during[PRODUCED] > failing[PRODUCED]
    with reading(data) as conn:
        held = conn.execute(f"SELECT COUNT(DISTINCT device) FROM {READINGS} WHERE quality = 'ok' "
                            "AND ts >= ? AND ts < ?", (full_at, room_at)).fetchone()[0]
    assert held > 0  # readings taken while the disk was full, written once it had room
    suite_figures.fault("disk full", lost=0)
    suite_figures.measure("fault suite: disk full", "results held then written",
                          str(int(during[BACKLOG])))
