"""The fault suite: InfluxDB (a real VictoriaMetrics, same /api/v2/write) unreachable while
the monitor runs as a real process, the monitor restarted during the outage, the server
back: every reading the store holds arrives exactly once.

VictoriaMetrics keeps every sample it is sent, even one repeating a series and timestamp,
so its export shows a point written twice as well as a lost one.
"""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from pue_monitor.exchange.influx import READING_TAGS, to_ns
from pue_monitor.store.model import parse_labels
from tests import suite_figures
from tests.conftest import demo_on_free_ports, free_port
from tests.fault_support import Monitor, Process, answers, quiet_for, reading, reap, until
from tests.store_sql import READINGS
from tests.test_influx_writer import VictoriaMetrics
from tests.tools import require_tool

pytestmark = pytest.mark.integration

TIMEOUT_S = 90.0
# Several poll intervals (0.5 s) and store flushes (0.5 s) with no new reading.
SETTLE_S = 3.0
QUEUED = "pue_monitor_influx_queued_points"
ERRORS = "pue_monitor_influx_write_errors_total"
WRITTEN = "pue_monitor_influx_points_written_total"


@pytest.fixture(autouse=True)
def _reaped():
    yield
    reap()


def stored(data_dir) -> Counter:
    """Every ok reading in the store as the series and millisecond VictoriaMetrics gives."""
    out: Counter = Counter()
    with reading(data_dir) as conn:
        for device, metric, labels, ts in conn.execute(
                f"SELECT device, metric, labels, ts FROM {READINGS} WHERE quality = 'ok'"):
            tags = {("label_" + k if k in READING_TAGS else k): v
                    for k, v in parse_labels(labels).items()}
            out[(device, metric, tuple(sorted(tags.items())), to_ns(ts) // 1_000_000)] += 1
    return out


def delivered(vm: VictoriaMetrics) -> Counter:
    out: Counter = Counter()
    for key, stamps in vm.export().items():
        tags = dict(key)
        if tags.pop("__name__") != "pue_reading_value":
            continue
        device, metric = tags.pop("device"), tags.pop("metric")
        tags.pop("site"), tags.pop("role")
        for ms in stamps:
            out[(device, metric, tuple(sorted(tags.items())), ms)] += 1
    return out


def test_influxdb_down_then_back_gets_every_reading_exactly_once(tmp_path):
    vm = VictoriaMetrics(require_tool("victoria-metrics"), tmp_path / "vm", free_port())
    path, raw = demo_on_free_ports(tmp_path, interval_s=0.5)
    raw["influxdb"] = {"url": vm.url, "org": "org", "bucket": "pue", "token": "none",
                       "flush_interval_s": 0.2, "pue_interval_s": 1}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    data, control = tmp_path / "data", raw["simulation"]["control_port"]
    vm.start()
    try:
        sim = Process(["simulate", "-c", str(path)], tmp_path / "sim.log")
        until("the simulator", lambda: answers(f"http://127.0.0.1:{control}/healthz"),
              TIMEOUT_S, sim.proc, sim.log)
        mon = Monitor(path, data, tmp_path / "monitor-1.log")
        mon.wait_ready()
        until("readings in VictoriaMetrics", lambda: len(delivered(vm)) > 100, TIMEOUT_S,
              mon.proc, mon.log, every=0.5)

        vm.stop()  # InfluxDB unreachable: points queue on disk, writes fail and are counted
        until("failed writes and a queue", lambda: mon.metric(ERRORS) >= 2
              and mon.metric(QUEUED) > 200, TIMEOUT_S, mon.proc, mon.log)
        assert "InfluxDB write failed, points stay queued on disk" in mon.output
        assert mon.stop() == 0  # restarted during the outage: the queue is on disk
        mon = Monitor(path, data, tmp_path / "monitor-2.log")
        mon.wait_ready()
        until("more queued after the restart", lambda: mon.metric(QUEUED) > 200
              and mon.metric(ERRORS) >= 1, TIMEOUT_S, mon.proc, mon.log)

        vm.start()  # back: the backlog drains
        until("writes again", lambda: mon.metric(WRITTEN) > 0, TIMEOUT_S, mon.proc, mon.log)
        assert sim.stop() == 0  # no new readings from here on: the totals can settle
        # An answer that came in just before the simulator stopped is stored up to a flush
        # later: comparing before then found both sides without it (CI, 3 December).
        until("the store's readings to stop changing", quiet_for(
            lambda: sum(stored(data).values()), SETTLE_S), TIMEOUT_S, mon.proc, mon.log)
        until("every stored reading delivered", lambda: mon.metric(QUEUED) == 0 and sum(
            stored(data).values()) == sum(delivered(vm).values()), TIMEOUT_S, mon.proc,
              mon.log, every=1.0)
        assert mon.stop() == 0
        want, got = stored(data), delivered(vm)
    finally:
        vm.stop()
    assert "InfluxDB writes work again" in mon.output
    assert {k: n for k, n in got.items() if n > 1} == {}, "points written twice"
    assert set(want) - set(got) == set(), "points lost"
    assert got == want
    # More than 100 delivered before the outage, more than 200 queued by each of the two
    # monitors during it: what the waits above saw. (A fixed 1,000 failed once under a
    # loaded machine with 884 readings, every one of them delivered exactly once.)
    assert len(want) > 500, len(want)
    suite_figures.fault("InfluxDB unreachable, monitor restarted meanwhile", lost=0)
    suite_figures.measure("fault suite: InfluxDB outage", "readings delivered exactly once",
                          str(len(want)))
