"""The objects of MIB modules, read from their text: name, OID, syntax, UNITS, DESCRIPTION,
table INDEX, and the DISPLAY-HINT of textual conventions (for `profile draft`).

A reader of the OBJECT-TYPE clauses, not an SMI compiler: pysmi needs the source of every
imported base module (SNMPv2-SMI, SNMPv2-TC, RFC1155-SMI ...), which an offline site does
not have, and vendor MIBs often mix SMIv1 and SMIv2 in ways a strict compiler refuses. OIDs
are resolved through the modules' own assignments from the well-known roots below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# The roots every module imports rather than defines (RFC 1155, RFC 2578).
WELL_KNOWN = {
    "iso": "1", "org": "1.3", "dod": "1.3.6", "internet": "1.3.6.1", "directory": "1.3.6.1.1",
    "mgmt": "1.3.6.1.2", "mib-2": "1.3.6.1.2.1", "system": "1.3.6.1.2.1.1",
    "experimental": "1.3.6.1.3", "private": "1.3.6.1.4", "enterprises": "1.3.6.1.4.1",
}
_COMMENT = re.compile(r"--[^\n]*")
_STRING = re.compile(r'"[^"]*"')
# name OBJECT-TYPE / MODULE-IDENTITY / OBJECT-IDENTITY / OBJECT IDENTIFIER ... ::= { parent n }
_DEFINITION = re.compile(
    r"(?<![A-Za-z0-9-])(?P<name>[a-z][A-Za-z0-9-]*)\s+"
    r"(?P<kind>OBJECT-TYPE|MODULE-IDENTITY|OBJECT-IDENTITY|OBJECT\s+IDENTIFIER)(?P<body>.*?)::=\s*\{\s*(?P<parent>[A-Za-z0-9-]+)"
    r"(?P<path>(?:\s+[a-z0-9-]*\(?\d+\)?)+)\s*\}", re.S)
_TC = re.compile(r"(?P<name>[A-Z][A-Za-z0-9-]*)\s*::=\s*TEXTUAL-CONVENTION(?P<body>.*?)"
                 r"SYNTAX\s+(?P<syntax>[A-Za-z0-9-]+)", re.S)
_CLAUSE = {
    "syntax": re.compile(r"\bSYNTAX\s+(SEQUENCE\s+OF\s+)?([A-Za-z][A-Za-z0-9-]*)(\s*\{)?"),
    "units": re.compile(r'\bUNITS\s+"([^"]*)"'),
    "access": re.compile(r"\b(?:MAX-)?ACCESS\s+([a-z-]+)"),
    "description": re.compile(r'\bDESCRIPTION\s+"([^"]*)"', re.S),
    "index": re.compile(r"\bINDEX\s*\{([^}]*)\}"),
    "hint": re.compile(r'\bDISPLAY-HINT\s+"([^"]*)"'),
}


class MibError(ValueError):
    """A MIB file that cannot be read."""


@dataclass
class MibObject:
    """One OBJECT-TYPE as the MIB text defines it."""

    name: str
    oid: str
    module: str
    syntax: str = ""  # base type or textual convention name
    enumerated: bool = False  # INTEGER { a(1), b(2) }: a state, never a measurement
    units: str = ""
    access: str = ""
    description: str = ""
    index: list[str] = field(default_factory=list)  # of a table entry
    hint: str = ""  # the DISPLAY-HINT of its textual convention, if any
    table_entry: str | None = None  # the entry a column belongs to


def _strip_comments(text: str) -> str:
    # Comments end at the line's end; a "--" inside a quoted string is not one.
    out, last = [], 0
    for match in _STRING.finditer(text):
        out.append(_COMMENT.sub("", text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_COMMENT.sub("", text[last:]))
    return "".join(out)


def read_mibs(paths: list[Path]) -> dict[str, MibObject]:
    """Every OBJECT-TYPE of the given MIB files, by OID.

    :raises MibError: naming the file that cannot be read or defines nothing.
    """
    parents: dict[str, tuple[str, list[int]]] = {}
    objects: dict[str, tuple[str, str, str]] = {}  # name -> (module, kind, body)
    hints: dict[str, str] = {}
    for path in paths:
        try:
            text = _strip_comments(path.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise MibError(f"{path}: cannot read: {exc.strerror}") from None
        module = (re.search(r"([A-Za-z][A-Za-z0-9-]*)\s+DEFINITIONS\s*::=", text) or
                  re.search(r"(\S+)", path.name)).group(1)  # type: ignore[union-attr]
        found = 0
        for m in _DEFINITION.finditer(text):
            numbers = [int(n) for n in re.findall(r"(\d+)\)?(?=\s|$)", m.group("path"))]
            parents[m.group("name")] = (m.group("parent"), numbers)
            objects[m.group("name")] = (module, m.group("kind"), m.group("body"))
            found += 1
        for m in _TC.finditer(text):
            hint = _CLAUSE["hint"].search(m.group("body"))
            hints[m.group("name")] = hint.group(1) if hint else ""
        if not found:
            raise MibError(f"{path}: no OBJECT-TYPE or OBJECT IDENTIFIER definitions found")
    resolved: dict[str, str] = {}

    def oid_of(name: str, depth: int = 0) -> str | None:
        if name in WELL_KNOWN:
            return WELL_KNOWN[name]
        if name in resolved:
            return resolved[name]
        if name not in parents or depth > 64:
            return None
        parent, numbers = parents[name]
        base = oid_of(parent, depth + 1)
        if base is None:
            return None
        resolved[name] = ".".join([base, *map(str, numbers)])
        return resolved[name]

    out: dict[str, MibObject] = {}
    entries: dict[str, str] = {}
    for name, (module, kind, body) in objects.items():
        oid = oid_of(name)
        if kind != "OBJECT-TYPE" or oid is None:
            continue
        clauses = {k: rx.search(body) for k, rx in _CLAUSE.items()}
        syntax = clauses["syntax"]
        obj = MibObject(
            name=name, oid=oid, module=module,
            syntax=syntax.group(2) if syntax else "",
            enumerated=bool(syntax and syntax.group(3)),
            units=clauses["units"].group(1).strip() if clauses["units"] else "",
            access=clauses["access"].group(1) if clauses["access"] else "",
            description=" ".join(clauses["description"].group(1).split())
            if clauses["description"] else "",
            index=re.findall(r"[A-Za-z][A-Za-z0-9-]*", clauses["index"].group(1))
            if clauses["index"] else [])
        obj.hint = hints.get(obj.syntax, "")
        if syntax and syntax.group(1):  # SEQUENCE OF: a table
            obj.access = "not-accessible"
        if obj.index:
            entries[name] = oid
        out[oid] = obj
    for obj in out.values():
        parent = parents.get(obj.name, ("", []))[0]
        if parent in entries:
            obj.table_entry = parent
    return out


def index_names(objects: dict[str, MibObject], column: MibObject) -> list[str]:
    """The INDEX object names of a column's table entry ([] for a scalar)."""
    if column.table_entry is None:
        return []
    entry = next((o for o in objects.values() if o.name == column.table_entry), None)
    return entry.index if entry else []
