"""Byte streams under the Modbus client: a TCP socket or a serial line (pyserial)."""

from __future__ import annotations

import asyncio
import os
import time


class StreamClosed(ConnectionError):
    """The peer closed the connection, or the line went away."""


class ByteStream(asyncio.Protocol):
    """Bytes arriving from a TCP socket or a serial line, read exactly or discarded."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._closed: Exception | None = None
        self._transport: asyncio.WriteTransport | None = None
        self.bytes_in = 0

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = exc or StreamClosed("connection closed by the peer")
        self._wake()

    # -- for readers --------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._buffer += data
        self.bytes_in += len(data)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def pending(self) -> int:
        """Bytes received and not yet read."""
        return len(self._buffer)

    def discard(self) -> int:
        """Drop whatever arrived unasked (a late answer); return how many bytes."""
        n = len(self._buffer)
        self._buffer.clear()
        return n

    async def read_exactly(self, n: int, deadline: float) -> bytes:
        """``n`` bytes, waiting until the monotonic ``deadline`` at most.

        :raises TimeoutError: not enough bytes in time (what did arrive stays buffered).
        :raises StreamClosed: the connection is gone.
        """
        while len(self._buffer) < n:
            if self._closed is not None:
                raise StreamClosed(str(self._closed))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            # A bare future and a timer: wait_for would cost a task per wait.
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(remaining, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def write(self, data: bytes) -> None:
        if self._closed is not None or self._transport is None:
            raise StreamClosed("not connected")
        self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._closed = self._closed or StreamClosed("closed")
        self._wake()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def open_tcp(host: str, port: int, timeout_s: float) -> ByteStream:
    """A connected TCP stream, Nagle off (a request is one small write).

    :raises TimeoutError, OSError: no connection.
    """
    loop = asyncio.get_running_loop()
    _, stream = await asyncio.wait_for(
        loop.create_connection(ByteStream, host, port), timeout_s)
    return stream


class _SerialTransport(asyncio.WriteTransport):
    """Just enough of a transport over a pyserial port read through the event loop."""

    def __init__(self, port: object, stream: ByteStream) -> None:
        super().__init__()
        self._port, self._stream = port, stream
        self._fd: int = port.fileno()  # type: ignore[attr-defined]
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except OSError as exc:
            self.close()
            self._stream.connection_lost(exc)
            return
        if data:
            self._stream.feed(data)

    def write(self, data: bytes) -> None:  # type: ignore[override]
        # A request is a few bytes: the kernel buffer takes it at once.
        self._port.write(data)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._port is not None:
            self._loop.remove_reader(self._fd)
            self._port.close()  # type: ignore[attr-defined]
            self._port = None

    def is_closing(self) -> bool:
        return self._port is None


def open_serial(device: str, baud: int, parity: str, stopbits: int, bytesize: int) -> ByteStream:
    """A serial line through pyserial, read through the event loop.

    :raises OSError: the device cannot be opened (pyserial's SerialException is one).
    """
    import serial  # imported here: only serial targets need pyserial

    port = serial.Serial(device, baudrate=baud, parity=parity, stopbits=stopbits,
                         bytesize=bytesize, timeout=0, write_timeout=1.0, exclusive=True)
    stream = ByteStream()
    stream.connection_made(_SerialTransport(port, stream))
    return stream
