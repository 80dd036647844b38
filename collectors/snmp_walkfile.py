"""Saved SNMP walks as answers by OID (int or str), as the SNMP client would give them:
snmpsim's ``.snmprec`` files (``oid|type|value``) and net-snmp ``snmpwalk -On`` output
(``.1.3.6... = TYPE: value``). For `profile draft` on a device that is not reachable."""

from __future__ import annotations

import re
from pathlib import Path

# snmprec type tags (snmpsim "Simulation data" format): ASN.1 tag numbers.
_INTEGER_TAGS = {"2", "65", "66", "67", "70"}  # Integer32, Counter32, Gauge32, TimeTicks, Counter64
_STRING_TAGS = {"4", "6", "64"}  # OCTET STRING, OBJECT IDENTIFIER, IpAddress
# An answer of another type than the MIB's is printed "Wrong Type (should be X): Y: v".
_SNMPWALK = re.compile(r"^\.?(?P<oid>[0-9.]+)\s*=\s*(?:Wrong Type \(should be [^)]*\):\s*)?"
                       r"(?P<type>[A-Za-z0-9-]+):\s*(?P<value>.*)$")
# How snmpwalk prints a number: a named value "up(1)" or ticks "(12345) 0:02:03.45" (the
# number in brackets), or through a DISPLAY-HINT "d-3" as "53.500" (the raw 53500: the
# point moved, every digit kept; net-snmp writes no 0 before the point: "-.5", ".05"),
# either followed by the object's UNITS.
_SNMPWALK_NAMED = re.compile(r"^[A-Za-z][\w-]*\((-?\d+)\)|^\((\d+)\)")
_SNMPWALK_NUMBER = re.compile(r"^(-?)(\d*)(?:\.(\d+))?(?=\s|$)")
_SNMPWALK_NUMERIC = {"INTEGER", "INTEGER32", "GAUGE32", "COUNTER32", "COUNTER64", "TIMETICKS",
                     "UNSIGNED32"}


class WalkFileError(ValueError):
    """A walk file that cannot be read, naming the file and line."""


def _snmprec_value(tag: str, value: str) -> object:
    hexed = tag.endswith("x")
    tag = tag.rstrip("x").rstrip("e")
    if tag in _INTEGER_TAGS:
        return int(value)
    if tag in _STRING_TAGS:
        return bytes.fromhex(value).decode("utf-8", "replace") if hexed else value
    return None  # NULL, exceptions: nothing a profile reads


def snmpwalk_value(kind: str, value: str) -> object:
    """The raw value of one ``snmpwalk -On`` answer, as the agent sent it: an int for the
    numeric types (the text itself when it is no number snmpwalk prints), else the text."""
    value = value.strip()
    if kind.upper() not in _SNMPWALK_NUMERIC:
        return value.strip('"')
    named = _SNMPWALK_NAMED.match(value)
    if named is not None:
        return int(named.group(1) or named.group(2))
    number = _SNMPWALK_NUMBER.match(value)
    if number is None or not (number.group(2) or number.group(3)):
        return value
    return int(number.group(1) + number.group(2) + (number.group(3) or ""))


def read_walk(path: Path) -> dict[str, object]:
    """Answers by OID (no leading dot).

    :raises WalkFileError: naming the path and line that cannot be read.
    """
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise WalkFileError(f"{path}: cannot read: {exc.strerror}") from None
    answers: dict[str, object] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            if "|" in line and not line.lstrip().startswith("."):
                oid, tag, value = line.split("|", 2)
                got = _snmprec_value(tag.strip(), value)
            else:
                match = _SNMPWALK.match(line.strip())
                if match is None:
                    continue  # a wrapped string's next line
                oid = match.group("oid")
                got = snmpwalk_value(match.group("type"), match.group("value"))
        except ValueError as exc:
            raise WalkFileError(f"{path}:{number}: not a walk line ({exc}): "
                                f"{line[:80]!r}") from None
        if got is not None:
            answers[oid.strip().lstrip(".")] = got
    if not answers:
        raise WalkFileError(f"{path}: no SNMP values found (expected .snmprec or snmpwalk -On)")
    return answers
