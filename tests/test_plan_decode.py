"""Modbus request planning and decoding: tables of hand-written inputs and expected outputs.

The SNMP plan (GET batches, walked columns) has its tables in test_snmp_decode.py.
"""

from __future__ import annotations

import pytest

from pue_monitor.collectors.codec import decode_registers, encode_registers
from pue_monitor.collectors.decode import MISSING, decode_modbus, decode_snmp
from pue_monitor.collectors.modbus_plan import plan_modbus
from pue_monitor.config.profiles import ResolvedModbusPoint, load_profiles
from pue_monitor.store.model import Quality

PROFILES = load_profiles()


def point(address, dtype="float32", function=3, metric="active_power_w", phase=None):
    return ResolvedModbusPoint(metric=metric, address=address, function=function, type=dtype,
                               order="ABCD", scale=1.0, offset=0.0,
                               labels={"phase": phase} if phase else {}, not_available=(),
                               manual_register=address)


# (fields as (address, type, function), max_registers, max_gap, expected (fc, address, count))
PLANS = [
    ("one field", [(10, "float32", 3)], 125, 16, [(3, 10, 2)]),
    ("adjacent fields join", [(0, "float32", 4), (2, "float32", 4)], 125, 16, [(4, 0, 4)]),
    ("gap within limit is read through", [(0, "uint16", 3), (10, "uint16", 3)], 125, 16,
     [(3, 0, 11)]),
    ("gap beyond limit splits", [(0, "uint16", 3), (20, "uint16", 3)], 125, 16,
     [(3, 0, 1), (3, 20, 1)]),
    ("functions never share a read", [(0, "float32", 3), (2, "float32", 4)], 125, 16,
     [(3, 0, 2), (4, 2, 2)]),
    ("125-register limit", [(0, "float32", 3), (122, "float32", 3), (124, "float32", 3)], 125,
     200, [(3, 0, 124), (3, 124, 2)]),
    ("a field is never split", [(0, "int64", 3), (3, "int64", 3)], 6, 16,
     [(3, 0, 4), (3, 3, 4)]),
    ("unsorted input, overlapping fields", [(4, "uint16", 3), (0, "int64", 3), (2, "uint16", 3)],
     125, 0, [(3, 0, 5)]),
]


@pytest.mark.parametrize(("name", "fields", "max_registers", "max_gap", "expected"), PLANS,
                         ids=[p[0] for p in PLANS])
def test_plan_modbus(name, fields, max_registers, max_gap, expected):
    points = [point(a, t, f) for a, t, f in fields]
    plan = plan_modbus(points, max_registers=max_registers, max_gap=max_gap)
    assert [(r.function, r.address, r.count) for r in plan] == expected
    assert sorted(p.address for r in plan for p in r.points) == sorted(a for a, _, _ in fields)


def test_plan_rejects_limits_beyond_the_protocol():
    with pytest.raises(ValueError):
        plan_modbus([point(0)], max_registers=126)


# Register words written by hand from IEEE-754 / two's complement, not by the encoder.
WORDS = [
    ("float32 230.0 ABCD", [0x4366, 0x0000], "float32", "ABCD", 230.0),
    ("float32 230.0 CDAB", [0x0000, 0x4366], "float32", "CDAB", 230.0),
    ("float32 230.0 BADC", [0x6643, 0x0000], "float32", "BADC", 230.0),
    ("float32 230.0 DCBA", [0x0000, 0x6643], "float32", "DCBA", 230.0),
    ("float32 -1.5", [0xBFC0, 0x0000], "float32", "ABCD", -1.5),
    ("uint32 0x04030201 DCBA", [0x0102, 0x0304], "uint32", "DCBA", 0x04030201),
    ("int16 -2", [0xFFFE], "int16", "ABCD", -2),
    ("uint16 65534", [0xFFFE], "uint16", "ABCD", 65534),
    ("int32 -100000", [0xFFFE, 0x7960], "int32", "ABCD", -100000),
    ("int64 123456789 Wh", [0x0000, 0x0000, 0x075B, 0xCD15], "int64", "ABCD", 123456789),
    ("uint64 CDAB: low word first", [0xCD15, 0x075B, 0x0000, 0x0000], "uint64", "CDAB",
     123456789),
    ("float64 1.0", [0x3FF0, 0, 0, 0], "float64", "ABCD", 1.0),
]


@pytest.mark.parametrize(("name", "words", "dtype", "order", "value"), WORDS,
                         ids=[w[0] for w in WORDS])
def test_decode_registers(name, words, dtype, order, value):
    assert decode_registers(words, dtype, order) == value
    assert encode_registers(value, dtype, order) == words


def modbus_image(profile, image):
    """Run a profile's plan over a {address: word} image."""
    plan = plan_modbus(profile.modbus_resolved)
    blocks = {i: [image.get(r.address + k, 0) for k in range(r.count)] for i, r in enumerate(plan)}
    return {(r.metric, dict(r.labels).get("phase", "")): r
            for r in decode_modbus(plan, blocks, "dev", 1.0, profile.totals)}


def test_eastron_sdm630_hand_written_image():
    # Input register 0x0034 (manual 30053) total power 12345.5 W = float32 0x4640E6 00;
    # 0x0048 (30073) import 98765.5 kWh = 0x47C0E6C0; 0x0000 (30001) L1 230.0 V = 0x4366.
    got = modbus_image(PROFILES["eastron_sdm630"], {
        0x34: 0x4640, 0x35: 0xE600, 0x48: 0x47C0, 0x49: 0xE6C0, 0x00: 0x4366, 0x01: 0x0000})
    assert got[("active_power_w", "")].value == 12345.5
    assert got[("active_energy_kwh", "")].value == 98765.5
    assert got[("voltage_v", "L1")].value == 230.0


