"""Fuzzing the central service's ingest over HTTP with Hypothesis: the real Flask app
(central.service.build, SQLite store, Flask's test client) gets random line-protocol
bodies on ``POST /api/v2/write`` with a valid token (random text, near-valid lines from
the points the edge writes, escapes and quotes, huge and odd numbers and timestamps,
unknown precisions, gzip of random text, gzip garbage, bodies over the limit) and random
site definitions on ``POST /api/v1/central/definition`` (the demo's own, with one value
anywhere replaced by a random JSON value, and random JSON). Every answer must be one of
the documented statuses (204, 400, 401, 403, 413, 415) with a JSON ``message`` saying why,
never a 500; the service still answers a good batch after each input.

Bounded and deterministic (tests/fuzz_support.FUZZ); figures printed at the end of the run.
"""

from __future__ import annotations

import gzip
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pue_monitor.central.service import build
from pue_monitor.central.sitedef import definition_sites
from pue_monitor.central.tokens import token_hash
from pue_monitor.config import load_config, load_config_text
from pue_monitor.config.metrics import METRICS
from tests.conftest import DEMO
from tests import suite_figures
from tests.fuzz_support import FUZZ

EXAMPLES = 300  # per target
NOW = 1_764_650_000.0
LIMIT = 4096  # the central's max_body_bytes here, so "too large" is reachable
CENTRAL = f"""
web: {{login: false}}
sites: []
ingest:
  max_body_bytes: {LIMIT}
  data_centers:
    - {{id: dc-a, name: {{vi: A, en: A}}, sites: [bn-provincial]}}
    - {{id: dc-b, name: {{vi: B, en: B}}, sites: [que-vo-dc]}}
"""
TOKEN = "tok-a"  # dc-a's: writes bn-provincial; que-vo-dc is another data center's (403)
DOCUMENTED = {204, 400, 401, 403, 413, 415}
TALLY = "fuzz: central ingest, answers (both APIs)"


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    config = load_config_text(CENTRAL, env={})
    ticks = itertools.count()
    # the central's clock moves a millisecond a call: each definition kept is received at
    # its own time, as with a real clock (one row per site and time received)
    store, service, app = build(config, tmp_path_factory.mktemp("fuzz-central"),
                                lambda: NOW + next(ticks) / 1000)
    store.add_central_token(token_hash(TOKEN), "dc-a", "edge", NOW)
    yield app.test_client(), service
    store.close()


# -- line protocol ---------------------------------------------------------------------

# Pieces a line is made of: the edge's own names, names the central refuses, and escapes.
NAMES = st.sampled_from(["pue_reading", "pue_run", "pue_site", "pue_interval_energy",
                         "cpu", "pue\\ reading", "pue_reading\\", "", "\\,", '"q"'])
TAG_KEYS = st.sampled_from(["site", "device", "metric", "role", "phase", "outlet",
                            "label_site", "label_metric", "run", "colour", "", "a\\=b",
                            "a\\ b", "\\"])
TAG_VALUES = st.one_of(
    st.sampled_from(["bn-provincial", "que-vo-dc", "prov-incomer", "prov-ups-1", "L1",
                     "it", "", "\\", "a\\,b", "a\\ b", '"', "r1", *sorted(METRICS)]),
    st.text(max_size=12))
NUMBERS = st.one_of(
    st.sampled_from(["1", "-0", "1e999", "-1e999", "inf", "NaN", "1_000", "0x10", "1.",
                     ".5", "1e-400", "t", "FALSE", "1i", "-1u", "1u", '"1"', '"', '"a\\"',
                     "9" * 30 + "i", "18446744073709551616u", "9" * 400, "١٢", "1 ", "+1"]),
    st.integers().map(str), st.integers().map(lambda i: f"{i}i"),
    st.floats().map(repr), st.text(max_size=8))
FIELD_KEYS = st.sampled_from(["value", "stopped", "other", "", "val\\=ue", "value\\"])
TIMESTAMPS = st.one_of(
    st.integers(min_value=int((NOW - 86_400 * 400) * 1e9), max_value=int((NOW + 60) * 1e9)),
    st.integers(min_value=-2 ** 64, max_value=2 ** 64),
    st.sampled_from(["", "1.5", "-", "0", "1e18", "9" * 30, "-9223372036854775808",
                     "9223372036854775807"]),
    st.text(max_size=6))


@st.composite
def near_valid_line(draw) -> str:
    head = draw(NAMES) + "".join(f",{k}={v}" for k, v in draw(st.lists(
        st.tuples(TAG_KEYS, TAG_VALUES), max_size=6)))
    fields = ",".join(f"{k}={v}" for k, v in draw(st.lists(
        st.tuples(FIELD_KEYS, NUMBERS), min_size=1, max_size=3)))
    parts = [head, fields]
    if draw(st.integers(0, 9)):  # mostly with a timestamp, as the edge writes them
        parts.append(str(draw(TIMESTAMPS)))
    sep = draw(st.sampled_from([" ", " ", " ", "  ", "\t", "\\ "]))
    return sep.join(parts)


