"""Fuzzing the simulator's control endpoint (simulator/control.py) with Hypothesis: a real
simulator of the demo province on 127.0.0.1 (its event loop in a thread of its own, the
clock moved by the test) gets random requests over HTTP: every method on its routes and on
random paths, fault bodies near the valid ones (kinds, seconds and durations of every
type), site patches with random values for every physics setting, random JSON and bytes
that are not JSON, truth spans of every kind. Every answer must be 200, 400 or 404 with a
JSON body (an ``error`` when not 200), never a 500; after each input the simulator still
ticks and tells its truth. Each input's fault and patch is undone before the next.

Bounded and deterministic (tests/fuzz_support.FUZZ); figures printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pue_monitor.config.model import SiteSimulation
from pue_monitor.simulator.faults import FAULT_KINDS
from pue_monitor.simulator.runner import Simulator
from tests import suite_figures
from tests.fuzz_support import FUZZ
from tests.simulator_support import FakeClock, demo_config

pytestmark = pytest.mark.integration

EXAMPLES = 300
HTTP_TIMEOUT_S = 15.0
DEVICES = ["prov-incomer", "qv-ups-1", "yp-cooling"]
SITES = ["bn-provincial", "que-vo-dc"]
SETTINGS = sorted(SiteSimulation.model_fields)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    """A started simulator, its loop running in a thread; the physics moves only when the
    test ticks it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-sim", daemon=True)
    thread.start()
    sim = Simulator(demo_config(tmp_path_factory.mktemp("fuzz-sim")), control_port=0,
                    tick_s=3600.0, clock=FakeClock())
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(60)
    yield sim, loop
    asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def call(url: str, method: str, data: bytes | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)
NUMBERS = st.one_of(st.integers(), st.floats(), st.sampled_from(
    [0, -1, 1e-300, 1e300, 86_400, 86_400.0001, True, "5", None, [], 2 ** 70]))
FAULT_BODY = st.fixed_dictionaries(
    {"kind": st.one_of(st.sampled_from(FAULT_KINDS), JSON)},
    optional={"seconds": NUMBERS, "duration": NUMBERS, "other": JSON})
PATCH_BODY = st.dictionaries(st.one_of(st.sampled_from(SETTINGS), st.text(max_size=6)),
                             st.one_of(NUMBERS, JSON), max_size=4)
SEGMENT = st.one_of(st.sampled_from(DEVICES + SITES + ["nope", "", "..", "%00", "é"]),
                    st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122),
                            max_size=8))
SPAN = st.one_of(st.floats(), st.integers(min_value=-2 ** 70, max_value=2 ** 70),
                 st.sampled_from(["", "abc", "nan", "1e999", "1752649200"]))


@st.composite
def control_request(draw) -> tuple[str, str, bytes | None]:
    """(method, path with query, body) of one request."""
    route = draw(st.sampled_from(["faults", "faults", "faults", "sites", "sites", "sites",
                                  "truth-energy", "truth-energy", "truth", "random"]))
    # mostly the route's own method and a real id, so most inputs reach the simulator
    method = draw(st.sampled_from({"faults": ["POST", "POST", "DELETE"],
                                   "sites": ["PATCH", "PATCH", "PATCH"],
                                   "truth-energy": ["GET"] * 6, "truth": ["GET"] * 3,
                                   }.get(route, [])
                                  + ["GET", "POST", "DELETE", "PATCH"]))
    body: object = None
    if route == "faults":
        path = f"/faults/{draw(st.one_of(st.sampled_from(DEVICES), SEGMENT))}"
        if method == "DELETE" and draw(st.booleans()):
            path += f"?kind={draw(st.one_of(st.sampled_from(FAULT_KINDS), st.text(max_size=5)))}"
        body = draw(st.one_of(FAULT_BODY, FAULT_BODY, JSON))
    elif route == "sites":
        path = f"/sites/{draw(st.one_of(st.sampled_from(SITES), SEGMENT))}"
        body = draw(st.one_of(PATCH_BODY, PATCH_BODY, JSON))
    elif route == "truth-energy":
        path = f"/truth/energy?start={draw(SPAN)}&end={draw(SPAN)}"
    elif route == "truth":
        path = "/truth"
    else:
        path = "/" + "/".join(draw(st.lists(SEGMENT, max_size=3)))
    data = None
    if body is not None or method in ("POST", "PATCH"):
        kind = draw(st.sampled_from(["json", "json", "json", "bytes", "empty"]))
        data = {"json": lambda: json.dumps(body).encode(),
                "bytes": lambda: draw(st.binary(max_size=64)), "empty": lambda: b""}[kind]()
    return method, urllib.parse.quote(path, safe="/?=&%"), data


def undo(sim: Simulator, loop, saved: dict) -> None:
    """Clear every fault and put the sites' physics back, in the simulator's loop."""
    async def run() -> None:
        for device in DEVICES:
            await sim.clear_faults(device)
        sim.site_sims.update(saved)
    asyncio.run_coroutine_threadsafe(run(), loop).result(30)


@given(request=control_request())
@settings(max_examples=EXAMPLES, **FUZZ)
def test_control_endpoint_on_random_requests(simulator, request):
    sim, loop = simulator
    saved = dict(sim.site_sims)
    method, path, data = request
    failed, server_error, seen = 1, 0, {}
    try:
        status, body = call(sim.control_url + path, method, data)
        server_error, seen = int(status >= 500), {f"answers_{status}": 1}
        assert status in (200, 400, 404), (status, body[:300], request)
        answer = json.loads(body)
        if status != 200:
            assert isinstance(answer["error"], str) and answer["error"], request
        # the simulator still moves on and tells the truth, with the change in force
        async def tick() -> None:
            sim.tick(sim.clock.advance(10.0))
        asyncio.run_coroutine_threadsafe(tick(), loop).result(30)
        status, body = call(sim.control_url + "/truth", "GET", None)
        assert status == 200, body[:300]
        failed = 0
    finally:
        undo(sim, loop, saved)
        suite_figures.count("fuzz: simulator control endpoint (HTTP, random JSON)", inputs_tried=1,
               crashes=failed, server_errors=server_error, **seen)
