"""Device profiles: what a device model exposes, as data (config/profiles/*.yaml)."""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from pue_monitor.config.datatypes import (
    BIT_TYPE,
    DATA_TYPES,
    MAX_READ_REGISTERS,
    NUMBERINGS,
    READ_FUNCTIONS,
    REGISTER_ADDRESSES,
    REGISTER_FUNCTIONS,
    normalise_order,
    resolve_register,
    sentinel_as_raw,
)
from pue_monitor.config.errors import ConfigError, ConfigIssue, join_path
from pue_monitor.config.metrics import LABEL_KEYS, METRICS
from pue_monitor.config.strict import StrictModel
from pue_monitor.config.yamlio import YamlInputError, load_yaml, read_utf8

BUILTIN_PROFILE_DIR = Path(__file__).parent / "profiles"

SNMP_VALUE_TYPES = ("integer", "gauge32", "counter32", "counter64", "unsigned32", "string")
# Of those, the types that cannot be negative (RFC 2578): a negative answer to a point of
# one is a decode error, not a value.
SNMP_UNSIGNED_TYPES = frozenset({"gauge32", "counter32", "counter64", "unsigned32"})
# A table index component in an OID pattern: {label}, {label:prefix} or {_} (ignored).
OID_PLACEHOLDER = re.compile(r"^\{([a-z_]+)(?::([A-Za-z0-9_-]*))?\}$")
IGNORED_INDEX = "_"
ANY_INDEX = "*"  # label value of a table point before its row is known
COUNTER_BITS = {"counter32": 32, "counter64": 64}
# GETs and GETBULKs: a PDU of this many OIDs fits any agent's message size.
DEFAULT_MAX_OIDS_PER_GET = 10
DEFAULT_MAX_REPETITIONS = 25


class _Strict(StrictModel):
    """Unknown keys refused, frozen, no boolean for a number (config.strict)."""


# What a label value may not hold: ',' and '=' separate the store's label key
# (``k=v,k2=v2``); a backslash or a control character cannot go through InfluxDB line
# protocol unchanged (exchange.influx).
LABEL_VALUE_REFUSED = re.compile(r"[,=\\\x00-\x1f\x7f-\x9f]")


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if key not in LABEL_KEYS:
            raise ValueError(f"unknown label {key!r} (allowed: {', '.join(sorted(LABEL_KEYS))})")
        bad = LABEL_VALUE_REFUSED.search(str(value))
        if bad is not None:
            raise ValueError(f"label {key!r}: value {value!r} holds {bad.group()!r} (a label "
                             f"value may not hold ',', '=', a backslash or a control "
                             f"character)")
    return labels


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    return metric


class Total(_Strict):
    """A device total derived as the sum of labelled readings of one metric."""

    metric: str
    sum_over: str
    # Other labels a part may carry (e.g. the unit of a daisy chain); a reading with any
    # further label (say path: input) is not a part of this total.
    also: list[str] = Field(default_factory=list)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return _check_metric(value)


class _Point(_Strict):
    """What every profile point has: a canonical metric, labels, "not available" values."""

    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    # Raw values that mean "not available" on this model (e.g. -1): read as missing.
    not_available: list[float] = Field(default_factory=list)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return _check_metric(value)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)


def check_oid_pattern(value: str) -> str:
    """A numeric OID whose table index parts may be placeholders (see OID_PLACEHOLDER)."""
    text = str(value).strip().lstrip(".")
    parts = text.split(".")
    if len(parts) < 2 or not parts[0].isdigit():
        raise ValueError(f"not a numeric OID: {value!r}")
    for part in parts:
        if part.isdigit():
            continue
        match = OID_PLACEHOLDER.match(part)
        if match is None:
            raise ValueError(f"not a numeric OID or index placeholder: {part!r} in {value!r}")
        if match.group(1) != IGNORED_INDEX:
            _check_labels({match.group(1): ""})
    return text


