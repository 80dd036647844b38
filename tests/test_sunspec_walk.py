"""SunSpec meters found by walking the model chain (collectors.sunspec), not at a fixed
address: chains written by hand from the SunSpec Information Model (marker "SunS", then
models of ID, length L and L registers, ended by 0xFFFF), read from a real pymodbus server
on 127.0.0.1 and, for the refusals, from a register map in memory.

Model 203/204 offsets from the model's ID register (sunspec/models json/model_203.json):
A 2, AphA 3, A_SF 6, PhV 7, PhVphA 8, V_SF 15, Hz 16, Hz_SF 17, W 18, WphA-C 19-21,
W_SF 22, TotWhImp 46-47 (acc32), TotWh_SF 54; L = 105.
"""

from __future__ import annotations

import pytest

from pue_monitor.collectors.errors import DeviceError
from pue_monitor.collectors.modbus_client import ModbusConnection
from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.sunspec import SunSpecNotFound, locate_model
from pue_monitor.config.model import Device, Polling
from pue_monitor.config.profiles import SunSpecLayout, load_profiles
from pue_monitor.simulator.faults import DeviceFaults
from pue_monitor.simulator.modbus_server import ModbusEndpoint
from pue_monitor.store.model import Quality

PROFILES = load_profiles()
SUNS = {0: 0x5375, 1: 0x6E53}  # "SunS", placed at a base below


def chain(base: int, models: list[tuple[int, int, dict[int, int]]]) -> tuple[dict, dict]:
    """The image of a chain at ``base``: (model id, L, {offset: word}) each; returns the
    image and {model id: address of its ID register}."""
    image = {base + k: w for k, w in SUNS.items()}
    where, address = {}, base + 2
    for model_id, length, words in models:
        where[model_id] = address
        image[address], image[address + 1] = model_id, length
        image.update({address + k: w for k, w in words.items()})
        address += 2 + length
    image[address], image[address + 1] = 0xFFFF, 0
    return image, where


METER = {  # offset: word
    2: 3000, 3: 1100, 6: 0xFFFE,  # A 30.00 A total, AphA 11.00 A (A_SF -2)
    7: 2305, 8: 2310, 15: 0xFFFF,  # PhV 230.5 V average, PhVphA 231.0 V (V_SF -1)
    16: 4998, 17: 0xFFFE,  # Hz 49.98 (Hz_SF -2)
    18: 6600, 19: 2000, 20: 2500, 21: 2100, 22: 0x0001,  # W 66000, WphA-C 20000/25000/21000 W
    46: 0x0001, 47: 0xE240, 54: 0x0000,  # TotWhImp 123456 Wh (TotWh_SF 0)
}
EXPECTED = {
    ("current_a", ""): 30.0, ("current_a", "L1"): 11.0, ("voltage_v", ""): 230.5,
    ("voltage_v", "L1"): 231.0, ("frequency_hz", ""): 49.98, ("active_power_w", ""): 66000.0,
    ("active_power_w", "L1"): 20000.0, ("active_power_w", "L2"): 25000.0,
    ("active_power_w", "L3"): 21000.0, ("active_energy_kwh", ""): 123.456,
}
# (case, base, models before the meter, meter model id)
LAYOUTS = [
    ("at 40000 after the common model", 40000, [(1, 66, {})], 203),
    ("at 50000 after a common and a link model", 50000, [(1, 66, {}), (11, 13, {})], 204),
    ("at 0 after a longer common model", 0, [(1, 68, {}), (120, 26, {}), (121, 30, {})], 201),
]


async def _poll(image: dict[int, int]) -> tuple:
    profile = PROFILES["sunspec_meter"]
    endpoint = ModbusEndpoint("127.0.0.1", 0)
    endpoint.add_unit(1, profile, DeviceFaults())
    endpoint.update(1, {3: image})
    await endpoint.start()
    conn = ModbusConnection("127.0.0.1", endpoint.port, timeout_s=2.0)
    device = Device(id="meter", profile="sunspec_meter",
                    modbus={"host": "127.0.0.1", "port": endpoint.port, "unit": 1})

    async def keep(_result) -> None:
        pass

    poller = DevicePoller("site", device, profile, Polling(timeout_s=2.0, retries=0), conn, keep)
    try:
        first = await poller.poll_once()
        second = await poller.poll_once()  # reads where the walk found the model
    finally:
        conn.close()
        await endpoint.stop()
    return first, second


@pytest.mark.integration
@pytest.mark.parametrize(("case", "base", "before", "meter"), LAYOUTS, ids=[c[0] for c in LAYOUTS])
async def test_meter_found_by_walking_the_chain(case, base, before, meter):
    image, _where = chain(base, [*before, (meter, 105, METER)])
    first, second = await _poll(image)
    for result in (first, second):
        assert result.ok, result.error
        got = {(r.metric, next(iter(dict(r.labels).values()), "")): r for r in result.readings}
        for key, value in EXPECTED.items():
            assert got[key].quality == Quality.OK, key
            assert got[key].value == pytest.approx(value, rel=1e-12), key


@pytest.mark.integration
async def test_a_chain_without_a_meter_fails_the_poll_and_says_why():
    image, _ = chain(40000, [(1, 66, {}), (103, 50, {})])  # an inverter only
    first, _second = await _poll(image)
    assert not first.ok and first.error_kind.value == "decode"
    assert "models [1, 103]" in first.error and "201" in first.error


def _reader(image: dict[int, int]):
    async def read(function: int, address: int, count: int) -> list[int]:
        if any(address + i not in image for i in range(count)):
            raise DeviceError("illegal data address", code=2)
        return [image[address + i] for i in range(count)]
    return read


LAYOUT = SunSpecLayout(models=[203, 204, 201, 202], model_at=40070, length=105)


@pytest.mark.parametrize(("case", "image", "found"), [
    ("nothing at 40000, chain at 50000", chain(50000, [(1, 66, {}), (202, 105, {})])[0],
     (50000, 50070, 202)),
    ("marker at 40000 wins over 0", {**chain(0, [(203, 105, {})])[0],
                                     **chain(40000, [(1, 66, {}), (204, 105, {})])[0]},
     (40000, 40070, 204)),
])
async def test_locate_model(case, image, found):
    located = await locate_model(_reader(image), LAYOUT, 3)
    assert (located.base, located.address, located.model_id) == found


@pytest.mark.parametrize(("case", "image", "says"), [
    ("no marker anywhere", {40000: 0x1234, 40001: 0x5678}, 'no SunSpec marker "SunS"'),
    ("no meter model", chain(40000, [(1, 66, {}), (101, 50, {})])[0], "models [1, 101]"),
    ("meter model too short", chain(40000, [(1, 66, {}), (203, 20, {})])[0],
     "length 20, the profile needs 105"),
    ("a chain that never ends", {40000: 0x5375, 40001: 0x6E53,
                                 **{40002 + 2 * i: 7 for i in range(100)},
                                 **{40003 + 2 * i: 0 for i in range(100)}},
     "no end marker after 64 models"),
])
async def test_locate_model_refuses(case, image, says):
    with pytest.raises(SunSpecNotFound) as caught:
        await locate_model(_reader(image), LAYOUT, 3)
    assert says in str(caught.value)
