"""End to end, as a province runs: the simulator, three edges (one per data center, each
polling its own site and shipping to the central) and one central, all real processes.
The central is stopped for part of the time and one edge is killed with SIGKILL and
restarted meanwhile. Then, on SQLite and on PostgreSQL at the central:

* while the central is down every edge polls on and its outbox grows (kept across the
  kill -9 and the restart); it drains once the central is back;
* every reading the edges stored (of the meters they ship) is at the central exactly once
  (the fault suite's "central unreachable" figures, tests/suite_figures.py);
* each site's report from the central is the edge's report (the central adds only the
  site's definition history);
* a site definition change (a meter moved from cooling to exclude) is in the central's
  report, with the data center that sent it;
* an edge's token cannot write another data center's site (403).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from pue_monitor.central.province import TOKEN_ENV, split_province
from pue_monitor.config import load_config
from pue_monitor.config.metrics import Role
from pue_monitor.store.model import Reading, parse_labels
from pue_monitor.exchange.central import OUTBOX_FILE
from tests import suite_figures
from tests.conftest import STORE_BACKENDS, demo_on_free_ports, free_port
from tests.store_sql import READINGS

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 90.0  # a loaded 2-core machine starts a monitor slowly
CATCH_UP_TIMEOUT_S = 90.0
PHASE_S = 12.0  # each phase of the run: up, central down, central back
EDGE_DB = "pue-monitor.sqlite3"
KILLED = "que-vo-dc"  # the edge killed with SIGKILL while the central is down
MOVED = ("yen-phong-dc", "yp-cooling")  # the meter the definition change moves


def _http(url: str, data: bytes | None = None, headers: dict | None = None,
          timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {},
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {proc.args}")
        try:
            _http(url, timeout=1.0)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


class Procs:
    """The test's processes by name; each stopped at the end whatever happened."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.procs, self.logs = folder, {}, []

    def start(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop_all)
        self.logs.append(log)
        proc = subprocess.Popen([sys.executable, "-m", "pue_monitor", *args], stdout=log,
                                stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.procs[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        for log in self.logs:
            log.close()


@contextmanager
def province(tmp_path: Path, store_url: str | None):
    """Simulator, central and three edges running; yields (central URL, edges, procs,
    paths) with edges {data center: (URL, data dir, config path, token)}."""
    path, raw = demo_on_free_ports(tmp_path)
    config = load_config(path, env={})
    port = free_port()
    central_url = f"http://127.0.0.1:{port}"
    central_raw, edges_raw = split_province(raw, config, central_url)
    if store_url is not None:
        central_raw["store"] = {"url": store_url}
    central_path = tmp_path / "central.yaml"
    central_path.write_text(yaml.safe_dump(central_raw, allow_unicode=True), encoding="utf-8")
    central_data = tmp_path / "central-data"
    procs = Procs(tmp_path)
    with ExitStack() as stack:
        stack.callback(procs.stop_all)
        sim = procs.start("sim", "simulate", "-c", str(path))
        _wait_for(f"http://127.0.0.1:{raw['simulation']['control_port']}/healthz", sim)
        central_args = ("central", "-c", str(central_path), "--data-dir", str(central_data),
                        "--port", str(port))
        edges = {}
        for dc, edge_raw in edges_raw.items():
            made = subprocess.run(
                [sys.executable, "-m", "pue_monitor", *central_args[:5], "token", "create",
                 dc], capture_output=True, text=True, timeout=60, check=True)
            edge_path = tmp_path / f"edge-{dc}.yaml"
            edge_path.write_text(yaml.safe_dump(edge_raw, allow_unicode=True),
                                 encoding="utf-8")
            edges[dc] = [f"http://127.0.0.1:{free_port()}", tmp_path / f"edge-{dc}",
                         edge_path, made.stdout.strip()]
        central = procs.start("central", *central_args)
        _wait_for(central_url + "/healthz", central)
        for dc in edges:
            start_edge(procs, dc, edges[dc])
        yield central_url, edges, procs, central_args


def start_edge(procs: Procs, dc: str, edge: list) -> None:
    url, data, path, token = edge
    proc = procs.start(f"edge-{dc}", "run", "-c", str(path), "--data-dir", str(data),
                       "--port", url.rsplit(":", 1)[1], env={TOKEN_ENV: token})
    _wait_for(url + "/healthz", proc)


def edge_readings(data: Path, config: Path, until: float) -> list[Reading]:
    """The good readings an edge stored up to ``until`` (its store, read directly) of the
    meters it ships (every device with a PUE role: not the monitor-only ones)."""
    shipped = {d.id for _, d in load_config(config, env={}).devices()
               if d.role != Role.MONITOR}
    with sqlite3.connect(f"file:{data / EDGE_DB}?mode=ro", uri=True) as conn:
        rows = conn.execute(f"SELECT ts, device, metric, labels, value FROM {READINGS} WHERE "
                            "quality = 'ok' AND ts <= ?", (until,)).fetchall()
    return [Reading(ts, device, metric, value, tuple(sorted(parse_labels(labels).items())))
            for ts, device, metric, labels, value in rows if device in shipped]


def outbox_queued(data: Path) -> int:
    """Points waiting in an edge's outbox to the central (its file, read directly)."""
    with sqlite3.connect(f"file:{data / OUTBOX_FILE}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'acked_seq'").fetchone()
        return conn.execute("SELECT COUNT(*) FROM points WHERE seq > ?",
                            (int(row[0]) if row else 0,)).fetchone()[0]


def open_central_store(central_data: Path, store_url: str | None):
    if store_url is None:
        from pue_monitor.store.sqlite import Store

        return Store.open(central_data)
    from pue_monitor.store.postgres import PostgresStore

    return PostgresStore(store_url)


def missing_or_twice(store, readings: list[Reading]) -> tuple[int, int]:
    """(readings not at the central with their value, readings stored there twice)."""
    stored = store.stored_values(readings)
    missing = sum(1 for i, r in enumerate(readings) if (r.value, "ok") not in stored.get(i, []))
    twice = sum(1 for values in stored.values() if len(values) > 1)
    return missing, twice


def central_count(central_data: Path, store_url: str | None, until: float) -> int:
    if store_url is None:
        with sqlite3.connect(f"file:{central_data / EDGE_DB}?mode=ro", uri=True) as conn:
            return conn.execute(f"SELECT COUNT(*) FROM {READINGS} WHERE ts <= ?",
                                (until,)).fetchone()[0]
    import psycopg

    with psycopg.connect(store_url) as conn:
        return conn.execute("SELECT COUNT(*) FROM readings WHERE ts <= %s",
                            (until,)).fetchone()[0]


def report(url: str, site: str, period: str) -> dict:
    query = urllib.parse.urlencode({"site": site, "period": period, "format": "json"})
    status, body = _http(f"{url}/reports/view?{query}")
    assert status == 200, body[:500]
    return json.loads(body)


@pytest.fixture(params=STORE_BACKENDS)
def central_store_url(request):
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    return server.url(server.create())


@pytest.mark.timeout(600)
def test_a_province_of_edges_and_a_central(tmp_path, central_store_url):
    with province(tmp_path, central_store_url) as (central_url, edges, procs, central_args):
        began = time.time()
        time.sleep(PHASE_S)
        procs.stop("central")  # the central is down ...
        down = time.time()
        backlog_at_stop = {dc: outbox_queued(edges[dc][1]) for dc in edges}
        time.sleep(PHASE_S / 2)
        procs.stop(f"edge-{KILLED}", signal.SIGKILL)  # ... and an edge dies meanwhile
        time.sleep(2)
        start_edge(procs, KILLED, edges[KILLED])
        # The definition change: at the edge of the moved meter, while the central is down.
        site, device = MOVED
        edge = edges[site]
        procs.stop(f"edge-{site}")
        raw = yaml.safe_load(edge[2].read_text(encoding="utf-8"))
        for d in raw["sites"][0]["devices"]:
            if d["id"] == device:
                d["role"] = "exclude"
        edge[2].write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        start_edge(procs, site, edge)
        time.sleep(PHASE_S / 2)
        # Meanwhile the edges polled on, and what they polled waits in their outboxes
        # (kept across the kill -9 and the restart).
        backlog = {dc: outbox_queued(edges[dc][1]) for dc in edges}
        assert all(backlog[dc] > backlog_at_stop[dc] for dc in edges), (backlog_at_stop,
                                                                         backlog)
        up = time.time()
        central = procs.start("central", *central_args)  # back
        _wait_for(central_url + "/healthz", central)
        time.sleep(PHASE_S)
        cut = time.time() - 3.0

        # Every reading stored at the edges up to the cut is at the central exactly once
        # (waiting for the edges' outboxes to catch up on the backlog).
        store = open_central_store(tmp_path / "central-data", central_store_url)
        try:
            wanted = [r for dc in edges
                      for r in edge_readings(edges[dc][1], edges[dc][2], cut)]
            deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
            while True:
                missing, twice = missing_or_twice(store, wanted)
                if missing == 0 or time.monotonic() > deadline:
                    break
                time.sleep(2.0)
        finally:
            store.close()
        assert len(wanted) > 1000
        assert (missing, twice) == (0, 0)
        assert central_count(tmp_path / "central-data", central_store_url, cut) == len(wanted)
        while_down = {dc: sum(1 for r in edge_readings(edges[dc][1], edges[dc][2], up)
                              if r.ts > down) for dc in edges}
        assert all(while_down.values()), while_down  # every edge polled on meanwhile
        suite_figures.fault("central unreachable, an edge killed (kill -9) and another "
                            "restarted meanwhile", injected=2, lost=missing)
        suite_figures.measure(
            "fault suite: central outage", "readings delivered exactly once",
            f"{len(wanted):,} ({sum(while_down.values()):,} read while the central was "
            f"down; outboxes {sum(backlog_at_stop.values()):,} -> "
            f"{sum(backlog.values()):,} points queued, then drained)")

        # An edge's token may write only its own data center's sites.
        token = edges[KILLED][3]
        line = (f"pue_reading,device=yp-incomer,metric=active_power_w,site=yen-phong-dc "
                f"value=1 {int(cut * 1e9)}")
        status, body = _http(central_url + "/api/v2/write", line.encode(),
                             {"Authorization": f"Token {token}"})
        assert status == 403, body

        # The same report from the central and from each edge, over the time both saw.
        tz = "+07:00"

        def iso(ts: float) -> str:
            return datetime.fromtimestamp(ts, timezone.utc).astimezone(
                datetime.fromisoformat("2000-01-01T00:00:00" + tz).tzinfo
            ).isoformat(timespec="seconds")
        period = f"{iso(began - 60)}..{iso(cut - 1)}"
        for dc, (url, *_rest) in edges.items():
            at_edge = report(url, dc, period)
            at_central = report(central_url, dc, period)
            history = at_central.pop("site_definitions")
            assert at_central == at_edge, dc
            assert history[0]["data_center"] == dc
        changes = [c for h in report(central_url, site, period)["site_definitions"]
                   for c in h["changes"]]
        assert {"what": "device", "device": device, "field": "role", "from": "cooling",
                "to": "exclude"} in changes