def oid_placeholders(oid: str) -> list[str]:
    """The index label names of an OID pattern, in order ({_} included)."""
    return [m.group(1) for p in oid.split(".") if (m := OID_PLACEHOLDER.match(p))]


def _check_scale(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        raise ValueError(f"scale must be a non-zero finite number, got {value}")
    return value


class SnmpAlternative(_Strict):
    """Another OID for the same reading, tried when the ones before it gave nothing."""

    oid: str
    type: Literal[SNMP_VALUE_TYPES] = "integer"  # type: ignore[valid-type]
    scale: float = 1.0

    @field_validator("oid")
    @classmethod
    def _oid(cls, value: str) -> str:
        return check_oid_pattern(value)

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float) -> float:
        return _check_scale(value)


class SnmpCondition(_Strict):
    """A row is read only if the object at ``oid`` (same index) has one of ``equals``, or
    its text matches the regular expression ``matches`` (for tables whose rows are told
    apart by a name only, e.g. Rittal CMC III "Air Temp.Server In.Top.Value")."""

    oid: str
    equals: list[int | str] = Field(default_factory=list)
    matches: str | None = None

    @field_validator("oid")
    @classmethod
    def _oid(cls, value: str) -> str:
        return check_oid_pattern(value)

    @model_validator(mode="after")
    def _one_test(self) -> SnmpCondition:
        if bool(self.equals) == (self.matches is not None):
            raise ValueError("a condition has either equals or matches")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"matches: {self.matches!r}: {exc}") from None
        return self


class SnmpPoint(_Point):
    """One OID mapped to a canonical metric: a scalar, or a table column whose index
    placeholders (``{outlet}``) become labels, one reading per row."""

    oid: str
    type: Literal[SNMP_VALUE_TYPES] = "integer"  # type: ignore[valid-type]
    scale: float = 1.0
    # Tried in order when the main OID is missing or not available (high precision first).
    fallback: list[SnmpAlternative] = Field(default_factory=list)
    # Per-sensor decimal digits (Raritan): value / 10**digits, before `scale`.
    decimals: str | None = None
    # ENTITY-SENSOR-MIB: value x 10^(3 (scale - 9)) / 10^precision (precision > 0).
    entity_scale: str | None = None
    entity_precision: str | None = None
    when: list[SnmpCondition] = Field(default_factory=list)
    # Counter width for energy counters; a counter32/counter64 type implies it.
    wrap_bits: Literal[32, 64] | None = None
    # The lowest raw value the MIB allows (e.g. 0 for a NonNegativeInteger): anything below
    # it is read as "not available", never as a value.
    valid_min: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _index_labels(cls, data: object) -> object:
        # Each index placeholder is a label whose value comes with the row.
        if not isinstance(data, dict) or not isinstance(data.get("oid"), str):
            return data
        names = [n for n in oid_placeholders(data["oid"].strip().lstrip("."))
                 if n != IGNORED_INDEX]
        labels = dict(data.get("labels") or {})
        if isinstance(data.get("labels"), dict):
            for name in names:
                if name in labels:
                    raise ValueError(f"label {name!r} is both fixed and a table index")
        labels.update({name: ANY_INDEX for name in names})
        out = {**data, "labels": labels}
        if out.get("wrap_bits") is None and out.get("type") in COUNTER_BITS:
            out["wrap_bits"] = COUNTER_BITS[out["type"]]
        return out

    @field_validator("oid", "decimals", "entity_scale", "entity_precision")
    @classmethod
    def _oid(cls, value: str | None) -> str | None:
        return None if value is None else check_oid_pattern(value)

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float) -> float:
        return _check_scale(value)

    @model_validator(mode="after")
    def _same_index(self) -> SnmpPoint:
        mine = oid_placeholders(self.oid)
        others = [a.oid for a in self.fallback] + [c.oid for c in self.when]
        others += [o for o in (self.decimals, self.entity_scale, self.entity_precision) if o]
        for oid in others:
            if oid_placeholders(oid) != mine:
                raise ValueError(f"{oid} must have the same index placeholders as {self.oid}")
        if (self.entity_scale is None) != (self.entity_precision is None):
            raise ValueError("entity_scale and entity_precision go together")
        return self

    @property
    def is_table(self) -> bool:
        return bool(oid_placeholders(self.oid))

    @property
    def counter_width(self) -> float | None:
        """Where the counter wraps, in the metric's unit (e.g. kWh), if it is declared."""
        return None if self.wrap_bits is None else float(2 ** self.wrap_bits) * abs(self.scale)


