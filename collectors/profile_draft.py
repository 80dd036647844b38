"""`profile draft`: a proposed profile from what a device answers and what its MIB says.

Each numeric object of the walk is matched to its MIB definition (collectors.mib_text);
its metric and scale come from the UNITS clause, else from the unit its DESCRIPTION
names ("Voltage Phase L1 in 100mV", "Frequenz* 0.01 Hz"), and a textual convention's
DISPLAY-HINT ("d-1"). Reactive quantities, settings and ratings are left out. Table
columns become OID patterns whose index is a label. The result is a draft for a person
to review, never loaded by itself: pure, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from pue_monitor.collectors.mib_text import MibObject, index_names

# unit word (lower case) -> (metric, factor to the metric's unit)
UNITS: dict[str, tuple[str, float]] = {
    "w": ("active_power_w", 1.0), "watt": ("active_power_w", 1.0),
    "watts": ("active_power_w", 1.0), "kw": ("active_power_w", 1000.0),
    "wh": ("active_energy_kwh", 0.001), "kwh": ("active_energy_kwh", 1.0),
    "mwh": ("active_energy_kwh", 1000.0), "watt-hours": ("active_energy_kwh", 0.001),
    "va": ("apparent_power_va", 1.0), "kva": ("apparent_power_va", 1000.0),
    "v": ("voltage_v", 1.0), "volt": ("voltage_v", 1.0), "volts": ("voltage_v", 1.0),
    "mv": ("voltage_v", 0.001), "kv": ("voltage_v", 1000.0),
    "a": ("current_a", 1.0), "amp": ("current_a", 1.0), "amps": ("current_a", 1.0),
    "ampere": ("current_a", 1.0), "amperes": ("current_a", 1.0), "ma": ("current_a", 0.001),
    "hz": ("frequency_hz", 1.0), "hertz": ("frequency_hz", 1.0),
    "degc": ("temperature_c", 1.0), "celsius": ("temperature_c", 1.0),
    "centigrade": ("temperature_c", 1.0), "%": ("load_pct", 1.0), "percent": ("load_pct", 1.0),
}
# A multiplier and a unit: "0.1 KWh", "100mV", "1/10 V", "* 0.01 Hz", "RMS Volts".
_QUANTITY = re.compile(
    r"(?<![a-z])(?:(?P<mult>\d+(?:\.\d+)?(?:/\d+)?)\s*)?(?:rms\s+)?"
    r"(?P<unit>kwh|mwh|wh|watt-hours|kw|watts?|w|kva|va|kv|mv|volts?|v|ma|amperes?|amps?|a|hertz|hz|degrees?\s*c\b|deg\s*c|"
    r"degc|celsius|centigrade|percent|%)(?![a-z0-9])", re.I)
_IN_TEXT = re.compile(r"(?:\bin\b|\*)\s*" + _QUANTITY.pattern, re.I)
# Words that make a quantity something else than a measurement we read.
_NOT_READ = re.compile(r"reactiv|reaktiv|\bvar\b|\bvarh\b|\bkvarh\b|limit|threshold|rating|"
                       r"rated|nominal|installed|setpoint|alarm|minimum|maximum|\bmax\b|\bmin\b|"
                       r"humidity|angle|thd|harmonic|distortion", re.I)
_POWER_FACTOR = re.compile(r"power\s*factor|cos\s*\(?\s*phi|powerfactor", re.I)
_NUMERIC = ("Integer32", "INTEGER", "Gauge32", "Counter32", "Counter64", "Unsigned32",
            "Gauge", "Counter")
_SNMP_TYPE = {"Gauge32": "gauge32", "Gauge": "gauge32", "Counter32": "counter32",
              "Counter": "counter32", "Counter64": "counter64", "Unsigned32": "unsigned32"}
# Table index label from words of the entry or index names, first match wins.
_INDEX_LABELS = ("outlet", "phase", "bank", "breaker", "circuit", "line", "inlet", "cord",
                 "unit", "sensor")
_PATHS = ("input", "output", "bypass", "battery")
_PHASE = re.compile(r"\bL([1-4])\s*-\s*L([1-4])\b|\bL([1-4])\b(?!\s*\.\.)")


@dataclass(frozen=True)
class Guess:
    """What one MIB object would be read as."""

    metric: str
    scale: float
    why: str  # the MIB words the guess rests on


def _hint_scale(hint: str) -> float:
    match = re.fullmatch(r"d-(\d+)", hint.strip())
    return 10.0 ** -int(match.group(1)) if match else 1.0


def _multiplier(text: str | None) -> float:
    if not text:
        return 1.0
    if "/" in text:
        top, bottom = text.split("/")
        return float(top) / float(bottom)
    return float(text)


def guess(obj: MibObject) -> Guess | None:
    """The metric and scale of a MIB object, or None if it is not one we read."""
    if obj.enumerated or obj.syntax not in _NUMERIC and not obj.hint:
        return None
    if obj.access in ("not-accessible", "accessible-for-notify"):
        return None
    words = f"{obj.name} {obj.units} {obj.description}"
    if _NOT_READ.search(f"{obj.units} {obj.description}") or re.search(r"reactiv|var\b", obj.name,
                                                                       re.I):
        return None
    if _POWER_FACTOR.search(words):
        mult = re.search(r"(\d+\.\d+)", f"{obj.units} {obj.description}")
        return Guess("power_factor", _multiplier(mult.group(1)) if mult else
                     _hint_scale(obj.hint), f"power factor: {obj.units or obj.description}")
    # UNITS says it when present; a DESCRIPTION only after "in" or "*" ("in 100mV",
    # "Frequenz* 0.01 Hz"), so that "a percent" is no ampere.
    texts = [(obj.units, "UNITS", _QUANTITY)] if obj.units else [
        (obj.description, "DESCRIPTION", _IN_TEXT)]
    for text, clause, pattern in texts:
        for match in pattern.finditer(text):
            unit = re.sub(r"\s+", "", match.group("unit").lower())
            unit = "degc" if unit.startswith("deg") else unit
            metric, factor = UNITS[unit]
            if metric == "load_pct" and not re.search(r"load", words, re.I):
                continue  # a percentage of something else (battery charge, humidity)
            if metric == "active_power_w" and re.search(r"apparent", words, re.I):
                metric = "apparent_power_va"
            mult = _multiplier(match.group("mult"))
            scale = mult * factor * (1.0 if match.group("mult") else _hint_scale(obj.hint))
            return Guess(metric, scale, f"{clause} {match.group(0).strip()!r}")
    return None


def _labels(obj: MibObject, index: list[str]) -> tuple[dict[str, str], str | None]:
    """(fixed labels, the index label name or None for a scalar)."""
    labels: dict[str, str] = {}
    text = f"{obj.name} {obj.table_entry or ''}".lower()
    path = next((p for p in _PATHS if p in text), None)
    if path:
        labels["path"] = path
    index_label = None
    if obj.table_entry is not None:
        names = " ".join([obj.table_entry, *index]).lower()
        index_label = next((w for w in _INDEX_LABELS if w in names), "line")
        index_label = "bank" if index_label == "breaker" else index_label
        if index_label == "path":
            index_label = "line"
    else:
        # "Summe L1..L3" is a total, not phase L3.
        match = _PHASE.search(re.sub(r"L\d\s*\.\.\s*L\d", "", obj.description))
        if match and match.group(1):
            labels["phase"] = f"L{match.group(1)}-L{match.group(2)}"
        elif match:
            labels["phase"] = f"L{match.group(3)}"
    return labels, index_label


def draft_points(objects: dict[str, MibObject], answers: dict[str, object]) -> list[dict]:
    """One profile point (a dict, with a `why` comment) per MIB object the walk answered
    and `guess` reads; table columns once, as an OID pattern."""
    by_column: dict[str, int] = {}  # MIB object OID -> index components seen
    for oid, value in answers.items():
        if not isinstance(value, int):
            continue
        parts = oid.split(".")
        for cut in range(len(parts) - 1, 5, -1):
            base = ".".join(parts[:cut])
            if base in objects:
                by_column.setdefault(base, len(parts) - cut)
                break
    points: list[dict] = []
    seen: set[tuple] = set()
    for base in sorted(by_column, key=lambda o: tuple(int(p) for p in o.split("."))):
        obj = objects[base]
        found = guess(obj)
        if found is None:
            continue
        labels, index_label = _labels(obj, index_names(objects, obj))
        width = by_column[base]
        if obj.table_entry is None:
            if width != 1:
                continue  # a scalar answers as OID.0 only
            oid = f"{base}.0"
        else:
            oid = ".".join([base, *["{_}"] * (width - 1), f"{{{index_label}}}"])
        key = (found.metric, tuple(sorted(labels.items())), index_label)
        if key in seen:
            labels["sensor"] = obj.name  # two objects of one quantity: say which
        seen.add((found.metric, tuple(sorted(labels.items())), index_label))
        point: dict = {"metric": found.metric, "oid": oid}
        if obj.syntax in _SNMP_TYPE:
            point["type"] = _SNMP_TYPE[obj.syntax]
        if found.scale != 1.0:
            point["scale"] = float(f"{found.scale:.12g}")
        if labels:
            point["labels"] = labels
        point["why"] = f"{obj.name}: {found.why}; {obj.description[:80]}".rstrip("; ")
        points.append(point)
    return points


def render_profile(name: str, points: list[dict], sys_object_id: str | None,
                   sys_descr: str, mibs: list[str], source: str) -> str:
    """The draft profile's YAML text: an opening comment, then one line per point, each
    after a comment with the MIB object and the words its metric and scale rest on."""
    first = (sys_descr.splitlines() or [""])[0].strip() or "unknown device"
    lines = [
        f"# DRAFT by `pue-monitor profile draft` from {source},",
        f"# with {', '.join(mibs) or 'no MIB'}.",
        "# Review every point before use: metric, scale and labels were guessed from the MIB's",
        "# UNITS and DESCRIPTION clauses; add the family's \"not available\" markers.",
        f"# Device: {first}",
    ]
    doc = {"name": name, "protocol": "snmp", "description": f"Draft: {first}"[:120],
           "models": [first[:80]], "source": f"MIB {', '.join(mibs)}" if mibs else source}
    if sys_object_id:
        doc["sys_object_ids"] = [sys_object_id]
    lines.append(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True,
                                width=1000).rstrip())
    lines.append("snmp_points:")
    for point in points:
        body = {k: v for k, v in point.items() if k != "why"}
        lines.append(f"  # {point['why']}")
        flow = yaml.safe_dump(body, default_flow_style=True, sort_keys=False, width=1000).strip()
        lines.append(f"  - {flow}")
    return "\n".join(lines) + "\n"
