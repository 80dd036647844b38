"""How the fast SNMP engine waits for answers (collectors.snmp_gufo._CheckedSession): its
socket stays watched between requests, so these check what that must not break. An agent
on 127.0.0.1 answers late, or keeps sending unusable datagrams: a late answer neither
spins the event loop nor is taken for the next request's; unusable datagrams cannot keep
a request waiting past its timeout; a closed client leaves nothing watched behind."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from pue_monitor.collectors.errors import PollDecodeError, PollError, PollTimeout
from pue_monitor.collectors.snmp_gufo import GufoClient, _CheckedSession
from tests.snmp_support import ScriptedAgent
from tests.test_snmp_bad_answers import answer

OID = "1.3.6.1.2.1.1.3.0"
COLUMN = "1.3.6.1.2.1.2.2.1.10"  # ifInOctets
TIMEOUT_S = 0.4


@pytest.fixture
def agent_of():
    agents: list[ScriptedAgent] = []

    def make(script) -> ScriptedAgent:
        agents.append(ScriptedAgent(script))
        return agents[-1]
    yield make
    for a in agents:
        a.close()


def client(port: int) -> GufoClient:
    return GufoClient("127.0.0.1", port, timeout_s=TIMEOUT_S, retries=0)


async def test_a_late_answer_neither_spins_the_loop_nor_answers_the_next_request(agent_of):
    # The first request is answered after its timeout; the next at once.
    agent = agent_of(lambda n, r: [(3 * TIMEOUT_S if n == 0 else 0.0, answer(r))])
    c = client(agent.port)
    try:
        with pytest.raises(PollTimeout):
            await c.get([OID])
        session = c._session
        calls = 0
        readable = session._readable

        def counted() -> None:
            nonlocal calls
            calls += 1
            readable()
        session._readable = counted
        session._watch(asyncio.get_running_loop())  # watched through the counter
        await asyncio.sleep(4 * TIMEOUT_S)  # the late answer arrives meanwhile
        # Told once, then no longer watched: a loop spinning on it would call it at
        # every turn, thousands of times in this wait.
        assert agent.requests == 1 and calls == 1
        # The late answer is still in the socket: the next request reads past it
        # (another request id) to its own.
        assert await c.get([OID]) == {OID: 42}
        assert agent.requests == 2
    finally:
        c.close()


@pytest.mark.parametrize(("case", "datagram", "error"), [
    ("another request id", lambda r: answer(r, request_id_shift=1), PollDecodeError),
    ("not BER", lambda r: b"\xde\xad\xbe\xef", PollDecodeError),
])
async def test_unusable_datagrams_cannot_hold_a_request_past_its_timeout(
        agent_of, case, datagram, error):
    # A datagram every tenth of the timeout for ten timeouts: each wakes the request,
    # none answers it. The request still ends at its own timeout.
    agent = agent_of(lambda n, r: [(TIMEOUT_S / 10, datagram(r))] * 100)
    c = client(agent.port)
    try:
        started = time.monotonic()
        with pytest.raises(error):
            await asyncio.wait_for(c.get([OID]), 10 * TIMEOUT_S)
        # Generous against a loaded machine, far below the agent's ten timeouts.
        assert time.monotonic() - started < 5 * TIMEOUT_S
    finally:
        c.close()


async def test_a_closed_client_leaves_nothing_watched(agent_of):
    agent = agent_of(lambda n, r: [(0.0, answer(r))])
    c = client(agent.port)
    assert await c.get([OID]) == {OID: 42}
    session = c._session
    assert isinstance(session, _CheckedSession)
    fd, gone = session._fd, weakref.ref(session)
    loop = asyncio.get_running_loop()
    assert loop._selector.get_key(fd) is not None  # watched between requests
    c.close()
    del session
    gc.collect()
    with pytest.raises(KeyError):
        loop._selector.get_key(fd)
    # Nothing keeps the session: gufo-snmp closes its socket when it is collected.
    assert gone() is None


async def test_a_walk_whose_session_is_made_again_starts_over_on_the_new_one(agent_of):
    # SNMPv3 makes a session again after a timeout (an agent that restarted answers the
    # old one with nothing it can match). A walk's first GETBULK is dropped here, its
    # retry answered: the walk must go on over the new session, not through its walker's
    # closed one, which left the answer unread and the loop calling the reader at every
    # turn, for good, after the client was closed (found in review). The v3 branch is
    # taken on v2c (no user, so the agent need not speak USM): only the session's
    # making again matters here.
    agent = agent_of(lambda n, r: [] if n == 0 else [(0.0, answer(r))])
    c = GufoClient("127.0.0.1", agent.port, timeout_s=TIMEOUT_S, retries=1)
    c._user = object()  # v3's _call: a timeout makes the session again
    c._last_answer = time.monotonic()  # no engine discovery before the first request
    calls = 0
    readable = _CheckedSession._readable

    def counted(self) -> None:
        nonlocal calls
        calls += 1
        readable(self)
    loop = asyncio.get_running_loop()
    try:
        _CheckedSession._readable = counted
        assert await c.walk([COLUMN]) == {COLUMN: 42}
        assert agent.requests >= 2 and calls < 10
        c.close()
        gc.collect()
        before = calls
        await asyncio.sleep(2 * TIMEOUT_S)
        assert calls == before  # nothing left watched, nothing spinning
        assert len(loop._selector.get_map()) == 1  # the loop's own wake-up pipe only
    finally:
        _CheckedSession._readable = readable
        c.close()


async def test_a_failed_socket_fails_its_request_and_is_no_longer_watched(agent_of):
    agent = agent_of(lambda n, r: [(0.2, answer(r))])
    c = client(agent.port)
    try:
        assert await c.get([OID]) == {OID: 42}
        session = c._session
        request = asyncio.ensure_future(c.get([OID]))
        await asyncio.sleep(0.05)  # sent, waiting for its answer
        session._peek.close()  # the socket fails under the request
        started = time.monotonic()
        with pytest.raises(PollError):
            await request
        assert time.monotonic() - started < TIMEOUT_S  # at once, not at its timeout
        with pytest.raises(KeyError):
            asyncio.get_running_loop()._selector.get_key(session._fd)
    finally:
        c.close()


def table_answer(request: bytes, rows: list[tuple[int, ...]], silent_after: tuple[int, ...]
                 ) -> list[tuple[float, bytes]]:
    """A GETBULK's answer: the next three of ``rows`` after the asked OID, at once; none to
    a request that continues after ``silent_after``."""
    from pysnmp.proto.rfc1902 import ObjectName

    from tests.test_snmp_bad_answers import V2C, decoder, encoder
    message, _ = decoder.decode(request, asn1Spec=V2C.Message())
    pdu = V2C.apiMessage.get_pdu(message)
    asked = tuple(V2C.apiPDU.get_varbinds(pdu)[0][0])
    if asked == silent_after:
        return []
    response, response_pdu = V2C.apiMessage.get_response(message), V2C.apiPDU.get_response(pdu)
    V2C.apiPDU.set_request_id(response_pdu, int(V2C.apiPDU.get_request_id(pdu)))
    V2C.apiPDU.set_varbinds(response_pdu, [(ObjectName(o), V2C.Integer(o[-1]))
                                           for o in [r for r in rows if r > asked][:3]])
    V2C.apiMessage.set_pdu(response, response_pdu)
    return [(0.0, encoder.encode(response))]


@pytest.mark.parametrize("retries", [0, 1, 2])
async def test_a_walk_starts_over_at_most_as_often_as_the_client_retries(agent_of, retries):
    # The agent never answers the GETBULK that goes on after the sixth row: each attempt
    # times out, the session is made again and the walk starts over, but only ``retries``
    # times (found in review: it started over for as long as the poll's budget let it).
    rows = [tuple(map(int, f"{COLUMN}.{i}".split("."))) for i in range(1, 11)]
    agent = agent_of(lambda n, r: table_answer(r, rows, silent_after=rows[5]))
    c = GufoClient("127.0.0.1", agent.port, timeout_s=TIMEOUT_S, retries=retries)
    c._user = object()  # v3's _call, as above
    c._last_answer = time.monotonic() + 3600  # and no engine discovery
    try:
        with pytest.raises(PollTimeout):
            await asyncio.wait_for(c.walk([COLUMN]), 20 * TIMEOUT_S)
    finally:
        c.close()
    # Each pass: two answered GETBULKs (rows 1-3, 4-6), then one unanswered per attempt.
    passes = 1 + retries
    assert agent.requests <= passes * (2 + 1 + retries)
