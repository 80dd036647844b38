"""`pue-monitor demo`: the simulated province and the monitor on it, on free ports, with
the simulator's registers kept in the data dir, and one demo per data dir."""

from __future__ import annotations

import contextlib
import errno
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pue_monitor.config import ConfigError, load_config
from pue_monitor.config.model import Config
from pue_monitor.lockfile import FolderInUse, folder_lock
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.simulator.ports import port_is_free
from pue_monitor.simulator.state import STATE_FILE

DEMO_WEB_PORT = 8080  # the demo's web port unless it is busy (then a free one)
LOCK_FILE = "demo.lock"  # in the data dir, held while the demo runs
SIMULATOR_DIR = "simulator"  # in the data dir: the simulator's state file and lock
SERVED_CONFIG = "demo-config.yaml"  # in the data dir: the province on the ports picked
STOP_WAIT_S = 10.0


def web_port(host: str, requested: int | None, announce: Callable[[str], None] = print,
             default: int | None = None) -> int:
    """The port to serve on: as given; else the default (DEMO_WEB_PORT), or 0 (a free
    one) if it is busy."""
    if requested is not None:
        return requested
    default = DEMO_WEB_PORT if default is None else default
    if port_is_free(host, default):
        return default
    announce(f"pue-monitor: port {default} is busy; the web view takes a free port "
             "(printed below; choose one with --port)")
    return 0


def first_figures_at(now: float) -> float:
    """When the first 15-minute block wholly after ``now`` ends (its figures follow)."""
    return (math.floor(now / BLOCK_S) + 2) * BLOCK_S


def where_lines(served_config: Path, source: Path, control_url: str, state: Path,
                now: float) -> list[str]:
    """What the demo prints once the simulator is up (the monitor adds its own addresses)."""
    figures = time.strftime("%H:%M", time.localtime(first_figures_at(now)))
    return [
        f"pue-monitor: config     {served_config} ({source} on free ports)",
        f"pue-monitor: simulator  {control_url}  ground truth: {control_url}/truth",
        f"pue-monitor: sim state  {state} (meter readings kept across restarts)",
        "pue-monitor: live PUE shows within seconds; energy figures (15-minute blocks, daily "
        f"PUE) after the first whole 15-minute block, about {figures}",
        "pue-monitor: stop with Ctrl-C (stops the simulator too)",
    ]


def run_demo(config_path: Path, data_dir: Path, host: str, port: int | None,
             run_monitor: Callable[..., int], start_simulator: Callable[..., object]) -> int:
    """Serve the demo until SIGINT/SIGTERM; refuse a data dir another demo uses."""
    data_dir = Path(data_dir)
    try:
        with folder_lock(data_dir / LOCK_FILE, "the data dir"):
            return _run(config_path, data_dir, host, port, run_monitor, start_simulator)
    except FolderInUse as exc:
        print(f"pue-monitor: another demo is running: {exc}. Stop it (Ctrl-C) or give this "
              "one another --data-dir.", file=sys.stderr)
        return 1


@contextlib.contextmanager
def simulated(config_path: Path, data_dir: Path,
              start_simulator: Callable[..., object]) -> Iterator[Config | None]:
    """The simulated province running on free ports, and the configuration it serves
    (written to the data dir); None, with the error on stderr, when that cannot be read.
    The simulator is stopped on leaving, whatever happened."""
    sim = start_simulator(config_path, state_dir=data_dir / SIMULATOR_DIR, free_ports=True,
                          config_out=data_dir / SERVED_CONFIG)
    try:
        try:
            served = load_config(data_dir / SERVED_CONFIG)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            served = None
        yield served
    finally:
        sim.terminate()  # type: ignore[attr-defined]
        try:
            sim.wait(STOP_WAIT_S)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - whatever went wrong, do not leave it running
            sim.kill()  # type: ignore[attr-defined]


def _run(config_path: Path, data_dir: Path, host: str, requested: int | None,
         run_monitor: Callable[..., int], start_simulator: Callable[..., object]) -> int:
    state_dir = data_dir / SIMULATOR_DIR
    served_path = data_dir / SERVED_CONFIG
    with simulated(config_path, data_dir, start_simulator) as served:
        if served is None:
            return 1
        assert served.simulation is not None
        control = f"http://127.0.0.1:{served.simulation.control_port}"
        for line in where_lines(served_path.resolve(), config_path, control,
                                (state_dir / STATE_FILE).resolve(), time.time()):
            print(line, flush=True)
        # Checked as late as possible: a demo started at the same moment may want 8080 too.
        port = web_port(host, requested)
        try:
            return run_monitor(served, data_dir, host, port)
        except OSError as exc:
            if requested is not None or port == 0 or exc.errno != errno.EADDRINUSE:
                raise
            print(f"pue-monitor: port {port} was taken meanwhile; the web view takes a free "
                  "port (printed below)", flush=True)
            return run_monitor(served, data_dir, host, 0)
