"""Gateways and buses: many unit ids on one connection, one of them silent; serial RTU over a
pseudo-terminal pair (socat)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest

from pue_monitor.collectors.errors import DeviceError
from pue_monitor.collectors.modbus_client import ModbusConnection, SerialSettings
from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.service import make_client
from pue_monitor.config import load_config_text
from pue_monitor.simulator.encode import modbus_image, point_key
from pue_monitor.simulator.faults import DeviceFaults
from pue_monitor.simulator.modbus_server import ModbusEndpoint
from tests.tools import require_tool

pytestmark = pytest.mark.integration

# unit id -> (device id, profile)
BUS = {1: ("incomer", "eastron_sdm630"), 2: ("chiller", "chiller_plant_template"),
       3: ("crac", "carlo_gavazzi_em24"), 4: ("it-meter", "sunspec_meter")}
ROLES = {"incomer": "facility", "it-meter": "it, measurement_point: it_input"}
SILENT_UNIT = 2
INTERVAL_S = 0.5
TIMEOUT_S = 0.3
RUN_S = 4.0


def power_image(profile_name: str, watts: float):
    from pue_monitor.config.profiles import load_profiles

    profile = load_profiles()[profile_name]
    return profile, modbus_image(profile, {point_key("active_power_w", {}): watts})


def gateway_config(port: int) -> str:
    devices = "\n".join(
        f"      - {{id: {dev}, profile: {profile}, role: {ROLES.get(dev, 'monitor')},\n"
        f"         modbus: {{transport: rtu_over_tcp, host: 127.0.0.1, port: {port}, "
        f"unit: {unit}, frame_gap_s: 0.005}}}}"
        for unit, (dev, profile) in BUS.items())
    return (f"polling: {{interval_s: {INTERVAL_S}, timeout_s: {TIMEOUT_S}, retries: 0}}\n"
            "sites:\n  - id: s1\n    name: {vi: TTDL, en: DC}\n    devices:\n" + devices + "\n")


async def test_a_silent_unit_behind_an_rtu_gateway_leaves_the_others_on_schedule():
    endpoint = ModbusEndpoint("127.0.0.1", 0, framing="rtu")
    for unit, (_, profile_name) in BUS.items():
        profile, image = power_image(profile_name, 1000.0 * unit)
        served = endpoint.add_unit(unit, profile, DeviceFaults())
        endpoint.update(unit, image)
        if unit == SILENT_UNIT:
            served.faults.set("down")
    await endpoint.start()
    config = load_config_text(gateway_config(endpoint.port))
    shared: dict = {}
    results: dict[str, list] = {dev: [] for dev, _ in BUS.values()}

    async def sink(result) -> None:
        results[result.device].append(result)

    pollers = [DevicePoller(site.id, device, config.profile_of(device),
                            config.polling_for(site, device),
                            make_client(device, config.polling_for(site, device), shared), sink)
               for site, device in config.devices()]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.run(stop)) for p in pollers]
    try:
        await asyncio.sleep(RUN_S)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        for conn in shared.values():
            conn.close()
        await endpoint.stop()
    assert len(shared) == 1  # four unit ids, one connection
    (conn,) = shared.values()
    assert conn.stats.reconnects == 0
    slots = int(RUN_S / INTERVAL_S)
    for unit, (dev, _) in BUS.items():
        if unit == SILENT_UNIT:
            continue
        polls = results[dev]
        assert all(r.ok for r in polls), [r.error for r in polls if not r.ok]
        assert len(polls) >= slots - 3, (dev, len(polls))  # slack for a loaded machine
        power = {r.metric: r.value for r in polls[-1].readings if not r.labels}
        assert power["active_power_w"] == pytest.approx(1000.0 * unit, rel=1e-3)
    silent = results[BUS[SILENT_UNIT][0]]
    assert silent and not any(r.ok for r in silent)
    assert {r.error_kind.value for r in silent} == {"timeout"}
    # It backs off alone: 0.5, 1, 2 s between its polls instead of every slot.
    assert len(silent) < min(len(results[dev]) for u, (dev, _) in BUS.items()
                             if u != SILENT_UNIT)


@pytest.fixture()
def pty_pair(tmp_path):
    """Two linked pseudo-terminals from socat: (server end, client end)."""
    socat = require_tool("socat")
    a, b = tmp_path / "server-tty", tmp_path / "client-tty"
    proc = subprocess.Popen([socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not (a.exists() and b.exists()):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("socat did not create the pseudo-terminal pair")
            time.sleep(0.05)
        yield os.fspath(a), os.fspath(b)
    finally:
        proc.terminate()
        proc.wait(5)


async def test_serial_rtu_over_a_pseudo_terminal_pair(pty_pair):
    server_tty, client_tty = pty_pair
    endpoint = ModbusEndpoint("serial", 0, serial=server_tty, baud=19200)
    for unit, (_, profile_name) in BUS.items():
        profile, image = power_image(profile_name, 500.0 * unit)
        endpoint.add_unit(unit, profile, DeviceFaults())
        endpoint.update(unit, image)
    await endpoint.start()
    conn = ModbusConnection(framing="rtu", serial=SerialSettings(client_tty, 19200, "N", 1),
                            timeout_s=1.0)
    try:
        eastron = await conn.read(4, 0x34, 2, 1)  # 30053 total power, float32
        em24 = await conn.read(4, 0x28, 2, 3)  # INT32 low word first, 0.1 W
        with pytest.raises(DeviceError) as missing:  # nobody at unit 9 on this bus
            await conn.read(4, 0x34, 2, 9)
    finally:
        conn.close()
        await endpoint.stop()
    assert eastron == [0x43FA, 0x0000]  # 500.0 as float32
    assert em24 == [0x3A98, 0x0000]  # 1500.0 W = 15000 = 0x00003A98, low word first
    assert missing.value.code == 11  # the simulated bus answers "target failed to respond"


async def test_probe_over_a_serial_line(pty_pair):
    from pue_monitor.collectors.modbus_probe import probe_modbus
    from pue_monitor.config.profiles import load_profiles

    server_tty, client_tty = pty_pair
    profile = load_profiles()["eastron_sdm630"]
    endpoint = ModbusEndpoint("serial", 0, serial=server_tty, baud=9600)
    endpoint.add_unit(1, profile, DeviceFaults())
    endpoint.update(1, modbus_image(profile, {point_key("active_power_w", {}): 2875.0}))
    await endpoint.start()
    try:
        result = await probe_modbus(f"modbus+serial://{client_tty}?baud=9600&parity=N&unit=1",
                                    profile, timeout_s=1.0)
    finally:
        await endpoint.stop()
    assert result.ok, result.error
    power = {r.metric: r.value for r in result.readings if not r.labels}
    assert power["active_power_w"] == 2875.0


async def test_a_missing_serial_device_is_a_connection_error(tmp_path):
    from pue_monitor.collectors.errors import PollConnectionError

    conn = ModbusConnection(framing="rtu", serial=SerialSettings(str(tmp_path / "ttyUSB9")),
                            timeout_s=0.5)
    with pytest.raises(PollConnectionError):
        await conn.read(3, 0, 1, 1)
