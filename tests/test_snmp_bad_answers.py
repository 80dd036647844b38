"""Malformed SNMP answers (issue 16): a misbehaving UDP agent on 127.0.0.1 answers every
request wrongly, in one way per case. With either SNMP engine each poll fails as a
``decode`` error naming what was wrong (never a timeout, never a healthy device), the
failure is logged once per device and kind, and the log holds no traceback."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from pue_monitor.collectors.ber_check import ber_problem
from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.service import make_client
from pue_monitor.config import load_config_text
from pue_monitor.store.model import ErrorKind, PollResult
from tests.snmp_support import ENGINES, ScriptedAgent

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
POLLS = 3
# The bad answer must arrive within the poll's timeout to be noted: the agent answers at
# once, the timeout leaves room for a loaded machine (0.3 s failed once at load 12).
WAIT_S = 20.0
CONFIG = """
polling: {interval_s: 1.0, timeout_s: 0.8, retries: 0, snmp_engine: %s}
sites:
  - id: s1
    name: {vi: "TTDL 1", en: "DC 1"}
    devices:
      - {id: m1, profile: eastron_sdm630, role: facility, modbus: {host: 127.0.0.1, port: 1}}
      - {id: ups1, profile: ups_mib, role: it, measurement_point: ups_output,
         snmp: {host: 127.0.0.1, port: %d, community: public}}
"""


def answer(request: bytes, request_id_shift: int = 0, community: str | None = None) -> bytes:
    """A well-formed v2c Response to ``request``: every object an Integer 42."""
    message, _ = decoder.decode(request, asn1Spec=V2C.Message())
    pdu = V2C.apiMessage.get_pdu(message)
    response = V2C.apiMessage.get_response(message)
    response_pdu = V2C.apiPDU.get_response(pdu)
    V2C.apiPDU.set_request_id(response_pdu, int(V2C.apiPDU.get_request_id(pdu))
                              + request_id_shift)
    V2C.apiPDU.set_varbinds(response_pdu, [(oid, V2C.Integer(42))
                                           for oid, _ in V2C.apiPDU.get_varbinds(pdu)])
    V2C.apiMessage.set_pdu(response, response_pdu)
    if community is not None:
        V2C.apiMessage.set_community(response, community)
    return encoder.encode(response)


# (case, bad answer to a request, what the poll's error says)
BAD: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("truncated", lambda r: answer(r)[:len(answer(r)) // 2], "undecodable answer"),
    ("absurd-ber-length", lambda r: b"\x30\x84\x7f\xff\xff\xff" + answer(r)[2:],
     "undecodable answer: length 2147483647 beyond"),
    ("garbage", lambda r: b"\xde\xad\xbe\xef" * 5, "undecodable answer"),
    ("empty", lambda r: b"", "undecodable answer"),
    ("trailing-bytes", lambda r: answer(r) + b"\x00\x00", "undecodable answer"),
    ("request-echoed", lambda r: r, "Response PDU|invalid pdu"),
    ("wrong-request-id", lambda r: answer(r, request_id_shift=1),
     "matches no request sent"),
    ("wrong-community", lambda r: answer(r, community="not-public"),
     "another (request id or )?community"),
]


def test_the_good_answer_is_good():
    """The table's base: the agent's unspoilt answer is well-formed BER."""
    request = encoder.encode(_request())
    assert ber_problem(answer(request)) is None and ber_problem(request) is None


def _request():
    pdu = V2C.GetRequestPDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_varbinds(pdu, [("1.3.6.1.2.1.1.3.0", V2C.Null(""))])
    message = V2C.Message()
    V2C.apiMessage.set_defaults(message)
    V2C.apiMessage.set_community(message, "public")
    V2C.apiMessage.set_pdu(message, pdu)
    return message


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("case", "bad", "says"), BAD, ids=[b[0] for b in BAD])
async def test_a_bad_answer_is_a_decode_error_logged_once(caplog, engine, case, bad, says):
    agent = ScriptedAgent(lambda _n, request: [(0.0, bad(request))])  # at once, every time
    config = load_config_text(CONFIG % (engine, agent.port), env={})
    site, device = next((s, d) for s, d in config.devices() if d.id == "ups1")
    polling = config.polling_for(site, device)
    results: list[PollResult] = []
    enough = asyncio.Event()

    async def sink(result: PollResult) -> None:
        results.append(result)
        if len(results) >= POLLS:
            enough.set()

    poller = DevicePoller(site.id, device, config.profile_of(device), polling,
                          make_client(device, polling), sink)
    stop = asyncio.Event()
    caplog.set_level(logging.DEBUG)
    task = asyncio.create_task(poller.run(stop))
    try:
        await asyncio.wait_for(enough.wait(), WAIT_S)
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)
        poller.client.close()
        agent.close()
    assert agent.requests >= POLLS
    assert [r.error_kind for r in results[:POLLS]] == [ErrorKind.DECODE] * POLLS, \
        [r.error for r in results]
    assert not any(r.ok for r in results)
    assert all(re.search(says, r.error or "") for r in results), [r.error for r in results]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(": ")[1] for r in warnings] == ["decode"], \
        [r.getMessage() for r in warnings]
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
