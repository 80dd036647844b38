"""Every Modbus profile through the simulator and back: encode, serve, read, decode.

The simulator encodes canonical values into the profile's register image (scale-factor
registers included) and serves it from a real pymodbus server on 127.0.0.1; the
collector's own connection, poller and decoder read them back.
"""

from __future__ import annotations

import pytest

from pue_monitor.collectors.modbus_client import ModbusConnection
from pue_monitor.collectors.modbus_plan import plan_modbus
from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.config.model import Device, Polling
from pue_monitor.config.profiles import load_profiles
from pue_monitor.simulator.encode import modbus_image, point_key
from pue_monitor.simulator.faults import DeviceFaults
from pue_monitor.simulator.modbus_server import ModbusEndpoint
from pue_monitor.store.model import Quality

pytestmark = pytest.mark.integration

PROFILES = load_profiles()
MODBUS_PROFILES = sorted(n for n, p in PROFILES.items() if p.protocol == "modbus")
UNIT = 7

# A plausible value per metric; labelled points get a little more so none coincide.
SAMPLE = {
    "active_power_w": 12345.6, "active_energy_kwh": 98765.4, "apparent_power_va": 13210.0,
    "current_a": 17.3, "voltage_v": 231.4, "frequency_hz": 49.97, "power_factor": 0.93,
    "load_pct": 61.0, "temperature_c": 7.4,
}


def sample_values(profile) -> dict:
    values = {}
    for i, point in enumerate(profile.modbus_resolved):
        bump = 1.0 if not point.labels or point.metric == "power_factor" else 1.0 + 0.01 * i
        values[point_key(point.metric, point.labels)] = SAMPLE[point.metric] * bump
    return values


def tolerance(point) -> dict:
    if point.scale_address is not None:
        return {"rel": 1e-3}  # an int16 mantissa holds about four digits
    if point.type.startswith("float"):
        return {"rel": 1e-6}
    return {"abs": abs(point.scale) / 2 + 1e-9}  # rounded to the register's step


async def discard(_result) -> None:
    pass


@pytest.mark.parametrize("name", MODBUS_PROFILES)
async def test_simulator_round_trip(name):
    profile = PROFILES[name]
    values = sample_values(profile)
    endpoint = ModbusEndpoint("127.0.0.1", 0)
    endpoint.add_unit(UNIT, profile, DeviceFaults())
    endpoint.update(UNIT, modbus_image(profile, values))
    await endpoint.start()
    conn = ModbusConnection("127.0.0.1", endpoint.port, timeout_s=2.0)
    try:
        device = Device(id="dut", profile=name,
                        modbus={"host": "127.0.0.1", "port": endpoint.port, "unit": UNIT})
        result = await DevicePoller("site", device, profile, Polling(timeout_s=2.0, retries=0),
                                    conn, discard).poll_once()
    finally:
        conn.close()
        await endpoint.stop()
    assert result.ok, result.error
    assert result.point_errors == {}  # no read touched an address the device lacks
    got = {(r.metric, r.labels): r for r in result.readings}
    for point in profile.modbus_resolved:
        reading = got[(point.metric, tuple(sorted(point.labels.items())))]
        assert reading.quality == Quality.OK, point
        expected = values[point_key(point.metric, point.labels)]
        assert reading.value == pytest.approx(expected, **tolerance(point)), point


def test_scale_factor_is_shared_and_written():
    # W and WphA-C share W_SF: one exponent serves the largest of them.
    profile = PROFILES["sunspec_meter"]
    values = {("active_power_w", ()): 250000.0, ("active_power_w", (("phase", "L1"),)): 12.0}
    image = modbus_image(profile, values)[3]
    assert image[40092] == 0x0001  # W_SF = 1: 250000 W is 25000 x 10
    assert image[40088] == 25000
    assert image[40089] == 1  # 12 W at the same exponent: 1 x 10


async def test_exceptions_are_counted_by_code():
    # Unit 9 is not behind this endpoint: every read is answered with exception 11.
    profile = PROFILES["eastron_sdm630"]
    endpoint = ModbusEndpoint("127.0.0.1", 0)
    endpoint.add_unit(UNIT, profile, DeviceFaults())
    await endpoint.start()
    conn = ModbusConnection("127.0.0.1", endpoint.port, timeout_s=2.0)
    try:
        device = Device(id="dut", profile="eastron_sdm630",
                        modbus={"host": "127.0.0.1", "port": endpoint.port, "unit": 9})
        result = await DevicePoller("site", device, profile, Polling(timeout_s=2.0, retries=1),
                                    conn, discard).poll_once()
    finally:
        conn.close()
        await endpoint.stop()
    assert result.error_kind.value == "device_error"
    reads = len(plan_modbus(profile.modbus_resolved, max_gap=profile.modbus_max_gap))
    assert result.point_errors == {"modbus_exception_11": reads}  # one per refused read
    assert conn.stats.exceptions == {11: reads}  # an exception is an answer: not asked again
