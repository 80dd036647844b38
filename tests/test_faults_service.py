"""The fault suite with the collector service in the test's process (every poller, the
sink, the real SQLite store) against the simulator as a real process on 127.0.0.1, driven
through its control endpoint's fault knobs; a store turned read-only and back; and a wall
clock stepped forward and back.

The wall clock is injected (the service's ``clock``; libfaketime is not installed here):
the pollers' slots run on the real monotonic clock whatever the wall clock does.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pue_monitor.collectors.service import CollectorService
from pue_monitor.config import load_config
from pue_monitor.config.metrics import Role
from pue_monitor.config.model import Config
from pue_monitor.figures.service import meter_energy
from pue_monitor.store.sqlite import Store, _Tx
from tests import suite_figures
from tests.conftest import demo_on_free_ports, free_port
from tests.fault_support import reap, simulator
from tests.simulator_support import GATEWAY, UNITS, http
from tests.store_sql import READINGS

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _reaped():
    yield
    reap()

Action = Callable[[str], Awaitable]  # given the simulator's control URL


def province(tmp_path, interval_s: float) -> tuple[Path, Config]:
    path, _raw = demo_on_free_ports(tmp_path, interval_s=interval_s)
    return path, load_config(path, env={})


async def collecting(path: Path, config: Config, store, steps: list[tuple[float, Action]],
                     clock: Callable[[], float] = time.time) -> CollectorService:
    """The simulator (a process) and the service running; each step's action, then its
    seconds of collection; then a clean stop (the sink flushes). Returns the service."""
    assert config.simulation is not None
    control = f"http://127.0.0.1:{config.simulation.control_port}"
    with simulator(path, config.simulation.control_port, path.parent / f"{path.stem}.log"):
        service = CollectorService(config, store, clock=clock)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            for seconds, action in steps:
                await action(control)
                await asyncio.sleep(seconds)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    return service


async def nothing(_control: str) -> None:
    pass


async def set_fault(control: str, device: str, kind: str, seconds: float | None = None) -> None:
    body = {"kind": kind} if seconds is None else {"kind": kind, "seconds": seconds}
    status, answer = await http("POST", f"{control}/faults/{device}", body)
    assert status == 200, answer


async def clear_faults(control: str, device: str) -> None:
    status, answer = await http("DELETE", f"{control}/faults/{device}")
    assert status == 200, answer


async def device_energy(control: str) -> dict[str, float]:
    """Each simulated meter's true register now (kWh)."""
    status, truth = await http("GET", f"{control}/truth")
    assert status == 200, truth
    return {d: v["energy_kwh"] for d, v in truth["devices"].items()}


# -- the store refuses writes: read-only, then writable again --------------------------

class SwitchableStore(Store):
    """The real store, whose connections are opened read-only (SQLite ``mode=ro``) while
    ``read_only`` is set. A real read-only refusal from SQLite, even as root (where a
    chmod of the file would not stop the writes)."""

    read_only = False

    def _connect(self, immediate: bool = False):
        if not self.read_only:
            return super()._connect(immediate)
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
        self.opened.append(conn)
        return _Tx(conn, immediate)

    @property
    def opened(self) -> list:
        if not hasattr(self, "_opened"):
            self._opened: list = []
        return self._opened


async def test_a_read_only_store_is_caught_up_once_writable_again(tmp_path, caplog):
    path, config = province(tmp_path, interval_s=0.5)
    store = SwitchableStore.open(tmp_path / "data")

    async def read_only(_control: str) -> None:
        store.read_only = True

    async def writable(_control: str) -> None:
        store.read_only = False
    try:
        service = await collecting(path, config, store,
                                   [(3, nothing), (4, read_only), (4, writable)])
        with store._connect() as conn:
            stored = conn.execute("SELECT SUM(polls_total) FROM device_health").fetchone()[0]
            quick = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        for conn in store.opened:
            conn.close()
        store.close()
    stats, sink = service.stats, service.store_sink
    refusals = [r.getMessage() for r in caplog.records if "store write failed" in r.getMessage()]
    assert len(refusals) == 1 and "attempt to write a readonly database" in refusals[0]
    assert sink.write_errors >= 2 and sink.dropped == 0 and sink.backlog == 0
    # Every poll result made it: what the pollers produced is what the store holds.
    assert stats.total.duration_count == stats.stored == stored
    assert quick == "ok"
    suite_figures.fault("read-only store", lost=stats.total.duration_count - stored)


