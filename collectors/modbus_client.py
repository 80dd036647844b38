"""The Modbus seam: one narrow client interface, with a pymodbus implementation."""

from __future__ import annotations

import asyncio
from typing import Protocol

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from collectors.errors import DeviceError, PollConnectionError, PollTimeout
from config.datatypes import FC_READ_HOLDING, FC_READ_INPUT

# Modbus exception codes (Modbus Application Protocol V1.1b3, section 7).
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class ModbusClient(Protocol):
    """What pollers need from Modbus: read a block of registers from one unit."""

    async def read(self, function: int, address: int, count: int, unit: int) -> list[int]:
        """Registers, or a PollError subclass (DeviceError for an exception response)."""

    def close(self) -> None:
        """Close the connection."""


class PymodbusTcpClient:
    """Modbus TCP through pymodbus; reconnects on the next poll rather than in the background."""

    def __init__(self, host: str, port: int, timeout_s: float = 2.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._client: AsyncModbusTcpClient | None = None

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is None or not self._client.connected:
            if self._client is not None:
                self._client.close()
            # retries=0: the poller owns retries, so a dead unit costs one timeout, not four.
            self._client = AsyncModbusTcpClient(self.host, port=self.port,
                                                timeout=self.timeout_s, retries=0,
                                                reconnect_delay=0)
            try:
                ok = await asyncio.wait_for(self._client.connect(), self.timeout_s + 0.5)
            except TimeoutError:
                ok = False
            if not ok:
                self._client.close()
                self._client = None
                raise PollConnectionError(f"cannot connect to {self.host}:{self.port}")
        return self._client

    async def read(self, function: int, address: int, count: int, unit: int) -> list[int]:
        client = await self._connected()
        call = {FC_READ_HOLDING: client.read_holding_registers,
                FC_READ_INPUT: client.read_input_registers}[function]
        try:
            response = await asyncio.wait_for(call(address, count=count, device_id=unit),
                                              self.timeout_s + 0.5)
        except (TimeoutError, ModbusIOException) as exc:
            self.close()  # a late answer must not be taken for the next request's
            raise PollTimeout(f"no answer from unit {unit}: {exc or 'timeout'}") from None
        except ConnectionException as exc:
            self.close()
            raise PollConnectionError(str(exc)) from None
        except ModbusException as exc:
            self.close()
            raise PollConnectionError(str(exc)) from None
        if response.isError():
            code = getattr(response, "exception_code", None)
            name = EXCEPTION_NAMES.get(code or 0, "unknown exception")
            raise DeviceError(f"exception {code} ({name}) reading {count} at {address} "
                              f"fc{function} unit {unit}", code)
        registers = list(response.registers)
        if len(registers) < count:
            raise DeviceError(f"short answer: {len(registers)} of {count} registers")
        return registers[:count]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
