"""A small SNMP v1/v2c agent over UDP, serving one device's OID table.

Built on pysnmp's message API (pysnmp.proto.api) and pyasn1 BER, with a plain asyncio
DatagramProtocol: a full SnmpEngine per device would be far too heavy for ~20 agents.
Like real agents, it answers GET, GETNEXT and GETBULK, stays silent on a wrong
community and ignores packets it cannot parse.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Callable

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api
from pysnmp.proto.api import v1, v2c

from pue_monitor.simulator.encode import Oid, SnmpTable
from pue_monitor.simulator.faults import DeviceFaults

log = logging.getLogger(__name__)

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
DEFAULT_SYS_OBJECT_ID = "1.3.6.1.4.1.8072.3.2.10"  # net-snmp's "Linux" agent OID
MAX_VARBINDS = 256  # keeps a GETBULK answer well inside one UDP datagram
ERR_NO_SUCH_NAME, ERR_NOT_WRITABLE, ERR_GEN = 2, 17, 5

# Profile type name -> value class, per protocol version. SNMPv1 has no Counter64:
# such objects are invisible to v1 requests, as on real dual-version agents.
V2C_TYPES = {"integer": v2c.Integer32, "gauge32": v2c.Gauge32, "unsigned32": v2c.Unsigned32,
             "counter32": v2c.Counter32, "counter64": v2c.Counter64,
             "string": v2c.OctetString, "oid": v2c.ObjectIdentifier, "timeticks": v2c.TimeTicks}
V1_TYPES = {"integer": v1.Integer, "gauge32": v1.Gauge, "unsigned32": v1.Gauge,
            "counter32": v1.Counter, "string": v1.OctetString, "oid": v1.ObjectIdentifier,
            "timeticks": v1.TimeTicks}


class SnmpAgent(asyncio.DatagramProtocol):
    """One SNMP agent on (host, port); call update() with a fresh table every tick."""

    def __init__(self, host: str, port: int, community: str, *, sys_descr: str,
                 sys_object_id: str | None = None, faults: DeviceFaults | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.host, self.port = host, port
        self.community = community.encode()
        self.faults = faults or DeviceFaults(clock)
        self._clock = clock
        self._started = clock()
        self._system: SnmpTable = {
            SYS_DESCR: ("string", sys_descr),
            SYS_OBJECT_ID: ("oid", sys_object_id or DEFAULT_SYS_OBJECT_ID),
            SYS_UPTIME: ("timeticks", 0),
        }
        self._table: SnmpTable = dict(self._system)
        self._oids: list[Oid] = sorted(self._table)
        self.transport: asyncio.DatagramTransport | None = None

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.host, self.port))
        self.port = self.transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def update(self, table: SnmpTable) -> None:
        """Replace the served values (the system group always stays)."""
        merged = {**table, **self._system}
        self._table, self._oids = merged, sorted(merged)

    @property
    def table(self) -> SnmpTable:
        return self._table

    # ---- datagrams -----------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if self.faults.active("down"):
            return
        try:
            answer = self.handle(data)
        except Exception:  # noqa: BLE001 - a bad packet must never stop the agent
            log.debug("dropping unparseable packet from %s", addr, exc_info=True)
            return
        if answer is None:
            return
        delay = self.faults.delay()
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._send, answer, addr)
        else:
            self._send(answer, addr)

    def _send(self, data: bytes, addr: tuple) -> None:
        if self.transport is not None and not self.faults.active("down"):
            self.transport.sendto(data, addr)

    def handle(self, data: bytes) -> bytes | None:
        """One request datagram -> the encoded response, or None to stay silent."""
        try:
            version = int(api.decodeMessageVersion(data))
            pmod = api.PROTOCOL_MODULES[version]
            request, _ = decoder.decode(data, asn1Spec=pmod.Message())
        except (PyAsn1Error, KeyError, ValueError, TypeError):
            return None
        if bytes(pmod.apiMessage.get_community(request)) != self.community:
            return None  # real agents stay silent (and count snmpInBadCommunityNames)
        pdu = pmod.apiMessage.get_pdu(request)
        response = pmod.apiMessage.get_response(request)
        rpdu = pmod.apiMessage.get_pdu(response)
        v2 = pmod is v2c
        names = [tuple(oid) for oid, _ in pmod.apiPDU.get_varbinds(pdu)]
        if pdu.isSameTypeWith(pmod.GetRequestPDU()):
            varbinds, error = self._get(names, v2)
        elif pdu.isSameTypeWith(pmod.GetNextRequestPDU()):
            varbinds, error = self._next(names, v2)
        elif v2 and pdu.isSameTypeWith(v2c.GetBulkRequestPDU()):
            varbinds, error = self._bulk(names, int(v2c.apiBulkPDU.get_non_repeaters(pdu)),
                                         int(v2c.apiBulkPDU.get_max_repetitions(pdu))), None
        elif pdu.isSameTypeWith(pmod.SetRequestPDU()):
            varbinds, error = [], (ERR_NOT_WRITABLE if v2 else ERR_NO_SUCH_NAME, 1)
        else:
            return None  # traps, responses, reports: not for an agent to answer
        if error is not None:
            # An error response echoes the request's variable bindings.
            pmod.apiPDU.set_error_status(rpdu, error[0])
            pmod.apiPDU.set_error_index(rpdu, error[1])
            varbinds = [(oid, v) for oid, v in pmod.apiPDU.get_varbinds(pdu)]
        pmod.apiPDU.set_varbinds(rpdu, varbinds)
        return encoder.encode(response)

    # ---- operations ----------------------------------------------------------------

    def _value(self, oid: Oid, v2: bool):
        """The ASN.1 value at oid for this protocol version, or None if not served."""
        entry = self._table.get(oid)
        if entry is None:
            return None
        kind, raw = entry
        types = V2C_TYPES if v2 else V1_TYPES
        if kind not in types:
            return None
        if oid == SYS_UPTIME:
            raw = int((self._clock() - self._started) * 100) % (1 << 32)
        elif oid not in self._system and self.faults.active("garbage"):
            # Wrong type on purpose: text where a number belongs, and vice versa.
            return types["integer"](-1) if kind == "string" else types["string"](b"\xffERR")
        if isinstance(raw, str) and kind == "string":
            raw = raw.encode("utf-8")  # pyasn1 would otherwise insist on Latin-1
        return types[kind](raw)

    def _following(self, oid: Oid, v2: bool) -> tuple[Oid, object] | None:
        """The first served OID strictly after oid (lexicographic), with its value."""
        i = bisect.bisect_right(self._oids, oid)
        while i < len(self._oids):
            candidate = self._oids[i]
            value = self._value(candidate, v2)
            if value is not None:
                return candidate, value
            i += 1
        return None

    def _get(self, names: list[Oid], v2: bool):
        out = []
        for i, oid in enumerate(names):
            value = self._value(oid, v2)
            if value is None:
                if not v2:
                    return [], (ERR_NO_SUCH_NAME, i + 1)
                value = v2c.NoSuchInstance("")
            out.append((oid, value))
        return out, None

    def _next(self, names: list[Oid], v2: bool):
        out = []
        for i, oid in enumerate(names):
            found = self._following(oid, v2)
            if found is None:
                if not v2:
                    return [], (ERR_NO_SUCH_NAME, i + 1)
                found = (oid, v2c.EndOfMibView(""))
            out.append(found)
        return out, None

    def _bulk(self, names: list[Oid], non_repeaters: int, max_repetitions: int):
        """RFC 3416 4.2.3: non-repeaters once, then the rest max-repetitions times."""
        non_repeaters = max(0, min(non_repeaters, len(names)))
        out = [self._following(oid, True) or (oid, v2c.EndOfMibView(""))
               for oid in names[:non_repeaters]]
        cursors = list(names[non_repeaters:])
        for _ in range(max(0, max_repetitions)):
            if not cursors or len(out) + len(cursors) > MAX_VARBINDS:
                break
            ended = 0
            for j, oid in enumerate(cursors):
                found = self._following(oid, True)
                if found is None:
                    out.append((oid, v2c.EndOfMibView("")))
                    ended += 1
                else:
                    out.append(found)
                    cursors[j] = found[0]
            if ended == len(cursors):
                break  # every column ran off the end of the MIB view
        return out

