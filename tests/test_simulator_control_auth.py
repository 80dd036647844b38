"""The simulator's control endpoint changes what devices report: it listens on 127.0.0.1
by default, and anywhere else only with a token, which every request must then carry."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request

import pytest

from pue_monitor.simulator.control import MIN_TOKEN_LENGTH, TOKEN_ENV, ControlServer, \
    control_token, is_loopback

TOKEN = "0123456789abcdef-test"


class FakeSimulator:
    """Records the faults it is asked for."""

    def __init__(self) -> None:
        self.faults: list[tuple] = []

    def truth(self) -> dict:
        return {"faults": [list(f) for f in self.faults]}

    async def set_fault(self, device_id, kind, seconds=None, duration=None) -> dict:
        self.faults.append((device_id, kind))
        return {"device": device_id, "kind": kind}

    async def clear_faults(self, device_id, kind=None) -> dict:
        self.faults.clear()
        return {}

    def patch_site(self, site_id, changes) -> dict:
        return changes


@pytest.fixture()
def loop():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def call(url: str, method: str = "GET", body: dict | None = None,
         auth: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    if auth is not None:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("::1", True), ("localhost", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("192.0.2.10", False), ("sim.example", False),
])
def test_which_addresses_are_this_machine_only(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("host", "environ", "expected"), [
    ("127.0.0.1", {}, None),  # the default: this machine only, no token needed
    ("127.0.0.1", {TOKEN_ENV: TOKEN}, TOKEN),  # a token given is always required
    ("0.0.0.0", {TOKEN_ENV: TOKEN}, TOKEN),
])
def test_token_required_where(host, environ, expected):
    assert control_token(host, environ) == expected


@pytest.mark.parametrize(("host", "environ", "message"), [
    ("0.0.0.0", {}, f"needs a token: set {TOKEN_ENV}"),
    ("192.0.2.10", {TOKEN_ENV: ""}, f"needs a token: set {TOKEN_ENV}"),
    ("0.0.0.0", {TOKEN_ENV: "short"}, f"shorter than {MIN_TOKEN_LENGTH} characters"),
])
def test_listening_elsewhere_without_a_usable_token_is_refused(loop, host, environ, message):
    # refused before the port is bound: nothing listens on that address
    with pytest.raises(ValueError, match=message):
        ControlServer(FakeSimulator(), loop, host, 0, environ=environ)


def test_default_control_endpoint_listens_on_loopback(loop):
    server = ControlServer(FakeSimulator(), loop, environ={})
    try:
        assert server.host == "127.0.0.1" and server.token is None
    finally:
        server.stop()


@pytest.mark.parametrize(("auth", "status"), [
    (None, 401), ("Bearer wrong-token-of-some-length", 401), (f"Basic {TOKEN}", 401),
    (f"Bearer {TOKEN}x", 401), (f"Bearer {TOKEN[:-1]}", 401), (f"Bearer {TOKEN}", 200),
    (f"bearer {TOKEN}", 200),
])
def test_with_a_token_every_change_needs_it(loop, auth, status):
    sim = FakeSimulator()
    server = ControlServer(sim, loop, "127.0.0.1", 0, environ={TOKEN_ENV: TOKEN})
    server.start()
    try:
        got, body = call(f"{server.url}/faults/ups-1", "POST", {"kind": "down"}, auth)
        assert got == status
        assert sim.faults == ([("ups-1", "down")] if status == 200 else [])
        if status == 401:
            assert TOKEN_ENV in body["error"] and TOKEN not in json.dumps(body)
            assert call(f"{server.url}/truth", auth=auth)[0] == 401
            assert call(f"{server.url}/sites/s1", "PATCH", {"fans_kw": 1}, auth)[0] == 401
            assert call(f"{server.url}/faults/ups-1", "DELETE", auth=auth)[0] == 401
        # liveness stays open
        assert call(f"{server.url}/healthz") == (200, {"ok": True})
    finally:
        server.stop()


def test_the_token_is_compared_in_constant_time(loop, monkeypatch):
    """Every check goes through hmac.compare_digest (its time says nothing about how many
    leading characters matched)."""
    from pue_monitor.simulator import control

    seen: list[tuple[bytes, bytes]] = []
    real = control.hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(control.hmac, "compare_digest", spy)
    server = ControlServer(FakeSimulator(), loop, "127.0.0.1", 0, environ={TOKEN_ENV: TOKEN})
    server.start()
    try:
        assert call(f"{server.url}/truth", auth="Bearer guess")[0] == 401
        assert call(f"{server.url}/truth", auth=f"Bearer {TOKEN}")[0] == 200
    finally:
        server.stop()
    assert seen == [(b"guess", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]
