"""Where poll results go: one fan-out sink per service, handing each result to the store
(batched) and to any other destination the composition root passes in (the InfluxDB
exporter when configured).

A store that cannot be written (disk full, read-only, locked) stops nothing: results wait
in memory, at most ``max_backlog`` of them (beyond that the oldest are dropped, counted and
logged once per episode, so an outage of days cannot exhaust memory), and are written in
order, a batch per transaction, once the store takes writes again."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

from pue_monitor.collectors.stats import CollectionStats
from pue_monitor.config.model import DEFAULT_STORE_BACKLOG
from pue_monitor.store.model import PollResult
from pue_monitor.store.base import StoreProtocol

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5
FLUSH_BATCH = 500
# After a failed write the next try waits this long, however many results come in: a
# full batch waiting must not turn a store outage into a write attempt per poll.
RETRY_AFTER_FAILURE_S = 2.0
# While the store fails, the error is repeated (with the backlog) this often, so a log
# read in the middle of a long outage still says what is going on.
FAILING_REMINDER_S = 300.0
# Another destination of every poll result: called on the event loop, so it must only
# hand the result over (append to memory), never wait on I/O.
Destination = Callable[[PollResult], None]


class StoreSink:
    """Collects results and writes them in batches from a worker thread: the results of
    many polls in one transaction (Store.write_polls). A result counts as stored
    (``stats.stored``) only once that transaction has committed; until then it stays in
    memory and a failed write keeps it for the next flush."""

    def __init__(self, store: StoreProtocol, stats: CollectionStats | None = None,
                 max_backlog: int = DEFAULT_STORE_BACKLOG,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.stats = stats if stats is not None else CollectionStats()
        self.max_backlog = max_backlog
        self.monotonic = monotonic
        self._pending: deque[PollResult] = deque()
        self._wake = asyncio.Event()
        self._failing_since: float | None = None  # monotonic time of the first failure
        self._reminded = 0.0
        self.write_errors = 0
        self.dropped = 0  # results dropped because the backlog was full
        self._dropping = False

    async def __call__(self, result: PollResult) -> None:
        self._pending.append(result)
        if len(self._pending) > self.max_backlog:
            self._drop_oldest()
        if len(self._pending) >= FLUSH_BATCH:
            self._wake.set()

    def _drop_oldest(self) -> None:
        excess = len(self._pending) - self.max_backlog
        for _ in range(excess):
            self._pending.popleft()
        self.dropped += excess
        if not self._dropping:
            log.error("store backlog full (%d results): dropping the oldest results until "
                      "the store takes writes again; "
                      "pue_monitor_collector_store_backlog_dropped_total counts them",
                      self.max_backlog)
            self._dropping = True

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Write what is pending, oldest first, a batch per transaction; on failure keep
        the rest for the next flush."""
        while self._pending:
            batch = list(itertools.islice(self._pending, FLUSH_BATCH))
            dropped_before = self.dropped
            try:
                await asyncio.to_thread(self.store.write_polls, batch)
            except Exception as exc:  # sqlite3.Error, OSError (disk full), ...
                self._write_failed(exc)
                return
            # Meanwhile new results were only appended: the batch is still at the front,
            # less what a full backlog dropped from there.
            for _ in range(max(0, len(batch) - (self.dropped - dropped_before))):
                self._pending.popleft()
            self.stats.stored += len(batch)
            if self._failing_since is not None:
                log.info("store writes work again after %.0f s; %d results were waiting, "
                         "%d dropped", self.monotonic() - self._failing_since,
                         len(self._pending) + len(batch), self.dropped)
                self._failing_since = None
                self._dropping = False

    def _write_failed(self, exc: Exception) -> None:
        self.write_errors += 1
        now = self.monotonic()
        if self._failing_since is None:
            self._failing_since = self._reminded = now
            log.error("store write failed, keeping up to %d results in memory (%d now) "
                      "until it works again: %s", self.max_backlog, len(self._pending), exc)
        elif now - self._reminded >= FAILING_REMINDER_S:
            self._reminded = now
            log.error("store writes still failing after %.0f s (%d results in memory, %d "
                      "dropped): %s", now - self._failing_since, len(self._pending),
                      self.dropped, exc)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            failing = self._failing_since is not None
            try:
                await asyncio.wait_for(stop.wait() if failing else self._wake.wait(),
                                       RETRY_AFTER_FAILURE_S if failing else FLUSH_INTERVAL_S)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()
        await self.flush()


class FanOutSink:
    """The sink the pollers get: each result to every other destination, then to the
    store sink. Built once, with all destinations, when the service is built.

    A destination that raises (a bug: they only hand results over) costs that result
    there and nowhere else: it is still stored, the poller goes on, and the error is
    logged once per destination (``destination_errors`` counts them all)."""

    def __init__(self, store: StoreSink, others: Sequence[Destination] = ()) -> None:
        self.store = store
        self.others = tuple(others)
        self.destination_errors = 0
        self._logged: set[int] = set()  # destinations whose error was logged

    async def __call__(self, result: PollResult) -> None:
        for index, destination in enumerate(self.others):
            try:
                destination(result)
            except Exception:
                self.destination_errors += 1
                if index not in self._logged:
                    self._logged.add(index)
                    log.exception("a destination of poll results failed on %s's poll; "
                                  "the result is still stored, later errors there are "
                                  "only counted", result.device)
        await self.store(result)
