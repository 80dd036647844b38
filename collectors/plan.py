"""Request planning, computed once at start-up: pure functions, tested on their own."""

from __future__ import annotations

from dataclasses import dataclass

from config.datatypes import MAX_READ_REGISTERS
from config.profiles import ResolvedModbusPoint, SnmpPoint

# Registers read but not used between two fields, at most, before a read is split.
DEFAULT_MAX_GAP_REGISTERS = 16
# OIDs per SNMP GET: small enough for any agent's PDU size, large enough to be quick.
DEFAULT_MAX_OIDS_PER_GET = 10


@dataclass(frozen=True)
class ModbusRead:
    """One read request and the fields it serves."""

    function: int
    address: int
    count: int
    points: tuple[ResolvedModbusPoint, ...]


def plan_modbus(points: tuple[ResolvedModbusPoint, ...] | list[ResolvedModbusPoint],
                max_registers: int = MAX_READ_REGISTERS,
                max_gap: int = DEFAULT_MAX_GAP_REGISTERS) -> tuple[ModbusRead, ...]:
    """Coalesce fields into reads of at most ``max_registers`` with gaps of at most ``max_gap``.

    Fields of different function codes never share a read; fields are kept in address
    order, and a field is never split across two reads.
    """
    if not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers must be 1..{MAX_READ_REGISTERS}, got {max_registers}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    reads: list[ModbusRead] = []
    by_function: dict[int, list[ResolvedModbusPoint]] = {}
    for point in points:
        by_function.setdefault(point.function, []).append(point)
    for function in sorted(by_function):
        fields = sorted(by_function[function], key=lambda p: (p.address, p.count))
        start, end, members = fields[0].address, fields[0].address + fields[0].count, [fields[0]]
        for point in fields[1:]:
            new_end = max(end, point.address + point.count)
            if point.address - end <= max_gap and new_end - start <= max_registers:
                end = new_end
                members.append(point)
                continue
            reads.append(ModbusRead(function, start, end - start, tuple(members)))
            start, end, members = point.address, point.address + point.count, [point]
        reads.append(ModbusRead(function, start, end - start, tuple(members)))
    return tuple(reads)


def plan_snmp_gets(points: tuple[SnmpPoint, ...] | list[SnmpPoint],
                   max_oids: int = DEFAULT_MAX_OIDS_PER_GET) -> tuple[tuple[str, ...], ...]:
    """Batch the distinct OIDs of a profile into GETs of at most ``max_oids``."""
    if max_oids < 1:
        raise ValueError(f"max_oids must be >= 1, got {max_oids}")
    oids = list(dict.fromkeys(p.oid for p in points))
    return tuple(tuple(oids[i:i + max_oids]) for i in range(0, len(oids), max_oids))
