"""Bounded work in the web server (config web.limits, web.heavy, web.server): the knobs
strictly checked, heavy slots refused with 503 + Retry-After in both languages, a report
that takes too long stopped at its next store call, and oversized requests refused."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from pue_monitor.config import ConfigError, load_config_text
from pue_monitor.config.model import WebLimits
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from pue_monitor.web.heavy import Busy, Cancelled, HeavyWork
from pue_monitor.web.server import LIGHT_THREADS, WebServer
from tests.test_config import MINIMAL
from tests.web_fixtures import NOW, demo_config

WAIT_S = 10.0

# (extra YAML, expected issues as printed)
BAD = [
    ("web: {limits: {heavy_concurrent: 0}}\n",
     ["web.limits.heavy_concurrent: Input should be greater than or equal to 1 (got 0)"]),
    ("web: {limits: {heavy_concurrent: true}}\n",
     ["web.limits.heavy_concurrent: a boolean is not a number: got true"]),
    ("web: {limits: {heavy_timeout_s: 0}}\n",
     ["web.limits.heavy_timeout_s: Input should be greater than 0 (got 0)"]),
    ("web: {limits: {retry_after_s: 1.5}}\n",
     ["web.limits.retry_after_s: Input should be a valid integer, got a number with a "
      "fractional part (got 1.5)"]),
    ("web: {limits: {max_body_bytes: 10}}\n",
     ["web.limits.max_body_bytes: Input should be greater than or equal to 1024 (got 10)"]),
    ("web: {limits: {idle_timeout_s: -1}}\n",
     ["web.limits.idle_timeout_s: Input should be greater than 0 (got -1)"]),
    ("web: {limits: {heavy: 2}}\n", ["web.limits.heavy: unknown key"]),
]


@pytest.mark.parametrize(("extra", "issues"), BAD, ids=[b[0].strip() for b in BAD])
def test_bad_limits_are_refused_with_their_path(extra, issues):
    with pytest.raises(ConfigError) as caught:
        load_config_text(MINIMAL + extra, env={"COMMUNITY": "c"})
    assert [str(i) for i in caught.value.issues] == issues


def test_limits_default_and_configured():
    config = load_config_text(MINIMAL, env={"COMMUNITY": "c"})
    assert config.web.limits == WebLimits(
        heavy_concurrent=2, heavy_timeout_s=300.0, retry_after_s=30,
        max_body_bytes=1024 * 1024, max_header_bytes=64 * 1024, idle_timeout_s=60.0,
        max_connections=100)
    config = load_config_text(MINIMAL + "web: {limits: {heavy_concurrent: 3}}\n",
                              env={"COMMUNITY": "c"})
    assert config.web.limits.heavy_concurrent == 3


class FakeStore:
    """Counts calls; ``release`` lets a blocked call go on."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    def read(self) -> int:
        self.calls += 1
        self.release.wait(WAIT_S)
        return self.calls


def test_a_full_pool_refuses_at_once_and_frees_its_slot_afterwards():
    heavy = HeavyWork(WebLimits(heavy_concurrent=1, retry_after_s=7))
    store = FakeStore()
    first = threading.Thread(target=lambda: heavy.run(lambda s: s.read(), store))
    first.start()
    deadline = time.monotonic() + WAIT_S
    while store.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(Busy) as caught:
        heavy.run(lambda s: s.read(), store)
    assert (caught.value.retry_after_s, caught.value.timed_out) == (7, False)
    assert (heavy.in_flight, heavy.refused) == (1, 1)
    store.release.set()
    first.join(WAIT_S)
    assert heavy.run(lambda s: s.read(), store) == 2 and heavy.in_flight == 0
    heavy.close()


def test_work_past_the_timeout_is_answered_busy_and_stopped_at_its_next_store_call():
    heavy = HeavyWork(WebLimits(heavy_concurrent=1, heavy_timeout_s=0.2))
    store = FakeStore()
    store.release.set()
    stopped = threading.Event()

    def endless(s) -> None:
        try:
            while True:
                s.read()
                time.sleep(0.01)
        except Cancelled:
            stopped.set()
            raise

    with pytest.raises(Busy) as caught:
        heavy.run(endless, store)
    assert caught.value.timed_out and heavy.timed_out == 1
    assert stopped.wait(WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while heavy.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert heavy.in_flight == 0
    heavy.close()


BUSY_VI = "Máy chủ đang lập các báo cáo dài khác: hãy thử lại sau 30 giây"
BUSY_EN = "The server is busy with other long reports: try again in 30 s"


@pytest.mark.parametrize(("lang", "fmt", "text"), [
    ("en", "json", None),
    ("vi", "html", f"{BUSY_VI} / {BUSY_EN}"),
    ("en", "html", f"{BUSY_EN} / {BUSY_VI}"),
])
def test_report_view_answers_503_with_retry_after_when_busy(tmp_path, lang, fmt, text):
    store = Store.open(tmp_path / "data")
    try:
        app = create_app(demo_config(), store, clock=lambda: NOW, testing=True)
        heavy = app.extensions["pue_monitor"].heavy
        taken = [heavy._slots.acquire(blocking=False) for _ in range(2)]  # both slots
        answer = app.test_client().get(
            f"/reports/view?site=all&period=2025&format={fmt}&lang={lang}")
        assert taken == [True, True] and answer.status_code == 503
        assert answer.headers["Retry-After"] == "30"
        body = answer.get_data(as_text=True)
        if fmt == "json":
            assert json.loads(body) == {"status": 503, "error": {"vi": BUSY_VI, "en": BUSY_EN}}
        else:
            assert text in body
    finally:
        store.close()


def test_oversized_bodies_are_refused_by_the_server(tmp_path):
    raw = "web: {login: false, limits: {max_body_bytes: 2048}}\n"
    config = load_config_text(MINIMAL + raw, env={"COMMUNITY": "c"})
    store = Store.open(tmp_path / "data")
    server = WebServer(create_app(config, store), "127.0.0.1", 0)
    server.start()
    try:
        assert server.threads == LIGHT_THREADS + 2
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_S)
        conn.request("POST", "/login", body=b"x" * 4096,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert conn.getresponse().status == 413
        conn.close()
    finally:
        server.stop()
        store.close()


@pytest.mark.parametrize("leave_open", [False, True], ids=["closed", "left-open"])
def test_stopping_the_server_leaves_its_loop_no_socket_to_trip_on(tmp_path, leave_open):
    # stop() once closed the sockets from the caller's thread while the server's loop
    # was in select() on them: EBADF in the loop's thread, a failed test run. Stopped
    # many times, at once after a request, with the client's connection closed or left
    # open, the loop must end cleanly (pytest fails a test on any thread's exception).
    config = load_config_text(MINIMAL + "web: {login: false}\n", env={"COMMUNITY": "c"})
    store = Store.open(tmp_path / "data")
    try:
        for _ in range(40):
            server = WebServer(create_app(config, store), "127.0.0.1", 0)
            server.start()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_S)
            conn.request("GET", "/healthz")
            assert conn.getresponse().status in (200, 503)
            if not leave_open:
                conn.close()
            thread = server._thread
            server.stop()
            assert thread is not None and not thread.is_alive()
            assert server._server._map == {}  # listening socket, pipe and connections
            conn.close()
    finally:
        store.close()
