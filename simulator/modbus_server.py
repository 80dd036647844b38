"""Modbus endpoints: one pymodbus server per host:port (Modbus TCP, or RTU frames over TCP
as a serial gateway speaks) or per serial line, one or more unit ids behind it.

Register images are plain dicts {function: {address: word}} replaced every tick. Only
the addresses a profile maps, and those its image holds when the server starts (a SunSpec
chain, a register image written by hand), exist: anything else answers "illegal data
address", as a real meter does. Several devices on one port with different unit ids model
a gateway.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from pue_monitor.config.datatypes import FC_READ_HOLDING, FC_READ_INPUT
from pue_monitor.config.profiles import Profile
from pue_monitor.simulator.encode import RegisterImage, sunspec_chain
from pue_monitor.simulator.faults import DeviceFaults

log = logging.getLogger(__name__)


@dataclass
class Unit:
    """One device behind the endpoint."""

    unit_id: int
    profile: Profile
    faults: DeviceFaults
    image: RegisterImage = field(default_factory=dict)


def _runs(addresses: set[int], max_gap: int = 0) -> list[tuple[int, int]]:
    """(start, length) runs of addresses; holes up to max_gap are served (as zeros),
    wider ones stay invalid, as the profile says the real device behaves."""
    runs: list[tuple[int, int]] = []
    for address in sorted(addresses):
        if runs and address - (runs[-1][0] + runs[-1][1]) <= max_gap:
            runs[-1] = (runs[-1][0], address - runs[-1][0] + 1)
        else:
            runs.append((address, 1))
    return runs


def _register_block(addresses: set[int], max_gap: int) -> list[SimData]:
    if not addresses:
        # pymodbus needs a non-empty block; one invalid cell answers "illegal address".
        return [SimData(0, datatype=DataType.INVALID)]
    return [SimData(start, values=[0] * length, datatype=DataType.REGISTERS, readonly=True)
            for start, length in _runs(addresses, max_gap)]


async def _serve(unit: Unit, function_code: int, start_address: int, address: int,
                 count: int, registers: list[int], set_values: object) -> ExcCodes | None:
    """pymodbus action hook: copy the current image into the block before it is read."""
    if set_values is not None or function_code not in (FC_READ_HOLDING, FC_READ_INPUT):
        return ExcCodes.ILLEGAL_FUNCTION  # a meter's registers are read-only
    image = unit.image.get(function_code, {})
    for i in range(count):
        registers[address - start_address + i] = image.get(address + i, 0)
    return None


def build_sim_device(unit: Unit) -> SimDevice:
    """The pymodbus device for a unit: holding and input blocks from its profile."""
    by_fc: dict[int, set[int]] = {FC_READ_HOLDING: set(), FC_READ_INPUT: set()}
    for point in unit.profile.modbus_resolved:
        if point.function not in by_fc:
            continue  # coils and discrete inputs are not simulated: they answer "illegal function"
        by_fc[point.function].update(range(point.address, point.address + point.count))
        if point.scale_address is not None:
            by_fc[point.function].add(point.scale_address)
    layout = unit.profile.sunspec
    if layout is not None and unit.profile.modbus_resolved:
        by_fc[unit.profile.modbus_resolved[0].function].update(sunspec_chain(layout))
    for function, words in unit.image.items():
        if function in by_fc:
            by_fc[function].update(words)
    gap = unit.profile.modbus_max_gap
    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]  # refused by _serve
    return SimDevice(
        id=unit.unit_id,
        simdata=(bits, list(bits), _register_block(by_fc[FC_READ_HOLDING], gap),
                 _register_block(by_fc[FC_READ_INPUT], gap)),
        action=functools.partial(_serve, unit),
    )


class _FaultyHandler(ServerRequestHandler):
    """Applies per-unit faults before the normal datastore path."""

    async def handle_request(self) -> None:
        pdu = self.last_pdu
        if not pdu:
            return
        unit = self.server.units.get(pdu.dev_id) or self.server.units.get(0)
        if unit is None:
            # A gateway with nothing at that unit id: "target device failed to respond".
            self.server_send(ExceptionResponse(pdu.function_code, ExcCodes.GATEWAY_NO_RESPONSE,
                                               pdu.dev_id, pdu.transaction_id), None)
            return
        if unit.faults.active("down"):
            return  # silent: the device behind the port is dead
        delay = unit.faults.delay()
        if delay > 0:
            await asyncio.sleep(delay)
            if unit.faults.active("down") or self.transport is None:
                return
        if unit.faults.active("garbage"):
            self.server_send(ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE,
                                               pdu.dev_id, pdu.transaction_id), None)
            return
        self.last_pdu = pdu  # another request may have arrived while we slept
        await super().handle_request()


class _Server(ModbusTcpServer):
    units: dict[int, Unit]

    def callback_new_connection(self) -> ServerRequestHandler:
        return _FaultyHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class _SerialServer(ModbusSerialServer):
    units: dict[int, Unit]

    def callback_new_connection(self) -> ServerRequestHandler:
        return _FaultyHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


FRAMINGS = {"tcp": FramerType.SOCKET, "rtu": FramerType.RTU}


class ModbusEndpoint:
    """A Modbus listener on (host, port), or on a serial line, serving one or more units.

    ``framing`` "rtu" on a TCP port models an RS-485 gateway in transparent mode (RTU over
    TCP); ``serial`` (a device path) serves RTU on that line, e.g. one end of a pty pair.
    """

    def __init__(self, host: str, port: int, framing: str = "tcp", serial: str | None = None,
                 baud: int = 9600) -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
        self.host, self.port, self.framing = host, port, framing
        self.serial, self.baud = serial, baud
        self.units: dict[int, Unit] = {}
        self._server: _Server | _SerialServer | None = None
        self._started = False

    def add_unit(self, unit_id: int, profile: Profile, faults: DeviceFaults) -> Unit:
        if unit_id in self.units:
            raise ValueError(f"unit {unit_id} already served on {self.host}:{self.port}")
        self.units[unit_id] = unit = Unit(unit_id, profile, faults)
        return unit

    def update(self, unit_id: int, image: RegisterImage) -> None:
        self.units[unit_id].image = image

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._started = True
        await self._listen()

    async def _listen(self) -> None:
        devices = [build_sim_device(u) for u in self.units.values()]
        server: _Server | _SerialServer
        if self.serial is not None:
            server = _SerialServer(devices, framer=FramerType.RTU, port=self.serial,
                                   baudrate=self.baud, parity="N", stopbits=1)
        else:
            server = _Server(devices, framer=FRAMINGS[self.framing],
                             address=(self.host, self.port))
        server.units = self.units
        await server.serve_forever(background=True)
        self._server = server
        sockets = getattr(server.transport, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # also drops every open connection

    async def stop(self) -> None:
        self._started = False
        await self._close()

    async def sync_down(self) -> None:
        """Refuse connections while every unit here is down; listen again afterwards."""
        if not self._started:
            return
        all_down = all(u.faults.active("down") for u in self.units.values())
        if all_down and self._server is not None:
            await self._close()
        elif not all_down and self._server is None:
            await self._listen()
