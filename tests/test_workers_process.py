"""Worker processes for real: the demo province's three sites polled by two workers under
`pue-monitor run`, against the simulator on 127.0.0.1; one worker is killed with SIGKILL.

What must hold: the killed worker comes back with its sites and the parent counts the
restart; the other worker's site is read all the while; every site has readings after
the restart; the killed worker's sites miss readings only around the kill; every result
the workers sent is stored exactly once (no reading twice), and nothing the store had
acknowledged is lost. Besides: workers left without their monitor (killed) stop on their
own, and a hung worker (SIGSTOP) is killed and started again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pue_monitor.collectors import workers
from pue_monitor.config import load_config, load_config_text
from pue_monitor.store.sqlite import Store
from tests.conftest import demo_on_free_ports, free_port, write_raw
from tests.fault_support import (Monitor, committed_readings, get, polls_stored, reading,
                                 reap, simulator, until)
from tests.store_sql import READINGS
from tests.test_workers import SITE

pytestmark = pytest.mark.integration

INTERVAL_S = 0.5
WORKERS = 2
TIMEOUT_S = 90.0  # a worker's start on a loaded two-core machine takes seconds
STARTED = re.compile(r"collector worker (\d+) \(pid (\d+)\) polls \d+ devices of sites "
                     r"([^\n]+)\n")
RECEIVED = re.compile(r"collector workers stopped; (\d+) poll results received")


@pytest.fixture(autouse=True)
def _reaped():
    yield
    reap()


def starts(output: str) -> list[tuple[int, int, tuple[str, ...]]]:
    """(worker, pid, sites) of every worker process the monitor started, in order."""
    return [(int(w), int(pid), tuple(sites.split(", ")))
            for w, pid, sites in STARTED.findall(output)]


def site_times(data, site_of: dict[str, str]) -> dict[str, list[float]]:
    """{site: the distinct times its devices were read at, in order}."""
    times: dict[str, set[float]] = {}
    with reading(data) as conn:
        for device, ts in conn.execute(f"SELECT DISTINCT device, ts FROM {READINGS}"):
            times.setdefault(site_of[device], set()).add(ts)
    return {site: sorted(ts) for site, ts in times.items()}


def read_since(data, site_of: dict[str, str], since: float) -> set[str]:
    return {site for site, ts in site_times(data, site_of).items() if ts[-1] > since}


def labelled(mon: Monitor) -> dict[tuple, float]:
    text = get(f"{mon.url}/metrics").decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def all_polled(metrics: dict[tuple, float], site_of: dict[str, str]) -> dict | None:
    """``metrics`` if every device has polls counted on them."""
    polled = all(metrics.get(("pue_monitor_device_polls_total", (("device", d), ("site", s))),
                             0) > 0 for d, s in site_of.items())
    return metrics if polled else None


def restarts(mon: Monitor, worker: int) -> float:
    return labelled(mon).get(("pue_monitor_collector_worker_restarts_total",
                              (("worker", str(worker)),)), -1.0)


def test_a_killed_worker_comes_back_and_nothing_is_lost_or_doubled(tmp_path):
    path, raw = demo_on_free_ports(tmp_path, interval_s=INTERVAL_S)
    raw["collection"] = {**raw.get("collection", {}), "workers": WORKERS}
    write_raw(raw, path)
    config = load_config(path)
    site_of = {device.id: site.id for site, device in config.devices()}
    sites = {site.id for site in config.sites if site.devices}
    data = tmp_path / "data"
    with simulator(path, raw["simulation"]["control_port"], tmp_path / "sim.log"):
        mon = Monitor(path, data, tmp_path / "monitor.log")
        mon.wait_ready()
        first = until("both workers started", lambda: len(starts(mon.output)) == WORKERS
                      and starts(mon.output), TIMEOUT_S, mon.proc, mon.log)
        # Whole sites, each in one worker.
        assert sorted(s for _, _, ws in first for s in ws) == sorted(sites)
        until("readings of every site", lambda: read_since(data, site_of, 0) == sites,
              TIMEOUT_S, mon.proc, mon.log)
        victim, pid, victim_sites = max(first, key=lambda w: (len(w[2]), w[0]))
        others = sites - set(victim_sites)
        acknowledged = committed_readings(data)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        again = until("the killed worker started again", lambda: len(
            starts(mon.output)) > WORKERS and starts(mon.output)[WORKERS], TIMEOUT_S,
            mon.proc, mon.log)
        restarted_at = time.time()
        assert (again[0], again[2]) == (victim, victim_sites) and again[1] != pid
        until("the restart counted on /metrics", lambda: restarts(mon, victim) == 1,
              TIMEOUT_S, mon.proc, mon.log)
        until("readings of every site after the restart",
              lambda: read_since(data, site_of, restarted_at) == sites, TIMEOUT_S,
              mon.proc, mon.log)
        # Every device's counters reach the parent's /metrics, from both workers (a
        # second late at most: the workers send them every second).
        metrics = until("every device's polls on /metrics",
                        lambda: all_polled(labelled(mon), site_of), TIMEOUT_S, mon.proc,
                        mon.log, every=0.5)
        assert mon.stop() == 0
    output = mon.output

    # One restart, of the killed worker only; the log tells the death once.
    started = [w for w, _, _ in starts(output)]  # the first ones in any order
    assert (sorted(started[:WORKERS]), started[WORKERS:]) == (list(range(WORKERS)), [victim])
    assert {w: metrics[("pue_monitor_collector_worker_restarts_total", (("worker", str(w)),))]
            for w in range(WORKERS)} == {w: int(w == victim) for w in range(WORKERS)}
    assert output.count(f"collector worker {victim} (sites {', '.join(victim_sites)}) was "
                        "killed by SIGKILL; starting it again") == 1
    assert "Traceback" not in output

    # Exactly once: every result the workers sent is stored, none twice.
    received = int(RECEIVED.search(output).group(1))
    assert received > 0 and polls_stored(data) == received
    with reading(data) as conn:
        doubled = conn.execute(f"SELECT device, metric, labels, ts FROM {READINGS} GROUP BY "
                               "device, metric, labels, ts HAVING COUNT(*) > 1").fetchall()
    assert doubled == []
    assert acknowledged - committed_readings(data) == set()

    times = site_times(data, site_of)
    # The killed worker's sites: their longest silence is the one around the kill.
    back_at = {}
    for site in victim_sites:
        gaps = list(zip(times[site], times[site][1:]))
        around = [(a, b) for a, b in gaps if a <= killed_at < b]
        assert len(around) == 1, site
        longest = max(gaps, key=lambda g: g[1] - g[0])
        assert longest == around[0], (site, longest, around)
        back_at[site] = around[0][1]
    # The other sites were read while the killed worker was away.
    assert {site for site in others if any(killed_at < t < min(back_at.values())
                                           for t in times[site])} == others


def alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_stop_when_the_monitor_is_killed(tmp_path):
    path, raw = demo_on_free_ports(tmp_path, interval_s=INTERVAL_S)
    raw["collection"] = {**raw.get("collection", {}), "workers": WORKERS}
    write_raw(raw, path)
    with simulator(path, raw["simulation"]["control_port"], tmp_path / "sim.log"):
        mon = Monitor(path, tmp_path / "data", tmp_path / "monitor.log")
        mon.wait_ready()
        workers = until("both workers started", lambda: len(starts(mon.output)) == WORKERS
                        and starts(mon.output), TIMEOUT_S, mon.proc, mon.log)
        mon.kill9()
        # Their next message finds nobody reading: each stops on its own.
        until("no worker left", lambda: not any(alive(pid) for _, pid, _ in workers),
              TIMEOUT_S)
    assert mon.output.count("the monitor process no longer reads this worker's results; "
                            "stopping") == WORKERS


async def wait_for(what: str, found, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not found():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        await asyncio.sleep(0.1)


async def test_a_hung_worker_is_killed_and_started_again(tmp_path, monkeypatch, caplog):
    """A worker stopped with SIGSTOP sends nothing: past SILENT_S (3 s here) the parent
    kills it and starts it again; the other worker is left alone. Nothing answers on the
    devices' ports: the workers' counters are what they send."""
    monkeypatch.setattr(workers, "SILENT_S", 3.0)
    caplog.set_level(logging.INFO, logger=workers.__name__)
    text = "polling: {interval_s: 1, timeout_s: 0.5, retries: 0}\ncollection: {workers: 2}\n"
    text += "sites:" + "".join(SITE.format(site=site, port=port, unit=1, snmp=free_port())
                               for site, port in [("s1", free_port()), ("s2", free_port())])
    store = Store.open(tmp_path / "data")
    pool = workers.WorkerPool(load_config_text(text, env={}), store)
    stop = asyncio.Event()
    task = asyncio.create_task(pool.run(stop))
    try:
        await wait_for("word from both workers",
                       lambda: all(s.heard is not None for s in pool.slots), TIMEOUT_S)
        hung, other = pool.slots
        pid, other_pid = hung.process.pid, other.process.pid
        os.kill(pid, signal.SIGSTOP)
        await wait_for("the hung worker started again", lambda: hung.restarts == 1
                       and hung.heard is not None and hung.process.pid != pid, TIMEOUT_S)
        assert (other.restarts, other.process.pid, other.up) == (0, other_pid, True)
    finally:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT_S)
        store.close()
    assert [(w.worker, w.restarts) for w in pool.stats.snapshot().workers] == [("0", 1),
                                                                               ("1", 0)]
    assert caplog.text.count("collector worker 0 (sites s1) sent nothing for ") == 1
    assert not alive(pid)
