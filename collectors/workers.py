"""`collection: {workers: N}`: the devices polled by N worker processes, whole sites per
worker, the parent the one store writer.

Sites are assigned whole (a site's readings come from one process, and one Modbus
connection per gateway), sites sharing a Modbus gateway or serial line together, the
largest first to the worker with the fewest devices so far (:func:`assign_sites`:
deterministic, so a restart gives the same split). Each worker
(collectors/worker_process.py) sends every poll result to the parent once, over its own
pipe; the parent hands them to its one sink, which writes the store in batches and feeds
the other destinations (InfluxDB, the central link). A result is acknowledged once the
parent's store has committed it.

A worker that dies (SIGKILL, a crash) loses only what it had not sent: a message its
death cut short is discarded whole, so nothing sent is lost and nothing is stored twice.
The parent logs the death once, counts it (``worker_restarts``) and starts the worker
again with the same sites after a backoff; the other workers go on polling. A worker
that stops sending (hung: a stuck event loop, SIGSTOP) is killed and treated the same.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from pue_monitor.collectors.service import parts_before
from pue_monitor.collectors.sink import Destination, FanOutSink, StoreSink
from pue_monitor.collectors.stats import (CollectionStats, Snapshot, WorkerCounts, combined,
                                          retired)
from pue_monitor.collectors.worker_process import (IDENTIFIED, POLL, STATS, WorkerSpec,
                                                   worker_main)
from pue_monitor.config.model import Config
from pue_monitor.store.base import StoreProtocol

log = logging.getLogger(__name__)

# A dead worker is started again after this, doubled while it keeps dying young.
RESTART_BACKOFF_S = 1.0
RESTART_BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # a worker that ran this long before dying starts the backoff over
# At a stop, a worker finishes its polls in flight and sends them; one that takes longer
# than this is killed (what it had not sent is lost, as at a kill).
STOP_GRACE_S = 15.0
# A worker sends its counters every second: one silent this long is hung (a stuck event
# loop, SIGSTOP) and is killed and started again. Its start (a new interpreter importing
# the collectors, seconds on a busy machine) has a limit of its own.
SILENT_S = 30.0
START_SILENT_S = 120.0
_ENDED = "ended"  # queued by the reader thread after the last message of a worker


def assign_sites(sizes: Mapping[str, int], workers: int,
                 together: Iterable[Iterable[str]] = ()) -> tuple[tuple[str, ...], ...]:
    """Whole sites to at most ``workers`` workers, balanced by device count.

    ``sizes``: devices per site, in configuration order; ``together``: groups of sites that
    must share a worker (they share a Modbus connection). Groups go largest first (ties
    in configuration order) to the worker with the fewest devices so far (ties: the
    lowest number). Sites without devices are left out, and so is a worker left without
    sites. Each worker's sites are in configuration order.
    """
    order = {site: i for i, site in enumerate(sizes)}
    root = {site: site for site in sizes}

    def find(site: str) -> str:
        while root[site] != site:
            site = root[site]
        return site
    for group in together:
        members = [s for s in group if s in root]
        for other in members[1:]:
            a, b = sorted((find(members[0]), find(other)), key=order.__getitem__)
            root[b] = a
    groups: dict[str, list[str]] = {}
    for site in sizes:
        if sizes[site] > 0:
            groups.setdefault(find(site), []).append(site)
    units = sorted(groups.values(), key=lambda g: (-sum(sizes[s] for s in g), order[g[0]]))
    loads = [0] * max(1, workers)
    assigned: list[list[str]] = [[] for _ in loads]
    for unit in units:
        w = min(range(len(loads)), key=lambda i: (loads[i], i))
        loads[w] += sum(sizes[s] for s in unit)
        assigned[w].extend(unit)
    return tuple(tuple(sorted(sites, key=order.__getitem__)) for sites in assigned if sites)


def config_assignment(config: Config) -> tuple[tuple[str, ...], ...]:
    """The configuration's sites over ``collection.workers`` workers."""
    shared: dict[tuple, set[str]] = {}
    for site, device in config.devices():
        if device.modbus is not None:
            shared.setdefault(device.modbus.connection_key, set()).add(site.id)
    return assign_sites({site.id: len(site.devices) for site in config.sites},
                        config.collection.workers, shared.values())