# -- a wall clock stepped forward and back ---------------------------------------------

PHASE_S = 4.0
STEP_S = 3600.0


async def test_a_wall_clock_stepped_forward_and_back(tmp_path, caplog):
    """Phases: normal; one hour ahead; back to the true time (behind the latest readings:
    flagged); ahead again past every reading taken (used again)."""
    path, config = province(tmp_path, interval_s=0.5)
    offset = [0.0]
    bounds: list[tuple[float, float]] = []  # each phase's wall clock as the monitor saw it

    def clock() -> float:
        return time.time() + offset[0]

    def phase(shift: float):
        async def begin(_control: str) -> None:
            if bounds:
                bounds[-1] = (bounds[-1][0], clock())
            offset[0] = shift
            bounds.append((clock(), 0.0))
        return begin

    truth: list[dict[str, float]] = []

    async def remember(control: str) -> None:
        truth.append(await device_energy(control))

    store = Store.open(tmp_path / "data")
    try:
        service = await collecting(path, config, store, [
            (0, remember), (PHASE_S, phase(0.0)), (PHASE_S, phase(STEP_S)),
            (PHASE_S, phase(0.0)), (PHASE_S, phase(STEP_S + 60)), (0, remember)], clock=clock)
        bounds[-1] = (bounds[-1][0], clock())
        true_kwh = {d: truth[1][d] - truth[0][d] for d in truth[0]}
        with store._connect() as conn:
            rows = conn.execute(f"SELECT device, ts, quality FROM {READINGS}").fetchall()
        energy = {}
        for site, device in config.devices():
            if device.role == Role.FACILITY:
                meter = meter_energy(store, config, site, device, bounds[0][0], bounds[-1][1])
                energy[device.id] = meter.energy(meter.spans(bounds[0][0], bounds[-1][1]))
    finally:
        store.close()
    devices = [d.id for _, d in config.devices()]
    by_phase = [{(d, q) for d, ts, q in rows if a <= ts < b} for a, b in bounds]
    # Slots on the monotonic clock: every device polled in every phase, whatever the
    # wall clock did (a wall-clock schedule would stall an hour after the step back).
    for seen in by_phase:
        assert {d for d, _ in seen} == set(devices)
    # Readings of the phase behind the latest ones are flagged, and only those.
    assert [{q for _, q in seen} for seen in by_phase] == [
        {"ok"}, {"ok"}, {"clock_back"}, {"ok"}]
    went_back = [r for r in caplog.records if "wall clock went back" in r.getMessage()]
    assert {r.getMessage().split(":")[0] for r in went_back} == {f"device {d}" for d in devices}
    # No energy spike: what each incomer's counter gives over the run is at most what it
    # truly counted in that time (plus one step of its register), never an hour's worth.
    for device, kwh in energy.items():
        assert 0 < kwh <= true_kwh[device] + 0.01, (device, kwh, true_kwh[device])
    # Durations are on the monotonic clock too: none negative, none an hour long.
    assert 0 <= service.stats.total.duration_sum_s < 60 * service.stats.total.duration_count
    suite_figures.fault("wall clock stepped forward", lost=0)
    suite_figures.fault("wall clock stepped back", lost=0)


# -- devices down, slow, garbage, stuck, reset, flapping; a gateway with dead units ----

# Two seconds, with the demo's 2-second timeout: a healthy device answers in time even on
# a heavily loaded machine (a slower one would be a failed poll, not a late one).
INTERVAL_S = 2.0
RUN_S = 16.0
FAULTS = {  # device -> (fault kind, seconds)
    "prov-pdu-01": ("down", None),
    "prov-pdu-02": ("slow", 5.0),
    "qv-pdu-01": ("garbage", None),
    "qv-pdu-02": ("stuck", None),
    "yp-pdu-01": ("counter_reset", None),
    "prov-chiller": ("down", None),  # Modbus: the port closes
}
FLAPPING = "yp-pdu-02"
DEAD_UNIT = "gw-chiller"
GATEWAY_POLLED = (f"polling: {{{{interval_s: {INTERVAL_S}, timeout_s: 1, retries: 0}}}}\n"
                  "simulation: {{control_port: {control}, sites: {{}}}}\n")


