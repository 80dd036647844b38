"""Fuzzing the InfluxDB line-protocol encoder (exchange.influx.encode) with Hypothesis: every
point it writes reads back, by the line-protocol rules, as the same measurement, tags,
fields and timestamp, on one line; what line protocol cannot carry is refused with a
ValueError naming the part, never written wrong (a wrong line makes InfluxDB refuse the
whole batch of up to 5,000 points it sits in).

The reader here is this module's own ``parse``, written apart from the central service's
parser (central/lineproto.py, fuzzed by tests/test_fuzz_central.py) from the InfluxDB 2
line-protocol reference, so the encoder is not checked against code that shares its reading: in the measurement a backslash escapes a comma or a space; in tag keys, tag
values and field keys a comma, an equals sign or a space; in string field values a double
quote or a backslash; integers end in ``i``; newlines are not allowed in tag or field
values.

Bounded and deterministic (tests/fuzz_support.FUZZ); figures printed at the end of the run.
"""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pue_monitor.exchange.influx import INT64_MAX, INT64_MIN, encode, to_ns
from tests.fuzz_support import FUZZ, trying

EXAMPLES = 1000

MEASUREMENT_ESCAPES = ", "
KEY_ESCAPES = ",= "


def _name(line: str, i: int, escapes: str, stops: str) -> tuple[str, int]:
    """Read a measurement, key or tag value from ``i`` to an unescaped stop character."""
    out = []
    while i < len(line) and line[i] not in stops:
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in escapes:
            i += 1
        out.append(line[i])
        i += 1
    return "".join(out), i


def _field_value(line: str, i: int) -> tuple[object, int]:
    if line[i] == '"':
        out, i = [], i + 1
        while line[i] != '"':
            if line[i] == "\\" and line[i + 1] in '"\\':
                i += 1
            out.append(line[i])
            i += 1
        return "".join(out), i + 1
    end = i
    while end < len(line) and line[end] not in ", ":
        end += 1
    text = line[i:end]
    if text in ("true", "false"):
        return text == "true", end
    if text.endswith("i"):
        return int(text[:-1]), end
    return float(text), end


def parse(line: str) -> tuple[str, dict, dict, int]:
    """(measurement, tags, fields, timestamp) of one line of line protocol."""
    measurement, i = _name(line, 0, MEASUREMENT_ESCAPES, ", ")
    tags, fields = {}, {}
    while line[i] == ",":
        key, i = _name(line, i + 1, KEY_ESCAPES, "=")
        tags[key], i = _name(line, i + 1, KEY_ESCAPES, ", ")
    assert line[i] == " "
    while line[i] in ", ":
        key, i = _name(line, i + 1, KEY_ESCAPES, "=")
        fields[key], i = _field_value(line, i + 1)
        if line[i] == " ":
            break
    return measurement, tags, fields, int(line[i + 1:])


def carried(text: str, kind: str = "name") -> bool:
    """What encode promises to write unchanged (the rest it refuses): no control
    character; in names and tag values no backslash; names neither empty nor starting
    with '_' (reserved by InfluxDB 2 for names; a tag value may start with one)."""
    if any(unicodedata.category(c) == "Cc" for c in text):
        return False
    if kind == "string":
        return True
    if "\\" in text:
        return False
    return kind == "tag value" or (bool(text) and not text.startswith("_"))


# Text from the characters line protocol treats specially, and any others.
TEXT = st.text(st.one_of(st.sampled_from(list(',= "\\_#\n\r\ti')), st.characters()),
               max_size=12)
FIELD_VALUES = st.one_of(st.floats(), st.integers(-2**70, 2**70), st.booleans(), TEXT,
                         st.none())


@settings(max_examples=EXAMPLES, **FUZZ)
@given(st.one_of(TEXT, st.sampled_from(["pue_reading", "pue_site"])),
       st.dictionaries(TEXT, TEXT, max_size=4),
       st.dictionaries(TEXT, FIELD_VALUES, min_size=1, max_size=4),
       st.one_of(st.floats(-1e10, 1e10), st.floats()))
def test_encoded_points_read_back_unchanged(measurement, tags, fields, ts):
    with trying("InfluxDB line-protocol encoder round trip"):
        tags_kept = {k: v for k, v in tags.items() if v != ""}
        fields_kept = {k: v for k, v in fields.items()
                       if v is not None and not (isinstance(v, float) and not math.isfinite(v))}
        writable = (carried(measurement) and not measurement.startswith("#")
                    and all(carried(k) and carried(v, "tag value") for k, v in tags_kept.items())
                    and all(carried(k) and (not isinstance(v, str) or carried(v, "string"))
                            for k, v in fields_kept.items())
                    and all(INT64_MIN <= v <= INT64_MAX for v in fields_kept.values()
                            if isinstance(v, int) and not isinstance(v, bool))
                    and bool(fields_kept) and math.isfinite(ts)
                    and INT64_MIN <= to_ns(ts) <= INT64_MAX)
        if not writable:
            with pytest.raises(ValueError):
                encode(measurement, tags, fields, ts)
            return
        line = encode(measurement, tags, fields, ts)
        assert "\n" not in line and "\r" not in line
        assert parse(line) == (measurement, tags_kept, fields_kept, to_ns(ts))


@pytest.mark.parametrize(("tags", "fields", "error"), [
    ({"site": "a\nb"}, {"v": 1.0}, r"control character '\\n' in the value of tag 'site'"),
    ({"site": "a\\"}, {"v": 1.0}, r"the value of tag 'site' 'a\\\\': .*backslash"),
    ({"x\\": "a"}, {"v": 1.0}, "the tag key"),
    ({"_field": "a"}, {"v": 1.0}, "starting with '_'"),
    ({}, {"status": "ok\r\n"}, r"control character '\\r' in the value of field 'status'"),
    ({}, {"n": 2**63}, "outside InfluxDB's 64-bit integers"),
], ids=["newline-in-tag", "trailing-backslash", "backslash-in-key", "reserved-key",
        "newline-in-string-field", "int-beyond-64-bits"])
def test_what_line_protocol_cannot_carry_is_refused(tags, fields, error):
    """Found by the fuzzing above: a tag value ending in a backslash was written as
    ``a\\ `` (read back as "a "), a newline as the two characters ``\\n``, an integer
    beyond 64 bits as a number InfluxDB refuses (and with it the whole batch)."""
    with pytest.raises(ValueError, match=error):
        encode("pue_reading", tags, fields, 1.0)
