"""One fan-out sink per collector service: every poll result reaches the store and each
destination the composition root passed in, through the sink the pollers were built with."""

from __future__ import annotations

import asyncio
import errno
import logging

import pytest

from pue_monitor.collectors.service import CollectorService
from pue_monitor.collectors.sink import FLUSH_BATCH, FanOutSink, StoreSink
from pue_monitor.store.model import PollResult, Reading
from pue_monitor.store.sqlite import Store
from tests.web_fixtures import demo_config

RESULTS = [PollResult("prov-incomer", "bn-provincial", 1_000.0 + i, 0.01,
                      (Reading(1_000.0 + i, "prov-incomer", "active_power_w", 50.0 * i),))
           for i in range(3)]


def test_the_pollers_share_one_fan_out_sink_to_the_store_and_the_destinations(tmp_path):
    config = demo_config()
    seen: list[PollResult] = []
    store = Store.open(tmp_path)
    try:
        service = CollectorService(config, store, destinations=[seen.append])
        try:
            assert isinstance(service.sink, FanOutSink)
            assert {id(p.sink) for p in service.pollers} == {id(service.sink)}

            async def deliver() -> None:
                for result in RESULTS:
                    await service.pollers[0].sink(result)
                await service.store_sink.flush()
            asyncio.run(deliver())
        finally:
            for poller in service.pollers:
                poller.client.close()
        stored = store.latest(0.0, ["prov-incomer"])
    finally:
        store.close()
    assert seen == RESULTS
    # the newest of the three readings: 50 W x 2 at 1002 s
    assert stored[["device", "ts", "value"]].values.tolist() == [["prov-incomer", 1002.0, 100.0]]


def test_without_destinations_results_go_to_the_store_only(tmp_path):
    store = Store.open(tmp_path)
    try:
        service = CollectorService(demo_config(), store)
        try:
            assert service.sink.others == ()
        finally:
            for poller in service.pollers:
                poller.client.close()
    finally:
        store.close()


class RefusingStore:
    """write_polls raises ``error`` while it is set; records each committed batch."""

    def __init__(self, error: Exception | None) -> None:
        self.error, self.batches = error, []

    def write_polls(self, batch) -> None:
        if self.error is not None:
            raise self.error
        self.batches.append([r.started for r in batch])


def numbered(n: int, first: int = 0) -> list[PollResult]:
    return [PollResult("d", "s", float(i), 0.01) for i in range(first, first + n)]


# (backlog bound, results while the store refuses, results after) -> (results left in
# order after catch-up, dropped, batches written): hand-counted from FLUSH_BATCH = 500.
BACKLOG_CASES = [
    (1_000, 300, 0, (list(range(300)), 0, [300])),
    (1_000, 1_200, 0, (list(range(200, 1_200)), 200, [500, 500])),
    (100, 150, 10, (list(range(60, 160)), 60, [100])),
    (2_000, 1_100, 0, (list(range(1_100)), 0, [500, 500, 100])),
]


@pytest.mark.parametrize(("bound", "while_down", "after", "want"), BACKLOG_CASES)
async def test_a_refusing_store_fills_a_bounded_backlog_that_catches_up_in_order(
        caplog, bound, while_down, after, want):
    caplog.set_level(logging.INFO)
    store = RefusingStore(OSError(errno.ENOSPC, "No space left on device"))
    sink = StoreSink(store, max_backlog=bound)  # type: ignore[arg-type]
    for result in numbered(while_down):
        await sink(result)
        await sink.flush()  # every flush fails: the error is logged once
    store.error = None
    for result in numbered(after, first=while_down):
        await sink(result)
    await sink.flush()
    kept, dropped, batches = want
    assert [t for b in store.batches for t in b] == [float(i) for i in kept]
    assert [len(b) for b in store.batches] == batches
    assert (sink.dropped, sink.backlog, sink.stats.stored) == (dropped, 0, len(kept))
    assert sink.write_errors == while_down
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len([e for e in errors if e.startswith("store write failed")]) == 1
    assert "No space left on device" in errors[0]
    assert len([e for e in errors if e.startswith("store backlog full")]) == (dropped > 0)
    assert any(r.getMessage().startswith("store writes work again") for r in caplog.records)


async def test_a_long_outage_is_reminded_in_the_log(caplog):
    caplog.set_level(logging.ERROR)
    now = [0.0]
    sink = StoreSink(RefusingStore(OSError("read-only file system")),  # type: ignore[arg-type]
                     max_backlog=10, monotonic=lambda: now[0])
    for t in (0.0, 100.0, 299.0, 300.0, 310.0, 650.0):
        now[0] = t
        await sink(numbered(1)[0])
        await sink.flush()
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in messages] == [
        "store write failed, keeping up to 10 results in memory (1 now) until it works again",
        "store writes still failing after 300 s (4 results in memory, 0 dropped)",
        "store writes still failing after 650 s (6 results in memory, 0 dropped)"]


async def test_a_destination_that_raises_costs_neither_the_store_nor_the_poller(caplog):
    """A destination only hands results over; if one raises anyway (a bug), the result
    still goes to the store and to the other destinations, and the error is logged once."""
    store = RefusingStore(None)
    seen: list[PollResult] = []

    def broken(result: PollResult) -> None:
        raise ValueError("cannot encode")
    sink = FanOutSink(StoreSink(store), [broken, seen.append])  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        for result in numbered(3):
            await sink(result)
    await sink.store.flush()
    assert store.batches == [[0.0, 1.0, 2.0]]
    assert seen == numbered(3)
    assert sink.destination_errors == 3
    assert len(caplog.records) == 1


async def test_after_a_failed_write_results_coming_in_do_not_trigger_more_tries(monkeypatch):
    """With a full batch waiting, each new result used to wake the writer at once: a store
    outage became a write attempt per poll (and, when shipping to a central, the same
    readings queued again at each). Now the next try waits RETRY_AFTER_FAILURE_S."""
    monkeypatch.setattr("pue_monitor.collectors.sink.RETRY_AFTER_FAILURE_S", 60.0)
    attempts = []

    class Counting(RefusingStore):
        def write_polls(self, batch) -> None:
            attempts.append(len(batch))
            super().write_polls(batch)
    store = Counting(OSError("database is locked"))
    sink = StoreSink(store, max_backlog=10_000)  # type: ignore[arg-type]
    stop = asyncio.Event()
    writer = asyncio.create_task(sink.run(stop))
    for result in numbered(FLUSH_BATCH + 200):
        await sink(result)
        await asyncio.sleep(0)  # the writer may run between results, as between polls
    await asyncio.sleep(0.05)
    tries_while_failing = len(attempts)
    store.error = None
    stop.set()
    await writer  # the last flush at stop writes everything
    assert tries_while_failing == 1
    assert [len(b) for b in store.batches] == [FLUSH_BATCH, 200]