class ModbusPoint(_Point):
    """One register field mapped to a canonical metric."""

    number: int = Field(alias="register")  # as printed in the manual (see Profile.numbering)
    function: int | None = None
    type: str | None = None
    order: str | None = None
    scale: float | None = None
    offset: float = 0.0
    # SunSpec-style scale factor: an int16 register (same numbering and function) whose
    # value e scales this one by 10^e, read in the same poll as the value.
    scale_register: int | None = None


class ModbusDefaults(_Strict):
    function: int = 3
    type: str = "uint16"
    order: str = "ABCD"
    scale: float = 1.0
    # Raw markers meaning "not available" for every point without its own list (e.g.
    # SunSpec's 0x8000), written as the manual prints them (bit patterns are fine).
    not_available: list[float] = Field(default_factory=list)


class SunSpecLayout(_Strict):
    """A SunSpec model the collector finds by walking the chain (collectors.sunspec).

    The profile's registers are written for the model's ID register at ``model_at`` (a
    0-based address); found elsewhere, every point moves with it. ``length`` is the
    model's L (its registers after ID and L), which the found model must have at least.
    The simulator serves the first of ``models``.
    """

    models: list[int] = Field(min_length=1)
    model_at: int = Field(ge=2, lt=REGISTER_ADDRESSES)
    length: int = Field(ge=1, lt=REGISTER_ADDRESSES)

    @field_validator("models")
    @classmethod
    def _ids(cls, value: list[int]) -> list[int]:
        for model in value:
            if not 1 <= model < 0xFFFF:
                raise ValueError(f"not a SunSpec model id: {model}")
        return value


class ResolvedModbusPoint(_Strict):
    """A Modbus point with defaults applied and its register number turned into an address."""

    metric: str
    address: int
    function: int
    type: str
    order: str
    scale: float
    offset: float
    labels: dict[str, str]
    not_available: tuple[int | float, ...]  # ints kept exact (64-bit markers)
    manual_register: int  # as printed in the manual, for messages
    scale_address: int | None = None  # SunSpec scale-factor register, if any

    @property
    def count(self) -> int:
        return DATA_TYPES[self.type].registers


