"""What the exporters (InfluxDB, the central link) must not lose nor repeat when something
goes wrong on the way: a label line protocol cannot carry, a store that refuses writes, a
server that finds the batch too large, an outbox that cannot be written, a long history
switched on at once. Found by a review on 3 December 2026; each test failed before."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from pue_monitor.config.loader import load_config_text
from pue_monitor.exchange.central import ShippingStore
from pue_monitor.exchange.influx import (EXPORT_SPAN_S, InfluxWriter, Refusals, TooLarge,
                                         encode, export_interval_energy, reading_lines)
from pue_monitor.figures.rollup import rollup
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.model import PollResult, Reading
from pue_monitor.store.outbox import Outbox
from pue_monitor.store.sqlite import Store
from tests.test_central_cli import EDGE
from tests.web_fixtures import demo_config


def lines(*names: str) -> list[str]:
    return [f"m,k={n} v=1 {i}" for i, n in enumerate(names)]


def poll(device: str, ts: float, *labelled: tuple[str, str]) -> PollResult:
    """One poll of ``device``: a total power reading, then one per (label key, value)."""
    readings = [Reading(ts, device, "active_power_w", 5.0)]
    readings += [Reading(ts, device, "current_a", 1.0, ((key, value),))
                 for key, value in labelled]
    return PollResult(device, "s", ts, 0.1, tuple(readings))


# A label value as a device may give it -> whether its point can be written.
LABEL_VALUES = [
    ("inlet", True),
    ("_inlet", True),  # InfluxDB reserves a leading '_' in names only, not in tag values
    ("A 1,2=3", True),  # escaped by the client
    ("a\\b", False),  # a backslash before an escaped character would change the value
    ("a\nb", False),  # no escape exists for a newline
]


@pytest.mark.parametrize(("value", "carried"), LABEL_VALUES)
def test_a_label_line_protocol_cannot_carry_costs_that_reading_only(value, carried):
    refusals = Refusals("InfluxDB")
    out = reading_lines(poll("pdu", 100.0, ("sensor", value), ("sensor", "ok")), {},
                        refusals)
    assert len(out) == (3 if carried else 2)
    assert refusals.total == (0 if carried else 1)
    if carried:
        assert encode("pue_reading", {"site": "s", "device": "pdu", "metric": "current_a",
                                      "sensor": value}, {"value": 1.0}, 100.0) == out[1]
    else:
        with pytest.raises(ValueError, match="the value of tag 'sensor'"):
            reading_lines(poll("pdu", 100.0, ("sensor", value)), {})


def test_refusals_are_counted_each_time_and_logged_once_per_series(caplog):
    refusals = Refusals("central")
    with caplog.at_level(logging.ERROR, logger="pue_monitor.exchange.influx"):
        for ts in (1.0, 2.0, 3.0):
            reading_lines(poll("pdu", ts, ("sensor", "a\\b"), ("outlet", "x\\y")), {},
                          refusals)
    assert refusals.total == 6
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2
    assert all(m.startswith("central: the current_a readings of pdu") for m in logged)
    assert "traceback" not in caplog.text.lower()


class Transport:
    """Refuses as too large any write of more than ``limit`` points; keeps the rest."""

    def __init__(self, limit: int) -> None:
        self.limit, self.received, self.closed = limit, [], False

    def write(self, batch):
        if len(batch) > self.limit:
            raise TooLarge(f"HTTP 413: {len(batch)} points")
        self.received.append(list(batch))

    def close(self):
        self.closed = True


# (server's limit in points, batch size, points queued) -> batch sizes sent, points
# rejected: halving from the batch size until a batch fits, as counted by hand.
TOO_LARGE_CASES = [
    (3, 8, 10, [2, 2, 2, 2, 2], 0),  # 8 refused, 4 refused, 2 fits: batches of 2 from then on
    (4, 8, 10, [4, 4, 2], 0),
    (8, 8, 10, [8, 2], 0),  # never too large
    (0, 4, 3, [], 3),  # even one point is too large: each is rejected, alone
]


@pytest.mark.parametrize(("limit", "batch", "queued", "sent", "rejected"), TOO_LARGE_CASES)
def test_a_batch_too_large_is_sent_again_in_smaller_ones(tmp_path, caplog, limit, batch,
                                                          queued, sent, rejected):
    transport = Transport(limit)
    writer = InfluxWriter(Outbox.open(tmp_path), transport, batch_size=batch)
    names = [f"p{i}" for i in range(queued)]
    writer.submit(lines(*names))
    writer.spool()
    for _ in range(4 * queued):
        writer.send_batch()
    assert [len(b) for b in transport.received] == sent
    assert [line for b in transport.received for line in b] == lines(*names)[rejected:]
    state = writer.state()
    assert (state.queued_points, state.points_rejected_total) == (0, rejected)
    assert state.points_written_total == queued - rejected
    writer.close()


class UnwritableOutbox(Outbox):
    """An outbox whose file cannot take more points (a full disk)."""

    def enqueue(self, lines, cursors=None):
        raise sqlite3.OperationalError("database or disk is full")


def test_points_that_cannot_reach_the_disk_are_bounded_in_memory_and_close_still_closes(
        tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("pue_monitor.exchange.influx.MEMORY_MAX_POINTS", 1000)
    transport = Transport(100)
    writer = InfluxWriter(UnwritableOutbox(tmp_path / "box.sqlite3"), transport)
    with caplog.at_level(logging.ERROR, logger="pue_monitor.exchange.influx"):
        for i in range(25):
            writer.submit(lines(*(f"p{i}-{j}" for j in range(100))))
            with pytest.raises(sqlite3.OperationalError):
                writer.spool()
        state = writer.state()
        assert (state.queued_points, state.points_dropped_total) == (1000, 1500)
        assert caplog.text.count("dropping the oldest") == 1
        writer.close()  # the last spool fails too: logged and counted, never raised
    assert writer.memory_dropped_total == 2500
    assert "1000 points held in memory could not be queued on disk at stop" in caplog.text
    assert transport.closed


def test_a_full_memory_wakes_the_spool_and_drops_nothing_while_the_disk_works(
        tmp_path, monkeypatch):
    """A long flush interval with many points: the cap is reached before the spool's
    turn. That is not a failing disk: the spool is woken, nothing is dropped."""
    monkeypatch.setattr("pue_monitor.exchange.influx.MEMORY_MAX_POINTS", 1000)
    writer = InfluxWriter(Outbox.open(tmp_path), Transport(100), flush_interval_s=300)
    names = [f"p{i}" for i in range(2500)]
    writer.submit(lines(*names))
    assert writer._spool_now.is_set()
    assert writer.state().points_dropped_total == 0
    assert writer.spool() == 2500
    writer.close()
    box = Outbox.open(tmp_path)
    assert [line for _, line in box.peek(3000)] == lines(*names)
    box.close()


class FailingStore:
    """Refuses ``fails`` writes, then stores; records what it stored."""

    def __init__(self, fails: int) -> None:
        self.fails, self.stored = fails, []

    def write_polls(self, results):
        if self.fails:
            self.fails -= 1
            raise OSError("database is locked")
        self.stored += results


def test_results_retried_after_a_failed_store_write_are_queued_for_the_central_once(tmp_path):
    config = load_config_text(EDGE, env={})
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    store = FailingStore(fails=5)
    shipping = ShippingStore(store, config, outbox)
    first = [poll("meter", 100.0 + i) for i in range(3)]
    for _ in range(5):  # the sink retries with the same results
        with pytest.raises(OSError):
            shipping.write_polls(first)
    more = [poll("meter", 200.0)]
    shipping.write_polls(first + more)  # stored at last, with one new result
    shipping.write_polls([poll("meter", 300.0)])
    queued = [line for _, line in outbox.peek(100)]
    outbox.close()
    assert len(queued) == len(set(queued)) == 5
    assert [r.started for r in store.stored] == [100.0, 101.0, 102.0, 200.0, 300.0]


def test_a_label_the_central_cannot_carry_neither_stops_storing_nor_shipping(tmp_path):
    config = load_config_text(EDGE, env={})
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    store = FailingStore(fails=0)
    refusals = Refusals("central")
    shipping = ShippingStore(store, config, outbox, refusals)
    shipping.write_polls([poll("meter", 100.0, ("sensor", "a\\b"), ("sensor", "_b"))])
    queued = [line for _, line in outbox.peek(100)]
    outbox.close()
    assert len(queued) == 2 and refusals.total == 1
    assert len(store.stored) == 1


def test_a_long_history_is_queued_one_span_per_pass(tmp_path):
    """Export switched on over a history of about 3 spans: each pass queues at most one
    span per meter; the passes together queue every block once."""
    config = demo_config()
    devices = [device.id for _, device in config.devices()][:2]
    store = Store.open(tmp_path / "store")
    start = 1_700_000_000.0 - 1_700_000_000.0 % BLOCK_S
    end = start + 3 * EXPORT_SPAN_S - BLOCK_S
    store.write_polls([PollResult(d, "s", ts, 0.1, (Reading(ts, d, "active_power_w", 5.0),))
                       for ts in (start, end) for d in devices])
    while rollup(store, config, end + 2 * BLOCK_S):  # a bounded reach per pass
        pass
    closed = len(store.interval_energy(devices, start, end + BLOCK_S))
    box = Outbox.open(tmp_path)
    passes = []
    while queued := export_interval_energy(store, config, box):
        passes.append(queued)
    got = [line for _, line in box.peek(10 * closed)]
    box.close()
    store.close()
    per_meter_span = EXPORT_SPAN_S // BLOCK_S
    assert passes == [per_meter_span * len(devices)] * 3
    assert sum(passes) == closed == len(got) == len(set(got))
