"""The BER check every SNMP answer passes (collectors/ber_check.py): its one-loop check of
a well-formed answer agrees with the recursive one that says why an answer is not, on
named cases and on seeded random mutations of valid messages."""

from __future__ import annotations

import random

import pytest

from pue_monitor.collectors.ber_check import MAX_DEPTH, _element, _well_formed, ber_problem


def tlv(tag: int, body: bytes) -> bytes:
    """One BER element: short length form below 128 bytes, long form above."""
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def nested(depth: int) -> bytes:
    """An INTEGER inside ``depth`` SEQUENCEs."""
    out = tlv(0x02, b"\x01")
    for _ in range(depth):
        out = tlv(0x30, out)
    return out


def recursive_verdict(data: bytes) -> bool:
    end, problem = _element(data, 0, len(data), 0)
    return problem is None and end == len(data)


VARBIND = tlv(0x30, tlv(0x06, b"\x2b\x06\x01\x02\x01\x01\x03\x00") + tlv(0x43, b"\x01\x02"))
MESSAGE = tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, b"public") + tlv(
    0xA2, tlv(0x02, b"\x07") + tlv(0x02, b"\x00") + tlv(0x02, b"\x00")
    + tlv(0x30, VARBIND * 10)))

# (case, datagram, what ber_problem says: None when well-formed)
CASES = [
    ("a 10-varbind answer", MESSAGE, None),
    ("long-form lengths", tlv(0x30, tlv(0x04, b"x" * 300)), None),
    ("an empty sequence", tlv(0x30, b""), None),
    ("an empty sequence inside one", tlv(0x30, tlv(0x30, b"")), None),
    (f"nested {MAX_DEPTH} deep", nested(MAX_DEPTH), None),
    (f"nested {MAX_DEPTH + 1} deep", nested(MAX_DEPTH + 1),
     f"nested deeper than {MAX_DEPTH} levels at byte {2 * (MAX_DEPTH + 1)}"),
    ("empty", b"", "truncated header at byte 0"),
    ("trailing bytes", MESSAGE + b"\x00\x00", "2 bytes after the message"),
    ("cut in half", MESSAGE[:len(MESSAGE) // 2], "length"),
    ("indefinite length", b"\x30\x80\x02\x01\x01\x00\x00",
     "indefinite length (not allowed in SNMP) at byte 2"),
    ("multi-byte tag", b"\x1f\x81\x00", "multi-byte tag (SNMP uses none) at byte 0"),
    ("absurd length size", b"\x30\x85\x01\x02\x03\x04\x05", "absurd length of 5 bytes"),
    ("length beyond", b"\x30\x84\x7f\xff\xff\xff" + MESSAGE[2:],
     "length 2147483647 beyond"),
]


@pytest.mark.parametrize("data, says", [(d, s) for _, d, s in CASES],
                         ids=[c for c, _, _ in CASES])
def test_named_cases(data: bytes, says: str | None) -> None:
    problem = ber_problem(data)
    if says is None:
        assert problem is None
    else:
        assert problem is not None and says in problem
    assert _well_formed(data) == recursive_verdict(data) == (says is None)


def random_message(rng: random.Random, depth: int = 0) -> bytes:
    if depth > MAX_DEPTH + 2 or rng.random() < 0.3:
        return tlv(rng.choice((0x02, 0x04, 0x05, 0x06, 0x41, 0x43)),
                   bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 3, 40, 200)))))
    return tlv(rng.choice((0x30, 0xA0, 0xA2)),
               b"".join(random_message(rng, depth + 1) for _ in range(rng.randrange(4))))


def mutated(rng: random.Random, message: bytes) -> bytes:
    data = bytearray(message)
    how = rng.randrange(5)
    if how == 0 and data:
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == 1:
        del data[rng.randrange(len(data) + 1):]
    elif how == 2:
        data.append(rng.randrange(256))
    elif how == 3 and data:
        data[rng.randrange(min(len(data), 6))] ^= 0x80  # short <-> long length forms
    return bytes(data)


@pytest.mark.parametrize("seed", range(4))
def test_the_loop_agrees_with_the_recursion(seed: int) -> None:
    rng = random.Random(seed)
    datagrams = [mutated(rng, random_message(rng)) for _ in range(3000)]
    datagrams += [mutated(rng, MESSAGE) for _ in range(3000)]
    verdicts = [(_well_formed(d), recursive_verdict(d)) for d in datagrams]
    assert [d.hex() for d, (fast, slow) in zip(datagrams, verdicts) if fast != slow] == []
    # Both kinds were met: the agreement is not all on one side.
    assert {fast for fast, _ in verdicts} == {True, False}
