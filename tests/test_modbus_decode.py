"""Whole-block decoding: every type in every byte order, scale and offset, markers, overlaps.

Words are written by hand (IEEE-754, two's complement), never by the project's encoder.
"""

from __future__ import annotations

import math

import pytest

from pue_monitor.collectors.decode import decode_modbus, sunspec_exponent
from pue_monitor.collectors.modbus_block import ORDER_LAYOUT, compile_block, layout_for
from pue_monitor.collectors.modbus_plan import plan_modbus
from pue_monitor.config.datatypes import BYTE_ORDERS, sentinel_as_raw
from pue_monitor.config.profiles import ResolvedModbusPoint
from pue_monitor.store.model import Quality


def point(address, dtype, order="ABCD", scale=1.0, offset=0.0, na=(), sensor="a"):
    return ResolvedModbusPoint(metric="temperature_c", address=address, function=3, type=dtype,
                               order=order, scale=scale, offset=offset,
                               labels={"sensor": sensor},
                               not_available=tuple(sentinel_as_raw(m, dtype) for m in na),
                               manual_register=address)


def decode(points, words):
    plan = plan_modbus(points, max_gap=125)
    blocks = {i: words[r.address:r.address + r.count] for i, r in enumerate(plan)}
    return {dict(r.labels)["sensor"]: r for r in decode_modbus(plan, blocks, "dev", 1.0)}


# (name, type, order, words on the wire, raw value)
VALUES = [
    # 0x01020304 = 16909060; bytes A=01 B=02 C=03 D=04
    ("uint32 ABCD", "uint32", "ABCD", [0x0102, 0x0304], 0x01020304),
    ("uint32 CDAB", "uint32", "CDAB", [0x0304, 0x0102], 0x01020304),
    ("uint32 BADC", "uint32", "BADC", [0x0201, 0x0403], 0x01020304),
    ("uint32 DCBA", "uint32", "DCBA", [0x0403, 0x0201], 0x01020304),
    # -2 = 0xFFFFFFFE
    ("int32 ABCD", "int32", "ABCD", [0xFFFF, 0xFFFE], -2),
    ("int32 CDAB", "int32", "CDAB", [0xFFFE, 0xFFFF], -2),
    ("int32 BADC", "int32", "BADC", [0xFFFF, 0xFEFF], -2),
    ("int32 DCBA", "int32", "DCBA", [0xFEFF, 0xFFFF], -2),
    # 0x0001020304050607 (below 2^53, so exact as a float reading)
    ("uint64 ABCD", "uint64", "ABCD", [0x0001, 0x0203, 0x0405, 0x0607], 0x0001020304050607),
    ("uint64 CDAB", "uint64", "CDAB", [0x0607, 0x0405, 0x0203, 0x0001], 0x0001020304050607),
    ("uint64 BADC", "uint64", "BADC", [0x0100, 0x0302, 0x0504, 0x0706], 0x0001020304050607),
    ("uint64 DCBA", "uint64", "DCBA", [0x0706, 0x0504, 0x0302, 0x0100], 0x0001020304050607),
    ("int64 -1000", "int64", "ABCD", [0xFFFF, 0xFFFF, 0xFFFF, 0xFC18], -1000),
    # 230.0 = 0x43660000
    ("float32 ABCD", "float32", "ABCD", [0x4366, 0x0000], 230.0),
    ("float32 CDAB", "float32", "CDAB", [0x0000, 0x4366], 230.0),
    ("float32 BADC", "float32", "BADC", [0x6643, 0x0000], 230.0),
    ("float32 DCBA", "float32", "DCBA", [0x0000, 0x6643], 230.0),
    # 1234567.5 = 0x4132D68780000000
    ("float64 ABCD", "float64", "ABCD", [0x4132, 0xD687, 0x8000, 0x0000], 1234567.5),
    ("float64 CDAB", "float64", "CDAB", [0x0000, 0x8000, 0xD687, 0x4132], 1234567.5),
    ("float64 BADC", "float64", "BADC", [0x3241, 0x87D6, 0x0080, 0x0000], 1234567.5),
    ("float64 DCBA", "float64", "DCBA", [0x0000, 0x0080, 0x87D6, 0x3241], 1234567.5),
    ("int16 -1", "int16", "ABCD", [0xFFFF], -1),
    ("int16 byte-swapped 258", "int16", "BADC", [0x0201], 0x0102),
    ("uint16 65535", "uint16", "ABCD", [0xFFFF], 65535),
]


@pytest.mark.parametrize(("name", "dtype", "order", "words", "raw"), VALUES,
                         ids=[v[0] for v in VALUES])
def test_every_type_in_every_order(name, dtype, order, words, raw):
    got = decode([point(0, dtype, order)], words)["a"]
    assert (got.value, got.quality) == (raw, Quality.OK)


def test_the_block_decoder_knows_the_legal_orders_and_no_other():
    # Its layouts are derived from config.datatypes.BYTE_ORDERS, the one legality table;
    # every legal order has hand-written words above.
    assert set(ORDER_LAYOUT) == set(BYTE_ORDERS) == {order for _, _, order, _, _ in VALUES}


def test_a_reads_layout_is_compiled_once_and_kept():
    (read,) = plan_modbus([point(0, "float32"), point(2, "uint16", "CDAB", sensor="b")])
    assert layout_for(read) is layout_for(read)
    # ABCD: big-endian words, read ">"; CDAB: words packed little-endian, read "<", after
    # the 4 bytes of the float32 before it.
    expected = [(">f", False, 0), ("<4xH", True, 2)]
    for layout in (layout_for(read), compile_block(read)):
        assert [(g.unpacker.format, g.little_words, g.points[0].address)
                for g in layout] == expected


