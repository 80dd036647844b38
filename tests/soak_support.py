"""The soak run: the demo province for days or weeks of simulated time in minutes.

Time acceleration: the simulator and the monitor's collecting parts share one stepped
clock (the simulator's injectable ``clock``, as its tests use): each step moves it on by
the polling interval, ticks the physics, then polls every device through the real
clients over 127.0.0.1 (SNMP and Modbus), hands the results to the real store sink and
SQLite store, and closes 15-minute blocks with the real roll-up. What it does not run:
the event loop's scheduler (slots on the monotonic clock), the web server and the
InfluxDB export. Shared by tests/test_soak.py (short) and benchmarks/soak.py (long).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from pue_monitor.collectors.service import CollectorService
from pue_monitor.config import load_config
from pue_monitor.figures.periods import period_result
from pue_monitor.figures.retention import prune
from pue_monitor.figures.rollup import rollup, settle_s
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.simulator.runner import Simulator
from pue_monitor.simulator.ports import distinct_ports, on_free_ports, read_raw, write_raw
from pue_monitor.store.sqlite import DB_FILE, Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.yaml"
# A Wednesday in Bắc Ninh, on a 15-minute boundary (the simulator's tests start there).
START = 1_752_649_200.0  # 2025-07-16 14:00 +07:00
ROLLUP_EVERY_S = 3600.0  # simulated: the roll-up runs every simulated hour
WARMUP_STEPS = 24  # resources are measured from here: imports and caches are in by then
NO_BACKGROUND_TICK_S = 10 * 365 * 86_400.0  # physics moves only on the steps


class SteppedClock:
    """The shared clock: moved only by the soak."""

    def __init__(self, t: float = START) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class SoakFigures:
    days: float
    step_s: float
    devices: int
    polls: int = 0
    failed_polls: int = 0
    readings: int = 0
    pruned: int = 0  # readings deleted by retention
    readings_days: int | None = None
    rss_mb: list[float] = field(default_factory=list)  # after warm-up, then at the end
    open_files: list[int] = field(default_factory=list)
    cpu_s: float = 0.0  # process CPU time (user + system) after warm-up
    wall_s: float = 0.0
    db_bytes: int = 0
    # site -> (the monitor's PUE over the whole blocks, the simulator's true PUE)
    pue: dict[str, tuple[float | None, float]] = field(default_factory=dict)
    window: tuple[float, float] = (0.0, 0.0)


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def province(folder: Path, step_s: float, readings_days: int | None) -> Path:
    """The demo province on free ports, polled every ``step_s`` (simulated) seconds,
    keeping raw readings ``readings_days`` (None: for ever)."""
    raw = on_free_ports(read_raw(DEMO), distinct_ports(), DEMO.parent)
    raw["polling"]["interval_s"] = step_s
    if readings_days is not None:
        raw["retention"] = {"readings_days": readings_days}
    path = folder / "province.yaml"
    write_raw(raw, path)
    return path


async def soak(folder: Path, days: float, step_s: float = 300.0,
               readings_days: int | None = None) -> SoakFigures:
    """Run the soak under ``folder`` (config, store); its figures. With ``readings_days``
    retention deletes older raw readings as the monitor would, after each roll-up."""
    if BLOCK_S % step_s:
        raise ValueError(f"the step must divide the 15-minute block: {step_s}")
    config = load_config(province(folder, step_s, readings_days), env={})
    clock = SteppedClock()
    sim = Simulator(config, control_port=0, tick_s=NO_BACKGROUND_TICK_S, clock=clock)
    await sim.start()
    store = Store.open(folder / "data")
    service = CollectorService(config, store, clock=clock)
    steps = int(days * 86_400 / step_s)
    figures = SoakFigures(days, step_s, len(service.pollers), readings_days=readings_days)
    truth: dict[float, dict[str, tuple[float, float]]] = {}
    first = START + step_s  # the first poll; blocks are whole from the next boundary
    window = (first - first % BLOCK_S + BLOCK_S, START + steps * step_s)
    window = (window[0], window[1] - window[1] % BLOCK_S)
    began_wall, began_cpu = time.monotonic(), 0.0
    try:
        for step in range(1, steps + 1):
            clock.t = START + step * step_s
            sim.tick(clock.t)
            if clock.t in (window[0], window[1]):
                truth[clock.t] = {s: (f.kwh, i.kwh) for s, (f, i) in sim.true_energy.items()}
            results = await asyncio.gather(*(p.poll_once() for p in service.pollers))
            for result in results:
                await service.sink(result)
                figures.polls += 1
                figures.failed_polls += not result.ok
                figures.readings += len(result.readings)
            await service.store_sink.flush()
            if clock.t % ROLLUP_EVERY_S == 0:
                await asyncio.to_thread(rollup, store, config, clock.t)
                figures.pruned += await asyncio.to_thread(prune, store, config, clock.t)
            if step == WARMUP_STEPS:
                figures.rss_mb.append(rss_mb())
                figures.open_files.append(open_files())
                began_wall, began_cpu = time.monotonic(), cpu_s()
        # Close the last blocks as the live roll-up would once they have settled (the
        # readings their rules need after them in: settle_s).
        settle = max(settle_s(config, site, site.devices) for site in config.sites)
        await asyncio.to_thread(rollup, store, config, clock.t + settle + BLOCK_S)
        figures.rss_mb.append(rss_mb())
        figures.open_files.append(open_files())
        figures.cpu_s = cpu_s() - began_cpu
        figures.wall_s = time.monotonic() - began_wall
        figures.window = window
        for site in config.sites:
            result = period_result(store, config, site, *window, now=clock.t + 2 * BLOCK_S)
            (f0, i0), (f1, i1) = truth[window[0]][site.id], truth[window[1]][site.id]
            figures.pue[site.id] = (result.pue, (f1 - f0) / (i1 - i0))
    finally:
        for poller in service.pollers:
            poller.client.close()
        store.close()
        await sim.stop()
    figures.db_bytes = sum(p.stat().st_size for p in (folder / "data").glob(DB_FILE + "*"))
    return figures


def describe(f: SoakFigures) -> list[tuple[str, str]]:
    """The figures as the test and the benchmark print them: (what, figures)."""
    worst = max(abs(m / t - 1) for m, t in f.pue.values() if m is not None)
    return [
        ("run", f"{f.days:g} simulated days at {f.step_s:g} s steps, {f.devices} devices: "
                f"{f.polls} polls ({f.failed_polls} failed), {f.readings} readings"),
        ("retention", "off" if f.readings_days is None else
         f"raw readings kept {f.readings_days} day(s): {f.pruned} deleted, "
         f"{f.readings - f.pruned} kept"),
        ("memory", f"{f.rss_mb[0]:.1f} -> {f.rss_mb[-1]:.1f} MB RSS after warm-up"),
        ("open files", f"{f.open_files[0]} -> {f.open_files[-1]} after warm-up"),
        ("CPU", f"{f.cpu_s:.1f} s ({f.cpu_s / f.days:.1f} s per simulated day), wall "
                f"{f.wall_s:.1f} s after warm-up"),
        ("store", f"{f.db_bytes / 1e6:.1f} MB ({f.db_bytes / max(f.readings, 1):.0f} bytes "
                  "per reading)"),
        ("PUE monitor / truth", ", ".join(
            f"{s} {m:.4f} / {t:.4f}" if m is not None else f"{s} none / {t:.4f}"
            for s, (m, t) in sorted(f.pue.items())) + f" (worst relative error {worst:.1e})"),
    ]