class Profile(_Strict):
    """What one device model exposes, and how to read it."""

    name: str
    protocol: Literal["snmp", "modbus"]
    description: str
    models: list[str] = Field(default_factory=list)
    source: str
    # SNMP: sysObjectID prefixes this profile matches (for `auto`), sysDescr regular
    # expressions for agents whose sysObjectID says nothing, and OIDs whose presence marks
    # a standard MIB (the last resort, e.g. UPS-MIB behind a generic Linux agent).
    sys_object_ids: list[str] = Field(default_factory=list)
    sys_descr_patterns: list[str] = Field(default_factory=list)
    probe_oids: list[str] = Field(default_factory=list)
    # Where one sysObjectID (or sysDescr) covers several product lines: the profile is
    # chosen by its sysObjectID or sysDescr only if one of these OIDs (a scalar ending in
    # .0, else a table column or subtree) answers; otherwise the next candidate is tried.
    confirm_oids: list[str] = Field(default_factory=list)
    # Which probed MIB wins when an agent has several (lower first): a UPS card with
    # ENTITY-SENSOR-MIB is still a UPS.
    probe_order: int = 100
    snmp_points: list[SnmpPoint] = Field(default_factory=list)
    # Raw values meaning "not available" on every SNMP point of this model.
    snmp_not_available: list[float] = Field(default_factory=list)
    max_oids_per_get: int = Field(DEFAULT_MAX_OIDS_PER_GET, ge=1, le=128)
    max_repetitions: int = Field(DEFAULT_MAX_REPETITIONS, ge=1, le=200)
    # Modbus: the numbering convention of the manual the registers are copied from.
    numbering: Literal[NUMBERINGS] | None = None  # type: ignore[valid-type]
    modbus_defaults: ModbusDefaults = Field(default_factory=ModbusDefaults)
    modbus_points: list[ModbusPoint] = Field(default_factory=list)
    modbus_resolved: tuple[ResolvedModbusPoint, ...] = ()
    # Unmapped registers one read may span. 0: the device refuses any read that touches
    # an undefined register (the safe default; many meters answer "illegal address").
    modbus_max_gap: int = Field(default=0, ge=0, le=MAX_READ_REGISTERS)
    # Registers one read may hold at most, where the model's manual allows fewer than the
    # protocol's MAX_READ_REGISTERS (a longer read is refused by the device).
    modbus_max_registers: int = Field(default=MAX_READ_REGISTERS, ge=1, le=MAX_READ_REGISTERS)
    # A SunSpec model found by walking the model chain from the SunSpec bases.
    sunspec: SunSpecLayout | None = None
    totals: list[Total] = Field(default_factory=list)
    # Data-quality settings of this model (method 3), from its manual; a device may
    # override each. A counter below this share of its previous value was reset:
    reset_below_fraction: float | None = Field(None, gt=0, lt=1)
    # The most the model can measure: a power reading or energy step beyond is refused.
    rated_max_w: float | None = Field(None, gt=0)
    # Polls of a bit-identical power value (while the site moves) that make it stuck.
    stuck_power_polls: int | None = Field(None, ge=2, le=100_000)

    @model_validator(mode="after")
    def _protocol_fields(self) -> Profile:
        if self.protocol == "snmp":
            for oid in (*self.probe_oids, *self.confirm_oids):
                check_oid_pattern(oid)
            for pattern in self.sys_descr_patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"sys_descr_patterns: {pattern!r}: {exc}") from None
            if not self.snmp_points:
                raise ValueError("an snmp profile needs snmp_points")
            if self.modbus_points:
                raise ValueError("modbus_points are not allowed in an snmp profile")
            if self.sunspec is not None:
                raise ValueError("sunspec is a Modbus layout, not allowed in an snmp profile")
            return self
        if not self.modbus_points:
            raise ValueError("a modbus profile needs modbus_points")
        if self.snmp_points:
            raise ValueError("snmp_points are not allowed in a modbus profile")
        if self.numbering is None:
            raise ValueError("a modbus profile must say its register numbering "
                             f"({', '.join(NUMBERINGS)})")
        return self

    def counter_width(self, metric: str) -> float | None:
        """Where this model's unlabelled counter of ``metric`` wraps, if a point declares it."""
        for point in self.snmp_points:
            if point.metric == metric and not point.labels and point.counter_width:
                return point.counter_width
        return None

    def counter_resolution_kwh(self, metric: str, value: float) -> float:
        """The step of this model's unlabelled counter register near ``value`` (0 if none).

        Integer registers step by their scale; a float register by its unit in the last
        place at that magnitude (a float32 kWh register near 60 000 steps by ~0.004 kWh).
        A device total summed from labelled rows (``totals``) steps by its coarsest part.
        """
        points = (*self.snmp_points, *self.modbus_resolved)
        for point in points:
            if point.metric == metric and not point.labels:
                return _register_step(point, value)
        parts = [_register_step(point, value) for total in self.totals if total.metric == metric
                 for point in points if point.metric == metric and point.labels
                 and set(point.labels) <= {total.sum_over, *total.also}]
        return max(parts, default=0.0)

    def points_for(self) -> tuple:
        return tuple(self.snmp_points) if self.protocol == "snmp" else self.modbus_resolved