@dataclass
class _Slot:
    """One worker: its sites, its current process and its counters."""

    index: int
    sites: tuple[str, ...]
    devices: int
    process: multiprocessing.process.BaseProcess | None = None
    up: bool = False
    restarts: int = 0
    base: Snapshot | None = None  # the counters of its dead processes, added
    last: Snapshot | None = None  # the latest snapshot of the running one
    heard: float | None = None  # monotonic time of its latest message (None: none yet)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def parts(self) -> tuple[Snapshot, ...]:
        return tuple(p for p in (self.base, self.last) if p is not None)

    def retire(self) -> None:
        if self.last is not None:
            gone = retired(self.last)
            self.base = gone if self.base is None else combined(self.base, gone)
            self.last = None


class WorkerPool:
    """The parent side: the workers, their restarts, and the one sink they all feed.

    Built and run like CollectorService (``destinations`` and ``stats`` likewise).
    """

    def __init__(self, config: Config, store: StoreProtocol,
                 destinations: Sequence[Destination] = (),
                 stats: CollectionStats | None = None,
                 log_level: Callable[[], int] = logging.getLogger().getEffectiveLevel) -> None:
        self.config, self.store, self.log_level = config, store, log_level
        self.stats = stats if stats is not None else CollectionStats()
        self.store_sink = StoreSink(store, self.stats, config.collection.store_backlog)
        self.sink = FanOutSink(self.store_sink, destinations)
        self.stats.backlog = lambda: self.store_sink.backlog
        self.stats.store_write_errors = lambda: self.store_sink.write_errors
        self.stats.backlog_dropped = lambda: self.store_sink.dropped
        counts = {site.id: len(site.devices) for site in config.sites}
        self.slots = [_Slot(i, sites, sum(counts[s] for s in sites))
                      for i, sites in enumerate(config_assignment(config))]
        for site, device in config.devices():  # every device on /metrics from the start
            self.stats.device(site.id, device.id)
        self.stats.parts = lambda: tuple(p for slot in self.slots for p in slot.parts())
        self.stats.workers = lambda: tuple(WorkerCounts(str(s.index), s.up, s.restarts)
                                           for s in self.slots)
        self.received = 0  # poll results received from the workers
        self._context = multiprocessing.get_context("spawn")

    async def run(self, stop: asyncio.Event) -> None:
        log.info("polling %d devices in %d sites with %d worker processes, at most %d "
                 "polls in flight in each", sum(s.devices for s in self.slots),
                 len(self.config.sites), len(self.slots),
                 self.config.collection.max_in_flight)
        queue: asyncio.Queue = asyncio.Queue()
        sink_stop = asyncio.Event()
        sink = asyncio.create_task(self.store_sink.run(sink_stop), name="store-sink")
        consumer = asyncio.create_task(self._consume(queue), name="worker-results")
        try:
            await asyncio.gather(*(self._keep(slot, queue, stop) for slot in self.slots))
        finally:
            # Every worker's messages were handled before its end was: none is waiting.
            consumer.cancel()
            sink_stop.set()
            await sink
            log.info("collector workers stopped; %d poll results received from them",
                     self.received)

    async def _consume(self, queue: asyncio.Queue) -> None:
        while True:
            index, (kind, body) = await queue.get()
            try:
                await self._handle(index, kind, body)
            except Exception:  # a bug here must not stop the other messages
                log.exception("cannot handle a %s message of collector worker %d", kind,
                              index)

    async def _handle(self, index: int, kind: str, body) -> None:
        if kind != _ENDED:
            self.slots[index].heard = time.monotonic()
        if kind == POLL:
            self.received += 1
            await self.sink(body)
        elif kind == STATS:
            self.slots[index].last = body
        elif kind == IDENTIFIED:
            await asyncio.to_thread(self._identified, *body)
        elif kind == _ENDED:
            body.set()

    def _identified(self, *record) -> None:
        try:
            self.store.set_device_profile(*record)
        except Exception as exc:  # recording the name must not stop the polling
            log.error("device %s: could not record its profile: %s", record[0], exc)

    async def _keep(self, slot: _Slot, queue: asyncio.Queue, stop: asyncio.Event) -> None:
        """Run the slot's worker until ``stop``; start it again each time it dies."""
        backoff = RESTART_BACKOFF_S
        while not stop.is_set():
            born = time.monotonic()
            how = await self._run_once(slot, queue, stop)
            if how is None:
                return
            slot.restarts += 1
            if time.monotonic() - born >= STABLE_AFTER_S:
                backoff = RESTART_BACKOFF_S
            log.error("collector worker %d (sites %s) %s; starting it again in %.0f s",
                      slot.index, ", ".join(slot.sites), how, backoff)
            try:
                await asyncio.wait_for(stop.wait(), backoff)
            except TimeoutError:
                pass
            backoff = min(RESTART_BACKOFF_MAX_S, backoff * 2)

    async def _run_once(self, slot: _Slot, queue: asyncio.Queue,
                        stop: asyncio.Event) -> str | None:
        """One process of the slot, until it ends (how, in words) or ``stop`` (None)."""
        try:
            identified = await asyncio.to_thread(self.store.device_identifications)
        except Exception as exc:  # the workers identify their auto devices afresh
            log.error("cannot read the identified devices from the store: %s", exc)
            identified = {}
        devices = [d.id for site, d in self.config.devices() if site.id in slot.sites]
        try:
            parts = await asyncio.to_thread(parts_before, self.config, self.store, devices,
                                            time.time())
        except Exception as exc:  # the totals' parts are then learnt from the first polls
            log.error("cannot read the devices' recent parts from the store: %s", exc)
            parts = {}
        try:
            await self._start(slot, identified, queue, parts)
        except OSError as exc:  # no memory, no process slots: tried again like a death
            return f"could not start: {exc}"
        process = slot.process
        assert process is not None
        born, hung = time.monotonic(), ""
        stopping = asyncio.create_task(stop.wait())
        ending = asyncio.create_task(slot.ended.wait())
        while not (stopping.done() or ending.done()):
            await asyncio.wait({stopping, ending}, timeout=1.0,
                               return_when=asyncio.FIRST_COMPLETED)
            silent = time.monotonic() - (born if slot.heard is None else slot.heard)
            limit = START_SILENT_S if slot.heard is None else SILENT_S
            if silent > limit and not ending.done() and not stop.is_set():
                hung = f"sent nothing for {silent:.0f} s and was killed"  # told by _keep
                process.kill()
                await slot.ended.wait()
        stopping.cancel()
        ending.cancel()
        if not slot.ended.is_set():
            await self._stop(slot, process)
        await asyncio.to_thread(process.join)
        slot.up, slot.heard = False, None
        slot.retire()
        return None if stop.is_set() else hung or _how(process.exitcode)

    async def _stop(self, slot: _Slot, process: multiprocessing.process.BaseProcess) -> None:
        process.terminate()  # SIGTERM: finish the polls in flight, send them, exit
        try:
            await asyncio.wait_for(slot.ended.wait(), STOP_GRACE_S)
        except TimeoutError:
            log.error("collector worker %d did not stop within %.0f s; killing it",
                      slot.index, STOP_GRACE_S)
            process.kill()
            await slot.ended.wait()

    async def _start(self, slot: _Slot, identified: dict, queue: asyncio.Queue,
                     parts: dict | None = None) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        spec = WorkerSpec(slot.index, self.config, slot.sites, identified, self.log_level(),
                          parts or {})
        process = self._context.Process(target=worker_main, args=(spec, writer), daemon=True,
                                        name=f"pue-monitor-worker-{slot.index}")
        # In a thread: handing the configuration over waits for the new interpreter to
        # read it (seconds on a busy machine), and the other workers' results must flow.
        try:
            await asyncio.to_thread(process.start)
        finally:
            writer.close()  # the worker's end: once it exits, reading finds the end of file
        if process.pid is None:  # not started
            reader.close()
            raise OSError("the process did not start")
        slot.process, slot.up, slot.last, slot.ended = process, True, None, asyncio.Event()
        threading.Thread(target=_read, name=f"worker-{slot.index}-reader", daemon=True,
                         args=(reader, slot.index, slot.ended, queue,
                               asyncio.get_running_loop())).start()
        log.info("collector worker %d (pid %d) polls %d devices of sites %s", slot.index,
                 process.pid, slot.devices, ", ".join(slot.sites))


def _read(conn: Connection, index: int, ended: asyncio.Event, queue: asyncio.Queue,
          loop: asyncio.AbstractEventLoop) -> None:
    """Hand each message of one worker to the event loop, in order, then its end."""
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the worker exited, or died mid-message
                break
            except Exception:  # a message garbled by its death: dropped whole
                break
            loop.call_soon_threadsafe(queue.put_nowait, (index, message))
    finally:
        conn.close()
        loop.call_soon_threadsafe(queue.put_nowait, (index, (_ENDED, ended)))


def _how(exitcode: int | None) -> str:
    """How a worker process ended, in words."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}" if exitcode else "exited"