@pytest.mark.parametrize(("dtype", "words", "scale", "offset", "value"), [
    ("int16", [0x00FA], 0.1, 0.0, 25.0),  # 250 x 0.1
    ("uint16", [0x0BB8], 0.1, -273.15, 26.85),  # 3000 x 0.1 K -> degC
    ("int32", [0xFFFF, 0xFF9C], 0.01, 1.0, 0.0),  # -100 x 0.01 + 1
])
def test_scale_and_offset(dtype, words, scale, offset, value):
    got = decode([point(0, dtype, scale=scale, offset=offset)], words)["a"]
    assert got.value == pytest.approx(value)


@pytest.mark.parametrize(("dtype", "words", "markers"), [
    ("int16", [0x8000], [0x8000]),  # the manual's bit pattern for a signed type
    ("int16", [0x8000], [-32768]),  # or the number it encodes
    ("uint16", [0xFFFF], [0xFFFF]),
    ("int32", [0x7FFF, 0xFFFF], [0x7FFFFFFF]),
    ("uint64", [0xFFFF] * 4, [0xFFFFFFFFFFFFFFFF]),  # exact, not through a float
    ("float32", [0x7FC0, 0x0000], []),  # NaN needs no marker
    ("float32", [0x7F80, 0x0000], []),  # nor does infinity
    # A float's marker as the manual prints its bits (it never matched before 3 December:
    # kept as the integer 4286578687, no float equals it), or as the value it encodes.
    ("float32", [0xFF7F, 0xFFFF], [0xFF7FFFFF]),
    ("float32", [0xFF7F, 0xFFFF], [-3.4028234663852886e38]),
    ("float64", [0xFFEF, 0xFFFF, 0xFFFF, 0xFFFF], [0xFFEFFFFFFFFFFFFF]),
    ("float32", [0xBF80, 0x0000], [-1]),  # a small integer is the value: -1.0
    ("uint16", [0xFFFF], [-1]),  # -1 for an unsigned type: its pattern, 0xFFFF
    ("uint32", [0xFFFF, 0xFFFF], [-1]),
])
def test_not_available_markers(dtype, words, markers):
    got = decode([point(0, dtype, na=markers)], words)["a"]
    assert (got.value, got.quality) == (None, Quality.NOT_AVAILABLE)


def test_a_marker_only_hides_its_own_value():
    # 2^64 - 2 and the marker 2^64 - 1 are the same float: compared as integers, they differ.
    got = decode([point(0, "uint64", na=[0xFFFFFFFFFFFFFFFF])], [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE])
    assert got["a"].quality == Quality.OK


def test_overlapping_fields_in_one_block():
    # The same two registers read as one float32 and as two uint16.
    points = [point(0, "float32", sensor="f"), point(0, "uint16", sensor="hi"),
              point(1, "uint16", sensor="lo"), point(2, "int16", "BADC", sensor="x")]
    got = decode(points, [0x4366, 0x0000, 0x0180])
    assert (got["f"].value, got["hi"].value, got["lo"].value, got["x"].value) == \
        (230.0, 0x4366, 0, 0x8001 - 0x10000)


def test_a_word_out_of_range_is_a_decode_error_for_its_block():
    got = decode([point(0, "uint16"), point(1, "uint16", sensor="b")], [0x1_0000, 1])
    assert {r.quality for r in got.values()} == {Quality.DECODE_ERROR}


def test_a_short_block_is_a_decode_error():
    plan = plan_modbus([point(0, "float32")])
    (reading,) = decode_modbus(plan, {0: [0x4366]}, "dev", 1.0)
    assert reading.quality == Quality.DECODE_ERROR


@pytest.mark.parametrize(("word", "exponent"), [
    (0x0000, 0), (0x0002, 2), (0xFFFE, -2), (0x000A, 10), (0xFFF6, -10),
    (0x8000, None),  # not implemented
    (0x000B, None), (0xFFF5, None),  # outside -10..10
    (None, None),  # its block was not read
])
def test_sunspec_exponent(word, exponent):
    assert sunspec_exponent(word) == exponent


def test_float_values_stay_exact():
    got = decode([point(0, "float32", scale=1000.0)], [0x3F80, 0x0000])["a"]
    assert got.value == 1000.0 and not math.isnan(got.value)


def bit_point(address, function=1, sensor="a"):
    return ResolvedModbusPoint(metric="load_pct", address=address, function=function,
                               type="bit", order="ABCD", scale=100.0, offset=0.0,
                               labels={"sensor": sensor}, not_available=(),
                               manual_register=address)


def test_status_bits_decode_from_a_bit_block():
    # FC 1: coils 0..2 and 9 in one read (the client hands bits over as 0/1 values).
    points = [bit_point(0, sensor="b0"), bit_point(2, sensor="b2"), bit_point(9, sensor="b9")]
    plan = plan_modbus(points, max_gap=16)
    assert [(r.function, r.address, r.count) for r in plan] == [(1, 0, 10)]
    got = decode_modbus(plan, {0: [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]}, "dev", 1.0)
    assert {dict(r.labels)["sensor"]: r.value for r in got} == {"b0": 100.0, "b2": 0.0,
                                                                 "b9": 100.0}


def test_bit_reads_may_span_more_than_125():
    plan = plan_modbus([bit_point(0, 2), bit_point(1999, 2, sensor="z")], max_gap=2000)
    assert [(r.function, r.address, r.count) for r in plan] == [(2, 0, 2000)]