def _register_step(point: object, value: float) -> float:
    """How far one point's register steps near ``value`` (see counter_resolution_kwh)."""
    scale = abs(point.scale)  # type: ignore[attr-defined]
    kind = getattr(point, "type", "")
    if kind in ("float32", "float64"):
        mantissa = 23 if kind == "float32" else 52
        raw = abs(value / scale) if scale else 0.0
        return scale * (2.0 ** (math.frexp(raw)[1] - 1 - mantissa) if raw else 0.0)
    return scale


def _resolve_modbus(raw: dict, issues: list[ConfigIssue], where: str) -> list[dict]:
    """Apply defaults and numbering to each Modbus point, collecting every problem."""
    defaults = {**ModbusDefaults().model_dump(), **(raw.get("modbus_defaults") or {})}
    numbering = raw.get("numbering")
    out: list[dict] = []
    if numbering not in NUMBERINGS:
        return out  # the schema reports the missing or unknown numbering once
    for i, point in enumerate(raw.get("modbus_points") or []):
        path = f"{where}modbus_points[{i}]"
        if not isinstance(point, dict):
            continue  # the schema reports it
        merged = {k: point.get(k) if point.get(k) is not None else defaults.get(k)
                  for k in ("function", "type", "order", "scale")}
        dtype, order = merged["type"], normalise_order(str(merged["order"]))
        if dtype not in DATA_TYPES:
            issues.append(ConfigIssue(f"{path}.type", f"unknown data type {dtype!r} "
                                      f"(known: {', '.join(DATA_TYPES)})"))
            continue
        if order is None:
            issues.append(ConfigIssue(f"{path}.order", f"unknown byte order {merged['order']!r}"))
            continue
        function = merged["function"]
        try:
            address, implied = resolve_register(int(point.get("register", -1)), str(numbering))
        except (ValueError, TypeError) as exc:
            issues.append(ConfigIssue(f"{path}.register", str(exc)))
            continue
        if implied is not None:
            if point.get("function") not in (None, implied):
                issues.append(ConfigIssue(f"{path}.function", f"function {point['function']} "
                                          f"contradicts register {point['register']} "
                                          f"(implies function {implied})"))
                continue
            function = implied
        if function not in READ_FUNCTIONS:
            issues.append(ConfigIssue(f"{path}.function", f"not a read function: {function}"))
            continue
        if (function in REGISTER_FUNCTIONS) == (dtype == BIT_TYPE):
            issues.append(ConfigIssue(f"{path}.function", (
                f"function {function} reads registers; type bit needs 1 or 2"
                if dtype == BIT_TYPE else
                f"function {function} reads bits; numeric types need 3 or 4")))
            continue
        if address + DATA_TYPES[dtype].registers > REGISTER_ADDRESSES:
            issues.append(ConfigIssue(f"{path}.register",
                                      f"{dtype} at {address} runs past {REGISTER_ADDRESSES - 1}"))
            continue
        scale_address = None
        if point.get("scale_register") is not None:
            try:
                scale_address, sf_implied = resolve_register(int(point["scale_register"]),
                                                             str(numbering))
            except (ValueError, TypeError) as exc:
                issues.append(ConfigIssue(f"{path}.scale_register", str(exc)))
                continue
            if sf_implied not in (None, function):
                issues.append(ConfigIssue(f"{path}.scale_register",
                                          f"register {point['scale_register']} is read with "
                                          f"function {sf_implied}, the value with {function}"))
                continue
        # A point's own list replaces the default one, as its type or scale would.
        markers = list(point["not_available"] if point.get("not_available") is not None
                       else defaults.get("not_available") or ())
        if not all(isinstance(m, int | float) and not isinstance(m, bool) for m in markers):
            continue  # the schema reports the bad marker
        out.append({
            "metric": point.get("metric"), "address": address, "function": function,
            "type": dtype, "order": order, "scale": float(merged["scale"]),
            "offset": float(point.get("offset") or 0.0), "labels": point.get("labels") or {},
            "not_available": tuple(sentinel_as_raw(m, dtype) for m in markers),
            "manual_register": point.get("register"), "scale_address": scale_address,
        })
    return out


