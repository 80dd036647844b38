"""The InfluxDB outbox on disk and the writer over it, with a scripted transport."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pue_monitor.exchange.influx import InfluxWriter, RejectedBatch, export_interval_energy
from pue_monitor.store.outbox import OUTBOX_FILE, Outbox, OutboxState
from pue_monitor.figures.rollup import rollup
from pue_monitor.store.sqlite import Store
from tests.web_fixtures import NOW, demo_config, fill
from pue_monitor.web.metrics_outbox import OutboxCollector


def lines(*names: str) -> list[str]:
    return [f"m,k={n} v=1 {i}" for i, n in enumerate(names)]


def rows_on_disk(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM points").fetchone()[0]


@pytest.fixture()
def outbox(tmp_path):
    box = Outbox.open(tmp_path)
    yield box
    box.close()


def test_order_kept_across_calls_and_restart(tmp_path):
    box = Outbox.open(tmp_path)
    box.enqueue(lines("a", "b"))
    box.enqueue(lines("c"))
    box.close()
    box = Outbox.open(tmp_path)
    batch = box.peek(10)
    assert [line for _, line in batch] == lines("a", "b") + lines("c")
    assert [seq for seq, _ in batch] == sorted(seq for seq, _ in batch)
    box.ack(batch[1][0])
    box.close()
    box = Outbox.open(tmp_path)
    assert [line for _, line in box.peek(10)] == lines("c")
    assert box.queued() == 1
    box.close()


def test_crash_between_write_and_ack_resends_the_same_batch_once(tmp_path):
    box = Outbox.open(tmp_path)
    box.enqueue(lines("a", "b", "c"))
    sent = [box.peek(2)]  # written to the server, then the process dies before ack
    box.close()
    box = Outbox.open(tmp_path)
    again = box.peek(2)
    assert again == sent[0]  # same ids, same bytes: an idempotent rewrite
    box.ack(again[-1][0])
    assert [line for _, line in box.peek(10)] == [lines("a", "b", "c")[2]]
    assert rows_on_disk(tmp_path / OUTBOX_FILE) == 1  # acknowledged rows are gone, no copy
    box.close()


def test_ids_are_never_reused_after_everything_was_acknowledged(tmp_path):
    # A reused id at or below the high-water mark would be skipped forever: a lost point.
    box = Outbox.open(tmp_path)
    box.enqueue(lines("a"))
    box.ack(box.peek(1)[0][0])
    box.close()
    box = Outbox.open(tmp_path)
    box.enqueue(lines("b"))
    assert [line for _, line in box.peek(10)] == lines("b")
    box.close()


def test_high_water_mark_hides_acknowledged_points(outbox):
    outbox.enqueue(lines("a", "b", "c"))
    first = outbox.peek(10)
    outbox.ack(first[1][0])
    outbox.ack(first[0][0])  # a late, older acknowledgement does not lower the mark
    assert outbox.acked_seq() == first[1][0]
    assert [line for _, line in outbox.peek(10)] == [first[2][1]]


def test_full_outbox_drops_the_oldest_and_logs_once(tmp_path, caplog):
    box = Outbox(tmp_path / OUTBOX_FILE, max_points=3)
    with caplog.at_level(logging.ERROR, logger="pue_monitor.store.outbox"):
        assert box.enqueue(lines("a", "b")) == 0
        assert box.enqueue(lines("c", "d")) == 1
        assert box.enqueue(lines("e")) == 1
    assert [line.split()[0] for _, line in box.peek(10)] == ["m,k=c", "m,k=d", "m,k=e"]
    assert box.dropped_total == 2 and box.queued() == 3
    assert len([r for r in caplog.records if "outbox full" in r.message]) == 1
    box.close()


def test_points_in_flight_are_not_dropped(tmp_path):
    box = Outbox(tmp_path / OUTBOX_FILE, max_points=3)
    box.enqueue(lines("a", "b"))
    inflight = box.peek(2)
    box.enqueue(lines("c", "d", "e"))  # two over: the oldest not in flight go instead
    box.ack(inflight[-1][0])
    assert [line.split()[0] for _, line in box.peek(10)] == ["m,k=e"]
    assert box.dropped_total == 2
    box.close()


def test_cursor_moves_with_its_points_or_not_at_all(outbox):
    outbox.enqueue(lines("a"), {"interval_energy:x": 900.0})
    assert outbox.cursor("interval_energy:x") == 900.0
    with pytest.raises(sqlite3.IntegrityError):
        outbox.enqueue(lines("b") + [None], {"interval_energy:x": 1800.0})  # type: ignore[list-item]
    assert outbox.cursor("interval_energy:x") == 900.0
    assert [line for _, line in outbox.peek(10)] == lines("a")
    assert outbox.cursor("other") is None


class ScriptedTransport:
    """Confirms or fails each write as told; remembers what it confirmed."""

    def __init__(self) -> None:
        self.outcomes: list[Exception | None] = []
        self.received: list[list[str]] = []
        self.closed = False

    def write(self, batch):
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.received.append(list(batch))

    def close(self):
        self.closed = True


def test_writer_keeps_points_through_failures_and_sends_them_once(tmp_path):
    transport = ScriptedTransport()
    writer = InfluxWriter(Outbox.open(tmp_path), transport, batch_size=2, clock=lambda: 50.0)
    writer.submit(lines("a", "b", "c"))
    assert writer.spool() == 3
    transport.outcomes = [ConnectionRefusedError("down"), None]
    with pytest.raises(ConnectionRefusedError):
        writer.send_batch()
    assert writer.state().queued_points == 3
    assert writer.send_batch() == 2
    assert writer.send_batch() == 1
    assert writer.send_batch() == 0
    assert [line for batch in transport.received for line in batch] == lines("a", "b", "c")
    state = writer.state()
    assert (state.queued_points, state.points_written_total, state.last_success_ts) == (0, 3, 50.0)
    writer.close()
    assert transport.closed


def test_rejected_batch_is_counted_and_does_not_block_the_queue(tmp_path, caplog):
    transport = ScriptedTransport()
    writer = InfluxWriter(Outbox.open(tmp_path), transport, batch_size=2)
    writer.submit(lines("bad", "worse", "good"))
    writer.spool()
    transport.outcomes = [RejectedBatch("HTTP 400: field type conflict")]
    with caplog.at_level(logging.ERROR, logger="pue_monitor.exchange.influx"):
        assert writer.send_batch() == 0
    assert writer.send_batch() == 1
    assert transport.received == [lines("bad", "worse", "good")[2:]]
    assert writer.state().points_rejected_total == 2
    assert "refused 2 points" in caplog.text
    writer.close()


def test_close_puts_what_is_in_memory_on_disk(tmp_path):
    writer = InfluxWriter(Outbox.open(tmp_path), ScriptedTransport())
    writer.submit(lines("a", "b"))
    writer.close()  # never started: nothing was sent
    box = Outbox.open(tmp_path)
    assert [line for _, line in box.peek(10)] == lines("a", "b")
    box.close()


def test_writer_threads_deliver_submitted_points(tmp_path):
    transport = ScriptedTransport()
    transport.outcomes = [OSError("slow"), None]
    writer = InfluxWriter(Outbox.open(tmp_path), transport, batch_size=10,
                          flush_interval_s=0.05)
    writer.start()
    writer.submit(lines("a", "b", "c"))
    for _ in range(200):
        if writer.state().points_written_total == 3:
            break
        writer._stop.wait(0.05)
    writer.close()
    assert [line for batch in transport.received for line in batch] == lines("a", "b", "c")
    assert writer.errors_total == 1


def test_interval_energy_is_queued_exactly_once(tmp_path):
    store, config = Store.open(tmp_path / "store"), demo_config()
    fill(store)
    closed = rollup(store, config, NOW)
    assert closed > 0
    box = Outbox.open(tmp_path)
    assert export_interval_energy(store, config, box) == closed
    assert export_interval_energy(store, config, box) == 0
    box.close()
    box = Outbox.open(tmp_path)  # cursors are on disk too
    assert export_interval_energy(store, config, box) == 0
    queued = [line for _, line in box.peek(10_000)]
    assert len(queued) == len(set(queued)) == closed
    assert all(line.startswith("pue_interval_energy,device=") for line in queued)
    assert any("role=facility,site=bn-provincial" in line and "energy_kwh=" in line
               for line in queued)
    box.close()
    store.close()


def test_outbox_metrics():
    state = OutboxState(queued_points=7, oldest_queued_ts=100.0, points_written_total=40,
                        write_errors_total=3, points_dropped_total=2, points_rejected_total=1,
                        last_success_ts=90.0)
    registry = CollectorRegistry()
    registry.register(OutboxCollector(lambda: state, clock=lambda: 130.0))
    text = generate_latest(registry).decode()
    for sample in ("pue_monitor_influx_queued_points 7.0",
                   "pue_monitor_influx_oldest_queued_age_seconds 30.0",
                   "pue_monitor_influx_points_written_total 40.0",
                   "pue_monitor_influx_write_errors_total 3.0",
                   'pue_monitor_influx_points_dropped_total{reason="buffer_full"} 2.0',
                   'pue_monitor_influx_points_dropped_total{reason="rejected"} 1.0',
                   "pue_monitor_influx_last_success_timestamp_seconds 90.0"):
        assert sample in text.splitlines()


def test_outbox_metrics_when_nothing_is_queued():
    state = OutboxState(0, None, 0, 0, 0, 0, None)
    registry = CollectorRegistry()
    registry.register(OutboxCollector(lambda: state, clock=lambda: 130.0))
    text = generate_latest(registry).decode()
    assert "pue_monitor_influx_oldest_queued_age_seconds 0.0" in text.splitlines()
    assert "last_success_timestamp" not in text


def test_a_drained_backlog_gives_its_disk_space_back(tmp_path):
    box = Outbox.open(tmp_path)
    box.enqueue([f"m,k=v value=1 {i}" for i in range(20_000)])
    full = rows_and_pages(tmp_path / OUTBOX_FILE)
    while batch := box.peek(5000):
        box.ack(batch[-1][0])
    box.close()
    empty = rows_and_pages(tmp_path / OUTBOX_FILE)
    assert full[0] == 20_000 and empty[0] == 0
    assert empty[1] < full[1] / 10


def rows_and_pages(path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return (conn.execute("SELECT COUNT(*) FROM points").fetchone()[0],
                conn.execute("PRAGMA page_count").fetchone()[0])


class StuckTransport:
    """A server that accepted the connection and never answers (until released)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def write(self, batch):
        self.entered.set()
        self.release.wait(30)
        raise TimeoutError("read timed out")

    def close(self):
        self.release.set()


