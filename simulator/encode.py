"""Canonical values -> the raw images a device serves, driven by its profile (pure).

This is the collectors' decoding run backwards, through the same profile and codec, so
a collector reading the simulator exercises exactly the path it uses on real devices.
"""

from __future__ import annotations

import math

from pue_monitor.collectors.codec import encode_registers, unscale_value
from pue_monitor.config.datatypes import (
    DATA_TYPES,
    REGISTER_BITS,
    SUNSPEC_BASES,
    SUNSPEC_COMMON_MODEL_ID,
    SUNSPEC_END_ID,
    SUNSPEC_MARKER,
    SUNSSF_MAX,
    SUNSSF_MIN,
)
from pue_monitor.config.metrics import COUNTER_METRICS
from pue_monitor.config.profiles import (
    ANY_INDEX,
    IGNORED_INDEX,
    OID_PLACEHOLDER,
    Profile,
    SnmpPoint,
    SunSpecLayout,
)

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


def _rows(point: SnmpPoint, values: dict[Key, float]) -> list[tuple[str, float]]:
    """(OID, value) per row: a scalar's one OID, or a table column's rows, one per known
    value whose labels fill the point's index placeholders (prefixes stripped)."""
    if not point.is_table:
        value = values.get(point_key(point.metric, point.labels))
        return [] if value is None else [(point.oid, value)]
    fixed = {k: v for k, v in point.labels.items() if v != ANY_INDEX}
    holes = [OID_PLACEHOLDER.match(p) for p in point.oid.split(".")]
    out = []
    for (metric, labels), value in values.items():
        given = dict(labels)
        if metric != point.metric or set(given) != set(point.labels) or any(
                given[k] != v for k, v in fixed.items()):
            continue
        parts = []
        for part, hole in zip(point.oid.split("."), holes, strict=True):
            if hole is None:
                parts.append(part)
            elif hole.group(1) == IGNORED_INDEX:
                parts.append("1")
            else:
                parts.append(given[hole.group(1)].removeprefix(hole.group(2) or ""))
        if all(p.isdigit() for p in parts):
            out.append((".".join(parts), value))
    return out


def snmp_table(profile: Profile, values: dict[Key, float]) -> SnmpTable:
    """{oid: (profile type name, raw int or str)} for each point whose value is known."""
    table: SnmpTable = {}
    for point in profile.snmp_points:
        for oid, value in _rows(point, values):
            if not math.isfinite(value):
                continue
            raw = unscale_value(value, point.scale)
            if point.type == "string":
                table[oid_tuple(oid)] = ("string", _format_string(raw))
                continue
            bits, signed, wraps = SNMP_RANGES[point.type]
            wrap = wraps or point.metric in COUNTER_METRICS
            table[oid_tuple(oid)] = (point.type, fit_integer(raw, bits, signed, wrap))
    return table


def modbus_image(profile: Profile, values: dict[Key, float]) -> RegisterImage:
    """{function: {address: word}} for each register field whose value is known.

    Points sharing a SunSpec scale-factor register get one exponent, the finest at
    which all of them fit their type, written into that register.
    """
    image: RegisterImage = {}
    if profile.sunspec is not None and profile.modbus_resolved:
        image[profile.modbus_resolved[0].function] = sunspec_chain(profile.sunspec)
    known = [(p, values[point_key(p.metric, p.labels)]) for p in profile.modbus_resolved
             if values.get(point_key(p.metric, p.labels)) is not None
             and math.isfinite(values[point_key(p.metric, p.labels)])]
    exponents = _scale_exponents(known)
    for point, value in known:
        scale = point.scale
        if point.scale_address is not None:
            exponent = exponents[(point.function, point.scale_address)]
            scale *= 10.0 ** exponent
            image.setdefault(point.function, {})[point.scale_address] = exponent & 0xFFFF
        raw: float = unscale_value(value, scale, point.offset)
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


def sunspec_chain(layout: SunSpecLayout) -> dict[int, int]:
    """The SunSpec chain a device with this layout serves around its model: the marker at
    the highest base below the model, the common model filling the gap, the model's ID and
    length, and the end marker after it."""
    base = max(b for b in SUNSPEC_BASES if b + 4 <= layout.model_at)
    words = dict(enumerate(SUNSPEC_MARKER, start=base))
    words[base + 2] = SUNSPEC_COMMON_MODEL_ID
    words[base + 3] = layout.model_at - (base + 4)
    words[layout.model_at] = layout.models[0]
    words[layout.model_at + 1] = layout.length
    end = layout.model_at + 2 + layout.length
    words.update({end: SUNSPEC_END_ID, end + 1: 0})
    return words


def _fits(raw: float, dtype: str) -> bool:
    spec = DATA_TYPES[dtype]
    bits = spec.registers * REGISTER_BITS
    # The most negative value of a signed type is SunSpec's "not implemented" marker.
    low, high = (-(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1) if spec.signed else \
        (0, (1 << bits) - 2)
    return low <= round(raw) <= high


def _scale_exponents(known: list) -> dict[tuple[int, int], int]:
    """The finest exponent per scale-factor register at which every value it scales fits."""
    shared: dict[tuple[int, int], list] = {}
    for point, value in known:
        if point.scale_address is not None:
            shared.setdefault((point.function, point.scale_address), []).append((point, value))
    out: dict[tuple[int, int], int] = {}
    for key, members in shared.items():
        out[key] = next((e for e in range(SUNSSF_MIN, SUNSSF_MAX + 1)
                         if all(_fits(unscale_value(v, p.scale * 10.0 ** e, p.offset), p.type)
                                for p, v in members)), SUNSSF_MAX)
    return out
