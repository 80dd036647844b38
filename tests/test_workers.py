"""Worker processes without starting any: how sites are spread over workers, the
setting's errors, and the workers' counters added into the parent's /metrics.

The workers as real processes (a kill, a restart, nothing lost or doubled) are in
tests/test_workers_process.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pue_monitor.cli import _parser
from pue_monitor.collectors.stats import (CollectionStats, DeviceCounts, WorkerCounts,
                                          retired)
from pue_monitor.collectors import workers
from pue_monitor.collectors.worker_process import IDENTIFIED, POLL
from pue_monitor.collectors.workers import assign_sites, config_assignment
from pue_monitor.config import ConfigError, load_config_text
from pue_monitor.store.model import PollResult
from tests.test_collection_metrics import scrape_text
from tests.test_config import MINIMAL


@pytest.mark.parametrize(("sizes", "workers", "together", "expected"), [
    # One worker: everything in it, in configuration order.
    ({"a": 3, "b": 5}, 1, (), (("a", "b"),)),
    # Largest first to the emptiest: b(5) -> w0, a(3) -> w1, c(2) -> w1 (3 < 5).
    ({"a": 3, "b": 5, "c": 2}, 2, (), (("b",), ("a", "c"))),
    # Equal sizes: configuration order breaks the tie, the lowest worker takes it.
    ({"a": 4, "b": 4, "c": 4, "d": 4}, 2, (), (("a", "c"), ("b", "d"))),
    # More workers than sites: no empty worker.
    ({"a": 1, "b": 2}, 4, (), (("b",), ("a",))),
    # A site without devices is polled by nobody.
    ({"a": 0, "b": 2, "c": 1}, 2, (), (("b",), ("c",))),
    # One big site cannot be split: the others share the second worker.
    ({"a": 100, "b": 1, "c": 1, "d": 1}, 2, (), (("a",), ("b", "c", "d"))),
    # a and c share a Modbus gateway: one unit of 5, ahead of b(4).
    ({"a": 2, "b": 4, "c": 3}, 2, [("a", "c")], (("a", "c"), ("b",))),
    # Sharing is transitive: a-b and b-c put all three together.
    ({"a": 1, "b": 1, "c": 1, "d": 2}, 3, [("a", "b"), ("c", "b")], (("a", "b", "c"), ("d",))),
    # Greedy, not optimal: 3,3,2,2,2 over 2 -> w0 3+2+2=7, w1 3+2=5 (6/6 exists).
    ({"a": 3, "b": 3, "c": 2, "d": 2, "e": 2}, 2, (), (("a", "c", "e"), ("b", "d"))),
])
def test_sites_are_spread_whole_by_device_count(sizes, workers, together, expected):
    assert assign_sites(sizes, workers, together) == expected


SITE = """
  - id: {site}
    name: {{vi: "TTDL", en: "DC"}}
    devices:
      - {{id: m-{site}, profile: eastron_sdm630, role: facility,
         modbus: {{host: 127.0.0.1, port: {port}, unit: {unit}}}}}
      - {{id: u-{site}, profile: ups_mib, role: it, measurement_point: ups_output,
         snmp: {{host: 127.0.0.1, port: {snmp}, community: x}}}}
"""


def test_sites_sharing_a_modbus_gateway_stay_together():
    # s1 and s3 both reach the gateway on port 1502; s2 has a gateway of its own.
    text = "collection: {workers: 3}\nsites:" + "".join(
        SITE.format(site=site, port=port, unit=unit, snmp=snmp) for site, port, unit, snmp in
        [("s1", 1502, 1, 1161), ("s2", 1503, 1, 1162), ("s3", 1502, 2, 1163)])
    config = load_config_text(text, env={})
    assert config_assignment(config) == (("s1", "s3"), ("s2",))


@pytest.mark.parametrize(("value", "expected"), [
    ("0", "collection.workers: Input should be greater than or equal to 1 (got 0)"),
    ("257", "collection.workers: Input should be less than or equal to 256 (got 257)"),
    ("two", "collection.workers: Input should be a valid integer, unable to parse string "
            "as an integer (got 'two')"),
    ("1.5", "collection.workers: Input should be a valid integer, got a number with a "
            "fractional part (got 1.5)"),
])
def test_a_bad_workers_setting_names_path_and_value(value, expected):
    text = MINIMAL.replace("sites:", f"collection: {{workers: {value}}}\nsites:")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={"COMMUNITY": "x"})
    assert [str(i) for i in caught.value.issues] == [expected]


def test_workers_default_to_one_process():
    assert load_config_text(MINIMAL, env={"COMMUNITY": "x"}).collection.workers == 1


@pytest.mark.parametrize(("argv", "workers"), [
    (["run", "-c", "x.yaml"], None),  # the config's setting
    (["run", "-c", "x.yaml", "--workers", "3"], 3),
])
def test_run_takes_a_workers_option(argv, workers):
    assert _parser().parse_args(argv).workers == workers


@pytest.mark.parametrize("value", ["0", "257", "two"])
def test_a_bad_workers_option_is_refused(value, capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "-c", "x.yaml", "--workers", value])
    assert f"a whole number from 1 to 256 (got '{value}')" in capsys.readouterr().err


def worker_stats(polls: dict[str, int], in_flight: int) -> CollectionStats:
    """A worker's counters: ``polls`` of 10 ms each per device, all answered."""
    stats = CollectionStats(in_flight_limit=64)
    for device, n in polls.items():
        for _ in range(n):
            stats.poll_started("s1", device, late=False)
            stats.poll_done(PollResult(device, "s1", 1_000.0, 0.01), attempts=1)
    stats.in_flight = in_flight
    return stats


