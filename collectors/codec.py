"""Pure encoding and decoding of raw device values, driven by the profile's data types."""

from __future__ import annotations

import math
import struct

from pue_monitor.config.datatypes import BYTE_ORDERS, DATA_TYPES, REGISTER_BITS

_REGISTER_MASK = (1 << REGISTER_BITS) - 1


def registers_to_bytes(registers: list[int] | tuple[int, ...], order: str) -> bytes:
    """Reassemble the big-endian byte string of a value from its registers on the wire."""
    word_swap, byte_swap = BYTE_ORDERS[order]
    words = list(reversed(registers)) if word_swap else list(registers)
    if byte_swap:
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return b"".join(w.to_bytes(2, "big") for w in words)


def bytes_to_registers(data: bytes, order: str) -> list[int]:
    """Split a big-endian byte string into registers in the given wire order."""
    word_swap, byte_swap = BYTE_ORDERS[order]
    words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if byte_swap:
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return list(reversed(words)) if word_swap else words


def decode_registers(registers: list[int] | tuple[int, ...], dtype: str, order: str) -> float:
    """Decode one field's registers to its raw number (before scale)."""
    spec = DATA_TYPES[dtype]
    if len(registers) != spec.registers:
        raise ValueError(f"{dtype} needs {spec.registers} registers, got {len(registers)}")
    if any(not 0 <= r <= _REGISTER_MASK for r in registers):
        raise ValueError(f"register value out of range: {list(registers)}")
    (value,) = struct.unpack(">" + spec.struct_code, registers_to_bytes(registers, order))
    return float(value) if spec.is_float else value


def encode_registers(raw: float, dtype: str, order: str) -> list[int]:
    """Encode a raw number (after removing scale) into registers; integers are rounded."""
    spec = DATA_TYPES[dtype]
    value: float | int = raw if spec.is_float else int(round(raw))
    if not spec.is_float:
        bits = spec.registers * REGISTER_BITS
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if spec.signed else (0, (1 << bits) - 1)
        if not low <= value <= high:
            raise ValueError(f"{value} does not fit {dtype}")
    return bytes_to_registers(struct.pack(">" + spec.struct_code, value), order)


def is_not_available(raw: float, sentinels: tuple[float, ...] | list[float]) -> bool:
    """True when a raw value is a declared 'not available' marker, or NaN/inf."""
    if isinstance(raw, float) and not math.isfinite(raw):
        return True
    return any(raw == s for s in sentinels)


def scale_value(raw: float, scale: float, offset: float = 0.0) -> float:
    """Engineering value from raw: raw * scale + offset."""
    return float(raw) * scale + offset


def unscale_value(value: float, scale: float, offset: float = 0.0) -> float:
    """Raw value for an engineering value (the simulator's direction)."""
    return (value - offset) / scale
