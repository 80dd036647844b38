"""Modbus request planning, computed once per profile: which reads serve which fields.

Pure: no I/O, and nothing of how a block is decoded (collectors.modbus_block compiles a
read's fields into unpackers and keeps them).
"""

from __future__ import annotations

from dataclasses import dataclass

from pue_monitor.config.datatypes import MAX_READ_REGISTERS, REGISTER_FUNCTIONS, max_read_count
from pue_monitor.config.profiles import Profile, ResolvedModbusPoint

# Registers read but not used between two fields, at most, before a read is split.
DEFAULT_MAX_GAP_REGISTERS = 16


@dataclass(frozen=True)
class ModbusRead:
    """One read request and the fields it serves (scale-factor registers included)."""

    function: int
    address: int
    count: int
    points: tuple[ResolvedModbusPoint, ...]
    # Addresses of SunSpec scale-factor registers this read covers.
    scale_addresses: tuple[int, ...] = ()


def _max_span(function: int, max_registers: int) -> int:
    # Bits (FC 1/2) are counted against their own, larger limit.
    return max_registers if function in REGISTER_FUNCTIONS else max_read_count(function)


def plan_modbus(points: tuple[ResolvedModbusPoint, ...] | list[ResolvedModbusPoint],
                max_registers: int = MAX_READ_REGISTERS,
                max_gap: int = DEFAULT_MAX_GAP_REGISTERS) -> tuple[ModbusRead, ...]:
    """Coalesce fields into reads of at most ``max_registers`` with gaps of at most ``max_gap``.

    Fields of different function codes never share a read; fields are kept in address
    order, and a field is never split across two reads. A point's scale-factor register
    is a field of its own, read in the same poll.
    """
    if not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers must be 1..{MAX_READ_REGISTERS}, got {max_registers}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    # (address, count, point or None for a scale-factor register) per function
    by_function: dict[int, list[tuple[int, int, ResolvedModbusPoint | None]]] = {}
    for point in points:
        fields = by_function.setdefault(point.function, [])
        fields.append((point.address, point.count, point))
        if point.scale_address is not None:
            fields.append((point.scale_address, 1, None))  # id(None): shared ones merge
    reads: list[ModbusRead] = []
    for function in sorted(by_function):
        limit = _max_span(function, max_registers)
        unique = {(a, n, id(p)): (a, n, p) for a, n, p in by_function[function]}
        fields = sorted(unique.values(), key=lambda f: (f[0], f[1], f[2] is None))
        group = [fields[0]]
        start, end = fields[0][0], fields[0][0] + fields[0][1]
        for field in fields[1:]:
            new_end = max(end, field[0] + field[1])
            if field[0] - end <= max_gap and new_end - start <= limit:
                end = new_end
                group.append(field)
                continue
            reads.append(_read(function, start, end, group))
            start, end, group = field[0], field[0] + field[1], [field]
        reads.append(_read(function, start, end, group))
    return tuple(reads)


def plan_profile(profile: Profile,
                 points: tuple[ResolvedModbusPoint, ...] | None = None) -> tuple[ModbusRead, ...]:
    """The reads of a Modbus profile's points (``points``: a SunSpec model's, rebased),
    within the model's own limits: registers per read and unmapped registers spanned."""
    return plan_modbus(profile.modbus_resolved if points is None else points,
                       max_registers=profile.modbus_max_registers,
                       max_gap=profile.modbus_max_gap)


def _read(function: int, start: int, end: int,
          group: list[tuple[int, int, ResolvedModbusPoint | None]]) -> ModbusRead:
    points = tuple(p for _, _, p in group if p is not None)
    scales = tuple(sorted({a for a, _, p in group if p is None}))
    return ModbusRead(function, start, end - start, points, scales)

