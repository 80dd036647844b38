"""The Modbus connection against scripted servers on 127.0.0.1 that misbehave on purpose:
late answers, out-of-step streams, busy devices, CRC errors, concurrent callers."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable

import pytest

from pue_monitor.collectors.errors import DeviceError, PollConnectionError, PollDecodeError, PollTimeout
from pue_monitor.collectors.modbus_client import ModbusConnection
from pue_monitor.collectors.modbus_frame import crc16

pytestmark = pytest.mark.integration

# A script gets (transaction id or None for RTU, unit, function, address, count, request
# number) and returns [(delay_s, raw bytes to send)].
Script = Callable[[int | None, int, int, int, int, int], list[tuple[float, bytes]]]


def mbap(tid: int, unit: int, pdu: bytes, protocol: int = 0) -> bytes:
    return struct.pack(">HHHB", tid, protocol, len(pdu) + 1, unit) + pdu


def rtu(unit: int, pdu: bytes) -> bytes:
    body = bytes((unit,)) + pdu
    return body + crc16(body).to_bytes(2, "little")


def registers(function: int, words: list[int]) -> bytes:
    return bytes((function, 2 * len(words))) + struct.pack(f">{len(words)}H", *words)


class ScriptedServer:
    """Reads request frames, answers whatever the script says, records timing."""

    def __init__(self, script: Script, rtu_framing: bool = False) -> None:
        self.script, self.rtu = script, rtu_framing
        self.requests: list[tuple[float, int, int]] = []  # (time, unit, address)
        self.answered: list[float] = []
        self.connections = 0
        self.in_flight = self.max_in_flight = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                if self.rtu:
                    frame = await reader.readexactly(8)
                    tid, unit, (function, address, count) = None, frame[0], \
                        struct.unpack(">BHH", frame[1:6])
                else:
                    header = await reader.readexactly(7)
                    tid, _, length, unit = struct.unpack(">HHHB", header)
                    function, address, count = struct.unpack(">BHH",
                                                              await reader.readexactly(length - 1))
                self.requests.append((time.monotonic(), unit, address))
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                actions = self.script(tid, unit, function, address, count, len(self.requests))
                asyncio.get_running_loop().create_task(self._send(writer, actions))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, actions: list) -> None:
        for delay, data in actions:
            await asyncio.sleep(delay)
            writer.write(data)
        self.in_flight -= 1
        self.answered.append(time.monotonic())


def good_tcp(tid, unit, function, address, count, n):
    return [(0, mbap(tid, unit, registers(function, [address + i for i in range(count)])))]


async def test_answers_are_registers():
    async with ScriptedServer(good_tcp) as server:
        conn = ModbusConnection("127.0.0.1", server.port, timeout_s=1.0)
        try:
            assert await conn.read(3, 100, 3, 7) == [100, 101, 102]
        finally:
            conn.close()


async def test_late_answer_is_skipped_by_transaction_id():
    late = {}

    def script(tid, unit, function, address, count, n):
        if n == 1:  # silent now; its answer goes out just before the next one's
            late["frame"] = mbap(tid, unit, registers(function, [0xDEAD] * count))
            return []
        return [(0, late["frame"]), *good_tcp(tid, unit, function, address, count, n)]

    async with ScriptedServer(script) as server:
        conn = ModbusConnection("127.0.0.1", server.port, timeout_s=0.3)
        try:
            with pytest.raises(PollTimeout):
                await conn.read(3, 10, 2, 1)
            assert await conn.read(3, 20, 2, 1) == [20, 21]
        finally:
            conn.close()
    assert conn.stats.stale_answers == 1
    assert server.connections == 1  # a timeout alone does not cost the connection


async def test_out_of_step_stream_resynchronises_by_reconnecting():
    def script(tid, unit, function, address, count, n):
        if n == 1:  # protocol id 1 and a length that is not one: junk on the stream
            return [(0, mbap(tid, unit, b"\x03\x04garbage", protocol=1))]
        return good_tcp(tid, unit, function, address, count, n)

    async with ScriptedServer(script) as server:
        conn = ModbusConnection("127.0.0.1", server.port, timeout_s=1.0)
        try:
            with pytest.raises(PollDecodeError):
                await conn.read(3, 0, 2, 1)
            assert await conn.read(3, 5, 2, 1) == [5, 6]
        finally:
            conn.close()
    assert (conn.stats.resyncs, server.connections) == (1, 2)


@pytest.mark.parametrize(("busy_answers", "retries", "outcome"), [
    (2, 3, [0, 1]),  # busy twice, then the answer
    (1, 0, 6),  # no retries configured: the busy exception is the answer
    (4, 3, 6),  # still busy after every retry
])
async def test_device_busy_is_retried(busy_answers, retries, outcome):
    def script(tid, unit, function, address, count, n):
        if n <= busy_answers:
            return [(0, mbap(tid, unit, bytes((function | 0x80, 6))))]
        return good_tcp(tid, unit, function, address, count, n)

    async with ScriptedServer(script) as server:
        conn = ModbusConnection("127.0.0.1", server.port, timeout_s=1.0, busy_retries=retries)
        try:
            if isinstance(outcome, list):
                assert await conn.read(4, 0, 2, 1) == outcome
            else:
                with pytest.raises(DeviceError) as caught:
                    await conn.read(4, 0, 2, 1)
                assert caught.value.code == outcome
        finally:
            conn.close()
    assert conn.stats.exceptions == {6: min(busy_answers, retries + 1)}


async def test_requests_on_one_connection_are_serialised_with_a_gap():
    gap = 0.05

    def script(tid, unit, function, address, count, n):
        return [(0.02, mbap(tid, unit, registers(function, [unit] * count)))]

    async with ScriptedServer(script) as server:
        conn = ModbusConnection("127.0.0.1", server.port, timeout_s=1.0, frame_gap_s=gap)
        try:
            got = await asyncio.gather(*(conn.read(3, 0, 1, unit) for unit in (1, 2, 3, 4)))
        finally:
            conn.close()
    assert got == [[1], [2], [3], [4]]
    assert server.max_in_flight == 1
    starts = [t for t, _, _ in server.requests]
    for answered, next_request in zip(server.answered, starts[1:], strict=False):
        assert next_request - answered >= gap * 0.9  # timer granularity only


async def test_refused_connection():
    async with ScriptedServer(good_tcp) as server:
        port = server.port
    conn = ModbusConnection("127.0.0.1", port, timeout_s=0.5)
    with pytest.raises(PollConnectionError):
        await conn.read(3, 0, 1, 1)


# ---- RTU over TCP ------------------------------------------------------------------------

def good_rtu(tid, unit, function, address, count, n):
    return [(0, rtu(unit, registers(function, [address + i for i in range(count)])))]


async def test_rtu_over_tcp_reads():
    async with ScriptedServer(good_rtu, rtu_framing=True) as server:
        conn = ModbusConnection("127.0.0.1", server.port, framing="rtu", timeout_s=1.0)
        try:
            assert await conn.read(4, 0x34, 2, 5) == [0x34, 0x35]
        finally:
            conn.close()


async def test_rtu_late_answer_of_another_unit_is_skipped():
    def script(tid, unit, function, address, count, n):
        if n == 1:
            return []  # unit 9 says nothing in time...
        # ...and its answer reaches the line right before unit 2's
        return [(0, rtu(9, registers(function, [0xBEEF] * count))),
                *good_rtu(tid, unit, function, address, count, n)]

    async with ScriptedServer(script, rtu_framing=True) as server:
        conn = ModbusConnection("127.0.0.1", server.port, framing="rtu", timeout_s=0.3)
        try:
            with pytest.raises(PollTimeout):
                await conn.read(3, 0, 2, 9)
            assert await conn.read(3, 7, 2, 2) == [7, 8]
        finally:
            conn.close()
    assert conn.stats.stale_answers == 1
    assert server.connections == 1


async def test_rtu_crc_error_drops_the_buffer_and_the_next_read_works():
    def script(tid, unit, function, address, count, n):
        if n == 1:
            frame = bytearray(rtu(unit, registers(function, [1] * count)))
            frame[-1] ^= 0xFF
            return [(0, bytes(frame))]
        return good_rtu(tid, unit, function, address, count, n)

    async with ScriptedServer(script, rtu_framing=True) as server:
        conn = ModbusConnection("127.0.0.1", server.port, framing="rtu", timeout_s=1.0)
        try:
            with pytest.raises(PollDecodeError):
                await conn.read(3, 0, 2, 1)
            assert await conn.read(3, 3, 1, 1) == [3]
        finally:
            conn.close()
    assert conn.stats.resyncs == 1


async def test_rtu_exception_answer():
    def script(tid, unit, function, address, count, n):
        return [(0, rtu(unit, bytes((function | 0x80, 2))))]

    async with ScriptedServer(script, rtu_framing=True) as server:
        conn = ModbusConnection("127.0.0.1", server.port, framing="rtu", timeout_s=1.0)
        try:
            with pytest.raises(DeviceError) as caught:
                await conn.read(3, 0, 2, 1)
        finally:
            conn.close()
    assert caught.value.code == 2


async def test_half_an_answer_then_silence_reopens_the_connection():
    def script(tid, unit, function, address, count, n):
        if n == 1:  # the header and one byte of the body, then nothing
            return [(0, mbap(tid, unit, registers(function, [7] * count))[:8])]
        return good_tcp(tid, unit, function, address, count, n)

    async with ScriptedServer(script) as server:
        conn = ModbusConnection("127.0.0.1", server.port, timeout_s=0.3)
        try:
            with pytest.raises(PollTimeout):
                await conn.read(3, 0, 2, 1)
            assert await conn.read(3, 4, 2, 2) == [4, 5]  # not a decode error for unit 2
        finally:
            conn.close()
    assert (server.connections, conn.stats.resyncs) == (2, 0)