def test_schneider_pm5xxx_hand_written_image():
    # Address 3059 (manual 3060) total power 123.5 kW = float32 0x42F7 0x0000 -> 123500 W.
    # Address 3203 (manual 3204) energy INT64 123456789 Wh -> 123456.789 kWh.
    got = modbus_image(PROFILES["schneider_pm5xxx"], {
        3059: 0x42F7, 3060: 0x0000, 3203: 0, 3204: 0, 3205: 0x075B, 3206: 0xCD15})
    assert got[("active_power_w", "")].value == 123500.0
    assert got[("active_energy_kwh", "")].value == pytest.approx(123456.789)


def test_modbus_nan_is_not_available():
    got = modbus_image(PROFILES["eastron_sdm630"], {0x34: 0x7FC0, 0x35: 0x0000})
    reading = got[("active_power_w", "")]
    assert (reading.value, reading.quality) == (None, Quality.NOT_AVAILABLE)


def by_metric(readings):
    return {(r.metric, dict(r.labels).get("line", dict(r.labels).get("phase", ""))): r
            for r in readings}


def test_snmp_ups_mib_sums_lines_and_scales():
    # upsOutputPower lines 1-3: 10000 + 11000 + 12000 W -> total 33000 W;
    # upsOutputCurrent 0.1 A: 435 -> 43.5 A; upsOutputFrequency 0.1 Hz: 500 -> 50.0 Hz.
    base = "1.3.6.1.2.1.33.1.4.4.1"
    answers = {f"{base}.4.1": 10000, f"{base}.4.2": 11000, f"{base}.4.3": 12000,
               f"{base}.3.1": 435, "1.3.6.1.2.1.33.1.4.2.0": 500}
    got = by_metric(decode_snmp(PROFILES["ups_mib"], answers, "ups", 1.0))
    assert got[("active_power_w", "")].value == 33000
    assert got[("current_a", "1")].value == pytest.approx(43.5)
    assert got[("frequency_hz", "")].value == pytest.approx(50.0)


def test_snmp_single_line_ups_total_is_its_line():
    base = "1.3.6.1.2.1.33.1.4.4.1"
    answers = {f"{base}.4.1": 5000, f"{base}.4.2": MISSING, f"{base}.4.3": MISSING}
    got = by_metric(decode_snmp(PROFILES["ups_mib"], answers, "ups", 1.0))
    assert got[("active_power_w", "")].value == 5000
    assert ("active_power_w", "2") not in got


@pytest.mark.parametrize(("raw", "value", "quality"), [
    (1234, 12340.0, Quality.OK),  # 0.01 kW units -> W
    ("1234", 12340.0, Quality.OK),  # sent as a string
    ("200 Watts", 2000.0, Quality.OK),  # with a unit
    (-1, None, Quality.NOT_AVAILABLE),  # declared "not supported"
    ("n/a", None, Quality.DECODE_ERROR),
])
def test_snmp_rpdu2_power_values(raw, value, quality):
    oid = "1.3.6.1.4.1.318.1.1.26.4.3.1.5.1"
    got = by_metric(decode_snmp(PROFILES["apc_rpdu2"], {oid: raw}, "pdu", 1.0))
    reading = got[("active_power_w", "")]
    assert (reading.value, reading.quality) == (value, quality)


def test_ups_total_not_available_when_a_line_is():
    base = "1.3.6.1.2.1.33.1.4.4.1"
    answers = {f"{base}.4.1": 5000, f"{base}.4.2": "garbage"}
    got = by_metric(decode_snmp(PROFILES["ups_mib"], answers, "ups", 1.0))
    assert got[("active_power_w", "")].quality == Quality.NOT_AVAILABLE


# A Modbus total summed over phases (the SENTRON PAC's active power, one float32 each at
# 25, 27, 29), planned two registers a read so each phase has its own block: refused
# blocks (None) and what the total becomes. A total of the phases that answered would
# be too small; with no phase answered there is no total at all.
PAC_POWER = {25: 1000.0, 27: 2000.0, 29: 3000.0}
REFUSED_PARTS = [
    ("every phase", (), (6000.0, Quality.OK)),
    ("phase L1's block refused", (25,), (None, Quality.NOT_AVAILABLE)),
    ("phase L3's block refused", (29,), (None, Quality.NOT_AVAILABLE)),
    ("a block without a phase's power refused (voltage L1)", (1,), (6000.0, Quality.OK)),
    ("every phase refused", (25, 27, 29), None),
]


@pytest.mark.parametrize(("refused", "want"), [c[1:] for c in REFUSED_PARTS],
                         ids=[c[0] for c in REFUSED_PARTS])
def test_a_refused_block_holding_a_part_leaves_its_total_not_available(refused, want):
    profile = PROFILES["siemens_pac"]
    plan = plan_modbus(profile.modbus_resolved, max_registers=2)
    blocks = {}
    for i, read in enumerate(plan):
        words = encode_registers(PAC_POWER.get(read.address, 0.0), "float32", "ABCD")
        blocks[i] = None if read.address in refused else (words + [0] * read.count)[:read.count]
    got = [(r.value, r.quality) for r in decode_modbus(plan, blocks, "dev", 1.0, profile.totals)
           if r.metric == "active_power_w" and not r.labels]
    assert got == ([] if want is None else [want])
