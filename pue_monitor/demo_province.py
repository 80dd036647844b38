"""`pue-monitor demo --province`: the simulated province as it would run for real: one
edge per data center (each `pue-monitor run` on its own site, in its own process, with
its own embedded store and web view) shipping to one central (this process, on
``--port``), all on embedded stores under the data dir."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pue_monitor.central.province import TOKEN_ENV, split_province
from pue_monitor.central.tokens import new_token, token_hash
from pue_monitor.config import load_config
from pue_monitor.demo import SERVED_CONFIG, STOP_WAIT_S, simulated, web_port
from pue_monitor.lockfile import FolderInUse, folder_lock
from pue_monitor.simulator.ports import read_raw, write_raw

PROVINCE_DIR = "province"  # in the data dir: the configs and stores of central and edges
LOCK_FILE = "demo-province.lock"
EDGE_START_TIMEOUT_S = 60.0
WEB_LINE = "pue-monitor: web view"
TOKEN_LABEL = "demo"


def run_province_demo(config_path: Path, data_dir: Path, host: str, port: int | None,
                      start_simulator: Callable[..., object]) -> int:
    data_dir = Path(data_dir)
    try:
        with folder_lock(data_dir / LOCK_FILE, "the data dir"):
            return _run(config_path, data_dir, host, port, start_simulator)
    except FolderInUse as exc:
        print(f"pue-monitor: another demo is running: {exc}. Stop it (Ctrl-C) or give this "
              "one another --data-dir.", file=sys.stderr)
        return 1


def _run(config_path: Path, data_dir: Path, host: str, requested: int | None,
         start_simulator: Callable[..., object]) -> int:
    from pue_monitor.central.service import serve

    served_path = data_dir / SERVED_CONFIG
    with simulated(config_path, data_dir, start_simulator) as served:
        if served is None:
            return 1
        port = web_port(host, requested)
        if port == 0:
            from pue_monitor.simulator.ports import free_port
            port = free_port()
        folder = data_dir / PROVINCE_DIR
        central_raw, edges_raw = split_province(read_raw(served_path), served,
                                                f"http://127.0.0.1:{port}")
        central_path = folder / "central.yaml"
        write_raw(central_raw, central_path)
        edge_paths = {}
        for dc, raw in edges_raw.items():
            edge_paths[dc] = folder / f"edge-{dc}.yaml"
            write_raw(raw, edge_paths[dc])
        central = load_config(central_path)
        print(f"pue-monitor: province  {len(edges_raw)} edges (one per data center) and a "
              f"central; configs in {folder.resolve()}", flush=True)
        return serve(central, folder / "central", host, port,
                     started=lambda store, _port: _start_edges(store, folder, edge_paths))


def _start_edges(store, folder: Path, edge_paths: dict[str, Path]) -> Callable[[], None]:
    """A fresh token per data center (the demo's old ones revoked), then each edge as a
    `pue-monitor run` child on a free port; returns what stops them."""
    procs: list[subprocess.Popen] = []

    def stop_all() -> None:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
    try:
        for dc, path in edge_paths.items():
            store.revoke_central_tokens(dc, TOKEN_LABEL, time.time())
            token = new_token()
            store.add_central_token(token_hash(token), dc, TOKEN_LABEL, time.time())
            proc = subprocess.Popen(
                [sys.executable, "-m", "pue_monitor", "run", "-c", str(path), "--data-dir",
                 str(folder / f"edge-{dc}"), "--port", "0"], stdout=subprocess.PIPE,
                text=True, bufsize=1, env={**os.environ, TOKEN_ENV: token})
            procs.append(proc)
            _announce_edge(dc, proc)
    except BaseException:
        stop_all()
        raise
    return stop_all


def _announce_edge(dc: str, proc: subprocess.Popen) -> None:
    """Wait for the edge's web address, print it, and keep forwarding nothing else."""
    seen = threading.Event()

    def forward() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(WEB_LINE):
                print(f"pue-monitor: edge {dc}: {line.split(WEB_LINE, 1)[1].strip()}",
                      flush=True)
                seen.set()
    threading.Thread(target=forward, name=f"edge-{dc}-output", daemon=True).start()
    if not seen.wait(EDGE_START_TIMEOUT_S):
        raise RuntimeError(f"the edge of {dc} did not start within "
                           f"{EDGE_START_TIMEOUT_S:.0f} s")
