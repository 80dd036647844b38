"""`pue-monitor simulate`: the simulator as a process, on its configured ports or free ones,
its registers kept in a state dir across restarts, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from pue_monitor.config import ConfigError, load_config, load_config_text
from pue_monitor.config.model import Config
from pue_monitor.lockfile import FolderInUse, folder_lock
from pue_monitor.simulator.ports import distinct_ports, on_free_ports, read_raw, write_raw
from pue_monitor.simulator.runner import READY_LINE, Simulator, auto_profile_problem
from pue_monitor.simulator.state import STATE_FILE

LOCK_FILE = "simulator.lock"
CONFIG_FILE = "province.yaml"  # the province as served, in the state dir, with --free-ports
BIND_ATTEMPTS = 3  # a free port can be taken by another process before we bind it


class _Retry(Exception):
    """The ports picked were taken before the simulator bound them."""


def _free_port_configs(source: Path) -> Callable[[], tuple[Config, dict]]:
    """Each call: the province at ``source`` on newly picked free ports (config, raw)."""
    raw = read_raw(source)

    def pick() -> tuple[Config, dict]:
        moved = on_free_ports(raw, distinct_ports(), source.parent)
        text = yaml.safe_dump(moved, allow_unicode=True, sort_keys=False)
        return load_config_text(text, base_dir=source.parent, source=str(source)), moved
    return pick


async def _start(config: Config, control_port: int | None, state_path: Path | None,
                 free_ports: bool) -> Simulator:
    sim = Simulator(config, control_port=control_port, state_path=state_path)
    try:
        await sim.start()
    except OSError as exc:
        if free_ports and exc.errno == errno.EADDRINUSE:
            raise _Retry(str(exc)) from exc
        raise
    return sim


async def _serve(configs: Callable[[], tuple[Config, dict | None]], control_port: int | None,
                 state_path: Path | None, config_out: Path | None, source: Path | None) -> None:
    for attempt in range(1, BIND_ATTEMPTS + 1):
        config, raw = configs()
        try:
            sim = await _start(config, control_port, state_path, raw is not None)
            break
        except _Retry:
            if attempt == BIND_ATTEMPTS:
                raise
    if raw is not None and config_out is not None:
        write_raw(raw, config_out, f"{source} on free ports, written by pue-monitor simulate;"
                  "\nrewritten on every start: edit the original instead.")
        print(f"{'config':<20} {config_out}", flush=True)
    if state_path is not None:
        print(f"{'state':<20} {state_path}", flush=True)
    for line in sim.describe():
        print(line, flush=True)
    print(READY_LINE, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / not POSIX
            pass
    try:
        await stop.wait()
    finally:
        await sim.stop()  # saves the state file one last time
        print("simulator stopped", flush=True)


def _fail(message: str) -> int:
    print(f"simulator: {message}", file=sys.stderr, flush=True)
    return 1


def run_simulator(config: Config | str | Path, control_port: int | None = None, *,
                  state_dir: Path | None = None, free_ports: bool = False,
                  config_out: Path | None = None) -> int:
    """Blocking entry point of `pue-monitor simulate`: serve until SIGINT/SIGTERM.

    free_ports needs the configuration's path (it rewrites the file's own YAML) and writes
    the province as served to config_out (default: CONFIG_FILE in state_dir).
    """
    source = None if isinstance(config, Config) else Path(config)
    try:
        loaded = config if isinstance(config, Config) else load_config(config)
    except ConfigError as exc:
        return _fail(str(exc))
    problem = auto_profile_problem(loaded)
    if problem:
        return _fail(problem)
    if free_ports:
        if source is None:
            return _fail("free ports need the configuration's file")
        if config_out is None and state_dir is None:
            return _fail("--free-ports needs --state-dir or --config-out: the monitor reads "
                         "the ports picked from the configuration written there")
        config_out = config_out or state_dir / CONFIG_FILE  # type: ignore[operator]
        configs: Callable[[], tuple[Config, dict | None]] = _free_port_configs(source)
    else:
        configs = lambda: (loaded, None)  # noqa: E731
    state_path = None if state_dir is None else Path(state_dir) / STATE_FILE
    try:
        if state_dir is None:
            asyncio.run(_serve(configs, control_port, None, config_out, source))
        else:
            with folder_lock(Path(state_dir) / LOCK_FILE, "the simulator state dir"):
                asyncio.run(_serve(configs, control_port, state_path, config_out, source))
    except FolderInUse as exc:
        return _fail(str(exc))
    except ConfigError as exc:
        return _fail(str(exc))
    except (_Retry, OSError) as exc:
        return _fail(getattr(exc, "strerror", None) or str(exc))
    return 0