async def test_healthy_devices_stay_on_schedule_beside_faulty_ones(tmp_path):
    (tmp_path / "province").mkdir()
    path, config = province(tmp_path / "province", interval_s=INTERVAL_S)
    port, control_port = free_port(), free_port()
    gw_path = tmp_path / "gateway.yaml"
    gw_path.write_text(GATEWAY_POLLED.format(control=control_port) + GATEWAY.format(
        port=port, snmp_port=free_port(avoid={port, control_port})), encoding="utf-8")
    gateway = load_config(gw_path, env={})

    async def inject(control: str) -> None:
        for device, (kind, seconds) in FAULTS.items():
            await set_fault(control, device, kind, seconds)

    async def flap(control: str) -> None:
        for _ in range(int(RUN_S / (2 * INTERVAL_S))):
            await set_fault(control, FLAPPING, "down")
            await asyncio.sleep(INTERVAL_S)
            await clear_faults(control, FLAPPING)
            await asyncio.sleep(INTERVAL_S)

    async def dead_unit(control: str) -> None:
        await set_fault(control, DEAD_UNIT, "down")

    store, gw_store = Store.open(tmp_path / "data"), Store.open(tmp_path / "gw")
    try:
        gw_task = asyncio.create_task(collecting(gw_path, gateway, gw_store,
                                                 [(0, dead_unit), (RUN_S, nothing)]))
        service = await collecting(path, config, store, [(0, inject), (0, flap)])
        gw_service = await gw_task
        health = store.health()
        gw_health = gw_store.health()
    finally:
        store.close()
        gw_store.close()
    faulty = set(FAULTS) | {FLAPPING}
    counts = service.stats.devices
    healthy = [d.id for _, d in config.devices() if d.id not in faulty]
    # The healthy devices answered every poll (no fault next door made one fail or time
    # out) and went on being polled at their own slots: at least half of them (a device
    # waiting behind the 5-second one would get two). Slots missed by a starved machine are
    # counted, and shown with the figures, not asserted (no timing assertions).
    slots = int(RUN_S / INTERVAL_S)
    assert {d: (counts[d].answers == counts[d].polls, counts[d].polls >= slots // 2)
            for d in healthy} == {d: (True, True) for d in healthy}
    assert {d: health[d].up for d in healthy} == {d: True for d in healthy}
    # Each fault was met: silent, late past the timeout, undecodable, answering.
    found = _errors(tmp_path / "data")
    errors = {d: dict(found.get(d, [])) for d in faulty}
    assert errors["prov-pdu-01"].get("timeout", 0) >= 1
    assert errors["prov-chiller"].get("connection", 0) + errors["prov-chiller"].get(
        "timeout", 0) >= 1
    assert errors["prov-pdu-02"].get("timeout", 0) >= 1
    assert errors["qv-pdu-01"].get("decode", 0) >= 1
    assert counts["qv-pdu-02"].answers == counts["qv-pdu-02"].polls  # stuck still answers
    assert counts["yp-pdu-01"].answers == counts["yp-pdu-01"].polls  # so does a reset one
    flapping = counts[FLAPPING]  # up and down: failed attempts (retried) and answers
    assert flapping.answers > 0 and flapping.retries + flapping.polls - flapping.answers > 0
    gw_counts = gw_service.stats.devices
    alive = [d for d in UNITS if d != DEAD_UNIT] + ["gw-ups"]
    assert {d: gw_counts[d].answers == gw_counts[d].polls > 0 for d in alive} == {
        d: True for d in alive}
    assert gw_counts[DEAD_UNIT].answers == 0 and gw_health[DEAD_UNIT].up is False
    for device, (kind, _s) in FAULTS.items():
        suite_figures.fault(f"device {kind}")
    suite_figures.fault("device flapping")
    suite_figures.fault("gateway unit dead")
    on_time = [counts[d] for d in healthy] + [gw_counts[d] for d in alive]
    suite_figures.measure("fault suite: devices", "healthy devices, polls answered",
                          f"{sum(c.answers for c in on_time)} of {sum(c.polls for c in on_time)}")
    suite_figures.measure("fault suite: devices", "healthy devices, slots skipped / late",
                          f"{sum(c.skipped for c in on_time)} / {sum(c.late for c in on_time)}")


def _errors(data_dir) -> dict[str, list[tuple[str, int]]]:
    conn = sqlite3.connect(data_dir / "pue-monitor.sqlite3")
    try:
        out: dict[str, list] = {}
        for device, kind, n in conn.execute("SELECT device, kind, count FROM poll_errors"):
            out.setdefault(device, []).append((kind, n))
        return out
    finally:
        conn.close()
