"""Run the monitor: pollers and rollups on an event loop, the web server beside it.

The composition root: it opens the store, builds the InfluxDB writer when configured and
hands its destination to the collector service, which builds the pollers' one fan-out
sink (collectors/ never import exchange/ or web/).
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pue_monitor.collectors.service import CollectorService
from pue_monitor.collectors.sink import Destination
from pue_monitor.collectors.stats import CollectionStats
from pue_monitor.collectors.workers import WorkerPool
from pue_monitor.config.model import Config
from pue_monitor.exchange.central import (DefinitionSender, ShippingStore, central_writer,
                                          definition_document, run_marks)
from pue_monitor.exchange.influx import (InfluxWriter, export_interval_energy, province_lines,
                                         reading_lines)
from pue_monitor.figures.alerts import record_alerts
from pue_monitor.figures.keptparts import KEEP_EVERY_S, keep_years
from pue_monitor.figures.retention import prune
from pue_monitor.figures.rollup import rollup
from pue_monitor.progress import Progress
from pue_monitor.pue.runlog import HEARTBEAT_S
from pue_monitor.simulator.runner import READY_LINE
from pue_monitor.storage import describe, open_store
from pue_monitor.store.base import StoreProtocol
from pue_monitor.web import create_app, warm
from pue_monitor.web.metrics_collection import CollectionCollector
from pue_monitor.web.metrics_outbox import CENTRAL_PREFIX, OutboxCollector
from pue_monitor.web.security import load_secret_key
from pue_monitor.web.server import WebServer

log = logging.getLogger(__name__)

ROLLUP_EVERY_S = 60.0
PRUNE_EVERY_S = 3600.0  # retention: old readings are deleted at most this often
SIMULATOR_START_TIMEOUT_S = 30.0


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``stop``; whether it was set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _rollup_loop(store: StoreProtocol, config: Config, stop: asyncio.Event,
                       clock: Callable[[], float]) -> None:
    """Close finished 15-minute blocks; then, at most every PRUNE_EVERY_S, delete the raw
    readings retention lets go (figures/retention.py: only behind closed blocks)."""
    pruned_at = -math.inf
    while not stop.is_set():
        try:
            written = await asyncio.to_thread(rollup, store, config, clock())
            if written:
                log.debug("closed %d interval-energy rows", written)
            # The alert history (site pages): device state changes and threshold crossings.
            for event in await asyncio.to_thread(record_alerts, store, config, clock()):
                log.info("alert recorded: %s %s %s -> %s", event.site, event.kind,
                         event.subject, event.state)
        except Exception:  # a failed rollup is retried on the next pass; polling goes on
            log.exception("interval-energy rollup failed; retrying in %.0f s", ROLLUP_EVERY_S)
        if config.retention.readings_days is not None and \
                time.monotonic() - pruned_at >= PRUNE_EVERY_S:
            try:
                gone = await asyncio.to_thread(prune, store, config, clock())
                pruned_at = time.monotonic()
                if gone:
                    log.info("retention: deleted %d readings older than %d days", gone,
                             config.retention.readings_days)
            except Exception:  # retried on the next pass; polling goes on
                log.exception("deleting old readings failed; retrying in %.0f s",
                              ROLLUP_EVERY_S)
        await _stopped_within(stop, ROLLUP_EVERY_S)


async def _keep_loop(store: StoreProtocol, config: Config, stop: asyncio.Event,
                     clock: Callable[[], float]) -> None:
    """Every KEEP_EVERY_S, the partial blocks' results the sites' yearly figures need
    kept in the store (figures.keptparts.keep_years): a report then runs warm. Beside
    the roll-up, not in it: a first pass over two years is a cold report's work."""
    while not stop.is_set():
        try:
            sites = await asyncio.to_thread(keep_years, store, config, clock())
            log.debug("partial-block results kept for %d site(s)", sites)
        except Exception:  # retried at the next pass; nothing else depends on it
            log.exception("keeping the partial blocks' results failed; retrying in %.0f s",
                          KEEP_EVERY_S)
        await _stopped_within(stop, KEEP_EVERY_S)


async def _run_log_loop(store: StoreProtocol, stop: asyncio.Event,
                        clock: Callable[[], float], heartbeat_s: float = HEARTBEAT_S,
                        also: Callable[[str, float, bool], None] | None = None) -> None:
    """The monitor's run log (pue.runlog): its start, a heartbeat while it collects and a
    clean stop, so a report can show when the monitor was not collecting. ``also`` hears
    of every mark before it is stored (the central link queues them). A mark that cannot
    be written (disk full, read-only store) is logged once and retried at the next
    heartbeat (if even its start was lost, the run is recorded from the first mark that
    lands, so the time before shows as not collecting: an honest lower bound)."""
    run = uuid.uuid4().hex
    failing = False

    def mark(ts: float, stopped: bool = False) -> None:
        if also is not None:
            also(run, ts, stopped)
        store.mark_run(run, ts, stopped=stopped)
    while True:
        try:
            await asyncio.to_thread(mark, clock())
            if failing:
                log.info("the monitor's run log is written again")
            failing = False
        except Exception:  # the log is for the record; collecting goes on without it
            if not failing:
                log.exception("cannot write the monitor's run log; collecting goes on "
                              "and the heartbeat is retried")
            failing = True
        if await _stopped_within(stop, heartbeat_s):
            break
    try:
        mark(clock(), True)
    except Exception:
        log.exception("cannot record the monitor's stop in its run log")


