"""Modbus targets and profile fields: what is accepted, what is refused and how it is said."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pue_monitor.collectors.service import make_client
from pue_monitor.config.model import Device, ModbusTarget, Polling
from pue_monitor.config.profiles import parse_profile

# (fields, endpoint shown for the device)
GOOD_TARGETS = [
    ({"host": "10.0.0.5"}, "modbus://10.0.0.5:502/unit1"),
    ({"transport": "rtu_over_tcp", "host": "gw", "port": 4001, "unit": 12},
     "modbus+rtu://gw:4001/unit12"),
    ({"transport": "serial", "device": "/dev/ttyUSB0", "baud": 19200, "unit": 3},
     "modbus+serial:///dev/ttyUSB0?baud=19200&unit=3"),
]


@pytest.mark.parametrize(("fields", "endpoint"), GOOD_TARGETS, ids=[e for _, e in GOOD_TARGETS])
def test_targets(fields, endpoint):
    device = Device(id="m", profile="eastron_sdm630", modbus=fields)
    assert device.endpoint == endpoint


@pytest.mark.parametrize(("fields", "says"), [
    ({"transport": "serial", "host": "10.0.0.5"}, "needs device"),
    ({"transport": "serial"}, "needs device"),
    ({"transport": "tcp", "device": "/dev/ttyS0"}, "needs host"),
    ({"transport": "rtu_over_tcp"}, "needs host"),
    ({"host": "h", "unit": 248}, "less than or equal to 247"),
    ({"host": "h", "transport": "udp"}, "transport"),
    ({"transport": "serial", "device": "/dev/ttyS0", "parity": "X"}, "parity"),
    ({"host": "h", "frame_gap_s": -1}, "frame_gap_s"),
])
def test_bad_targets_are_refused(fields, says):
    with pytest.raises(ValidationError) as caught:
        ModbusTarget.model_validate(fields)
    assert says in str(caught.value)


def test_devices_behind_one_gateway_share_one_connection():
    polling = Polling()
    shared: dict = {}
    behind = [Device(id=f"m{u}", profile="eastron_sdm630",
                     modbus={"transport": "rtu_over_tcp", "host": "gw", "port": 4001, "unit": u})
              for u in (1, 2, 3)]
    elsewhere = [
        Device(id="tcp", profile="eastron_sdm630", modbus={"host": "gw", "port": 4001}),
        Device(id="s1", profile="eastron_sdm630",
               modbus={"transport": "serial", "device": "/dev/ttyUSB0", "unit": 1}),
        Device(id="s2", profile="eastron_sdm630",
               modbus={"transport": "serial", "device": "/dev/ttyUSB0", "unit": 2}),
    ]
    clients = [make_client(d, polling, shared) for d in (*behind, *elsewhere)]
    assert clients[0] is clients[1] is clients[2]
    assert clients[3] is not clients[0]  # same port, other framing: another connection
    assert clients[4] is clients[5]  # one RS-485 bus
    assert len(shared) == 3
    assert clients[4].frame_gap_s == pytest.approx(3.5 * 11 / 9600)  # t3.5 at 9600 baud


BASE = {"name": "p", "protocol": "modbus", "description": "d", "source": "s"}


@pytest.mark.parametrize(("extra", "path", "says"), [
    ({"numbering": "modicon", "modbus_points": [
        {"metric": "active_power_w", "register": 30001, "scale_register": 40003}]},
     "modbus_points[0].scale_register", "is read with function 3, the value with 4"),
    ({"numbering": "address", "modbus_points": [
        {"metric": "active_power_w", "register": 0, "scale_register": 70000}]},
     "modbus_points[0].scale_register", "outside 0..65535"),
    ({"numbering": "address", "modbus_points": [
        {"metric": "active_power_w", "register": 0, "not_available": ["n/a"]}]},
     "modbus_points[0].not_available[0]", "valid number"),
    ({"numbering": "address", "modbus_points": [
        {"metric": "active_power_w", "register": 0, "type": "float16"}]},
     "modbus_points[0].type", "unknown data type 'float16'"),
    ({"numbering": "address", "modbus_points": [
        {"metric": "active_power_w", "register": 0, "order": "BCDA"}]},
     "modbus_points[0].order", "unknown byte order"),
    ({"numbering": "modicon", "modbus_points": [
        {"metric": "active_power_w", "register": 30001, "function": 3}]},
     "modbus_points[0].function", "contradicts register 30001"),
    ({"numbering": "address", "modbus_points": [
        {"metric": "load_pct", "register": 0, "function": 3, "type": "bit"}]},
     "modbus_points[0].function", "type bit needs 1 or 2"),
    ({"numbering": "address", "modbus_points": [
        {"metric": "load_pct", "register": 0, "function": 1, "type": "uint16"}]},
     "modbus_points[0].function", "numeric types need 3 or 4"),
    ({"numbering": "modicon", "modbus_points": [
        {"metric": "load_pct", "register": 10001}]},
     "modbus_points[0].function", "numeric types need 3 or 4"),
    ({"modbus_points": [{"metric": "active_power_w", "register": 1}]},
     "", "must say its register numbering"),
])
def test_profile_problems_name_their_field(extra, path, says):
    profile, issues = parse_profile({**BASE, **extra}, "p")
    assert profile is None
    assert any(i.path.endswith(path) and says in i.message for i in issues), issues


def test_point_markers_replace_the_defaults():
    profile, issues = parse_profile({**BASE, "numbering": "address",
                                     "modbus_defaults": {"type": "int16",
                                                         "not_available": [0x8000]},
                                     "modbus_points": [
                                         {"metric": "active_power_w", "register": 0},
                                         {"metric": "active_energy_kwh", "register": 1,
                                          "type": "uint32", "not_available": []}]}, "p")
    assert not issues
    power, energy = profile.modbus_resolved
    assert power.not_available == (-32768,)  # 0x8000 as the int16 it encodes
    assert energy.not_available == ()


def test_status_bits_from_coil_references():
    # 00001 is coil address 0 (FC 1), 10005 discrete input address 4 (FC 2).
    profile, issues = parse_profile({**BASE, "numbering": "modicon", "modbus_points": [
        {"metric": "load_pct", "register": 1, "type": "bit"},
        {"metric": "load_pct", "register": 10005, "type": "bit", "labels": {"sensor": "x"}}]},
        "p")
    assert not issues
    assert [(p.function, p.address, p.count) for p in profile.modbus_resolved] == \
        [(1, 0, 1), (2, 4, 1)]
