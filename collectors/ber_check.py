"""A structural check of a BER-encoded SNMP message before a decoder sees it: every
header complete, every length inside what holds it, no indefinite lengths, nothing after
the message. It reads no value, so it costs one pass over the headers.

Why: gufo-snmp's Rust decoder panics (pyo3 PanicException, a BaseException) on some
truncated datagrams instead of raising its decode error; such an answer is dropped here,
named, and counted as a decode error by the client (collectors.snmp_gufo).
"""

from __future__ import annotations

# A buffer this size holds any UDP datagram (RFC 768: a 16-bit length field).
MAX_DATAGRAM = 65535
# SNMP nests message, PDU, varbind list, varbind: v3 adds a few levels. Deeper is hostile.
MAX_DEPTH = 16
CONSTRUCTED = 0x20
LONG_TAG = 0x1F
INDEFINITE = 0x80
MAX_LENGTH_BYTES = 4


def ber_problem(data: bytes) -> str | None:
    """Why ``data`` is not one well-formed BER element, or None if it is."""
    if _well_formed(data):
        return None
    end, problem = _element(data, 0, len(data), 0)
    if problem is not None:
        return f"{problem} at byte {end}"
    if end != len(data):
        return f"{len(data) - end} bytes after the message"
    return None


def _element(data: bytes, at: int, limit: int, depth: int) -> tuple[int, str | None]:
    """(where the element starting at ``at`` ends, None) or (where it broke, why)."""
    if depth > MAX_DEPTH:
        return at, f"nested deeper than {MAX_DEPTH} levels"
    if at + 2 > limit:
        return at, "truncated header"
    tag, first = data[at], data[at + 1]
    if tag & LONG_TAG == LONG_TAG:
        return at, "multi-byte tag (SNMP uses none)"
    at += 2
    if first == INDEFINITE:
        return at, "indefinite length (not allowed in SNMP)"
    if first < INDEFINITE:
        length = first
    else:
        size = first & ~INDEFINITE
        if size > MAX_LENGTH_BYTES or at + size > limit:
            return at, f"absurd length of {size} bytes"
        length = int.from_bytes(data[at:at + size], "big")
        at += size
    if at + length > limit:
        return at, f"length {length} beyond the {limit - at} bytes left"
    if tag & CONSTRUCTED:
        inner, end = at, at + length
        shallow = depth < MAX_DEPTH  # a child may be checked here, without a call
        while inner < end:
            # A primitive child with a one-byte tag and a short length (every INTEGER,
            # OID and string of an SNMP answer) is checked inline, as _element would:
            # anything else, or anything wrong, goes through _element, which says why.
            if shallow and inner + 2 <= end:
                child, size = data[inner], data[inner + 1]
                if (not child & CONSTRUCTED and child & LONG_TAG != LONG_TAG
                        and size < INDEFINITE and inner + 2 + size <= end):
                    inner += 2 + size
                    continue
            inner, problem = _element(data, inner, end, depth + 1)
            if problem is not None:
                return inner, problem
    return at + length, None


def _well_formed(data: bytes) -> bool:
    """What ber_problem checks, in one loop without calls: every answer of every poll
    passes here (the recursive _element, ~13 calls for a 10-OID answer, says why one
    does not). The same checks as _element, in its order: an element's depth is the
    number of constructed elements open around it."""
    total = len(data)
    at, limit = 0, total
    open_limits: list[int] = []  # the limits of the constructed elements around ``at``
    while True:
        if len(open_limits) > MAX_DEPTH or at + 2 > limit:
            return False
        tag, first = data[at], data[at + 1]
        if tag & LONG_TAG == LONG_TAG or first == INDEFINITE:
            return False
        at += 2
        if first > INDEFINITE:
            size = first & ~INDEFINITE
            if size > MAX_LENGTH_BYTES or at + size > limit:
                return False
            end = at + int.from_bytes(data[at:at + size], "big") + size
            at += size
        else:
            end = at + first
        if end > limit:
            return False
        if tag & CONSTRUCTED:
            open_limits.append(limit)
            limit = end  # its children, from ``at``
        else:
            at = end
        while at == limit and open_limits:  # the elements that end here are done
            limit = open_limits.pop()
        if not open_limits:
            return at == total
