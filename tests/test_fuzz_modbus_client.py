"""Fuzzing the Modbus client with Hypothesis behind a server on 127.0.0.1 that answers every
read with garbage: random bytes, a real answer with bytes changed, cut short, or followed
by junk, over Modbus TCP (MBAP) and RTU over TCP. Each read gives registers or bits of
the right count, or raises a PollError (the kinds the poller counts), never anything else.
The server answers later reads correctly: the read after the garbage may still fail (junk
left on the stream is read as its answer), the one after that succeeds, as the client
drops an out-of-step connection and opens a new one.

Bounded and deterministic (tests/fuzz_support.FUZZ); figures printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pue_monitor.collectors.errors import PollError
from pue_monitor.collectors.modbus_client import ModbusConnection
from pue_monitor.collectors.modbus_frame import crc16
from pue_monitor.config.datatypes import MAX_READ_REGISTERS, READ_FUNCTIONS
from tests import suite_figures
from tests.fuzz_support import FUZZ, trying

pytestmark = pytest.mark.integration

CLIENT_EXAMPLES = 100  # per framing; an answer that never completes costs the timeout
TIMEOUT_S = 0.2
REGISTER_FUNCTIONS = (3, 4)

EDITS = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                 max_size=4)
BEHAVIOUR = st.one_of(
    st.tuples(st.just("random bytes"), st.binary(max_size=300)),
    st.tuples(st.just("answer with bytes changed"), EDITS),
    st.tuples(st.just("answer cut short"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("answer, then garbage"), st.binary(min_size=1, max_size=40)),
)


def good_pdu(function: int, address: int, count: int) -> bytes:
    if function in REGISTER_FUNCTIONS:
        words = [(address + i) & 0xFFFF for i in range(count)]
        return bytes((function, 2 * count)) + struct.pack(f">{count}H", *words)
    bits = bytes(((address + i) & 0xFF for i in range((count + 7) // 8)))
    return bytes((function, len(bits))) + bits


def frame(rtu: bool, tid: int, unit: int, pdu: bytes) -> bytes:
    if rtu:
        body = bytes((unit,)) + pdu
        return body + crc16(body).to_bytes(2, "little")
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def misbehave(behaviour: tuple, answer: bytes) -> bytes:
    kind, arg = behaviour
    if kind == "random bytes":
        return arg
    if kind == "answer with bytes changed":
        data = bytearray(answer)
        for where, byte in arg:
            data[int(where * len(data))] = byte
        return bytes(data)
    if kind == "answer cut short":
        return answer[:int(arg * len(answer))]
    return answer + arg


class Server:
    """Answers the first request as ``behaviour`` says, every later one correctly."""

    def __init__(self, behaviour: tuple, rtu: bool) -> None:
        self.behaviour, self.rtu, self.requests = behaviour, rtu, 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                if self.rtu:
                    request = await reader.readexactly(8)
                    tid, unit, body = 0, request[0], request[1:6]
                else:
                    header = await reader.readexactly(7)
                    tid, _, length, unit = struct.unpack(">HHHB", header)
                    body = await reader.readexactly(length - 1)
                function, address, count = struct.unpack(">BHH", body[:5])
                answer = frame(self.rtu, tid, unit, good_pdu(function, address, count))
                self.requests += 1
                writer.write(misbehave(self.behaviour, answer) if self.requests == 1
                             else answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the test's loop is ending
        finally:
            writer.close()


async def read(conn: ModbusConnection, function: int, count: int) -> str:
    try:
        values = await conn.read(function, 100, count, 1)
    except PollError as exc:
        return exc.kind.value
    assert len(values) == count
    assert all(0 <= v <= (0xFFFF if function in REGISTER_FUNCTIONS else 1) for v in values)
    return "values"


async def three_reads(behaviour: tuple, rtu: bool, function: int,
                      count: int) -> tuple[str, str, str]:
    server = Server(behaviour, rtu)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    conn = ModbusConnection("127.0.0.1", port, framing="rtu" if rtu else "tcp",
                            timeout_s=TIMEOUT_S, busy_retries=0)
    try:
        return (await read(conn, function, count), await read(conn, function, count),
                await read(conn, function, count))
    finally:
        conn.close()
        listener.close()
        await listener.wait_closed()


@pytest.mark.parametrize("framing", ["tcp", "rtu"])
@settings(max_examples=CLIENT_EXAMPLES, **FUZZ)
@given(behaviour=BEHAVIOUR, function=st.sampled_from(sorted(READ_FUNCTIONS)),
       count=st.integers(1, MAX_READ_REGISTERS))
def test_modbus_client_behind_a_misbehaving_server(framing, behaviour, function, count):
    name = f"Modbus client ({framing.upper()} framing) behind a misbehaving server"
    with trying(name):
        # bounded: each read waits at most its timeout (and a reconnection)
        first, second, third = asyncio.run(asyncio.wait_for(
            three_reads(behaviour, framing == "rtu", function, count), 10))
        kinds = ("values", "timeout", "decode", "device_error", "connection")
        assert first in kinds and second in kinds
        assert third == "values"
    suite_figures.count(f"fuzz: {name}", **{f"garbled read {first}": 1, f"next read {second}": 1})


@pytest.mark.parametrize("header_bytes", range(1, 7))
def test_a_cut_mbap_header_costs_one_read_not_three(header_bytes):
    """Found by the fuzzing above: an answer cut inside its 7-byte MBAP header timed out,
    and its bytes stayed buffered, shifting the next answer (a stale answer skipped, a
    timeout) and the one after (a decode error) before the client reconnected."""
    first_answer = frame(False, 1, 1, good_pdu(3, 100, 1))  # transaction 1, unit 1
    behaviour = ("random bytes", first_answer[:header_bytes])
    assert asyncio.run(asyncio.wait_for(three_reads(behaviour, False, 3, 1), 10)) == \
        ("timeout", "values", "values")