@pytest.fixture(scope="module")
def merged(tmp_path_factory) -> dict[tuple, float]:
    """The parent's scrape: worker 0 polled d-1 3 times; worker 1 polled d-2 twice, died
    with a poll in flight, and its new process has polled d-2 once more."""
    parent = CollectionStats()
    for device in ("d-1", "d-2", "d-3"):
        parent.device("s1", device)
    parent.stored = 5
    w0 = worker_stats({"d-1": 3}, in_flight=0).snapshot()
    w1_dead = retired(worker_stats({"d-2": 2}, in_flight=1).snapshot())
    w1_now = worker_stats({"d-2": 1}, in_flight=1).snapshot()
    parent.parts = lambda: (w0, w1_dead, w1_now)
    parent.workers = lambda: (WorkerCounts("0", True, 0), WorkerCounts("1", True, 1))
    text = scrape_text(parent, tmp_path_factory.mktemp("scrape"))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize(("sample", "labels", "value"), [
    ("pue_monitor_collector_polls_total", (), 6),  # 3 + 2 + 1
    ("pue_monitor_device_polls_total", (("device", "d-1"), ("site", "s1")), 3),
    # d-2's counts go on across the restart: 2 before, 1 after.
    ("pue_monitor_device_polls_total", (("device", "d-2"), ("site", "s1")), 3),
    ("pue_monitor_device_polls_total", (("device", "d-3"), ("site", "s1")), 0),
    ("pue_monitor_collector_poll_duration_seconds_count", (), 6),
    ("pue_monitor_collector_poll_duration_seconds_bucket", (("le", "0.01"),), 6),
    # Only the living processes' polls in flight and limits: worker 0's and worker 1's new.
    ("pue_monitor_collector_polls_in_flight", (), 1),
    ("pue_monitor_collector_polls_in_flight_limit", (), 128),
    ("pue_monitor_collector_results_stored_total", (), 5),  # the parent's store
    ("pue_monitor_collector_worker_restarts_total", (("worker", "0"),), 0),
    ("pue_monitor_collector_worker_restarts_total", (("worker", "1"),), 1),
    ("pue_monitor_collector_worker_up", (("worker", "1"),), 1),
])
def test_worker_counters_add_up_on_the_parents_metrics(merged, sample, labels, value):
    assert merged[(sample, labels)] == pytest.approx(value)


def test_without_workers_there_are_no_worker_metrics(tmp_path):
    text = scrape_text(CollectionStats(), tmp_path)
    assert "worker" not in text


def test_a_retired_snapshot_keeps_counters_and_drops_gauges():
    s = replace(worker_stats({"d-1": 2}, in_flight=1).snapshot(), backlog=4,
                receive_buffers=((100, 200),))
    gone = retired(s)
    assert (gone.total, gone.in_flight, gone.in_flight_limit, gone.backlog,
            gone.receive_buffers) == (s.total, 0, 0, 0, ())
    assert gone.total == DeviceCounts("", 2, 2, 0, 0, 0, pytest.approx(0.02), 2)


class RecordingStore:
    """What the parent does with a worker's messages, without a database."""

    def __init__(self) -> None:
        self.profiles: list[tuple] = []
        self.polls: list[PollResult] = []

    def set_device_profile(self, *record) -> None:
        self.profiles.append(record)

    def write_polls(self, results) -> None:
        self.polls.extend(results)


async def test_the_parent_records_what_workers_identify_and_polled():
    text = "collection: {workers: 2}\nsites:" + "".join(
        SITE.format(site=site, port=port, unit=1, snmp=snmp)
        for site, port, snmp in [("s1", 1502, 1161), ("s2", 1503, 1162)])
    store = RecordingStore()
    pool = workers.WorkerPool(load_config_text(text, env={}), store)
    record = ("u-s2", "ups_mib", "1.3.6.1.4.1.318", "sysObjectID under ...", 1_000.0)
    await pool._handle(1, IDENTIFIED, record)
    polled = PollResult("u-s2", "s2", 1_000.0, 0.01)
    await pool._handle(1, POLL, polled)
    await pool.store_sink.flush()
    assert (store.profiles, store.polls, pool.received) == ([record], [polled], 1)
    assert pool.slots[1].heard is not None and pool.slots[0].heard is None


@pytest.mark.parametrize(("exitcode", "expected"), [
    (-9, "was killed by SIGKILL"),
    (-15, "was killed by SIGTERM"),
    (1, "exited with code 1"),
    (0, "exited"),
])
def test_how_a_worker_ended_in_words(exitcode, expected):
    assert workers._how(exitcode) == expected
