"""Run the monitor: pollers and rollups on an event loop, the web server beside it."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from collectors.service import CollectorService
from config.model import Config
from store.rollup import rollup
from store.sqlite import Store
from web import create_app
from simulator.runner import READY_LINE
from web.server import WebServer

log = logging.getLogger(__name__)

ROLLUP_EVERY_S = 60.0
SIMULATOR_START_TIMEOUT_S = 30.0


async def _rollup_loop(store: Store, config: Config, stop: asyncio.Event,
                       clock: Callable[[], float]) -> None:
    while not stop.is_set():
        try:
            written = await asyncio.to_thread(rollup, store, config, clock())
            if written:
                log.debug("closed %d interval-energy rows", written)
        except Exception:  # a failed rollup is retried on the next pass; polling goes on
            log.exception("interval-energy rollup failed; retrying in %.0f s", ROLLUP_EVERY_S)
        try:
            await asyncio.wait_for(stop.wait(), ROLLUP_EVERY_S)
        except TimeoutError:
            pass


async def _serve(config: Config, store: Store, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    service = CollectorService(config, store)
    await asyncio.gather(service.run(stop), _rollup_loop(store, config, stop, time.time))


def run_monitor(config: Config, data_dir: Path, host: str, port: int,
                announce: Callable[[str], None] = print) -> int:
    """Serve the web view and /metrics and poll every device until SIGINT/SIGTERM."""
    store = Store.open(data_dir)
    server = WebServer(create_app(config, store), host, port)
    server.start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    announce(f"pue-monitor: web view  http://{shown}:{server.port}/")
    announce(f"pue-monitor: metrics   http://{shown}:{server.port}/metrics")
    announce(f"pue-monitor: data in   {Path(data_dir).resolve()}")
    try:
        asyncio.run(_serve(config, store, asyncio.Event()))
    finally:
        server.stop()
        store.close()
    return 0


def start_simulator(config_path: Path, control_port: int,
                    echo: Callable[[str], None] = print) -> subprocess.Popen:
    """Start `pue-monitor simulate` as a child process; return once it says it is ready.

    Waiting for its own ready line (not just any answer on the control port) means a
    simulator left running by an earlier demo is never mistaken for this one.
    """
    proc = subprocess.Popen([sys.executable, "-m", "pue_monitor", "simulate", "-c",
                             str(config_path), "--control-port", str(control_port)],
                            stdout=subprocess.PIPE, text=True, bufsize=1)
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
