"""InfluxDB line protocol, parsed (pure: no I/O).

``measurement[,tag=value...] field=value[,field=value...] [timestamp]``, one point per
line; ``#`` comments and blank lines are skipped. Escapes as InfluxDB 2 has them: in a
measurement ``\\,`` and ``\\ ``; in tag keys, tag values and field keys also ``\\=``; in a
string field ``\\"`` and ``\\\\``. Field values: floats (``1``, ``1.5``, ``-2e3``),
integers ``1i``, unsigned ``1u``, booleans (``t``, ``true``, ``F``, ...) and strings.
Reference: docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/.

Every error names its line (1-based) so the edge, or a Telegraf operator, can see which
point was refused and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# ?precision= of the write API: the timestamp's unit, in nanoseconds.
PRECISION_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
# A line quoted in an error message is cut to this many characters.
QUOTE_MAX = 120
INT64_MAX = 2 ** 63 - 1
UINT64_MAX = 2 ** 64 - 1


@dataclass(frozen=True)
class Point:
    line: int  # 1-based line of the body
    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | bool | str]
    ts_ns: int | None  # None: no timestamp on the line


class LineError(ValueError):
    """One line that is not valid line protocol (or not a point the receiver takes)."""

    def __init__(self, line: int, reason: str, text: str = "") -> None:
        self.line, self.reason = line, reason
        quoted = text if len(text) <= QUOTE_MAX else text[:QUOTE_MAX] + "..."
        super().__init__(f"line {line}: {reason}" + (f": {quoted!r}" if text else ""))


def parse(body: str, precision: str = "ns") -> tuple[list[Point], list[LineError]]:
    """Every point of a body, and every line that is not one (the others still parse).

    :raises ValueError: an unknown precision.
    """
    if precision not in PRECISION_NS:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_NS)}, "
                         f"not {precision!r}")
    scale = PRECISION_NS[precision]
    points: list[Point] = []
    errors: list[LineError] = []
    for number, raw in enumerate(body.split("\n"), 1):
        text = raw.rstrip("\r")
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            points.append(parse_line(text, number, scale))
        except LineError as exc:
            errors.append(exc)
    return points, errors


def parse_line(text: str, number: int = 1, scale: int = 1) -> Point:
    """One line; ``scale``: nanoseconds per unit of its timestamp.

    :raises LineError: naming the line and what is wrong with it.
    """
    if "\\" in text or '"' in text:
        head, fields_text, ts_text = _split_escaped(text, number)
    else:  # the common case, as the edge writes it: plain splits
        parts = text.split(" ")
        if len(parts) not in (2, 3) or "" in parts:
            raise LineError(number, "expected 'measurement[,tags] fields [timestamp]' "
                            "separated by single spaces", text)
        head, fields_text = parts[0], parts[1]
        ts_text = parts[2] if len(parts) == 3 else None
    measurement, tags = _head(head, number, text)
    fields = _fields(fields_text, number, text)
    ts_ns = None
    if ts_text is not None:
        try:
            ts = int(ts_text, 10)
        except ValueError:
            raise LineError(number, f"timestamp {ts_text!r} is not an integer", text) from None
        ts_ns = ts * scale
        if not -INT64_MAX - 1 <= ts_ns <= INT64_MAX:
            raise LineError(number, "timestamp out of the 64-bit nanosecond range", text)
    return Point(number, measurement, tags, fields, ts_ns)


def _split_escaped(text: str, number: int) -> tuple[str, str, str | None]:
    """The three space-separated sections of a line with escapes or string fields."""
    sections: list[str] = []
    start, i, n, quoted = 0, 0, len(text), False
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            i += 2
            continue
        if c == '"' and sections:  # quotes only delimit strings in the field section
            quoted = not quoted
        elif c == " " and not quoted:
            sections.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise LineError(number, "unterminated string field", text)
    sections.append(text[start:])
    if len(sections) not in (2, 3) or "" in sections:
        raise LineError(number, "expected 'measurement[,tags] fields [timestamp]' separated "
                        "by single spaces", text)
    return sections[0], sections[1], sections[2] if len(sections) == 3 else None


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` not preceded by a backslash (escapes kept) and outside quotes."""
    if "\\" not in text and '"' not in text:
        return text.split(sep)
    out, start, i, quoted = [], 0, 0, False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == sep and not quoted:
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ', ="\\':
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _head(head: str, number: int, text: str) -> tuple[str, dict[str, str]]:
    parts = _split(head, ",")
    measurement = _unescape(parts[0])
    if not measurement:
        raise LineError(number, "no measurement name", text)
    tags: dict[str, str] = {}
    for part in parts[1:]:
        kv = _split(part, "=")
        if len(kv) != 2 or not kv[0] or not kv[1]:
            raise LineError(number, f"tag {part!r} is not key=value", text)
        key = _unescape(kv[0])
        if key in tags:
            raise LineError(number, f"tag {key!r} given twice", text)
        tags[key] = _unescape(kv[1])
    return measurement, tags


def _fields(section: str, number: int, text: str) -> dict[str, float | int | bool | str]:
    fields: dict[str, float | int | bool | str] = {}
    for part in _split(section, ","):
        kv = _split(part, "=")
        if len(kv) != 2 or not kv[0] or not kv[1]:
            raise LineError(number, f"field {part!r} is not key=value", text)
        key = _unescape(kv[0])
        if key in fields:
            raise LineError(number, f"field {key!r} given twice", text)
        fields[key] = _value(kv[1], key, number, text)
    if not fields:
        raise LineError(number, "no field", text)
    return fields


def _value(raw: str, key: str, number: int, text: str) -> float | int | bool | str:
    if raw[0] == '"':
        if len(raw) < 2 or raw[-1] != '"':
            raise LineError(number, f"field {key!r}: unterminated string", text)
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    try:
        if "_" in raw:  # Python's int() and float() take 1_000; line protocol does not
            raise ValueError
        if raw[-1] == "i":
            value = int(raw[:-1], 10)
            if not -INT64_MAX - 1 <= value <= INT64_MAX:
                raise ValueError
            return value
        if raw[-1] == "u":
            value = int(raw[:-1], 10)
            if not 0 <= value <= UINT64_MAX:
                raise ValueError
            return value
        value = float(raw)
    except ValueError:
        raise LineError(number, f"field {key!r}: {raw!r} is not a number, boolean or "
                        "string", text) from None
    if not math.isfinite(value) or raw.lower().lstrip("+-") in ("inf", "infinity", "nan"):
        raise LineError(number, f"field {key!r}: {raw!r} is not a finite number", text)
    return value


__all__ = ["LineError", "PRECISION_NS", "Point", "parse", "parse_line"]
