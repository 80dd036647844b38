"""Shared by the simulator endpoint tests: a hand-driven clock, a running simulator,
polls through the project's own clients, and the control endpoint over HTTP."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.service import make_client
from pue_monitor.config import load_config, load_config_text
from pue_monitor.config.model import Config, Polling
from pue_monitor.simulator.runner import Simulator
from pue_monitor.store.model import PollResult
from tests.conftest import demo_on_free_ports, free_port

DEMO = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"
# A Wednesday afternoon in Bắc Ninh: a weekday, warm, with a clear daily pattern.
START = datetime(2025, 7, 16, 14, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).timestamp()
HTTP_TIMEOUT_S = 5.0


class FakeClock:
    """The simulator's clock, moved only by the test."""

    def __init__(self, t: float = START) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


def demo_config(tmp_path: Path) -> Config:
    """The demo province on free ports, every port distinct."""
    path, _raw = demo_on_free_ports(tmp_path)
    return load_config(path, env={})


GATEWAY = """
sites:
  - id: gw
    name: {{vi: "Cổng Modbus", en: "Modbus gateway"}}
    devices:
      - {{id: gw-incomer, profile: schneider_pm5xxx, role: facility,
         modbus: {{host: 127.0.0.1, port: {port}, unit: 1}}}}
      - {{id: gw-chiller, profile: eastron_sdm630, role: cooling,
         modbus: {{host: 127.0.0.1, port: {port}, unit: 2}}}}
      - {{id: gw-crah, profile: eastron_sdm630, role: cooling,
         modbus: {{host: 127.0.0.1, port: {port}, unit: 3}}}}
      - {{id: gw-ups, profile: ups_mib, role: it, measurement_point: ups_output,
         snmp: {{host: 127.0.0.1, port: {snmp_port}}}}}
"""
UNITS = {"gw-incomer": 1, "gw-chiller": 2, "gw-crah": 3}  # device -> unit id behind the gateway


def gateway_config() -> Config:
    """Three meters behind one Modbus TCP gateway port (no simulation section: derived)."""
    port = free_port()
    return load_config_text(GATEWAY.format(port=port, snmp_port=free_port(avoid={port})),
                            env={})


@asynccontextmanager
async def running(config: Config, clock=None, tick_s: float = 3600.0):
    """A started simulator. With the default tick_s the background tick never comes
    during a test, so physics moves only on explicit sim.tick() calls."""
    sim = Simulator(config, control_port=0, tick_s=tick_s, clock=clock or FakeClock())
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def advance(sim: Simulator, seconds: float) -> None:
    """Move the fake clock on and tick once, as the background loop would."""
    sim.tick(sim.clock.advance(seconds))


async def poll(sim: Simulator, device_id: str, timeout_s: float = 2.0) -> PollResult:
    """One poll of a device through the collector's real client, decoder and poller."""
    dev = sim.devices[device_id]
    polling = Polling(interval_s=10, timeout_s=timeout_s, retries=0)
    client = make_client(dev.device, polling)

    async def discard(_result: PollResult) -> None:
        pass

    try:
        return await DevicePoller(dev.site_id, dev.device, dev.profile, polling, client,
                                  discard).poll_once()
    finally:
        client.close()


def values(result: PollResult) -> dict[tuple, float | None]:
    """{(metric, labels): value} of a poll's readings."""
    return {(r.metric, r.labels): r.value for r in result.readings}


async def http(method: str, url: str, body: object = None) -> tuple[int, dict]:
    """One request to the control endpoint, off the event loop the simulator runs on."""
    def call() -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:  # noqa: S310
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read())
    return await asyncio.to_thread(call)
