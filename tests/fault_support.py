"""Shared by the fault suite: the simulator and the monitor as real processes on 127.0.0.1,
their /metrics read back, and the store read from outside the monitor (read-only).

The monitor's output goes through a pipe to a file in the test process, so a limit put on
the monitor's file sizes (the disk-full fault) never cuts its own log short.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pue_monitor.store.sqlite import DB_FILE
from tests.conftest import free_port
from tests.store_sql import READINGS

START_TIMEOUT_S = 60.0  # a cold start of the monitor on a loaded two-core machine
STOP_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 10.0  # generous: the machine may be loaded


def get(url: str, timeout: float = HTTP_TIMEOUT_S) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (loopback only)
        return answer.read()


def quiet_for(count, seconds: float):
    """A check for ``until``: true once ``count()`` has returned the same value for
    ``seconds`` (a total that has stopped moving, not one caught between two changes)."""
    seen: list = [object(), time.monotonic()]

    def check() -> bool:
        value, now = count(), time.monotonic()
        if value != seen[0]:
            seen[:] = [value, now]
            return False
        return now - seen[1] >= seconds
    return check


def until(what: str, found, timeout: float, proc: subprocess.Popen | None = None,
          log: Path | None = None, every: float = 0.2):
    """Poll ``found()`` until it returns something truthy; fail naming ``what``. An
    OSError from it (a request that timed out) counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = found()
        except OSError:  # a scrape that timed out on a loaded machine: ask again
            value = None
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"process exited with {proc.returncode} before {what}\n{tail}")
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"no {what} within {timeout:.0f} s\n{tail}")
        time.sleep(every)


class Process:
    """One `python -m pue_monitor ...` process, its output piped into ``log``."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "pue_monitor", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._copy = threading.Thread(target=self._forward, daemon=True)
        self._copy.start()
        STARTED.append(self)

    def _forward(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("ab") as out:
            for line in self.proc.stdout:
                out.write(line)
                out.flush()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        self.log.touch()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill9(self) -> None:
        """SIGKILL: no handler, no flush, no clean stop in the run log."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT_S)
        self._finish()

    def _finish(self) -> None:
        self._copy.join(STOP_TIMEOUT_S)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self) -> int:
        """SIGTERM and wait: the exit code (the process is killed if it hangs)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._finish()
                raise AssertionError(f"{self.proc.args} did not stop on SIGTERM") from None
        self._finish()
        return self.proc.returncode


STARTED: list[Process] = []  # every process a test started, stopped by reap()


def reap() -> None:
    """Stop whatever a failed test left running."""
    while STARTED:
        process = STARTED.pop()
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(5)
        process._finish()


@contextmanager
def simulator(config: Path, control_port: int, log: Path):
    sim = Process(["simulate", "-c", str(config)], log)
    try:
        until("simulator control port", lambda: answers(
            f"http://127.0.0.1:{control_port}/healthz"), START_TIMEOUT_S, sim.proc, log)
        yield sim
    finally:
        sim.stop()


def answers(url: str) -> bool:
    try:
        get(url, 1.0)
        return True
    except OSError:
        return False


class Monitor(Process):
    """`pue-monitor run` on a free port with its data under ``data_dir``."""

    def __init__(self, config: Path, data_dir: Path, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["run", "-c", str(config), "--port", str(self.port), "--data-dir",
                          str(data_dir)], log)

    def wait_ready(self) -> None:
        until("monitor /healthz", lambda: answers(f"{self.url}/healthz"), START_TIMEOUT_S,
              self.proc, self.log)

    def metrics(self) -> dict[str, float]:
        """Unlabelled samples of /metrics, by name (what the fault suite reads)."""
        out = {}
        for family in text_string_to_metric_families(get(f"{self.url}/metrics").decode()):
            for sample in family.samples:
                if not sample.labels:
                    out[sample.name] = sample.value
        return out

    def metric(self, name: str) -> float:
        return self.metrics().get(name, 0.0)


def store_path(data_dir: Path) -> Path:
    return data_dir / DB_FILE


@contextmanager
def reading(data_dir: Path):
    """A read-only connection to the monitor's store (WAL: never in its way)."""
    conn = sqlite3.connect(f"file:{store_path(data_dir)}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def committed_readings(data_dir: Path) -> set[tuple]:
    """Every reading committed so far: (device, metric, labels, ts, quality)."""
    with reading(data_dir) as conn:
        return set(conn.execute(f"SELECT device, metric, labels, ts, quality FROM {READINGS}"))


def polls_stored(data_dir: Path) -> int:
    """Poll results stored so far (each adds one to its device's polls_total, in the same
    transaction as its readings)."""
    with reading(data_dir) as conn:
        return conn.execute("SELECT COALESCE(SUM(polls_total), 0) FROM device_health"
                            ).fetchone()[0]


def integrity(data_dir: Path) -> str:
    """SQLite's own full check of the store file: 'ok' when sound."""
    conn = sqlite3.connect(store_path(data_dir), timeout=10)
    try:
        return "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()
