"""The Modbus seam: one narrow client interface, and a connection shared by unit ids.

One :class:`ModbusConnection` per TCP host:port, RTU-over-TCP gateway or serial line.
Every device behind it (one unit id each) reads through it; requests go one at a time,
``frame_gap_s`` apart. Failures stay with the unit that caused them:

* a unit that does not answer costs its own request a timeout; the connection stays up
  (over TCP a late answer is recognised by its transaction id and dropped; over RTU the
  input is discarded before each request and an answer from another unit is skipped);
* an answer that does not fit (wrong length, bad CRC, impossible MBAP header) means the
  byte stream is out of step: the buffer is dropped, and over TCP the connection reopened;
* "device busy" / "acknowledge" exceptions are asked again after a short wait.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

from pue_monitor.collectors.errors import DeviceError, PollConnectionError, PollDecodeError, PollTimeout
from pue_monitor.collectors.modbus_frame import (
    CRC_SIZE,
    MBAP_SIZE,
    RTU_HEADER_SIZE,
    ExceptionAnswer,
    FrameError,
    answer_values,
    check_rtu_crc,
    mbap_frame,
    parse_mbap_header,
    read_pdu,
    rtu_answer_size,
    rtu_frame,
)
from pue_monitor.collectors.modbus_transport import ByteStream, StreamClosed, open_serial, open_tcp
from pue_monitor.config.datatypes import MODBUS_TCP_PORT, rtu_frame_gap_s
from pue_monitor.config.model import (
    DEFAULT_BUSY_RETRIES,
    DEFAULT_TIMEOUT_S,
    SERIAL_DEFAULT_BAUD,
    SERIAL_DEFAULT_BYTESIZE,
    SERIAL_DEFAULT_PARITY,
    SERIAL_DEFAULT_STOPBITS,
)

# Modbus exception codes (Modbus Application Protocol V1.1b3, section 7).
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}
EXCEPTION_ACKNOWLEDGE = 5
EXCEPTION_BUSY = 6
RETRIED_EXCEPTIONS = frozenset({EXCEPTION_ACKNOWLEDGE, EXCEPTION_BUSY})
BUSY_WAIT_S = 0.1  # before asking a busy device again
TRANSACTION_MODULUS = 1 << 16


def exception_kind(code: int | None) -> str:
    """Error-counter kind for a Modbus exception, e.g. ``modbus_exception_2``."""
    return f"modbus_exception_{code}" if code is not None else "modbus_exception"


class ModbusClient(Protocol):
    """What pollers need from Modbus: read a block of registers (or bits) from one unit."""

    async def read(self, function: int, address: int, count: int, unit: int) -> list[int]:
        """Registers, or a PollError subclass (DeviceError for an exception response)."""

    def close(self) -> None:
        """Close the connection."""


@dataclass
class ConnectionStats:
    """What happened on one connection, for diagnostics and tests."""

    requests: int = 0
    timeouts: int = 0
    resyncs: int = 0  # answers dropped because they did not fit the request
    stale_answers: int = 0  # late answers (earlier transaction, other unit) skipped
    reconnects: int = 0
    busy_retries: int = 0
    exceptions: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SerialSettings:
    device: str
    baud: int = SERIAL_DEFAULT_BAUD
    parity: str = SERIAL_DEFAULT_PARITY
    stopbits: int = SERIAL_DEFAULT_STOPBITS
    bytesize: int = SERIAL_DEFAULT_BYTESIZE


class ModbusConnection:
    """One TCP connection or serial line, shared by every unit id behind it."""

    def __init__(self, host: str | None = None, port: int = MODBUS_TCP_PORT, *,
                 framing: str = "tcp", serial: SerialSettings | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, frame_gap_s: float | None = None,
                 busy_retries: int = DEFAULT_BUSY_RETRIES) -> None:
        if framing not in ("tcp", "rtu"):
            raise ValueError(f"framing must be tcp or rtu, got {framing!r}")
        if (serial is None) == (host is None):
            raise ValueError("give a host or serial settings")
        if serial is not None and framing != "rtu":
            raise ValueError("a serial line carries RTU frames")
        self.host, self.port, self.framing, self.serial = host, port, framing, serial
        self.timeout_s, self.busy_retries = timeout_s, busy_retries
        default_gap = rtu_frame_gap_s(serial.baud) if serial is not None else 0.0
        self.frame_gap_s = default_gap if frame_gap_s is None else frame_gap_s
        self.stats = ConnectionStats()
        self._stream: ByteStream | None = None
        self._lock = asyncio.Lock()
        self._transaction = 0
        self._quiet_until = 0.0  # monotonic time before which the line must stay silent
        self._mid_frame = False  # an MBAP header was read, its body not yet

    @property
    def name(self) -> str:
        if self.serial is not None:
            return f"serial {self.serial.device}"
        return f"{'rtu-over-tcp ' if self.framing == 'rtu' else ''}{self.host}:{self.port}"

    async def _open(self) -> ByteStream:
        if self._stream is not None and not self._stream.closed:
            return self._stream
        if self._stream is not None:
            self.stats.reconnects += 1
        try:
            if self.serial is not None:
                s = self.serial
                self._stream = open_serial(s.device, s.baud, s.parity, s.stopbits, s.bytesize)
            else:
                assert self.host is not None
                self._stream = await open_tcp(self.host, self.port, self.timeout_s)
        except (TimeoutError, OSError) as exc:
            self._stream = None
            raise PollConnectionError(f"cannot connect to {self.name}: "
                                      f"{exc or 'timeout'}") from None
        return self._stream

    async def read(self, function: int, address: int, count: int, unit: int) -> list[int]:
        """Registers or bits; a PollError subclass on failure (DeviceError: an exception)."""
        pdu = read_pdu(function, address, count)
        for attempt in range(self.busy_retries + 1):
            try:
                async with self._lock:
                    return await self._exchange(pdu, function, count, unit)
            except ExceptionAnswer as exc:
                self.stats.exceptions[exc.code] = self.stats.exceptions.get(exc.code, 0) + 1
                if exc.code in RETRIED_EXCEPTIONS and attempt < self.busy_retries:
                    self.stats.busy_retries += 1
                    await asyncio.sleep(BUSY_WAIT_S)
                    continue
                name = EXCEPTION_NAMES.get(exc.code, "unknown exception")
                raise DeviceError(f"exception {exc.code} ({name}) reading {count} at {address} "
                                  f"fc{function} unit {unit} on {self.name}", exc.code) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, pdu: bytes, function: int, count: int, unit: int) -> list[int]:
        stream = await self._open()
        wait = self._quiet_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self.stats.requests += 1
        try:
            if self.framing == "tcp":
                answer = await self._tcp_exchange(stream, pdu, unit)
            else:
                answer = await self._rtu_exchange(stream, pdu, unit)
            return answer_values(function, count, answer)
        except TimeoutError:
            self.stats.timeouts += 1
            if self.framing == "tcp" and (self._mid_frame or stream.pending):
                # Part of an answer came (its header, or some of it): where the next one
                # starts is unknown. Kept, a cut header shifted the two answers after it.
                self._drop()
            raise PollTimeout(f"no answer from unit {unit} on {self.name} "
                              f"within {self.timeout_s:g} s") from None
        except StreamClosed as exc:
            self._drop()
            raise PollConnectionError(f"{self.name}: {exc}") from None
        except asyncio.CancelledError:
            # Given up on mid-answer (the poll's own deadline): over TCP the rest of that
            # answer would be taken for the next one's header, so start afresh.
            if self.framing == "tcp":
                self._drop()
            raise
        except FrameError as exc:
            # Out of step: whatever is buffered belongs to no request we can match.
            self.stats.resyncs += 1
            stream.discard()
            if self.framing == "tcp":
                self._drop()
            raise PollDecodeError(f"unit {unit} on {self.name}: {exc}") from None
        finally:
            self._quiet_until = time.monotonic() + self.frame_gap_s

    async def _tcp_exchange(self, stream: ByteStream, pdu: bytes, unit: int) -> bytes:
        self._transaction = (self._transaction + 1) % TRANSACTION_MODULUS
        expected = self._transaction
        stream.write(mbap_frame(expected, unit, pdu))
        deadline = time.monotonic() + self.timeout_s
        while True:
            self._mid_frame = False
            transaction, got_unit, length = parse_mbap_header(
                await stream.read_exactly(MBAP_SIZE, deadline))
            self._mid_frame = True
            body = await stream.read_exactly(length, deadline)
            self._mid_frame = False
            if transaction == expected:
                if got_unit != unit:
                    raise FrameError(f"answer from unit {got_unit}, asked {unit}")
                return body
            # The late answer to an earlier request that timed out: skip it.
            self.stats.stale_answers += 1

    async def _rtu_exchange(self, stream: ByteStream, pdu: bytes, unit: int) -> bytes:
        if stream.discard():
            self.stats.stale_answers += 1  # a late answer arrived while the line was idle
        stream.write(rtu_frame(unit, pdu))
        deadline = time.monotonic() + self.timeout_s
        while True:
            header = await stream.read_exactly(RTU_HEADER_SIZE, deadline)
            rest = await stream.read_exactly(rtu_answer_size(header) - RTU_HEADER_SIZE, deadline)
            frame = header + rest
            check_rtu_crc(frame)
            if header[0] == unit:
                return frame[1:-CRC_SIZE]
            self.stats.stale_answers += 1  # another unit's late answer

    def _drop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        """Close the connection (idempotent; the next read reopens it)."""
        self._drop()


class ModbusTcpClient(ModbusConnection):
    """Modbus TCP to one host:port (the simple case, kept for callers that use it)."""

    def __init__(self, host: str, port: int = MODBUS_TCP_PORT,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(host, port, framing="tcp", timeout_s=timeout_s)


# The name the simulator tests know this client by (it once wrapped pymodbus).
PymodbusTcpClient = ModbusTcpClient