BODIES = st.one_of(
    st.text(max_size=300),
    st.lists(near_valid_line(), min_size=1, max_size=20).map("\n".join),
    st.lists(st.one_of(near_valid_line(), st.text(max_size=40),
                       st.sampled_from(["# comment", "", "\r", "\\", '"']))).map("\r\n".join),
)
PRECISIONS = st.one_of(st.sampled_from(["ns", "us", "ms", "s", None]),
                       st.sampled_from(["h", "", "NS", "n s"]), st.text(max_size=4))


@st.composite
def write_request(draw) -> tuple[bytes, dict, str | None]:
    """(body bytes, headers, precision) of one write."""
    text = draw(BODIES)
    kind = draw(st.sampled_from(["plain", "plain", "gzip", "gzip-garbage", "gzip-cut",
                                 "bytes", "large", "encoding"]))
    headers = {"Authorization": f"Token {TOKEN}"}
    body = text.encode("utf-8", "surrogatepass")
    if kind == "gzip":
        body = gzip.compress(body)
    elif kind == "gzip-garbage":
        body = draw(st.binary(max_size=200))
    elif kind == "gzip-cut":
        packed = gzip.compress(body)
        body = packed[:draw(st.integers(0, max(0, len(packed) - 1)))]
    elif kind == "bytes":
        body = draw(st.binary(max_size=300))
    elif kind == "large":
        body = (body + b"\n") * (LIMIT // max(1, len(body)) + 2)
        if draw(st.booleans()):
            body = gzip.compress(body)  # small on the wire, too large un-gzipped
            kind = "gzip"
    if kind.startswith("gzip"):
        headers["Content-Encoding"] = draw(st.sampled_from(["gzip", "GZIP", " gzip "]))
    elif kind == "encoding":
        headers["Content-Encoding"] = draw(st.sampled_from(["deflate", "br", "", "x"]))
    if draw(st.booleans()):
        headers["X-Pue-Edge-Time"] = draw(st.sampled_from(
            ["nan", "inf", "-1e999", "1e308", "abc", str(NOW), ""]))
    return body, headers, draw(PRECISIONS)


def good_line(ts: float) -> str:
    return (f"pue_reading,device=prov-incomer,metric=active_power_w,site=bn-provincial "
            f"value=1 {int(ts * 1e9)}")


def _check(answer, what: str) -> None:
    suite_figures.count(TALLY, **{f"answers_{answer.status_code}": 1})
    assert answer.status_code in DOCUMENTED, (answer.status_code, answer.data[:500], what)
    if answer.status_code != 204:
        message = answer.get_json()["message"]
        assert isinstance(message, str) and message, what


@given(request=write_request())
@settings(max_examples=EXAMPLES, **FUZZ)
def test_write_api_on_random_line_protocol(central, request):
    client, service = central
    body, headers, precision = request
    url = "/api/v2/write" + ("" if precision is None else f"?precision={precision}")
    failed = 1
    try:
        answer = client.post(url, data=body, headers=headers)
        _check(answer, repr(request)[:500])
        failed = 0
    finally:
        suite_figures.count("fuzz: central write API (line protocol, gzip, sizes)", inputs_tried=1,
               crashes=failed, server_errors=int(failed and "answer" in locals()
                                                 and answer.status_code >= 500))
    # and the service still takes a good batch
    assert client.post("/api/v2/write", data=good_line(NOW - 30),
                       headers={"Authorization": f"Token {TOKEN}"}).status_code == 204


# -- site definitions ----------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
ODD = st.one_of(JSON, st.sampled_from([None, True, -1, 0, 1e308, -1e308, "", "auto",
                                       "que-vo-dc", "bn-provincial", [], {}, "x" * 300,
                                       2 ** 70]))


def demo_definition() -> dict:
    sites = [s for s in definition_sites(load_config(DEMO, env={}))
             if s["id"] == "bn-provincial"]
    return {"format": 1, "changed_ts": NOW - 3600, "sites": sites}


DEFINITION = demo_definition()


def _paths(doc, path=()):
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, (*path, i))


PATHS = list(_paths(DEFINITION))


@st.composite
def definition_body(draw) -> bytes:
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "text"]))
    if kind == "text":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    doc = json.loads(json.dumps(DEFINITION))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        if not path:
            continue
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            value = draw(ODD)
            if draw(st.integers(0, 4)) == 0 and isinstance(parent, dict):
                parent.pop(path[-1], None)  # a key left out
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the way there
    return json.dumps(doc).encode()


@given(body=definition_body())
@settings(max_examples=EXAMPLES, **FUZZ)
def test_definition_api_on_random_documents(central, body):
    client, _ = central
    failed = 1
    try:
        answer = client.post("/api/v1/central/definition", data=body,
                             headers={"Authorization": f"Token {TOKEN}"})
        _check(answer, body[:500].decode("utf-8", "replace"))
        failed = 0
    finally:
        suite_figures.count("fuzz: central site definition API (JSON)", inputs_tried=1, crashes=failed,
               server_errors=int(failed and "answer" in locals()
                                 and answer.status_code >= 500))
