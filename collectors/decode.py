"""Raw answers to canonical readings, per profile: pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from math import isfinite

from pue_monitor.collectors.modbus_block import layout_for, unpack_groups
from pue_monitor.collectors.modbus_plan import ModbusRead
from pue_monitor.collectors.snmp_decode import (  # noqa: F401 - re-exported
    MISSING,
    Missing,
    decode_points,
    decode_sourced,
)
from pue_monitor.collectors.totals import (  # noqa: F401 - derive_totals re-exported
    PartsSeen,
    add_totals,
    derive_totals,
)
from pue_monitor.config.datatypes import SUNSSF_MAX, SUNSSF_MIN, SUNSSF_NOT_IMPLEMENTED
from pue_monitor.config.profiles import Profile, Total
from pue_monitor.store.model import Quality, Reading


def decode_snmp(profile: Profile, answers: Mapping[str, object], device: str,
                ts: float, parts_seen: PartsSeen | None = None) -> list[Reading]:
    """Readings for every SNMP point and table row answered (collectors.snmp_decode);
    objects the device lacks are left out, then the profile's totals are derived
    (``parts_seen``: see derive_totals)."""
    readings = [reading for reading, _oid in decode_sourced(profile, answers, device, ts)]
    return add_totals(profile.totals, readings, device, ts, parts_seen)


def decode_modbus(reads: tuple[ModbusRead, ...], blocks: Mapping[int, list[int] | None],
                  device: str, ts: float, totals: list[Total] | tuple = ()) -> list[Reading]:
    """Readings from register blocks (index of the read → registers, or None if it failed).

    Each block is decoded whole (see collectors.modbus_block); a field whose block failed
    gives no reading, one whose scale-factor register is missing or unimplemented is
    not available; a total one of whose parts lay in a failed block is not available.
    """
    scale_words: dict[tuple[int, int], int] = {}
    for i, read in enumerate(reads):
        block = blocks.get(i)
        if read.scale_addresses and block is not None:
            for address in read.scale_addresses:
                if address - read.address < len(block):
                    scale_words[(read.function, address)] = block[address - read.address]
    readings: list[Reading] = []
    append = readings.append
    absent: list[tuple[str, tuple]] = []
    for i, read in enumerate(reads):
        block = blocks.get(i)
        if block is None:
            if totals:
                absent.extend((p.metric, tuple(sorted(p.labels.items())))
                              for p in read.points)
            continue
        try:
            groups = unpack_groups(layout_for(read), block, read.count)
        except ValueError:
            readings.extend(Reading(ts, device, p.metric, None, tuple(sorted(p.labels.items())),
                                    Quality.DECODE_ERROR) for p in read.points)
            continue
        for group, values in groups:
            for point, labels, raw in zip(group.points, group.labels, values, strict=True):
                if (point.not_available and raw in point.not_available) or (
                        type(raw) is float and not isfinite(raw)):
                    append(Reading(ts, device, point.metric, None, labels,
                                   Quality.NOT_AVAILABLE))
                    continue
                scale = point.scale
                if point.scale_address is not None:
                    exponent = sunspec_exponent(scale_words.get((point.function,
                                                                 point.scale_address)))
                    if exponent is None:
                        append(Reading(ts, device, point.metric, None, labels,
                                       Quality.NOT_AVAILABLE))
                        continue
                    scale *= 10.0 ** exponent
                append(Reading(ts, device, point.metric, raw * scale + point.offset, labels))
    return add_totals(totals, readings, device, ts, absent=absent)


def sunspec_exponent(word: int | None) -> int | None:
    """The power of ten a SunSpec scale-factor word stands for; None if unusable."""
    if word is None:
        return None
    value = word - 0x10000 if word >= 0x8000 else word  # an int16
    if value == SUNSSF_NOT_IMPLEMENTED or not SUNSSF_MIN <= value <= SUNSSF_MAX:
        return None
    return value
