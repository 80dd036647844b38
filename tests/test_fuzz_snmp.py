"""Fuzzing SNMP with Hypothesis: the answer decoder of every built-in SNMP profile, and both
SNMP clients (fast: gufo-snmp, reference: pysnmp) behind an agent on 127.0.0.1 that
answers with garbage, its own request echoed back, or a real answer with bytes changed.

- decode: random values (huge and negative integers, numeric and garbage strings, bytes,
  NaN, missing objects) at every OID a profile reads, table rows included: readings, each
  either ok with a finite number or not ok with no value, never an exception;
- clients: a GET and a table walk either answer values by OID or raise a PollError (the
  kinds the poller counts), never anything else, within the request's bound.

Bounded and deterministic (tests/fuzz_support.FUZZ); figures printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pue_monitor.collectors.decode import MISSING, decode_snmp
from pue_monitor.collectors.errors import PollError
from pue_monitor.collectors.snmp_plan import plan_snmp
from pue_monitor.config import load_profiles
from pue_monitor.config.profiles import OID_PLACEHOLDER
from pue_monitor.store.model import Quality
from tests import suite_figures
from tests.fuzz_support import FUZZ, trying
from tests.snmp_support import ENGINES, snmp_client

DECODE_EXAMPLES = 500
CLIENT_EXAMPLES = 60  # per engine; an unanswered request costs the client's timeout
TIMEOUT_S = 0.2

PROFILES = {name: p for name, p in sorted(load_profiles().items()) if p.protocol == "snmp"}
PLANS = {name: plan_snmp(p) for name, p in PROFILES.items()}

# ---- the decoder ------------------------------------------------------------------------

RAW_VALUES = st.one_of(
    st.integers(-2**70, 2**70), st.sampled_from([0, -1, 2**31 - 1, 2**32 - 1, 2**64 - 1]),
    st.floats(), st.text(max_size=12),
    st.sampled_from(["", " ", "200 Watts", "1e999", "-1e999", "nan", "inf", "1.3%", "0x10",
                     "--1", ".5", "12,5", "\x00", "１２"]),
    st.binary(max_size=8), st.just(MISSING), st.booleans())


def _filled(oid: str, rows: list[int]) -> list[str]:
    """The OIDs a pattern stands for on these table rows (itself when it is a scalar)."""
    parts = oid.split(".")
    if not any(OID_PLACEHOLDER.match(p) for p in parts):
        return [oid]
    return [".".join(str(row) if OID_PLACEHOLDER.match(p) else p for p in parts)
            for row in rows]


@st.composite
def profile_and_answers(draw):
    name = draw(st.sampled_from(sorted(PROFILES)))
    plan = PLANS[name]
    rows = draw(st.lists(st.integers(0, 2**32), min_size=1, max_size=4, unique=True))
    oids = [o for get in plan.gets for o in get]
    oids += [f"{column}.{row}" for column in plan.walks for row in rows]
    for point in PROFILES[name].snmp_points:
        for extra in (point.decimals, point.entity_scale, point.entity_precision,
                      *(c.oid for c in point.when)):
            if extra:
                oids += _filled(extra, rows)
    answers = {oid: draw(RAW_VALUES) for oid in oids if draw(st.integers(0, 9))}
    return name, answers


@settings(max_examples=DECODE_EXAMPLES, **FUZZ)
@given(profile_and_answers())
def test_snmp_decoder_on_random_values(case):
    with trying("SNMP answer values (every built-in SNMP profile)"):
        name, answers = case
        for reading in decode_snmp(PROFILES[name], answers, "dev", 1.0e9):
            if reading.quality == Quality.OK:
                assert reading.value is not None and math.isfinite(reading.value), reading
            else:
                assert reading.value is None, reading


# ---- the clients behind a misbehaving agent ---------------------------------------------

# BER tags of the SNMP PDUs: GetRequest, GetNextRequest, GetBulkRequest; GetResponse.
REQUEST_TAGS = (0xA0, 0xA1, 0xA5)
RESPONSE_TAG = 0xA2

# What the agent does with each request it receives.
EDITS = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                 max_size=4)
BEHAVIOUR = st.one_of(
    st.tuples(st.just("random bytes"), st.binary(max_size=120)),
    st.tuples(st.just("echo"), st.none()),
    st.tuples(st.just("answer with bytes changed"), EDITS),
    st.tuples(st.just("answer cut short"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("answer, then garbage"), st.binary(min_size=1, max_size=40)),
)


def as_answer(request: bytes) -> bytes:
    """The request turned into a GetResponse: the same ids and names, NULL values (the
    PDU tag follows the message's version and community, so it is the first such tag)."""
    for i, byte in enumerate(request):
        if byte in REQUEST_TAGS and i > 4:
            return request[:i] + bytes((RESPONSE_TAG,)) + request[i + 1:]
    return request


def misbehave(behaviour: tuple, request: bytes) -> list[bytes]:
    kind, arg = behaviour
    if kind == "random bytes":
        return [arg]
    if kind == "echo":
        return [request]
    answer = as_answer(request)
    if kind == "answer with bytes changed":
        data = bytearray(answer)
        for where, byte in arg:
            data[int(where * len(data))] = byte
        return [bytes(data)]
    if kind == "answer cut short":
        return [answer[:int(arg * len(answer))]]
    return [answer, arg]


class Agent(asyncio.DatagramProtocol):
    """Answers every datagram as ``behaviour`` says."""

    def __init__(self, behaviour: tuple) -> None:
        self.behaviour = behaviour
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        for out in misbehave(self.behaviour, data):
            self.transport.sendto(out, addr)


SCALARS = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.33.1.4.4.1.4.1"]
COLUMNS = ["1.3.6.1.2.1.2.2.1.10", "1.3.6.1.2.1.2.2.1.16"]


async def poll_once(engine: str, behaviour: tuple, walk: bool) -> str:
    """One GET or walk against an agent behaving so: 'values' or the PollError's kind."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: Agent(behaviour),
                                                       local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    client = snmp_client(engine, "127.0.0.1", port, timeout_s=TIMEOUT_S, retries=0)
    try:
        answer = await (client.walk(COLUMNS, 5) if walk else client.get(SCALARS))
        assert isinstance(answer, dict)
        return "values"
    except PollError as exc:
        return f"{exc.kind.value}"
    finally:
        client.close()
        transport.close()


@pytest.mark.integration
@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=CLIENT_EXAMPLES, **FUZZ)
@given(behaviour=BEHAVIOUR, walk=st.booleans())
def test_snmp_client_behind_a_misbehaving_agent(engine, behaviour, walk):
    name = f"SNMP client ({engine} engine) behind a misbehaving agent"
    with trying(name):
        # bounded: a request waits at most its timeout, a walk a few requests' worth
        outcome = asyncio.run(asyncio.wait_for(poll_once(engine, behaviour, walk), 10))
        assert outcome in ("values", "timeout", "decode", "device_error", "connection",
                           "auth")
    suite_figures.count(f"fuzz: {name}", **{f"outcome {outcome}": 1})


@pytest.mark.integration
@pytest.mark.parametrize("datagram", [b"\x30\x82\x01", b"\x30\x84"],
                         ids=["long-form-length-cut", "length-of-length-only"])
@pytest.mark.parametrize("walk", [False, True], ids=["get", "walk"])
def test_fast_engine_panic_on_a_cut_length_is_a_decode_error(datagram, walk):
    """Found by the fuzzing above: a BER length whose long form runs past the datagram
    made gufo-snmp's Rust decoder panic (pyo3 PanicException, a BaseException that
    escaped the client and would end the polling task)."""
    behaviour = ("random bytes", datagram)
    assert asyncio.run(asyncio.wait_for(poll_once("fast", behaviour, walk), 10)) == "decode"
