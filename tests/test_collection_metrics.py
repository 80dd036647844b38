"""The collectors' own counters: what a poll adds to them, /metrics showing them (per device
and in total, under Prometheus names), the sink counting only committed results, and the
SNMP socket's receive buffer and drops read back from the kernel."""

from __future__ import annotations

import logging
import socket
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pue_monitor.collectors.sink import StoreSink
from pue_monitor.collectors.stats import CollectionStats
from pue_monitor.collectors.udp_buffer import size_receive_buffer, socket_drops
from pue_monitor.store.model import ErrorKind, PollResult
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from pue_monitor.web.metrics_collection import CollectionCollector
from tests.tools import require_tool
from tests.web_fixtures import demo_config


def result(device: str, duration: float, error: ErrorKind | None = None) -> PollResult:
    return PollResult(device, "s1", 1_000.0, duration, error_kind=error,
                      error=error.value if error else None)


def filled() -> CollectionStats:
    """Three polls of d-1 (one late, one retried twice, one timed out) and one of d-2."""
    stats = CollectionStats(in_flight_limit=64)
    stats.device("s1", "d-3")  # configured, never polled yet: shown at 0
    stats.poll_started("s1", "d-1", late=False)
    stats.poll_done(result("d-1", 0.004), attempts=1)
    stats.poll_started("s1", "d-1", late=True)
    stats.poll_done(result("d-1", 0.03), attempts=3)
    stats.poll_started("s1", "d-1", late=False)
    stats.poll_done(result("d-1", 2.0, ErrorKind.TIMEOUT), attempts=2)
    stats.poll_started("s1", "d-2", late=False)
    stats.poll_done(result("d-2", 0.2, ErrorKind.DEVICE), attempts=1)  # it answered "no"
    stats.slots_skipped("s1", "d-1", 2)
    stats.stored = 3
    return stats


def scrape_text(stats: CollectionStats, tmp_path: Path) -> str:
    store = Store.open(tmp_path / "data")
    try:
        app = create_app(demo_config(), store, testing=True,
                         extra_collectors=[CollectionCollector(stats.snapshot)])
        return app.test_client().get("/metrics").get_data(as_text=True)
    finally:
        store.close()


