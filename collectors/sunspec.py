"""SunSpec discovery: find the "SunS" marker, walk the model chain to a wanted model, and
move a profile's points onto where that model actually sits on this device.

A SunSpec profile writes its registers for the model's ID register at ``model_at``; a
device may put the chain at another base, or other models before it, so the collector
walks the chain once and shifts every point (and scale-factor register) by the difference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pue_monitor.collectors.errors import DeviceError, PollDecodeError
from pue_monitor.config.datatypes import (
    REGISTER_ADDRESSES,
    SUNSPEC_BASES,
    SUNSPEC_END_ID,
    SUNSPEC_MARKER,
    SUNSPEC_MAX_MODELS,
)
from pue_monitor.config.profiles import ResolvedModbusPoint, SunSpecLayout

# read(function, address, count) -> the registers
ReadRegisters = Callable[[int, int, int], Awaitable[list[int]]]


class SunSpecNotFound(PollDecodeError):
    """The device has no SunSpec chain, or no wanted model in it."""


@dataclass(frozen=True)
class Located:
    """Where the wanted model was found: its ID register's address, its ID and length."""

    base: int
    address: int
    model_id: int
    length: int


async def _marker_at(read: ReadRegisters, function: int, base: int) -> bool:
    try:
        words = await read(function, base, len(SUNSPEC_MARKER))
    except DeviceError:
        return False  # nothing there ("illegal data address"): try the next base
    return tuple(words) == SUNSPEC_MARKER


async def locate_model(read: ReadRegisters, layout: SunSpecLayout, function: int) -> Located:
    """The first model of ``layout.models`` in the chain, trying each SunSpec base.

    :raises SunSpecNotFound: no marker, a chain without a wanted model, or a wanted model
        shorter than the profile's points need.
    """
    wanted = set(layout.models)
    for base in SUNSPEC_BASES:
        if await _marker_at(read, function, base):
            break
    else:
        raise SunSpecNotFound("no SunSpec marker \"SunS\" at "
                              f"{', '.join(map(str, SUNSPEC_BASES))}")
    address = base + len(SUNSPEC_MARKER)
    seen: list[int] = []
    for _ in range(SUNSPEC_MAX_MODELS):
        if address + 2 > REGISTER_ADDRESSES:
            break
        model_id, length = await read(function, address, 2)
        if model_id == SUNSPEC_END_ID:
            break
        if model_id in wanted:
            if length < layout.length:
                raise SunSpecNotFound(f"SunSpec model {model_id} at {address} has length "
                                      f"{length}, the profile needs {layout.length}")
            return Located(base, address, model_id, length)
        seen.append(model_id)
        address += 2 + length
    else:
        raise SunSpecNotFound(f"SunSpec chain at {base}: no end marker after "
                              f"{SUNSPEC_MAX_MODELS} models")
    raise SunSpecNotFound(f"SunSpec chain at {base} has models {seen or 'none'}, none of "
                          f"{sorted(wanted)}")


def rebase(points: tuple[ResolvedModbusPoint, ...], delta: int) -> tuple[ResolvedModbusPoint, ...]:
    """The points moved by ``delta`` registers (their scale-factor registers too)."""
    if delta == 0:
        return points
    return tuple(p.model_copy(update={
        "address": p.address + delta,
        "scale_address": None if p.scale_address is None else p.scale_address + delta})
        for p in points)
