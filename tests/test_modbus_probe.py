"""`probe` for Modbus URLs: what each URL means, and one poll against the simulator."""

from __future__ import annotations

import pytest

from pue_monitor.collectors.modbus_probe import ProbeUrlError, parse_modbus_url, probe_modbus, reading_rows
from pue_monitor.config.profiles import load_profiles
from pue_monitor.simulator.encode import modbus_image, point_key
from pue_monitor.simulator.faults import DeviceFaults
from pue_monitor.simulator.modbus_server import ModbusEndpoint

PROFILES = load_profiles()

# (url, expected fields of the target)
URLS = [
    ("modbus://10.0.5.20?unit=1", {"transport": "tcp", "host": "10.0.5.20", "port": 502,
                                    "unit": 1}),
    ("modbus://meter.local:1502?unit=17", {"host": "meter.local", "port": 1502, "unit": 17}),
    ("modbus+rtu://10.0.5.30:4001?unit=3&gap_s=0.05",
     {"transport": "rtu_over_tcp", "port": 4001, "unit": 3, "frame_gap_s": 0.05}),
    ("modbus+serial:///dev/ttyUSB0?baud=9600&unit=1",
     {"transport": "serial", "device": "/dev/ttyUSB0", "baud": 9600, "unit": 1,
      "parity": "E"}),
    ("modbus+serial:///dev/ttyS1?baud=19200&parity=N&stopbits=2&unit=5",
     {"device": "/dev/ttyS1", "baud": 19200, "parity": "N", "stopbits": 2, "unit": 5}),
    ("modbus://[::1]:5020", {"host": "::1", "port": 5020, "unit": 1}),
]


@pytest.mark.parametrize(("url", "fields"), URLS, ids=[u for u, _ in URLS])
def test_probe_url(url, fields):
    target = parse_modbus_url(url)
    assert {k: getattr(target, k) for k in fields} == fields


@pytest.mark.parametrize(("url", "says"), [
    ("snmp://10.0.0.1", "scheme"),
    ("modbus://?unit=1", "no host"),
    ("modbus://h?unit=300", "unit"),
    ("modbus://h?unti=1", "unknown parameter(s) unti"),
    ("modbus://h:port", "port"),
    ("modbus+serial://?baud=9600", "device"),
    ("modbus+serial:///dev/ttyUSB0?parity=X", "parity"),
])
def test_bad_probe_urls_say_what_is_wrong(url, says):
    with pytest.raises(ProbeUrlError) as caught:
        parse_modbus_url(url)
    assert says in str(caught.value)


@pytest.mark.integration
async def test_probe_reads_and_decodes_one_unit():
    profile = PROFILES["carlo_gavazzi_em24"]
    endpoint = ModbusEndpoint("127.0.0.1", 0)
    endpoint.add_unit(4, profile, DeviceFaults())
    endpoint.update(4, modbus_image(profile, {point_key("active_power_w", {}): 2500.0,
                                              point_key("voltage_v", {"phase": "L1"}): 230.2}))
    await endpoint.start()
    try:
        result = await probe_modbus(f"modbus://127.0.0.1:{endpoint.port}?unit=4", profile)
        wrong_unit = await probe_modbus(f"modbus://127.0.0.1:{endpoint.port}?unit=9", profile)
    finally:
        await endpoint.stop()
    assert result.ok, result.error
    rows = {(r["metric"], tuple(r["labels"].items())): r for r in reading_rows(result)}
    assert rows[("active_power_w", ())]["value"] == pytest.approx(2500.0)
    assert rows[("voltage_v", (("phase", "L1"),))]["value"] == pytest.approx(230.2)
    assert set(rows[("active_power_w", ())]) >= {"metric", "value", "labels"}
    assert not wrong_unit.ok and wrong_unit.error_kind.value == "device_error"


@pytest.mark.integration
async def test_probe_command_prints_modbus_readings_as_json(capsys):
    import asyncio
    import json

    from pue_monitor.cli import main

    profile = PROFILES["sunspec_meter"]
    endpoint = ModbusEndpoint("127.0.0.1", 0, framing="rtu")
    endpoint.add_unit(2, profile, DeviceFaults())
    endpoint.update(2, modbus_image(profile, {point_key("active_power_w", {}): 4321.0}))
    await endpoint.start()
    url = f"modbus+rtu://127.0.0.1:{endpoint.port}?unit=2"
    try:
        code = await asyncio.to_thread(main, ["probe", url, "--profile", "sunspec_meter",
                                              "--json", "--timeout", "2"])
        printed = capsys.readouterr().out
        unnamed = await asyncio.to_thread(main, ["probe", url])
    finally:
        await endpoint.stop()
    assert code == 0
    items = {(i["metric"], tuple(i["labels"].items())): i for i in json.loads(printed)}
    assert items[("active_power_w", ())]["value"] == pytest.approx(4321.0)
    assert unnamed == 2 and "needs --profile" in capsys.readouterr().err
