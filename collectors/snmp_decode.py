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
from math import isfinite

from pue_monitor.config.profiles import (
    ANY_INDEX,
    IGNORED_INDEX,
    OID_PLACEHOLDER,
    SNMP_UNSIGNED_TYPES,
    Profile,
    SnmpPoint,
)
from pue_monitor.store.model import Quality, Reading

# ENTITY-SENSOR-MIB SensorDataScale: units(9) is 10^0, each step a factor of 1000.
ENTITY_SCALE_UNITS = 9
ENTITY_SCALE_STEP_EXPONENT = 3
# The ranges the MIBs allow (RFC 3433: SensorDataScale yocto(1)..yotta(17),
# SensorPrecision -8..9); per-row decimal digits are read in the precision's 0..9. An
# answer outside them is a decode error: 10 ** 2**31 would stall the event loop.
ENTITY_SCALE_RANGE = (1, 17)
PRECISION_RANGE = (-8, 9)
DECIMALS_RANGE = (0, 9)


def _within(number: float, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= number <= bounds[1]
# A numeric string, possibly followed by a unit ("200 Watts", "1.3%", " 20").
_LEADING_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
# What may not follow that number: a comma and a digit ("20,5" with a decimal comma or
# "1,234" with a thousands separator: which one cannot be told) or an x and a hex digit
# ("0x1F"). Reading the number before them would silently cut the value.
_CUT_NUMBER = re.compile(r",\d|[xX][0-9a-fA-F]")

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
        if match is None or _CUT_NUMBER.match(raw, match.end(1)):
            return None
        return float(match.group(1))
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
    holes: tuple[bool, ...] = ()  # per part: a placeholder?
    # Every placeholder at the end (``...4.{outlet}``, the usual table column): rows are
    # then found by cutting that many parts off an answer's OID, no regex needed.
    trailing: int = 0

    def fill(self, index: Index) -> str:
        if self.regex is None:
            return self.text
        if self.trailing:
            return self.prefix + ".".join(index)
        it = iter(index)
        return ".".join(next(it) if hole else p for p, hole in zip(self.parts, self.holes))


@lru_cache(maxsize=4096)
def pattern(oid: str) -> _Pattern:
    """A compiled OID pattern (cached: profiles are fixed for the process' life)."""
    parts = tuple(oid.split("."))
    holes = tuple(OID_PLACEHOLDER.match(p) is not None for p in parts)
    if not any(holes):
        return _Pattern(oid, parts, oid, None)
    first = holes.index(True)
    prefix = ".".join(parts[:first]) + "."
    body = r"\.".join(r"(\d+)" if hole else re.escape(p) for p, hole in zip(parts, holes))
    trailing = len(parts) - first if all(holes[first:]) else 0
    return _Pattern(oid, parts, prefix, re.compile(f"^{body}$"), holes, trailing)


# -- a profile's points, compiled once ---------------------------------------------------
# Decoding runs on every poll of every device: what depends on the profile only (label
# templates, the fallback chain's OIDs, sentinels, compiled conditions) is worked out once
# per profile, and rows are found by cutting each answer's OID once, not by matching every
# point's pattern against every answer.


@dataclass(frozen=True)
class _Condition:
    where: _Pattern
    regex: re.Pattern | None  # ``matches``; None when the condition is ``equals``
    equals: tuple[int | str, ...]


@dataclass(frozen=True)
class _PointPlan:
    point: SnmpPoint
    metric: str
    candidates: tuple[_Pattern, ...]  # the point's OID and its fallbacks, in order
    scales: tuple[float, ...]  # of each candidate
    scalar_oids: tuple[str, ...]  # the candidates' OIDs, for a point with no index
    static_labels: dict[str, str]  # the profile's labels, ANY_INDEX ones left out
    hole_labels: tuple[tuple[str, str], ...]  # per index part: (label name, value prefix)
    scalar_labels: tuple[tuple[str, str], ...]  # the labels of a point with no index
    sentinels: tuple[float, ...]
    valid_min: float | None
    conditions: tuple[_Condition, ...]
    decimals: _Pattern | None
    entity: tuple[_Pattern, _Pattern] | None  # (scale, precision)
    # One scalar OID, no fallback, condition nor factor: most points of most profiles,
    # decoded by decode_sourced itself when the answer is a plain integer.
    plain: bool = False
    # The point's type cannot be negative (an agent sending a negative INTEGER for a
    # Gauge32 would otherwise give, say, -2,147,483 kWh as a good reading).
    unsigned: bool = False


@dataclass(frozen=True)
class DecodePlan:
    """How to decode one profile's answers (built by :func:`decode_plan`)."""

    points: tuple[_PointPlan, ...]
    trailing: frozenset[int]  # placeholder counts of the trailing-index table patterns


def _compile_point(profile: Profile, point: SnmpPoint) -> _PointPlan:
    static = {k: v for k, v in point.labels.items() if v != ANY_INDEX}
    holes = tuple((m.group(1), m.group(2) or "") for p in point.oid.split(".")
                  if (m := OID_PLACEHOLDER.match(p)))
    conditions = tuple(_Condition(pattern(c.oid), re.compile(c.matches)
                                  if c.matches is not None else None, tuple(c.equals))
                       for c in point.when)
    entity = (pattern(point.entity_scale), pattern(point.entity_precision)) if (
        point.entity_scale is not None and point.entity_precision is not None) else None
    candidates = tuple(pattern(o) for o in (point.oid, *(a.oid for a in point.fallback)))
    return _PointPlan(
        point, point.metric, candidates, (point.scale, *(a.scale for a in point.fallback)),
        tuple(c.text for c in candidates), static, holes, tuple(sorted(static.items())),
        (*point.not_available, *profile.snmp_not_available), point.valid_min, conditions,
        pattern(point.decimals) if point.decimals is not None else None, entity,
        plain=not holes and not point.fallback and not conditions
        and point.decimals is None and entity is None,
        unsigned=point.type in SNMP_UNSIGNED_TYPES)


def compile_decode(profile: Profile) -> DecodePlan:
    points = tuple(_compile_point(profile, p) for p in profile.snmp_points)
    trailing = frozenset(c.trailing for p in points for c in p.candidates if c.trailing)
    return DecodePlan(points, trailing)


_PLANS: dict[int, tuple[Profile, DecodePlan]] = {}


def decode_plan(profile: Profile) -> DecodePlan:
    """compile_decode, computed once per profile object."""
    cached = _PLANS.get(id(profile))
    if cached is None or cached[0] is not profile:
        cached = _PLANS[id(profile)] = (profile, compile_decode(profile))
    return cached[1]


class _Rows:
    """The table rows among one poll's answers, found once per placeholder count."""

    def __init__(self, answers: Mapping[str, object]) -> None:
        self.answers = answers
        self._by_prefix: dict[int, dict[str, list[Index]]] = {}

    def under(self, pat: _Pattern) -> list[Index]:
        """The indexes answered for ``pat``, in the answers' order."""
        if not pat.trailing:
            assert pat.regex is not None
            return [m.groups() for oid in self.answers
                    if oid.startswith(pat.prefix) and (m := pat.regex.match(oid))]
        groups = self._by_prefix.get(pat.trailing)
        if groups is None:
            groups = self._by_prefix[pat.trailing] = self._group(pat.trailing)
        return groups.get(pat.prefix, [])

    def _group(self, count: int) -> dict[str, list[Index]]:
        """Answers by what is left of their OID (dot kept) once ``count`` decimal parts
        are cut off its end."""
        groups: dict[str, list[Index]] = {}
        for oid in self.answers:
            parts = oid.rsplit(".", count)
            if len(parts) <= count:
                continue
            index = tuple(parts[1:])
            if all(p.isdecimal() for p in index):  # what the regex's \d accepts
                groups.setdefault(parts[0] + ".", []).append(index)
        return groups


def _rows(plan: _PointPlan, rows: _Rows) -> list[Index]:
    """The table rows present for a point (its main OID or any fallback), in OID order."""
    if not plan.hole_labels:
        return [()]
    found: dict[Index, tuple[int, ...]] = {}
    for candidate in plan.candidates:
        for index in rows.under(candidate):
            if index not in found:
                found[index] = tuple(int(g) for g in index)
    return sorted(found, key=found.__getitem__)


def _labels(plan: _PointPlan, index: Index) -> tuple[tuple[str, str], ...]:
    if not index:
        return plan.scalar_labels
    labels = dict(plan.static_labels)
    for (name, prefix), value in zip(plan.hole_labels, index, strict=True):
        if name != IGNORED_INDEX:
            labels[name] = prefix + value
    return tuple(sorted(labels.items()))


def _condition_holds(cond: _Condition, index: Index, answers: Mapping[str, object]) -> bool:
    raw = answers.get(cond.where.fill(index), MISSING)
    if isinstance(raw, Missing):
        return False
    if cond.regex is not None:
        return cond.regex.search(str(raw)) is not None
    number = to_number(raw)
    for wanted in cond.equals:
        if isinstance(wanted, int) and number is not None and number == wanted:
            return True
        if isinstance(wanted, str) and str(raw).strip().lstrip(".") == wanted.lstrip("."):
            return True
    return False


def _modifier(plan: _PointPlan, index: Index, answers: Mapping[str, object]) -> float | None:
    """The factor from per-row decimal digits or ENTITY-SENSOR scale/precision (1 if none);
    None when the row's factor cannot be read (the value would be off by powers of ten)."""
    factor = 1.0
    if plan.decimals is not None:
        digits = to_number(answers.get(plan.decimals.fill(index), MISSING))
        if digits is None or not _within(digits, DECIMALS_RANGE):
            return None
        factor /= 10 ** int(digits)
    if plan.entity is not None:
        scale = to_number(answers.get(plan.entity[0].fill(index), MISSING))
        precision = to_number(answers.get(plan.entity[1].fill(index), MISSING))
        if (scale is None or precision is None or not _within(scale, ENTITY_SCALE_RANGE)
                or not _within(precision, PRECISION_RANGE)):
            return None
        factor *= 10.0 ** (ENTITY_SCALE_STEP_EXPONENT * (int(scale) - ENTITY_SCALE_UNITS))
        if precision > 0:
            factor /= 10 ** int(precision)
    return factor


def _decode_row(plan: _PointPlan, index: Index, answers: Mapping[str, object], device: str,
                ts: float) -> tuple[Reading, str] | None:
    if index:
        labels = _labels(plan, index)
        wheres: tuple[str, ...] | list[str] = [c.fill(index) for c in plan.candidates]
    else:
        labels, wheres = plan.scalar_labels, plan.scalar_oids
    outcome: tuple[Reading, str] | None = None
    for where, scale in zip(wheres, plan.scales):
        raw = answers.get(where, MISSING)
        if type(raw) is int:  # the usual answer: no text to parse, never blank
            number: float | None = float(raw)
            blank = False
        elif isinstance(raw, Missing):
            continue  # the model lacks this object: try the next one in the chain
        else:
            number, blank = to_number(raw), is_blank(raw)
        if blank:
            # NULL or an empty string where a number belongs: the agent has no value now.
            quality = Quality.NOT_AVAILABLE
        elif number is None:
            quality = Quality.DECODE_ERROR
        elif not isfinite(number) or number in plan.sentinels or (
                plan.valid_min is not None and number < plan.valid_min):
            # (codec.is_not_available, inline: a number here is always a float)
            quality = Quality.NOT_AVAILABLE
        elif number < 0 and plan.unsigned:
            quality = Quality.DECODE_ERROR
        else:
            factor = (_modifier(plan, index, answers)
                      if plan.decimals is not None or plan.entity is not None else 1.0)
            if factor is None:
                quality = Quality.DECODE_ERROR
            else:
                # codec.scale_value(number * factor, scale), inline
                value = number * factor * scale + 0.0
                return Reading.made(ts, device, plan.metric, value, labels), where
        if outcome is None:
            outcome = Reading.made(ts, device, plan.metric, None, labels, quality), where
    return outcome


def decode_sourced(profile: Profile, answers: Mapping[str, object], device: str,
                   ts: float) -> list[tuple[Reading, str]]:
    """(reading, the OID its value came from) for every point and row present; objects
    the device lacks are left out."""
    out: list[tuple[Reading, str]] = []
    rows = _Rows(answers)
    for plan in decode_plan(profile).points:
        if plan.plain:
            where = plan.scalar_oids[0]
            raw = answers.get(where, MISSING)
            if type(raw) is int:
                number = float(raw)
                if isfinite(number) and number not in plan.sentinels and (
                        plan.valid_min is None or not number < plan.valid_min) and (
                        number >= 0 or not plan.unsigned):
                    # What _decode_row gives for a good integer (its factor is 1.0).
                    out.append((Reading.made(ts, device, plan.metric,
                                             number * plan.scales[0] + 0.0,
                                             plan.scalar_labels), where))
                    continue
        for index in _rows(plan, rows):
            if plan.conditions and not all(_condition_holds(c, index, answers)
                                           for c in plan.conditions):
                continue
            got = _decode_row(plan, index, answers, device, ts)
            if got is not None:
                out.append(got)
    return out


def decode_points(profile: Profile, answers: Mapping[str, object], device: str,
                  ts: float) -> Iterator[Sourced]:
    """Readings of every point and row present; objects the device lacks are left out."""
    for reading, oid in decode_sourced(profile, answers, device, ts):
        yield Sourced(reading, oid)
