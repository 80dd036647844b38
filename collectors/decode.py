"""Raw answers to canonical readings, per profile: pure, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from math import isfinite

from pue_monitor.collectors.modbus_block import layout_for, unpack_groups
from pue_monitor.collectors.modbus_plan import ModbusRead
from pue_monitor.collectors.snmp_decode import (  # noqa: F401 - re-exported
    MISSING,
    Missing,
    decode_points,
    decode_sourced,
)
from pue_monitor.config.datatypes import SUNSSF_MAX, SUNSSF_MIN, SUNSSF_NOT_IMPLEMENTED
from pue_monitor.config.profiles import Profile, Total
from pue_monitor.store.model import Quality, Reading

# {total's metric: the label sets of the parts a device has shown}, kept per device.
PartsSeen = dict[str, set[tuple]]


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


def add_totals(totals: list[Total] | tuple, readings: list[Reading], device: str,
               ts: float, parts_seen: PartsSeen | None = None,
               absent: Iterable[tuple[str, tuple]] = ()) -> list[Reading]:
    """``readings`` with the totals derive_totals makes. A total the device read as not
    available (it has no such value: a card answering "N/A") gives way to the sum."""
    derived = derive_totals(totals, readings, device, ts, parts_seen, absent)
    if not derived:
        return readings
    made = {r.metric for r in derived}
    return [r for r in readings if not (r.metric in made and not r.labels
                                        and r.quality == Quality.NOT_AVAILABLE)] + derived


def derive_totals(totals: list[Total] | tuple, readings: list[Reading], device: str,
                  ts: float, parts_seen: PartsSeen | None = None,
                  absent: Iterable[tuple[str, tuple]] = ()) -> list[Reading]:
    """Device totals summed over a label (e.g. UPS output lines), unless already read
    (as a value, or as an answer that could not be decoded; not when the device said it
    is not available: then its lines are what it has).

    The lines the device has are summed; if any of them is not a good reading, or is
    missing, the total is not available rather than too small. Missing: listed in
    ``absent`` ((metric, labels) of points asked and not answered, as a refused Modbus
    block's), or seen in an earlier poll and not in this one (``parts_seen``, the label
    sets of each total's parts, kept by the caller across polls and updated here: a
    table row gone, a daisy-chained unit off the chain). A total of fewer parts would
    fall, and on the part's return rise by that part's whole energy register in one step.
    """
    out = []
    gone = set(absent)
    for total in totals:
        if any(r.metric == total.metric and not r.labels
               and r.quality != Quality.NOT_AVAILABLE for r in readings):
            continue
        allowed = {total.sum_over, *total.also}
        parts = [r for r in readings if r.metric == total.metric
                 and _is_part(r.labels, total.sum_over, allowed)]
        missing = any(metric == total.metric and _is_part(labels, total.sum_over, allowed)
                      for metric, labels in gone)
        if parts_seen is not None:
            seen = parts_seen.setdefault(total.metric, set())
            now = {r.labels for r in parts}
            missing = missing or not seen <= now
            seen |= now
        if not parts:
            continue
        if not missing and all(r.quality == Quality.OK and r.value is not None
                               and math.isfinite(r.value) for r in parts):
            out.append(Reading(ts, device, total.metric, sum(r.value for r in parts)))  # type: ignore[misc]
        else:
            out.append(Reading(ts, device, total.metric, None, (), Quality.NOT_AVAILABLE))
    return out


def _is_part(labels: tuple, sum_over: str, allowed: set[str]) -> bool:
    """Whether a reading's labels make it a part of a total summed over ``sum_over``."""
    return any(k == sum_over for k, _ in labels) and all(k in allowed for k, _ in labels)
