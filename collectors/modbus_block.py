"""Whole-block decoding: a read's fields compiled once into struct unpackers (pure).

Decoding a block with one ``struct`` call per byte order costs tens of nanoseconds per
value; converting each value on its own (as pymodbus does) costs about a microsecond.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from pue_monitor.collectors.modbus_plan import ModbusRead
from pue_monitor.config.datatypes import BYTE_ORDERS, DATA_TYPES, ByteOrder

if TYPE_CHECKING:
    from pue_monitor.config.profiles import ResolvedModbusPoint

# Compiled layouts kept, at most: a site's pollers hold a few hundred reads at most.
MAX_CACHED_LAYOUTS = 4096


def _layout(order: ByteOrder) -> tuple[bool, str]:
    """(pack the block's words little-endian?, read each value as "<" or ">").

    Reading a value little-endian reverses all its bytes: its word order and its byte
    order together. Packing the words little-endian first swaps the two bytes of every
    register back, so a lone word swap or a lone byte swap is one of the two, not both.
    """
    return order.word_swap != order.byte_swap, "<" if order.word_swap else ">"


# Derived from the one byte-order table (config.datatypes), never written out again.
ORDER_LAYOUT: dict[str, tuple[bool, str]] = {name: _layout(o) for name, o in BYTE_ORDERS.items()}


@dataclass(frozen=True)
class FieldGroup:
    """Fields read by one unpacker from the block packed one way."""

    unpacker: struct.Struct
    little_words: bool
    points: tuple[ResolvedModbusPoint, ...]
    labels: tuple[tuple[tuple[str, str], ...], ...] = ()  # each point's, sorted (Reading form)


@lru_cache(maxsize=256)
def _words(count: int, little: bool) -> struct.Struct:
    return struct.Struct(f"{'<' if little else '>'}{count}H")


def compile_block(read: ModbusRead) -> tuple[FieldGroup, ...]:
    """Unpackers for a read's fields: one per byte order, more only where fields overlap."""
    groups: list[FieldGroup] = []
    open_: dict[tuple[bool, str], tuple[list[str], int, list]] = {}

    def close(key: tuple[bool, str]) -> None:
        fmt, _, points = open_.pop(key)
        groups.append(FieldGroup(struct.Struct(key[1] + "".join(fmt)), key[0], tuple(points),
                                 tuple(tuple(sorted(p.labels.items())) for p in points)))

    for point in sorted(read.points, key=lambda p: p.address):
        key = ORDER_LAYOUT[point.order]
        at = 2 * (point.address - read.address)
        if key in open_ and at < open_[key][1]:
            close(key)  # overlapping fields (the same registers read two ways)
        fmt, cursor, points = open_.setdefault(key, ([], 0, []))
        if at > cursor:
            fmt.append(f"{at - cursor}x")
        fmt.append(DATA_TYPES[point.type].struct_code)
        points.append(point)
        open_[key] = (fmt, at + 2 * point.count, points)
    for key in list(open_):
        close(key)
    return tuple(groups)


# id(read) -> (the read, kept so its id is not reused while cached, its layout). A read
# holds points with label dicts, so it cannot be a hash key itself.
_LAYOUTS: dict[int, tuple[ModbusRead, tuple[FieldGroup, ...]]] = {}


def layout_for(read: ModbusRead) -> tuple[FieldGroup, ...]:
    """compile_block, computed once per read object (a poll decodes the same reads again)."""
    cached = _LAYOUTS.get(id(read))
    if cached is None or cached[0] is not read:
        if len(_LAYOUTS) >= MAX_CACHED_LAYOUTS:
            del _LAYOUTS[next(iter(_LAYOUTS))]  # the oldest; recompiled if asked again
        cached = _LAYOUTS[id(read)] = (read, compile_block(read))
    return cached[1]


def unpack_groups(groups: tuple[FieldGroup, ...], block: list[int] | tuple[int, ...],
                  count: int) -> list[tuple[FieldGroup, tuple]]:
    """(group, its raw values in the order of group.points) for a block of ``count`` registers.

    :raises ValueError: a short block, or a word outside 0..65535.
    """
    if len(block) < count:
        raise ValueError(f"short block: {len(block)} of {count} registers")
    words = block if len(block) == count else block[:count]
    try:
        packed = {False: _words(count, False).pack(*words)}
        out = []
        for group in groups:
            if group.little_words not in packed:
                packed[group.little_words] = _words(count, group.little_words).pack(*words)
            out.append((group, group.unpacker.unpack_from(packed[group.little_words])))
    except struct.error as exc:
        raise ValueError(f"register value out of range: {exc}") from None
    return out


def unpack_block(groups: tuple[FieldGroup, ...], block: list[int] | tuple[int, ...],
                 count: int) -> list[tuple[ResolvedModbusPoint, float | int]]:
    """(point, raw value) for every field of a block of ``count`` registers."""
    return [pair for group, values in unpack_groups(groups, block, count)
            for pair in zip(group.points, values, strict=True)]