async def _influx_loop(store: StoreProtocol, config: Config, writer: InfluxWriter,
                       stop: asyncio.Event, clock: Callable[[], float]) -> None:
    """Every pue_interval_s: the sites' PUE windows and newly closed interval energy."""
    assert config.influxdb is not None
    while not stop.is_set():
        try:
            writer.submit(await asyncio.to_thread(province_lines, store, config, clock()))
            await asyncio.to_thread(export_interval_energy, store, config, writer.outbox)
        except Exception:  # retried on the next pass; polling goes on
            log.exception("cannot queue PUE results for InfluxDB")
        await _stopped_within(stop, config.influxdb.pue_interval_s)


def _influx_destination(config: Config, writer: InfluxWriter) -> Destination:
    """Poll results as InfluxDB points, to the writer (submit only appends to memory)."""
    roles = {device.id: device.role.value for _, device in config.devices()}

    def to_influx(result) -> None:
        writer.submit(reading_lines(result, roles, writer.refusals))
    return to_influx


async def _serve(config: Config, store: StoreProtocol, stop: asyncio.Event,
                 writer: InfluxWriter | None = None,
                 stats: CollectionStats | None = None,
                 shipper: InfluxWriter | None = None) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    destinations = [] if writer is None else [_influx_destination(config, writer)]
    # Shipping to the central: readings queued durably before they are stored.
    polled = (store if shipper is None else
              ShippingStore(store, config, shipper.outbox, shipper.refusals))
    service: CollectorService | WorkerPool = (
        CollectorService(config, polled, destinations=destinations, stats=stats)
        if config.collection.workers == 1 else
        WorkerPool(config, polled, destinations=destinations, stats=stats))
    tasks = [service.run(stop), _rollup_loop(store, config, stop, time.time),
             _keep_loop(store, config, stop, time.time),
             _run_log_loop(store, stop, time.time,
                           also=None if shipper is None else run_marks(config,
                                                                       shipper.outbox))]
    if writer is not None:
        tasks.append(_influx_loop(store, config, writer, stop, time.time))
    await asyncio.gather(*tasks)


def run_monitor(config: Config, data_dir: Path, host: str, port: int,
                announce: Callable[[str], None] = print) -> int:
    """Serve the web view and /metrics and poll every device until SIGINT/SIGTERM."""
    store = open_store(data_dir, config, Progress("day summary rebuilt", "devices"))
    writer = InfluxWriter.from_config(config.influxdb, data_dir) if config.influxdb else None
    shipper = sender = None
    if config.central is not None:
        try:
            shipper = central_writer(config.central, data_dir)
        except RuntimeError:
            store.close()
            raise
        outbox = shipper.outbox
        sender = DefinitionSender(shipper.transport, lambda: definition_document(
            config, outbox, store.device_identifications(), time.time()))
    # The collectors' own counters, filled by the service on the event loop, read by
    # /metrics on the web server's thread.
    stats = CollectionStats()
    extra = [CollectionCollector(stats.snapshot)]
    extra += [OutboxCollector(writer.state)] if writer else []
    extra += [OutboxCollector(shipper.state, prefix=CENTRAL_PREFIX)] if shipper else []
    app = create_app(config, store, extra_collectors=extra,
                     secret_key=load_secret_key(config, data_dir), background=True)
    # Before serving: the first page then finds its figures computed (issue 15).
    warm_s = warm(app)
    log.info("web view warmed up in %.1f s", warm_s)
    server = WebServer(app, host, port)
    server.start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    announce(f"pue-monitor: web view  http://{shown}:{server.port}/")
    if not config.web.login:
        announce("pue-monitor: log-in is OFF (web: {login: false}): anyone who reaches "
                 "the web view sees every site")
    elif not store.users():
        announce("pue-monitor: no users yet: add one with `pue-monitor user add`")
    announce(f"pue-monitor: metrics   http://{shown}:{server.port}/metrics")
    announce(f"pue-monitor: data in   {describe(data_dir, config)}")
    if writer is not None:
        assert config.influxdb is not None
        writer.start()
        announce(f"pue-monitor: influxdb  {config.influxdb.url} bucket {config.influxdb.bucket}")
    if shipper is not None and sender is not None:
        assert config.central is not None
        sender.start()
        shipper.start()
        announce(f"pue-monitor: central   {config.central.url}")
    try:
        asyncio.run(_serve(config, store, asyncio.Event(), writer, stats, shipper))
    finally:
        server.stop()
        if writer is not None:
            writer.close()
        if shipper is not None and sender is not None:
            sender.close()
            shipper.close()
        store.close()
    return 0


def start_simulator(config_path: Path, control_port: int | None = None,
                    echo: Callable[[str], None] = print, *, state_dir: Path | None = None,
                    free_ports: bool = False,
                    config_out: Path | None = None) -> subprocess.Popen:
    """Start `pue-monitor simulate` as a child process; return once it says it is ready.

    Waiting for its own ready line (not just any answer on the control port) means a
    simulator left running by an earlier demo is never mistaken for this one. With
    free_ports the province it serves is written to config_out (read it once this returns).
    """
    command = [sys.executable, "-m", "pue_monitor", "simulate", "-c", str(config_path)]
    if control_port is not None:
        command += ["--control-port", str(control_port)]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir)]
    if free_ports:
        command.append("--free-ports")
    if config_out is not None:
        command += ["--config-out", str(config_out)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1)
    ready = threading.Event()

    def forward() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            echo(line.rstrip("\n"))
            if line.strip() == READY_LINE:
                ready.set()

    threading.Thread(target=forward, name="simulator-output", daemon=True).start()
    deadline = time.monotonic() + SIMULATOR_START_TIMEOUT_S
    while not ready.wait(0.2):
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator could not start (exit code {proc.returncode}); "
                               "see its message above")
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError(f"the simulator was not ready within "
                               f"{SIMULATOR_START_TIMEOUT_S:.0f} s")
    return proc
