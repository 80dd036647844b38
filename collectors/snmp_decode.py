"""SNMP answers -> canonical readings, point by point: pure, no I/O.

A point is a scalar OID or a table column (``...4.{outlet}``): every row present in the
answers becomes one reading, its index parts becoming labels. Each reading says which OID
its value came from, so a fallback chain can be checked against a capture.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from pue_monitor.collectors.codec import is_not_available, scale_value
from pue_monitor.config.profiles import (
    ANY_INDEX,
    IGNORED_INDEX,
    OID_PLACEHOLDER,
    Profile,
    SnmpCondition,
    SnmpPoint,
)
from pue_monitor.store.model import Quality, Reading

# ENTITY-SENSOR-MIB SensorDataScale: units(9) is 10^0, each step a factor of 1000.
ENTITY_SCALE_UNITS = 9
ENTITY_SCALE_STEP_EXPONENT = 3
# A numeric string, possibly followed by a unit ("200 Watts", "1.3%", " 20").
_LEADING_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")

Index = tuple[str, ...]


class Missing:
    """An OID the device does not have (noSuchObject, noSuchInstance, endOfMibView...)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


@dataclass(frozen=True)
class Sourced:
    """A reading and the OID its value was read from."""

    reading: Reading
    oid: str


def to_number(raw: object) -> float | None:
    """A number from an SNMP value: integers as they are, numeric strings parsed."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if isinstance(raw, str):
        match = _LEADING_NUMBER.match(raw)
        return float(match.group(1)) if match else None
    return None


def is_blank(raw: object) -> bool:
    """An SNMP NULL (decoded as an empty string) or a string of blanks."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    return isinstance(raw, str) and not raw.strip()


@dataclass(frozen=True)
class _Pattern:
    text: str
    parts: tuple[str, ...]
    prefix: str  # everything before the first placeholder, with a trailing dot
    regex: re.Pattern | None

    def fill(self, index: Index) -> str:
        it = iter(index)
        return ".".join(next(it) if OID_PLACEHOLDER.match(p) else p for p in self.parts)


@lru_cache(maxsize=4096)
def pattern(oid: str) -> _Pattern:
    """A compiled OID pattern (cached: profiles are fixed for the process' life)."""
    parts = tuple(oid.split("."))
    holes = [i for i, p in enumerate(parts) if OID_PLACEHOLDER.match(p)]
    if not holes:
        return _Pattern(oid, parts, oid, None)
    prefix = ".".join(parts[:holes[0]]) + "."
    body = r"\.".join(r"(\d+)" if i in holes else re.escape(p) for i, p in enumerate(parts))
    return _Pattern(oid, parts, prefix, re.compile(f"^{body}$"))


def _rows(point: SnmpPoint, answers: Mapping[str, object]) -> list[Index]:
    """The table rows present for a point (its main OID or any fallback), in OID order."""
    if not point.is_table:
        return [()]
    found: dict[Index, tuple[int, ...]] = {}
    for candidate in (point.oid, *(a.oid for a in point.fallback)):
        pat = pattern(candidate)
        assert pat.regex is not None
        for oid in answers:
            if oid.startswith(pat.prefix) and (m := pat.regex.match(oid)):
                found.setdefault(m.groups(), tuple(int(g) for g in m.groups()))
    return sorted(found, key=found.__getitem__)


def _labels(point: SnmpPoint, index: Index) -> tuple[tuple[str, str], ...]:
    labels = {k: v for k, v in point.labels.items() if v != ANY_INDEX}
    holes = [OID_PLACEHOLDER.match(p) for p in point.oid.split(".")]
    for match, value in zip((m for m in holes if m), index, strict=True):
        name, prefix = match.group(1), match.group(2) or ""
        if name != IGNORED_INDEX:
            labels[name] = prefix + value
    return tuple(sorted(labels.items()))


def _condition_holds(cond: SnmpCondition, index: Index, answers: Mapping[str, object]) -> bool:
    raw = answers.get(pattern(cond.oid).fill(index), MISSING)
    if isinstance(raw, Missing):
        return False
    if cond.matches is not None:
        return re.search(cond.matches, str(raw)) is not None
    number = to_number(raw)
    for wanted in cond.equals:
        if isinstance(wanted, int) and number is not None and number == wanted:
            return True
        if isinstance(wanted, str) and str(raw).strip().lstrip(".") == wanted.lstrip("."):
            return True
    return False


def _modifier(point: SnmpPoint, index: Index, answers: Mapping[str, object]) -> float | None:
    """The factor from per-row decimal digits or ENTITY-SENSOR scale/precision (1 if none);
    None when the row's factor cannot be read (the value would be off by powers of ten)."""
    factor = 1.0
    if point.decimals is not None:
        digits = to_number(answers.get(pattern(point.decimals).fill(index), MISSING))
        if digits is None:
            return None
        factor /= 10 ** int(digits)
    if point.entity_scale is not None and point.entity_precision is not None:
        scale = to_number(answers.get(pattern(point.entity_scale).fill(index), MISSING))
        precision = to_number(answers.get(pattern(point.entity_precision).fill(index), MISSING))
        if scale is None or precision is None:
            return None
        factor *= 10.0 ** (ENTITY_SCALE_STEP_EXPONENT * (int(scale) - ENTITY_SCALE_UNITS))
        if precision > 0:
            factor /= 10 ** int(precision)
    return factor


def _decode_row(profile: Profile, point: SnmpPoint, index: Index,
                answers: Mapping[str, object], device: str, ts: float) -> Sourced | None:
    labels = _labels(point, index)
    sentinels = (*point.not_available, *profile.snmp_not_available)
    outcome: Sourced | None = None
    for oid, scale in ((point.oid, point.scale), *((a.oid, a.scale) for a in point.fallback)):
        where = pattern(oid).fill(index)
        raw = answers.get(where, MISSING)
        if isinstance(raw, Missing):
            continue  # the model lacks this object: try the next one in the chain
        number = to_number(raw)
        if is_blank(raw):
            # NULL or an empty string where a number belongs: the agent has no value now.
            quality = Quality.NOT_AVAILABLE
        elif number is None:
            quality = Quality.DECODE_ERROR
        elif is_not_available(number, sentinels) or (
                point.valid_min is not None and number < point.valid_min):
            quality = Quality.NOT_AVAILABLE
        else:
            factor = _modifier(point, index, answers)
            if factor is None:
                quality = Quality.DECODE_ERROR
            else:
                value = scale_value(number * factor, scale)
                return Sourced(Reading(ts, device, point.metric, value, labels), where)
        if outcome is None:
            outcome = Sourced(Reading(ts, device, point.metric, None, labels, quality), where)
    return outcome


def decode_points(profile: Profile, answers: Mapping[str, object], device: str,
                  ts: float) -> Iterator[Sourced]:
    """Readings of every point and row present; objects the device lacks are left out."""
    for point in profile.snmp_points:
        for index in _rows(point, answers):
            if not all(_condition_holds(c, index, answers) for c in point.when):
                continue
            got = _decode_row(profile, point, index, answers, device, ts)
            if got is not None:
                yield got
