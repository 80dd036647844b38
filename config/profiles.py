"""Device profiles: what a device model exposes, as data (config/profiles/*.yaml)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.datatypes import (
    DATA_TYPES,
    MAX_READ_REGISTERS,
    NUMBERINGS,
    READ_FUNCTIONS,
    REGISTER_FUNCTIONS,
    normalise_order,
    resolve_register,
    sentinel_as_raw,
)
from config.errors import ConfigError, ConfigIssue, join_path
from config.metrics import LABEL_KEYS, METRICS

BUILTIN_PROFILE_DIR = Path(__file__).parent / "profiles"

SNMP_VALUE_TYPES = ("integer", "gauge32", "counter32", "counter64", "unsigned32", "string")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key in labels:
        if key not in LABEL_KEYS:
            raise ValueError(f"unknown label {key!r} (allowed: {', '.join(sorted(LABEL_KEYS))})")
    return labels


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    return metric


class Total(_Strict):
    """A device total derived as the sum of labelled readings of one metric."""

    metric: str
    sum_over: str

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


class SnmpPoint(_Point):
    """One scalar OID mapped to a canonical metric."""

    oid: str
    type: Literal[SNMP_VALUE_TYPES] = "integer"  # type: ignore[valid-type]
    scale: float = 1.0

    @field_validator("oid")
    @classmethod
    def _oid(cls, value: str) -> str:
        text = value.strip().lstrip(".")
        parts = text.split(".")
        if len(parts) < 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"not a numeric OID: {value!r}")
        return text

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float) -> float:
        if value == 0 or not math.isfinite(value):
            raise ValueError(f"scale must be a non-zero finite number, got {value}")
        return value


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
    # SNMP: sysObjectID prefixes this profile matches (for `auto`).
    sys_object_ids: list[str] = Field(default_factory=list)
    snmp_points: list[SnmpPoint] = Field(default_factory=list)
    # Modbus: the numbering convention of the manual the registers are copied from.
    numbering: Literal[NUMBERINGS] | None = None  # type: ignore[valid-type]
    modbus_defaults: ModbusDefaults = Field(default_factory=ModbusDefaults)
    modbus_points: list[ModbusPoint] = Field(default_factory=list)
    modbus_resolved: tuple[ResolvedModbusPoint, ...] = ()
    # Unmapped registers one read may span. 0: the device refuses any read that touches
    # an undefined register (the safe default; many meters answer "illegal address").
    modbus_max_gap: int = Field(default=0, ge=0, le=MAX_READ_REGISTERS)
    totals: list[Total] = Field(default_factory=list)

    @model_validator(mode="after")
    def _protocol_fields(self) -> Profile:
        if self.protocol == "snmp":
            if not self.snmp_points:
                raise ValueError("an snmp profile needs snmp_points")
            if self.modbus_points:
                raise ValueError("modbus_points are not allowed in an snmp profile")
            return self
        if not self.modbus_points:
            raise ValueError("a modbus profile needs modbus_points")
        if self.snmp_points:
            raise ValueError("snmp_points are not allowed in a modbus profile")
        if self.numbering is None:
            raise ValueError("a modbus profile must say its register numbering "
                             f"({', '.join(NUMBERINGS)})")
        return self

    def counter_resolution_kwh(self, metric: str, value: float) -> float:
        """The step of this model's unlabelled counter register near ``value`` (0 if none).

        Integer registers step by their scale; a float register by its unit in the last
        place at that magnitude (a float32 kWh register near 60 000 steps by ~0.004 kWh).
        """
        for point in (*self.snmp_points, *self.modbus_resolved):
            if point.metric != metric or point.labels:
                continue
            scale = abs(point.scale)
            if getattr(point, "type", "") in ("float32", "float64"):
                mantissa = 23 if point.type == "float32" else 52
                raw = abs(value / scale) if scale else 0.0
                return scale * (2.0 ** (math.frexp(raw)[1] - 1 - mantissa) if raw else 0.0)
            return scale
        return 0.0

    def points_for(self) -> tuple:
        return tuple(self.snmp_points) if self.protocol == "snmp" else self.modbus_resolved


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
        if function not in REGISTER_FUNCTIONS:
            issues.append(ConfigIssue(f"{path}.function",
                                      f"function {function} reads bits; numeric types need 3 or 4"))
            continue
        if address + DATA_TYPES[dtype].registers > 0x10000:
            issues.append(ConfigIssue(f"{path}.register", f"{dtype} at {address} runs past 65535"))
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


def load_profiles(*dirs: Path) -> dict[str, Profile]:
    """Load every ``*.yaml`` profile from the given folders (built-in first, later ones override).

    :raises ConfigError: listing every problem in every file.
    """
    profiles: dict[str, Profile] = {}
    issues: list[ConfigIssue] = []
    for folder in (BUILTIN_PROFILE_DIR, *dirs):
        for path in sorted(Path(folder).glob("*.yaml")):
            where = f"{path.name}: "
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                issues.append(ConfigIssue(path.name, f"not valid YAML: {exc}"))
                continue
            profile, found = parse_profile(raw, path.stem, where)
            issues.extend(found)
            if profile is not None:
                profiles[profile.name] = profile
    if issues:
        raise ConfigError(issues, "profiles")
    return profiles