def test_a_stuck_server_neither_blocks_submit_nor_keeps_points_off_disk(tmp_path):
    transport = StuckTransport()
    writer = InfluxWriter(Outbox.open(tmp_path), transport, batch_size=2, flush_interval_s=0.05)
    writer.start()
    writer.submit(lines("a", "b"))
    assert transport.entered.wait(10)  # the send thread is now stuck inside a write
    writer.submit(lines("c", "d", "e"))  # returns at once: it only appends to memory
    deadline = time.monotonic() + 10
    while writer.outbox.queued() < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.outbox.queued() == 5  # on disk while the write hangs
    transport.release.set()
    writer.close()
    box = Outbox.open(tmp_path)
    assert [line for _, line in box.peek(10)] == lines("a", "b") + lines("c", "d", "e")
    box.close()


def test_write_failures_are_counted_each_time_and_logged_once_per_outage(tmp_path, caplog):
    transport = ScriptedTransport()
    transport.outcomes = [OSError("refused")] * 3
    writer = InfluxWriter(Outbox.open(tmp_path), transport, batch_size=10,
                          flush_interval_s=0.02, max_backoff_s=0.02)
    writer.submit(lines("a"))
    writer.spool()
    with caplog.at_level(logging.INFO, logger="pue_monitor.exchange.influx"):
        writer.start()
        deadline = time.monotonic() + 10
        while writer.state().points_written_total < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        writer.close()
    assert writer.errors_total == 3 and writer.written_total == 1
    messages = [r.message for r in caplog.records]
    assert len([m for m in messages if "write failed" in m]) == 1
    assert len([m for m in messages if "work again" in m]) == 1
