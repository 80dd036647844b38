"""Canonical values -> the raw images a device serves, driven by its profile (pure).

This is the collectors' decoding run backwards, through the same profile and codec, so
a collector reading the simulator exercises exactly the path it uses on real devices.
"""

from __future__ import annotations

import math

from collectors.codec import encode_registers, unscale_value
from config.datatypes import DATA_TYPES, REGISTER_BITS
from config.metrics import COUNTER_METRICS
from config.profiles import Profile

Key = tuple[str, tuple[tuple[str, str], ...]]
Oid = tuple[int, ...]
SnmpTable = dict[Oid, tuple[str, int | str]]
RegisterImage = dict[int, dict[int, int]]  # function -> address -> 16-bit word
FLOAT32_MAX = 3.4028234663852886e38  # struct refuses to pack anything larger

# SNMP value types: (bits, signed, wraps). Counters wrap like the real object does.
SNMP_RANGES: dict[str, tuple[int, bool, bool]] = {
    "integer": (32, True, False),
    "gauge32": (32, False, False),
    "unsigned32": (32, False, False),
    "counter32": (32, False, True),
    "counter64": (64, False, True),
}


def oid_tuple(oid: str) -> Oid:
    return tuple(int(p) for p in oid.strip(".").split("."))


def fit_integer(raw: float, bits: int, signed: bool, wrap: bool) -> int:
    """Round and bring into the type's range: wrap counters, clamp gauges."""
    value = int(round(raw))
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if wrap:
        value %= 1 << bits
        return value - (1 << bits) if signed and value > high else value
    return min(high, max(low, value))


def _format_string(raw: float) -> str:
    # Devices that report numbers as text print a few decimals, not a float repr.
    return f"{raw:.3f}".rstrip("0").rstrip(".") if math.isfinite(raw) else "NaN"


def point_key(metric: str, labels: dict[str, str]) -> Key:
    return metric, tuple(sorted(labels.items()))


def snmp_table(profile: Profile, values: dict[Key, float]) -> SnmpTable:
    """{oid: (profile type name, raw int or str)} for each point whose value is known."""
    table: SnmpTable = {}
    for point in profile.snmp_points:
        value = values.get(point_key(point.metric, point.labels))
        if value is None or not math.isfinite(value):
            continue
        raw = unscale_value(value, point.scale)
        if point.type == "string":
            table[oid_tuple(point.oid)] = ("string", _format_string(raw))
            continue
        bits, signed, wraps = SNMP_RANGES[point.type]
        wrap = wraps or point.metric in COUNTER_METRICS
        table[oid_tuple(point.oid)] = (point.type, fit_integer(raw, bits, signed, wrap))
    return table


def modbus_image(profile: Profile, values: dict[Key, float]) -> RegisterImage:
    """{function: {address: word}} for each register field whose value is known."""
    image: RegisterImage = {}
    for point in profile.modbus_resolved:
        value = values.get(point_key(point.metric, point.labels))
        if value is None or not math.isfinite(value):
            continue
        raw: float = unscale_value(value, point.scale, point.offset)
        spec = DATA_TYPES[point.type]
        if spec.is_float:
            raw = max(-FLOAT32_MAX, min(FLOAT32_MAX, raw)) if spec.registers == 2 else raw
        else:
            raw = fit_integer(raw, spec.registers * REGISTER_BITS, spec.signed,
                              point.metric in COUNTER_METRICS)
        words = encode_registers(raw, point.type, point.order)
        block = image.setdefault(point.function, {})
        for i, word in enumerate(words):
            block[point.address + i] = word
    return image