def parse_profile(raw: object, name: str, where: str = "") -> tuple[Profile | None, list[ConfigIssue]]:
    """Validate one profile document; return it or every issue found."""
    issues: list[ConfigIssue] = []
    if not isinstance(raw, dict):
        return None, [ConfigIssue(where.rstrip("."), "a profile must be a mapping")]
    if raw.get("name") != name:
        issues.append(ConfigIssue(f"{where}name",
                                  f"must match the file name {name!r}, got {raw.get('name')!r}"))
    resolved: list[dict] = []
    if raw.get("protocol") == "modbus":
        resolved = _resolve_modbus(raw, issues, where)
    try:
        profile = Profile.model_validate({**raw, "modbus_resolved": resolved})
    except ValidationError as exc:
        for err in exc.errors():
            loc = join_path([p for p in err["loc"] if p != "modbus_resolved"])
            issues.append(ConfigIssue(where + loc if loc else where.rstrip(": "),
                                      _pydantic_message(err)))
        return None, issues
    _check_unique_points(profile, issues, where)
    return (None if issues else profile), issues


def _check_unique_points(profile: Profile, issues: list[ConfigIssue], where: str) -> None:
    seen: dict[tuple, int] = {}
    points = profile.snmp_points if profile.protocol == "snmp" else profile.modbus_points
    key_name = "snmp_points" if profile.protocol == "snmp" else "modbus_points"
    for i, point in enumerate(points):
        key = (point.metric, tuple(sorted(point.labels.items())))
        if key in seen:
            issues.append(ConfigIssue(f"{where}{key_name}[{i}]",
                                      f"{point.metric} {point.labels or ''} already defined at "
                                      f"{key_name}[{seen[key]}]"))
        seen[key] = i
    for i, total in enumerate(profile.totals):
        if not any(total.sum_over in p.labels and p.metric == total.metric for p in points):
            issues.append(ConfigIssue(f"{where}totals[{i}]",
                                      f"no {total.metric} point carries label {total.sum_over!r}"))


def _pydantic_message(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "value_error":
        return msg.removeprefix("Value error, ")  # our own messages already name the value
    if "input" in err and err["type"] not in ("missing",):
        value = err["input"]
        if not isinstance(value, dict | list):
            return f"{msg} (got {value!r})"
    return msg


def load_profiles(*dirs: Path, names: Collection[str] | None = None) -> dict[str, Profile]:
    """Load every ``*.yaml`` profile from the given folders (built-in first, later ones override).

    ``names``: only the profiles of these names (a profile's file is its name), those
    that exist; None: all.

    :raises ConfigError: listing every problem in every file.
    """
    profiles: dict[str, Profile] = {}
    issues: list[ConfigIssue] = []
    for folder in (BUILTIN_PROFILE_DIR, *dirs):
        paths = sorted(Path(folder).glob("*.yaml")) if names is None else [
            Path(folder) / f"{name}.yaml" for name in sorted(names)
            # a name is a file's stem, never a path elsewhere (unknown, then: refused)
            if name and Path(name).name == name and not name.startswith(".")
            and (Path(folder) / f"{name}.yaml").is_file()]
        for path in paths:
            where = f"{path.name}: "
            try:
                raw = load_yaml(read_utf8(path))
            except OSError as exc:
                issues.append(ConfigIssue(path.name, f"cannot read: {exc.strerror}"))
                continue
            except yaml.YAMLError as exc:
                issues.append(ConfigIssue(path.name, f"not valid YAML: {exc}"))
                continue
            except YamlInputError as exc:
                issues.append(ConfigIssue(f"{path.name}: {exc.path}" if exc.path else path.name,
                                          exc.message))
                continue
            profile, found = parse_profile(raw, path.stem, where)
            issues.extend(found)
            if profile is not None:
                profiles[profile.name] = profile
    if issues:
        raise ConfigError(issues, "profiles")
    return profiles
