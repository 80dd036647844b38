"""The InfluxDB writer against a real VictoriaMetrics (same /api/v2/write), across an outage.

VictoriaMetrics keeps every sample it is sent, even one with the same series and timestamp
as an earlier one, so its export shows a point written twice as well as a lost one.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import yaml

from pue_monitor.exchange.influx import InfluxTransport, InfluxWriter, interval_energy_line, reading_lines, to_ns
from pue_monitor.store.model import PollResult, Reading
from pue_monitor.store.outbox import Outbox
from tests.conftest import free_port
from tests.test_end_to_end import metric_samples, process, wait_for as wait_for_url
from tests.tools import require_tool

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 30.0
DELIVERY_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 5.0
ROLES = {"ups-1": "it", "incomer": "facility"}
LONG_WINDOWS = ("30d", "12m")


class VictoriaMetrics:
    """One victoria-metrics process on 127.0.0.1, restartable on the same port and data."""

    def __init__(self, binary: str, data: Path, port: int) -> None:
        self.binary, self.data, self.port = binary, data, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.log = data.parent / "victoria-metrics.log"

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [self.binary, f"-storageDataPath={self.data}",
                 f"-httpListenAddr=127.0.0.1:{self.port}"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"victoria-metrics exited: {self.log.read_text()}"
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"victoria-metrics not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # graceful: what it accepted is flushed to disk
            try:
                self.proc.wait(START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(START_TIMEOUT_S)
        self.proc = None

    def export(self) -> dict[tuple, list[int]]:
        """Every stored sample's millisecond timestamp, by series (name and labels)."""
        requests.get(f"{self.url}/internal/force_flush", timeout=HTTP_TIMEOUT_S)
        answer = requests.post(f"{self.url}/api/v1/export",
                               data={"match[]": '{__name__=~"pue_.+"}'}, timeout=HTTP_TIMEOUT_S)
        answer.raise_for_status()
        out: dict[tuple, list[int]] = {}
        for text in answer.text.splitlines():
            row = json.loads(text)
            key = tuple(sorted(row["metric"].items()))
            out.setdefault(key, []).extend(row["timestamps"])
        return out


@pytest.fixture()
def victoria(tmp_path):
    vm = VictoriaMetrics(require_tool("victoria-metrics"), tmp_path / "vm", free_port())
    vm.start()
    yield vm
    vm.stop()


def polls(first: float, n: int) -> list[PollResult]:
    """n polls of two devices, half a second apart, two readings each."""
    out = []
    for i in range(n):
        ts = first + i * 0.5
        for device, site in (("ups-1", "site a"), ("incomer", "site a")):
            out.append(PollResult(device, site, ts, 0.01, readings=(
                Reading(ts, device, "active_power_w", 1000.0 + i),
                Reading(ts + 0.001, device, "current_a", 2.0 + i, (("phase", "L1"),)))))
    return out


