"""How the fast SNMP engine waits for answers (collectors.snmp_gufo._CheckedSession): its
socket stays watched between requests, so these check what that must not break. An agent
on 127.0.0.1 answers late, or keeps sending unusable datagrams: a late answer neither
spins the event loop nor is taken for the next request's; unusable datagrams cannot keep
a request waiting past its timeout; a closed client leaves nothing watched behind."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import weakref
from collections.abc import Callable

import pytest

from pue_monitor.collectors.errors import PollDecodeError, PollTimeout
from pue_monitor.collectors.snmp_gufo import GufoClient, _CheckedSession
from tests.test_snmp_bad_answers import answer

OID = "1.3.6.1.2.1.1.3.0"
TIMEOUT_S = 0.4


class ScriptedAgent:
    """Answers the n-th request with ``script(n, request)``: a list of (delay in seconds,
    datagram) sent in order, each delay after the previous one."""

    def __init__(self, script: Callable[[int, bytes], list[tuple[float, bytes]]]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.script, self.requests, self.stopped = script, 0, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            n, self.requests = self.requests, self.requests + 1
            for delay, datagram in self.script(n, data):
                if self.stopped.wait(delay):
                    return
                self.sock.sendto(datagram, peer)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


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
