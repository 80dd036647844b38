"""`pue-monitor demo` as real processes on 127.0.0.1: two at once, one per data dir, and a
restart that continues every energy counter (no step back, no reset, PUE still true)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from pue_monitor.config import load_config
from pue_monitor.config.metrics import ENERGY_METRIC
from pue_monitor.demo import LOCK_FILE, SERVED_CONFIG
from pue_monitor.figures.service import meter_energy
from pue_monitor.store.base import series_over
from pue_monitor.store.sqlite import Store
from tests.conftest import free_port
from tests.test_end_to_end import get_json

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 60  # two demos and other engineers' tests share two cores
STOP_TIMEOUT_S = 20
TOLERANCE = 0.01  # the acceptance: within 1 % of ground truth
TRUTH_LINE = re.compile(r"ground truth: (http://127\.0\.0\.1:\d+)/truth")


class Demo:
    """One `pue-monitor demo` process, its output in a file."""

    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.data_dir, self.port, self.log_path = data_dir, port, log
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pue_monitor", "demo", "--data-dir", str(data_dir),
                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    @property
    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _until(self, what: str, found, timeout: float = START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (value := found()) is not None:
                return value
            if self.proc.poll() is not None:
                raise AssertionError(f"demo exited with {self.proc.returncode} before {what}:"
                                     f"\n{self.output[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"no {what} within {timeout} s:\n{self.output[-3000:]}")

    def control(self) -> str:
        """The simulator's control URL, as the demo prints it."""
        return self._until("ground-truth line", lambda: (
            m.group(1) if (m := TRUTH_LINE.search(self.output)) else None))

    def status_with_data(self) -> dict:
        """/api/v1/status once every site has a live and a 15-minute PUE."""
        def ready() -> dict | None:
            try:
                status = get_json(f"{self.url}/api/v1/status")
            except OSError:
                return None
            return status if all(s["instant"]["pue"] is not None
                                 and s["windows"]["15m"]["pue"] is not None
                                 for s in status["sites"]) else None
        return self._until("status with data", ready)

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"demo did not stop within {STOP_TIMEOUT_S} s") from None


@contextmanager
def demo(data_dir: Path, log: Path, port: int | None = None):
    d = Demo(data_dir, port or free_port(), log)
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            d.stop()


def test_two_demos_started_at_once_both_come_up(tmp_path):
    first_port = free_port()
    with demo(tmp_path / "a", tmp_path / "a.log", first_port) as a, \
            demo(tmp_path / "b", tmp_path / "b.log", free_port(avoid={first_port})) as b:
        for d in (a, b):
            status = d.status_with_data()
            assert {s["id"] for s in status["sites"]} == {
                "bn-provincial", "que-vo-dc", "yen-phong-dc"}
            assert get_json(f"{d.control()}/truth")["sites"].keys() == {
                "bn-provincial", "que-vo-dc", "yen-phong-dc"}
        assert a.control() != b.control()  # each simulator on its own free ports
        for d in (a, b):
            assert (d.data_dir / SERVED_CONFIG).is_file()
            assert f"web view  {d.url}/" in d.output


def test_a_second_demo_in_the_same_data_dir_is_refused(tmp_path):
    first_port = free_port()
    with demo(tmp_path / "data", tmp_path / "a.log", first_port) as a:
        a.status_with_data()
        with demo(tmp_path / "data", tmp_path / "b.log", free_port(avoid={first_port})) as b:
            assert b.proc.wait(START_TIMEOUT_S) == 1
            assert (f"another demo is running: the data dir {tmp_path / 'data'} is in use by "
                    f"another process (pid {a.proc.pid}, lock file "
                    f"{tmp_path / 'data' / LOCK_FILE})") in b.output
            assert "simulator ready" not in b.output  # refused before binding anything
        assert a.proc.poll() is None
        a.status_with_data()
        assert get_json(f"{a.control()}/truth")["sites"]


def _truth_energy(control: str) -> dict[str, tuple[float, float]]:
    sites = get_json(f"{control}/truth")["sites"]
    return {sid: (s["facility_energy_kwh"], s["it_energy_kwh"]) for sid, s in sites.items()}


def test_a_restarted_demo_continues_its_counters_and_its_pue(tmp_path):
    data = tmp_path / "data"
    with demo(data, tmp_path / "first.log") as first:
        before = _truth_energy(first.control())  # before the monitor's first poll
        first.status_with_data()
        time.sleep(6)  # a poll more (the demo polls every 5 s)
        assert first.stop() == 0
    assert "simulator stopped" in first.output
    with demo(data, tmp_path / "second.log") as second:
        second.control()
        assert "simulator registers continued from" in second.output
        second.status_with_data()
        time.sleep(11)  # two polls after the restart
        status = get_json(f"{second.url}/api/v1/status")
        after = _truth_energy(second.control())
        assert second.stop() == 0

    # The 15-minute window spans both runs and the restart between them.
    for site in status["sites"]:
        facility = after[site["id"]][0] - before[site["id"]][0]
        it = after[site["id"]][1] - before[site["id"]][1]
        assert site["windows"]["15m"]["pue"] == pytest.approx(facility / it, rel=TOLERANCE), \
            site["id"]

    config = load_config(data / SERVED_CONFIG)
    store = Store.open(data)
    counted = set()
    try:
        for site in config.sites:
            for device in site.devices:
                key = (device.id, ENERGY_METRIC)
                _, values = series_over(store, [key], 0, time.time() + 60)[key]
                if len(values) == 0:
                    continue
                counted.add(device.id)
                assert len(values) >= 4, device.id  # polls from both runs
                assert np.all(np.diff(values) >= 0), (device.id, values)
                if device.role.value not in ("monitor", "water"):
                    energy = meter_energy(store, config, site, device, 0, time.time() + 60)
                    # Neither a reset nor a step-back: the registers went on.
                    assert [f.kind for f in energy.counter.flags] == [], device.id
    finally:
        store.close()
    # Every meter with an energy register was checked (the UPS-MIB has none: power only).
    assert counted == {d.id for _, d in config.devices() if d.profile != "ups_mib"}
