"""The v1/v2c dispatcher of the reference SNMP client, checking every answer before it
is handed to the request that waits for it.

pysnmp's own dispatcher decodes answers in an event-loop callback: an undecodable one
raises there (a full asyncio traceback per datagram, and the request times out as if
the device were silent); it hands over an answer whatever its PDU type (a request
echoed back reads as an answer of NULLs) and whatever its community. Here an answer is
delivered only if it decodes, is a Response PDU, carries the id of a request waiting
and the community that request was sent with. Anything else is dropped and noted per
source address (``odd``): the client (collectors.snmp_client) then reports the request
that times out as a decode error, never a traceback, never a healthy device.
"""

from __future__ import annotations

from collections import OrderedDict

from pyasn1.codec.ber import decoder
from pysnmp.hlapi.v1arch.asyncio import SnmpDispatcher
from pysnmp.proto import api
from pysnmp.proto.api import verdec

from pue_monitor.collectors.ber_check import ber_problem

# Source addresses with a problem noted, at most (the oldest are forgotten first).
MAX_NOTED = 4096
NOT_A_RESPONSE = "an answer that is not a Response PDU (the request echoed back?)"
NOT_MATCHED = "an answer that matches no request sent (request id {rid})"
OTHER_COMMUNITY = "an answer with another community than the request's"


def address_key(address: object) -> tuple[str, int]:
    host, port = tuple(address)[:2]  # type: ignore[call-overload]
    return str(host), int(port)


class CheckedDispatcher(SnmpDispatcher):
    """SnmpDispatcher whose answers are checked (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.odd: OrderedDict[tuple[str, int], str] = OrderedDict()

    def take_odd(self, address: tuple[str, int]) -> str | None:
        """The last problem noted for answers from ``address``, forgetting it."""
        return self.odd.pop(address, None)

    def _note(self, address: object, problem: str) -> None:
        key = address_key(address)
        self.odd[key] = problem
        self.odd.move_to_end(key)
        while len(self.odd) > MAX_NOTED:
            self.odd.popitem(last=False)

    def send_pdu(self, authData, transportTarget, reqPdu, cbFun=None, cbCtx=None):  # noqa: N803
        request_id = super().send_pdu(authData, transportTarget, reqPdu, cbFun, cbCtx)
        state = self._pendingReqs.get(request_id)
        if state is not None:
            state["community"] = str(authData.communityName).encode()
        return request_id

    def _recv_callback(self, snmpEngine, transportDomain, transportAddress, wholeMsg):  # noqa: N803
        try:
            module = api.PROTOCOL_MODULES[verdec.decode_message_version(wholeMsg)]
            message, rest = decoder.decode(wholeMsg, asn1Spec=module.Message())
            pdu = module.apiMessage.get_pdu(message)
            request_id = int(module.apiPDU.get_request_id(pdu))
            community = bytes(module.apiMessage.get_community(message))
        except Exception as exc:  # noqa: BLE001 - whatever a hostile datagram makes pyasn1 raise
            why = ber_problem(wholeMsg) or f"{type(exc).__name__}: {str(exc)[:120]}"
            self._note(transportAddress, f"undecodable answer: {why}")
            return b""
        if rest:
            self._note(transportAddress, f"undecodable answer: {len(rest)} bytes after "
                                         f"the message")
            return b""
        state = self._pendingReqs.get(request_id)
        if state is None:
            self._note(transportAddress, NOT_MATCHED.format(rid=request_id))
            return b""
        if pdu.tagSet != module.GetResponsePDU.tagSet:
            self._note(transportAddress, NOT_A_RESPONSE)
            return b""
        if community != state.get("community", community):
            self._note(transportAddress, OTHER_COMMUNITY)
            return b""
        del self._pendingReqs[request_id]
        self.transport_dispatcher.job_finished(id(self))
        if state["cbFun"]:
            state["cbFun"](self, request_id, None, pdu, state["cbCtx"])
        return b""
