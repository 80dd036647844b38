"""Where poll results go: one fan-out sink per service, handing each result to the store
(batched; an unavailable store loses nothing) and to any other destination the
composition root passes in (the InfluxDB exporter when configured)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from pue_monitor.collectors.stats import CollectionStats
from pue_monitor.store.model import PollResult
from pue_monitor.store.base import StoreProtocol

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5
FLUSH_BATCH = 500
# Another destination of every poll result: called on the event loop, so it must only
# hand the result over (append to memory), never wait on I/O.
Destination = Callable[[PollResult], None]


class StoreSink:
    """Collects results and writes them in batches from a worker thread: the results of
    many polls in one transaction (Store.write_polls). A result counts as stored
    (``stats.stored``) only once that transaction has committed; until then it stays in
    memory and a failed write keeps it for the next flush."""

    def __init__(self, store: StoreProtocol, stats: CollectionStats | None = None) -> None:
        self.store = store
        self.stats = stats if stats is not None else CollectionStats()
        self._pending: list[PollResult] = []
        self._wake = asyncio.Event()
        self._failing = False
        self.write_errors = 0

    async def __call__(self, result: PollResult) -> None:
        self._pending.append(result)
        if len(self._pending) >= FLUSH_BATCH:
            self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Write what is pending; on failure keep it for the next flush."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await asyncio.to_thread(self.store.write_polls, batch)
        except Exception as exc:  # sqlite3.Error, OSError (disk full), ...
            self._pending = batch + self._pending
            self.write_errors += 1
            if not self._failing:
                log.error("store write failed, keeping %d results in memory: %s",
                          len(self._pending), exc)
                self._failing = True
            return
        self.stats.stored += len(batch)
        if self._failing:
            log.info("store writes work again")
            self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()
        await self.flush()


class FanOutSink:
    """The sink the pollers get: each result to every other destination, then to the
    store sink. Built once, with all destinations, when the service is built."""

    def __init__(self, store: StoreSink, others: Sequence[Destination] = ()) -> None:
        self.store = store
        self.others = tuple(others)

    async def __call__(self, result: PollResult) -> None:
        for destination in self.others:
            destination(result)
        await self.store(result)
