"""The SNMP seam: one narrow client interface (GET a batch, walk some table columns), with
the pysnmp implementation for v1, v2c and v3: the reference engine. The fast engine
(snmp_gufo) provides the same two calls and raises the same PollError kinds;
snmp_engine chooses between them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from pyasn1.type import univ
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v1arch.asyncio import (
    CommunityData,
    SnmpDispatcher,
    UdpTransportTarget,
    bulk_cmd,
    get_cmd,
    next_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import SnmpEngine
from pysnmp.hlapi.v3arch.asyncio import UdpTransportTarget as V3UdpTransportTarget
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902, rfc1905

from pue_monitor.collectors.errors import (
    DeviceError,
    PollAuthError,
    PollConnectionError,
    PollDecodeError,
    PollTimeout,
)
from pue_monitor.collectors.snmp_decode import MISSING
from pue_monitor.collectors.snmp_dispatch import CheckedDispatcher, address_key
from pue_monitor.collectors.snmp_usm import usm_user
from pue_monitor.collectors.udp_buffer import size_receive_buffer
from pue_monitor.config.model import DEFAULT_TIMEOUT_S
from pue_monitor.config.profiles import DEFAULT_MAX_REPETITIONS

# SNMPv1 reports a missing object as a noSuchName error on the whole request.
V1_NO_SUCH_NAME = 2
MP_MODEL = {"1": 0, "2c": 1}
# Varbinds asked per GETBULK across all columns: keeps answers inside one datagram.
MAX_BULK_VARBINDS = 60
# Hard stop for one walk, against agents that never say endOfMibView.
MAX_WALK_VARBINDS = 20_000
_ABSENT = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)
# v3 answers that mean the credentials are wrong, not that the device is away.
_AUTH_ERRORS = (errind.UnknownUserName, errind.WrongDigest, errind.DecryptionError,
                errind.AuthenticationError, errind.AuthenticationFailure,
                errind.UnknownSecurityName, errind.UnsupportedSecurityLevel,
                errind.NoAuthentication, errind.NoEncryption, errind.UnknownCommunityName,
                errind.UnsupportedAuthProtocol, errind.UnsupportedPrivProtocol)
_AUTH_WORDS = ("unknownusername", "wrongdigest", "decryption", "authentication",
               "securitylevel", "unknownsecurityname")


class SnmpClient(Protocol):
    """What pollers need from SNMP."""

    async def get(self, oids: Sequence[str]) -> dict[str, object]:
        """Values by OID: int, str, or MISSING. Raises a PollError subclass on failure."""

    async def walk(self, columns: Sequence[str], max_repetitions: int) -> dict[str, object]:
        """Every object under each column OID (GETBULK; GETNEXT on v1), by OID."""

    def close(self) -> None:
        """Release sockets."""


def to_python(value: object) -> object:
    """A pyasn1 SNMP value as int, str or MISSING."""
    if isinstance(value, _ABSENT):
        return MISSING
    # Check the pyasn1 base types: v1 answers decode to them, v2c to the rfc1902 subclasses.
    if isinstance(value, rfc1902.IpAddress):
        return value.prettyPrint()
    if isinstance(value, univ.OctetString):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, univ.ObjectIdentifier):
        return str(value)
    if isinstance(value, univ.Integer):
        return int(value)  # Integer32, Gauge32, Counter32/64, Unsigned32, TimeTicks
    return MISSING


def classify(error: object) -> PollTimeout | PollAuthError | PollConnectionError:
    """The PollError for a pysnmp error indication."""
    if isinstance(error, errind.RequestTimedOut):
        return PollTimeout(str(error))
    text = str(error)
    if isinstance(error, _AUTH_ERRORS) or any(w in text.lower() for w in _AUTH_WORDS):
        return PollAuthError(f"SNMPv3 security: {text}")
    return PollConnectionError(text)


# One v1/v2c dispatcher (one UDP socket) per event loop serves every device: a dispatcher
# per device costs a socket and a timer each, and tripled the CPU per poll at 256 devices.
# Its socket's receive buffer is sized once the socket exists (after the first request):
# loop -> [dispatcher, users, bytes wanted, (socket, granted bytes) or None].
_DISPATCHERS: dict[asyncio.AbstractEventLoop, list] = {}


def _acquire_dispatcher(receive_buffer_bytes: int = 0) -> CheckedDispatcher:
    entry = _DISPATCHERS.setdefault(asyncio.get_running_loop(), [None, 0, 0, None])
    if entry[0] is None:
        entry[0] = CheckedDispatcher()
    entry[1] += 1
    entry[2] = max(entry[2], receive_buffer_bytes)
    return entry[0]


def _size_dispatcher_socket() -> None:
    entry = _DISPATCHERS.get(asyncio.get_running_loop())
    if entry is None or entry[3] is not None or not entry[2]:
        return
    carrier = entry[0].transport_dispatcher.get_transport(UdpTransportTarget.TRANSPORT_DOMAIN)
    sock = None if carrier is None or carrier.transport is None else (
        carrier.transport.get_extra_info("socket"))
    if sock is not None:
        entry[3] = (sock, size_receive_buffer(sock, entry[2]))


def receive_sockets() -> list[tuple[object, int, int]]:
    """(socket, bytes asked, bytes granted) of each shared v1/v2c socket sized so far."""
    return [(e[3][0], e[2], e[3][1]) for e in list(_DISPATCHERS.values()) if e[3] is not None]


def _release_dispatcher(dispatcher: SnmpDispatcher) -> None:
    for loop, entry in list(_DISPATCHERS.items()):
        if entry[0] is dispatcher:
            entry[1] -= 1
            if entry[1] <= 0:
                dispatcher.transport_dispatcher.close_dispatcher()
                del _DISPATCHERS[loop]


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.split("."))


class PysnmpClient:
    """SNMP GET and table walks through pysnmp: v1/v2c on the lightweight v1arch API, v3 on
    one SnmpEngine per client driven below the high-level API (no MIB lookups)."""

    def __init__(self, host: str, port: int, community: str = "public", version: str = "2c",
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = 1, *,
                 user: str | None = None,
                 auth_protocol: str | None = None, auth_key: str | None = None,
                 priv_protocol: str | None = None, priv_key: str | None = None,
                 context: str = "", receive_buffer_bytes: int = 0) -> None:
        self.host, self.port, self.version = host, port, version
        self.receive_buffer_bytes = receive_buffer_bytes  # of the shared v1/v2c socket
        self.timeout_s, self.retries = timeout_s, retries
        self.requests = 0  # requests asked (pysnmp's own retries not counted)
        self._v1 = version == "1"
        if version == "3":
            self._auth = usm_user(user or "", auth_protocol, auth_key, priv_protocol, priv_key)
        else:
            self._auth = CommunityData(community, mpModel=MP_MODEL[version])
        self._context = rfc1902.OctetString(context)
        self._dispatcher: CheckedDispatcher | None = None
        self._engine: SnmpEngine | None = None
        self._target: object | None = None
        self._addr_name: str | None = None
        self._binds: dict[tuple[str, ...], tuple] = {}

    # -- transport ----------------------------------------------------------------------

    async def _ensure(self) -> None:
        if self._target is not None:
            return
        if self.version == "3":
            self._engine = SnmpEngine()
            self._target = await V3UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout_s, retries=self.retries)
            self._addr_name, _ = LCD.configure(self._engine, self._auth, self._target,
                                               self._context)
        else:
            self._dispatcher = _acquire_dispatcher(self.receive_buffer_bytes)
            self._target = await UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout_s, retries=self.retries)

    def _varbinds(self, oids: Sequence[str]) -> tuple:
        # OID objects are built once per request shape: BER-ready names, no MIB lookups.
        key = tuple(oids)
        binds = self._binds.get(key)
        if binds is None:
            binds = tuple((rfc1902.ObjectName(o), rfc1902.Null("")) for o in key)
            if len(self._binds) < 1024:
                self._binds[key] = binds
        return binds

    async def _request(self, kind: str, oids: Sequence[str], repetitions: int = 0):
        """(error status, error index, varbinds) of one request; raises PollError."""
        await self._ensure()
        self.requests += 1
        binds = self._varbinds(oids)
        # pysnmp retries by itself; the outer bound only guards against a stuck loop.
        limit = self.timeout_s * (self.retries + 1) + 1.0
        address = None
        if self._dispatcher is not None:
            address = address_key(self._target.transport_address)  # type: ignore[attr-defined]
            self._dispatcher.take_odd(address)  # a problem of an earlier request: not ours
        try:
            if self.version == "3":
                error, status, index, var_binds = await asyncio.wait_for(
                    self._v3(kind, binds, repetitions), limit)
            else:
                call = {"get": get_cmd, "next": next_cmd}.get(kind)
                args = (self._dispatcher, self._auth, self._target)
                coro = (call(*args, *binds) if call is not None
                        else bulk_cmd(*args, 0, repetitions, *binds))
                error, status, index, var_binds = await asyncio.wait_for(coro, limit)
                _size_dispatcher_socket()
        except TimeoutError:
            self._forget_engine()
            raise self._odd(address) or PollTimeout(f"no answer within {limit:.1f} s") from None
        except OSError as exc:
            raise PollConnectionError(str(exc)) from exc
        if error:
            failure = classify(error)
            if isinstance(failure, PollTimeout):
                self._forget_engine()
                raise self._odd(address) or failure
            raise failure
        return int(status or 0), int(index or 0), var_binds

    def _odd(self, address: tuple[str, int] | None) -> PollDecodeError | None:
        """A timeout after answers the dispatcher dropped (undecodable, echoed, another
        request id or community): the device answers, wrongly."""
        problem = None if address is None or self._dispatcher is None else (
            self._dispatcher.take_odd(address))
        if problem is None:
            return None
        return PollDecodeError(f"{problem}; no valid answer within "
                               f"{self.timeout_s * (self.retries + 1):g} s")

    def _forget_engine(self) -> None:
        """v3: after a timeout, discover the agent again on the next request. A restarted
        agent (new boots and time, or a new engine id) answers the engine it knew before
        with reports pysnmp cannot match, i.e. never (measured with net-snmp's snmpd)."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = self._target = None

    def _v3(self, kind: str, binds: tuple, repetitions: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()

        def done(_engine, _handle, error, status, index, var_binds, _ctx) -> None:
            if not future.done():
                future.set_result((error, status, index, var_binds))

        generator = {"get": cmdgen.GetCommandGenerator, "next": cmdgen.NextCommandGenerator,
                     "bulk": cmdgen.BulkCommandGenerator}[kind]()
        head = (self._engine, self._addr_name, None, self._context)
        if kind == "bulk":
            generator.send_varbinds(*head, 0, repetitions, binds, done, None)
        else:
            generator.send_varbinds(*head, binds, done, None)
        return future

    # -- the interface ------------------------------------------------------------------

    async def get(self, oids: Sequence[str]) -> dict[str, object]:
        pending = list(oids)
        out: dict[str, object] = {}
        while pending:
            status, index, var_binds = await self._request("get", pending)
            if status:
                if self._v1 and status == V1_NO_SUCH_NAME and 0 < index <= len(pending):
                    # v1 names one missing object per call: drop it and ask again.
                    out[pending.pop(index - 1)] = MISSING
                    continue
                raise DeviceError(f"agent error status {status} at index {index}", status)
            for name, value in var_binds:
                out[str(name)] = to_python(value)
            break
        return out

    async def walk(self, columns: Sequence[str],
                   max_repetitions: int = DEFAULT_MAX_REPETITIONS) -> dict[str, object]:
        """All columns side by side: each GETBULK asks every unfinished column at once."""
        cursors = {c: c for c in dict.fromkeys(columns)}
        out: dict[str, object] = {}
        while cursors and len(out) < MAX_WALK_VARBINDS:
            active = list(cursors.items())
            names = [last for _, last in active]
            if self._v1:
                status, index, var_binds = await self._request("next", names)
                if status == V1_NO_SUCH_NAME and 0 < index <= len(active):
                    del cursors[active[index - 1][0]]  # that column ran off the MIB's end
                    continue
            else:
                repetitions = max(1, min(max_repetitions, MAX_BULK_VARBINDS // len(active)))
                status, index, var_binds = await self._request("bulk", names, repetitions)
            if status:
                raise DeviceError(f"agent error status {status} at index {index}", status)
            if not var_binds:
                break
            finished: set[str] = set()
            for i, (name, value) in enumerate(var_binds):
                column, _ = active[i % len(active)]
                if column in finished:
                    continue
                oid = str(name)
                previous = cursors[column]
                if (isinstance(value, rfc1905.EndOfMibView) or not oid.startswith(column + ".")
                        or _oid_key(oid) <= _oid_key(previous)):
                    finished.add(column)  # left the column (or the agent went backwards)
                    continue
                out[oid] = to_python(value)
                cursors[column] = oid
            for column, _ in active[:len(var_binds)]:
                if column in finished:
                    del cursors[column]
        return out

    def close(self) -> None:
        if self._dispatcher is not None:
            _release_dispatcher(self._dispatcher)
        if self._engine is not None:
            self._engine.close_dispatcher()
        self._dispatcher = self._engine = self._target = None
