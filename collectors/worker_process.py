"""One collector worker process: polls the devices of the sites it was given, as the
single-process service does, and sends what it produces to the parent over its pipe.

Messages, each one pickled tuple on the pipe (multiprocessing.Connection frames them):
``(POLL, PollResult)`` once per poll, never again; ``(STATS, Snapshot)`` every
STATS_EVERY_S and at the end; ``(IDENTIFIED, (device, profile, sysObjectID, reason,
ts))`` when an auto device is identified. The worker never touches the store: the
parent is its one writer.

SIGTERM (from the parent) stops the worker cleanly: polls in flight finish and are
sent, then the last counters. SIGINT is ignored (Ctrl-C reaches the whole process
group; the parent decides when its workers stop). A pipe the parent no longer reads
(the parent died) stops the worker too.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from pue_monitor.collectors.service import build_pollers, raise_fd_limit_for, run_pollers
from pue_monitor.collectors.snmp_client import receive_sockets
from pue_monitor.collectors.stats import CollectionStats
from pue_monitor.collectors.totals import PartBefore
from pue_monitor.collectors.udp_buffer import socket_drops
from pue_monitor.config.model import Config
from pue_monitor.store.model import Identified, PollResult

log = logging.getLogger(__name__)

POLL, STATS, IDENTIFIED = "poll", "stats", "identified"
# How often a worker's counters reach the parent's /metrics: a scrape may be this late.
STATS_EVERY_S = 1.0
LOG_FORMAT = "%(asctime)s %(levelname)s worker {index} %(name)s: %(message)s"


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker is started with (pickled to the new process)."""

    index: int
    config: Config
    sites: tuple[str, ...]
    identified: dict[str, Identified]  # the store's record of auto devices, at its start
    log_level: int = logging.INFO
    parts: dict[str, list[PartBefore]] = field(default_factory=dict)  # service.parts_before


class _Channel:
    """The pipe to the parent; a send that fails (the parent is gone) stops the worker."""

    def __init__(self, conn: Connection, stop: asyncio.Event) -> None:
        self.conn, self.stop, self.lost = conn, stop, False

    def send(self, message: tuple) -> None:
        if self.lost:
            return
        try:
            self.conn.send(message)
        except OSError:  # BrokenPipeError: nobody reads any more
            self.lost = True
            log.error("the monitor process no longer reads this worker's results; stopping")
            self.stop.set()


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """The process's entry point (multiprocessing, spawn context)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=spec.log_level, format=LOG_FORMAT.format(index=spec.index))
    if spec.log_level > logging.DEBUG:
        logging.getLogger("pymodbus").setLevel(logging.WARNING)
    try:
        asyncio.run(_work(spec, conn))
    except Exception as exc:  # told once, in one line; the parent restarts the worker
        log.error("collector worker %d stopped by an unexpected error: %s: %s", spec.index,
                  type(exc).__name__, exc)
        raise SystemExit(1) from None
    finally:
        conn.close()


async def _work(spec: WorkerSpec, conn: Connection) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    channel = _Channel(conn, stop)
    config = spec.config
    stats = CollectionStats(in_flight_limit=config.collection.max_in_flight)
    stats.receive_buffers = lambda: tuple((a, g) for _, a, g in receive_sockets())
    stats.receive_drops = lambda: socket_drops([s for s, _, _ in receive_sockets()])

    async def send(result: PollResult) -> None:
        channel.send((POLL, result))

    def identified(*record) -> None:
        channel.send((IDENTIFIED, record))

    sites = set(spec.sites)
    devices = [(site, device) for site, device in config.devices() if site.id in sites]
    pollers = build_pollers(config, devices, send, stats,
                            asyncio.Semaphore(config.collection.max_in_flight),
                            spec.identified, identified, parts=spec.parts)
    raise_fd_limit_for(pollers)
    log.info("polling %d devices of sites %s, at most %d polls in flight", len(pollers),
             ", ".join(spec.sites), stats.in_flight_limit)
    reporter = asyncio.create_task(_report(stats, channel, stop))
    try:
        await run_pollers(pollers, stop)
    finally:
        stop.set()
        await reporter
    channel.send((STATS, stats.snapshot()))  # the last counters, after the last poll


async def _report(stats: CollectionStats, channel: _Channel, stop: asyncio.Event) -> None:
    while not stop.is_set():
        channel.send((STATS, stats.snapshot()))
        try:
            await asyncio.wait_for(stop.wait(), STATS_EVERY_S)
        except TimeoutError:
            pass