def expected(results: list[PollResult], blocks: list[float]) -> Counter:
    """(series, ms) -> 1 for every point sent, named as VictoriaMetrics names them."""
    want: Counter = Counter()
    for res in results:
        for r in res.readings:
            tags = {"__name__": "pue_reading_value", "site": res.site, "device": r.device,
                    "role": ROLES[r.device], "metric": r.metric, **dict(r.labels)}
            want[(tuple(sorted(tags.items())), to_ns(r.ts) // 1_000_000)] += 1
    for start in blocks:
        for field in ("energy_kwh", "covered_s", "interval_s", "method"):
            tags = {"__name__": f"pue_interval_energy_{field}", "site": "site a",
                    "device": "incomer", "role": "facility"}
            want[(tuple(sorted(tags.items())), to_ns(start) // 1_000_000)] += 1
    return want


def submit(writer: InfluxWriter, results: list[PollResult], blocks: list[float]) -> int:
    """Hand the points to the writer; returns how many (one per reading, one per block)."""
    lines = [line for res in results for line in reading_lines(res, ROLES)]
    lines += [interval_energy_line("site a", "incomer", "facility", b, b + 900, 12.5, 900.0,
                                   "counter") for b in blocks]
    writer.submit(lines)
    return len(lines)


def make_writer(data: Path, vm: VictoriaMetrics) -> InfluxWriter:
    transport = InfluxTransport(vm.url, "", "org", "bucket", timeout_s=2.0)
    writer = InfluxWriter(Outbox.open(data), transport, batch_size=50, flush_interval_s=0.1,
                          max_backoff_s=0.5)
    writer.start()
    return writer


def wait_for(condition, writer: InfluxWriter, what: str) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {writer.state()}"
        time.sleep(0.05)


def test_every_point_arrives_exactly_once_across_an_outage_and_a_restart(tmp_path, victoria):
    data = tmp_path / "monitor"
    base = float(int(time.time()) - 3600)  # inside the default retention, not in the future
    batches = [(polls(base + 100 * k, 40), [base - 900 * (3 * k + j + 1) for j in range(3)])
               for k in range(3)]

    # 1. InfluxDB up: points go straight through.
    writer = make_writer(data, victoria)
    sent = submit(writer, *batches[0])
    wait_for(lambda: writer.state().points_written_total == sent, writer, "the first points")

    # 2. InfluxDB down: points queue on disk, writes fail and are counted.
    victoria.stop()
    queued = submit(writer, *batches[1])
    wait_for(lambda: writer.outbox.queued() == queued and writer.errors_total >= 2, writer,
             "the points to queue on disk while the server is down")
    assert writer.state().oldest_queued_ts is not None

    # 3. The monitor restarts during the outage: the queue is read back from disk.
    writer.close()
    writer = make_writer(data, victoria)
    assert writer.outbox.queued() == queued
    total = queued + submit(writer, *batches[2])

    # 4. InfluxDB back: the backlog drains.
    victoria.start()
    wait_for(lambda: writer.state().points_written_total == total
             and writer.state().queued_points == 0, writer, "the backlog to drain")
    writer.close()

    got = Counter((series, ms) for series, stamps in victoria.export().items() for ms in stamps)
    want = sum((expected(*b) for b in batches), Counter())
    # the expectation itself: one sample per reading, four fields per interval block
    assert len(want) == sum(sum(len(r.readings) for r in results) + 4 * len(blocks)
                            for results, blocks in batches)
    assert {k: n for k, n in got.items() if n > 1} == {}, "points written twice"
    assert set(want) - set(got) == set(), "points lost"
    assert got == want


def exported(vm: VictoriaMetrics) -> set[tuple[str, str]]:
    """(name, device) of readings and (name, site/window) of site PUE found in the export."""
    out = set()
    for key in vm.export():
        tags = dict(key)
        if tags["__name__"] == "pue_reading_value":
            out.add((tags["__name__"], tags["device"]))
        elif tags["__name__"] == "pue_site_pue" and tags["window"] in ("instantaneous", "15m"):
            out.add((tags["__name__"], f"{tags['site']}/{tags['window']}"))
        elif tags["__name__"] == "pue_site_status" and tags["window"] in LONG_WINDOWS:
            out.add((tags["__name__"], f"{tags['site']}/{tags['window']}"))
    return out


def test_the_monitor_writes_readings_and_pue_and_reports_its_outbox(demo_config, tmp_path,
                                                                    victoria):
    path, raw = demo_config
    raw["influxdb"] = {"url": victoria.url, "org": "org", "bucket": "pue",
                       "token": "${PUE_TEST_INFLUX_TOKEN:-none}", "flush_interval_s": 0.2,
                       "pue_interval_s": 1}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    port, control = free_port(), raw["simulation"]["control_port"]
    devices = {d["id"] for site in raw["sites"] for d in site["devices"]}
    # every device's readings, each site's instantaneous and 15-minute PUE, and its long
    # windows (their status: a fresh store has no closed 15-minute block to give a PUE)
    wanted = ({("pue_reading_value", d) for d in devices}
              | {("pue_site_pue", f"{s['id']}/{w}") for s in raw["sites"]
                 for w in ("instantaneous", "15m")}
              | {("pue_site_status", f"{s['id']}/{w}") for s in raw["sites"]
                 for w in LONG_WINDOWS})
    with process("simulate", "-c", str(path), log_path=tmp_path / "sim.log") as sim:
        wait_for_url(f"http://127.0.0.1:{control}/healthz", sim)
        with process("run", "-c", str(path), "--port", str(port), "--data-dir",
                     str(tmp_path / "data"), log_path=tmp_path / "monitor.log") as mon:
            wait_for_url(f"http://127.0.0.1:{port}/healthz", mon)
            deadline = time.monotonic() + DELIVERY_TIMEOUT_S
            while (found := exported(victoria)) != wanted and time.monotonic() < deadline:
                time.sleep(0.5)
            metrics = requests.get(f"http://127.0.0.1:{port}/metrics",
                                   timeout=HTTP_TIMEOUT_S).text
    assert found == wanted, (tmp_path / "monitor.log").read_text()[-3000:]
    assert metric_samples(metrics, "pue_monitor_influx_points_written_total")[()] > 0
    assert () in metric_samples(metrics, "pue_monitor_influx_queued_points")