@pytest.fixture(scope="module")
def families(tmp_path_factory) -> dict[str, dict]:
    """One scrape of filled() through the whole app, parsed: {family: type, samples}."""
    text = scrape_text(filled(), tmp_path_factory.mktemp("scrape"))
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = {"type": family.type, "samples": {
            (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}}
    return families


D1 = (("device", "d-1"), ("site", "s1"))
D2 = (("device", "d-2"), ("site", "s1"))
D3 = (("device", "d-3"), ("site", "s1"))


@pytest.mark.parametrize(("sample", "labels", "value"), [
    # Totals: 4 polls, 3 answered (the timeout was not), 2 + 1 = 3 retries, 1 late.
    ("pue_monitor_collector_polls_total", (), 4),
    ("pue_monitor_collector_poll_answers_total", (), 3),
    ("pue_monitor_collector_poll_retries_total", (), 3),
    ("pue_monitor_collector_polls_late_total", (), 1),
    ("pue_monitor_collector_poll_slots_skipped_total", (), 2),
    ("pue_monitor_collector_results_stored_total", (), 3),
    ("pue_monitor_collector_polls_in_flight_limit", (), 64),
    ("pue_monitor_collector_polls_in_flight", (), 0),
    # Per device.
    ("pue_monitor_device_polls_total", D1, 3),
    ("pue_monitor_device_poll_answers_total", D1, 2),
    ("pue_monitor_device_poll_retries_total", D1, 3),
    ("pue_monitor_device_polls_late_total", D1, 1),
    ("pue_monitor_device_poll_slots_skipped_total", D1, 2),
    ("pue_monitor_device_polls_total", D2, 1),
    ("pue_monitor_device_poll_answers_total", D2, 1),
    ("pue_monitor_device_polls_total", D3, 0),
    ("pue_monitor_device_poll_seconds_count", D1, 3),
    ("pue_monitor_device_poll_seconds_sum", D1, 0.004 + 0.03 + 2.0),
    # The histogram, cumulative: 4 ms <= 5 ms; 30 ms <= 50 ms; 200 ms <= 250 ms; 2 s <= 2.5 s.
    ("pue_monitor_collector_poll_duration_seconds_bucket", (("le", "0.0025"),), 0),
    ("pue_monitor_collector_poll_duration_seconds_bucket", (("le", "0.005"),), 1),
    ("pue_monitor_collector_poll_duration_seconds_bucket", (("le", "0.05"),), 2),
    ("pue_monitor_collector_poll_duration_seconds_bucket", (("le", "0.25"),), 3),
    ("pue_monitor_collector_poll_duration_seconds_bucket", (("le", "2.5"),), 4),
    ("pue_monitor_collector_poll_duration_seconds_bucket", (("le", "+Inf"),), 4),
    ("pue_monitor_collector_poll_duration_seconds_count", (), 4),
    ("pue_monitor_collector_poll_duration_seconds_sum", (), 2.234),
])
def test_self_metrics_on_metrics(families, sample, labels, value):
    samples = {k: v for f in families.values() for k, v in f["samples"].items()}
    assert samples[(sample, labels)] == pytest.approx(value)


@pytest.mark.parametrize(("family", "kind"), [
    ("pue_monitor_collector_polls", "counter"),
    ("pue_monitor_device_polls_late", "counter"),
    ("pue_monitor_collector_poll_duration_seconds", "histogram"),
    ("pue_monitor_device_poll_seconds", "summary"),
    ("pue_monitor_collector_polls_in_flight", "gauge"),
    ("pue_monitor_collector_store_backlog_results", "gauge"),
])
def test_self_metric_types(families, family, kind):
    assert families[family]["type"] == kind


def test_self_metrics_pass_promtool(tmp_path):
    require_tool("promtool")
    text = scrape_text(filled(), tmp_path)
    check = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                           capture_output=True, timeout=60)
    problems = [line for line in (check.stdout + check.stderr).splitlines()
                if "pue_monitor_collector" in line or "pue_monitor_device_poll" in line]
    assert problems == []


class FlakyStore:
    """write_polls fails while ``down``; records what it stored."""

    def __init__(self) -> None:
        self.down, self.rows = True, []

    def write_polls(self, batch) -> None:
        if self.down:
            raise OSError("disk full")
        self.rows.extend(batch)


async def test_the_sink_counts_only_what_the_store_committed(caplog):
    caplog.set_level(logging.ERROR)
    store, stats = FlakyStore(), CollectionStats()
    sink = StoreSink(store, stats)  # type: ignore[arg-type]
    for i in range(3):
        await sink(result(f"d-{i}", 0.01))
    await sink.flush()
    assert (stats.stored, sink.backlog, store.rows) == (0, 3, [])
    store.down = False
    await sink(result("d-9", 0.01))
    await sink.flush()
    assert (stats.stored, sink.backlog, len(store.rows)) == (4, 0, 4)


def test_the_receive_buffer_is_read_back_and_a_cap_is_told(caplog):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert size_receive_buffer(sock, 65536) >= 65536  # Linux grants twice the ask
        assert not caplog.records
        cap = int(Path("/proc/sys/net/core/rmem_max").read_text())
        caplog.set_level(logging.WARNING)
        granted = size_receive_buffer(sock, 4 * cap)
        assert granted < 4 * cap
        assert "net.core.rmem_max" in caplog.records[-1].getMessage()


def test_dropped_answers_are_seen_on_the_socket():
    # A receiver with the smallest buffer, never read, sent 200 datagrams of 1 KB: the
    # kernel keeps a couple and drops the rest, counted on that socket.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        rx.bind(("127.0.0.1", 0))
        assert socket_drops([rx]) == 0
        for _ in range(200):
            tx.sendto(b"x" * 1000, rx.getsockname())
        assert socket_drops([rx]) > 150
