"""The SNMP seam: one narrow client interface, with a pysnmp implementation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from pysnmp.hlapi.v1arch.asyncio import (
    CommunityData,
    SnmpDispatcher,
    UdpTransportTarget,
    get_cmd,
)
from pyasn1.type import univ
from pysnmp.proto import errind, rfc1902, rfc1905

from collectors.decode import MISSING
from collectors.errors import DeviceError, PollConnectionError, PollTimeout

# SNMPv1 reports a missing object as a noSuchName error on the whole request.
V1_NO_SUCH_NAME = 2
MP_MODEL = {"1": 0, "2c": 1}
_ABSENT = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)


class SnmpClient(Protocol):
    """What pollers need from SNMP: GET a batch of OIDs."""

    async def get(self, oids: Sequence[str]) -> dict[str, object]:
        """Values by OID: int, str, or MISSING. Raises a PollError subclass on failure."""

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


class PysnmpClient:
    """SNMP v1/v2c GET through pysnmp's lightweight (v1arch) API."""

    def __init__(self, host: str, port: int, community: str, version: str = "2c",
                 timeout_s: float = 2.0, retries: int = 1) -> None:
        self.host, self.port = host, port
        self._auth = CommunityData(community, mpModel=MP_MODEL[version])
        self._v1 = version == "1"
        self.timeout_s, self.retries = timeout_s, retries
        self._dispatcher: SnmpDispatcher | None = None
        self._target: UdpTransportTarget | None = None

    async def _ensure(self) -> tuple[SnmpDispatcher, UdpTransportTarget]:
        if self._dispatcher is None:
            self._dispatcher = SnmpDispatcher()
        if self._target is None:
            self._target = await UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout_s, retries=self.retries)
        return self._dispatcher, self._target

    async def get(self, oids: Sequence[str]) -> dict[str, object]:
        pending = list(oids)
        out: dict[str, object] = {}
        while pending:
            dispatcher, target = await self._ensure()
            binds = [(oid, rfc1902.Null("")) for oid in pending]
            # pysnmp retries by itself; the outer bound only guards against a stuck loop.
            limit = self.timeout_s * (self.retries + 1) + 1.0
            try:
                error, status, index, var_binds = await asyncio.wait_for(
                    get_cmd(dispatcher, self._auth, target, *binds), limit)
            except TimeoutError:
                raise PollTimeout(f"no answer within {limit:.1f} s") from None
            except OSError as exc:
                raise PollConnectionError(str(exc)) from exc
            if error:
                if isinstance(error, errind.RequestTimedOut):
                    raise PollTimeout(str(error))
                raise PollConnectionError(str(error))
            if status:
                if self._v1 and int(status) == V1_NO_SUCH_NAME and 0 < int(index) <= len(pending):
                    # v1 names one missing object per call: drop it and ask again.
                    out[pending.pop(int(index) - 1)] = MISSING
                    continue
                raise DeviceError(f"agent error {status.prettyPrint()} at index {int(index)}",
                                  int(status))
            for name, value in var_binds:
                out[str(name)] = to_python(value)
            break
        return out

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.transport_dispatcher.close_dispatcher()
            self._dispatcher = None
            self._target = None
