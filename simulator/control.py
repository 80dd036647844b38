"""HTTP control endpoint of the simulator: ground truth, fault injection, physics knobs.

  GET    /healthz               {"ok": true}
  GET    /truth                 true site power/energy/PUE and device faults
  GET    /truth/energy?start=&end=  true energy of every site and device over [start, end]
                                (unix seconds), from the physics alone (simulator/truth.py)
  POST   /faults/<device>       {"kind": "down|slow|stuck|counter_reset|garbage", "seconds": 9}
  DELETE /faults/<device>       clear all (or one: ?kind=slow)
  PATCH  /sites/<site>          any SiteSimulation number, e.g. {"cooling_cop": 1.2}

It runs stdlib ThreadingHTTPServer in a daemon thread; every request is handed to the
simulator's event loop (run_coroutine_threadsafe), so simulator state is only ever
touched from one thread.

The endpoint changes what devices report, so it listens on 127.0.0.1 unless told
otherwise; on any other address it needs a token (from the environment variable
PUE_MONITOR_SIMULATOR_TOKEN), and every request but /healthz must carry it as
``Authorization: Bearer <token>`` (compared in constant time), else 401.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import ipaddress
import json
import logging
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from pue_monitor.simulator.truth import check_span, energy_truth

log = logging.getLogger(__name__)
LOOP_TIMEOUT_S = 10.0
MAX_BODY = 64 * 1024
TOKEN_ENV = "PUE_MONITOR_SIMULATOR_TOKEN"
# Shorter tokens are guessable; 16 characters is what `openssl rand -hex 8` prints.
MIN_TOKEN_LENGTH = 16
OPEN_ROUTES = (("GET", ("healthz",)),)  # answered without the token (liveness probes)


class Controllable(Protocol):
    """What the control endpoint needs from the simulator (called in the loop thread)."""

    def truth(self) -> dict: ...
    def physics_snapshot(self) -> tuple[dict, dict, int]: ...
    async def set_fault(self, device_id: str, kind: str, seconds: Any = None,
                        duration: Any = None) -> dict: ...
    async def clear_faults(self, device_id: str, kind: str | None = None) -> dict: ...
    def patch_site(self, site_id: str, changes: dict) -> dict: ...


class NotFound(KeyError):
    """An unknown device or site: HTTP 404."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost`` (only this machine)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def control_token(host: str, environ: dict[str, str] | None = None) -> str | None:
    """The token the endpoint on ``host`` requires: the environment's if set (also on
    loopback), None on loopback without one.

    :raises ValueError: another address and no token, or one too short.
    """
    token = (os.environ if environ is None else environ).get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        raise ValueError(f"the simulator control endpoint on {host} needs a token: set "
                         f"{TOKEN_ENV} (at least {MIN_TOKEN_LENGTH} characters), or listen "
                         "on 127.0.0.1")
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{TOKEN_ENV} is shorter than {MIN_TOKEN_LENGTH} characters")
    return token


class ControlServer:
    """The control endpoint on host:port (port 0 picks a free one)."""

    def __init__(self, target: Controllable, loop: asyncio.AbstractEventLoop,
                 host: str = "127.0.0.1", port: int = 0, *,
                 environ: dict[str, str] | None = None) -> None:
        self.target, self.loop = target, loop
        self.token = control_token(host, environ)  # before the port is bound
        self.httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[0], self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sim-control",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def in_loop(self, fn: Callable, *args: Any) -> Any:
        """Run fn(*args) (sync or async) on the simulator's loop and wait for the result."""
        async def run() -> Any:
            result = fn(*args)
            return await result if inspect.isawaitable(result) else result
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(LOOP_TIMEOUT_S)


def _handler_class(control: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "pue-monitor-simulator"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("control: " + format, *args)

        def _reply(self, status: int, body: object, headers: dict[str, str] | None = None
                   ) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ValueError("body too large")
            if length < 0:  # read(-1) would wait for the client to close the connection
                raise ValueError(f"bad Content-Length {length}")
            raw = self.rfile.read(length) if length else b""
            data = json.loads(raw or b"{}")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            return data

        def _authorised(self, method: str, parts: list[str]) -> bool:
            if control.token is None or (method, tuple(parts)) in OPEN_ROUTES:
                return True
            given = self.headers.get("Authorization") or ""
            scheme, _, value = given.partition(" ")
            expected = control.token.encode()
            # compare_digest: the time taken says nothing about how much of it matched
            return scheme.lower() == "bearer" and hmac.compare_digest(
                value.strip().encode(), expected)

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            parts = [p for p in url.path.split("/") if p]
            if not self._authorised(method, parts):
                self._reply(401, {"error": "this endpoint needs Authorization: Bearer <token> "
                                           f"(the value of {TOKEN_ENV})"},
                            {"WWW-Authenticate": 'Bearer realm="pue-monitor-simulator"'})
                return
            try:
                status, body = route(control, method, parts, parse_qs(url.query), self._body)
            except NotFound as exc:
                status, body = 404, {"error": str(exc.args[0])}
            except (ValueError, json.JSONDecodeError) as exc:
                status, body = 400, {"error": str(exc)}
            except Exception as exc:  # noqa: BLE001 - report, keep serving
                log.exception("control request failed")
                status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
            self._reply(status, body)

        def do_GET(self) -> None:  # noqa: N802
            self._dispatch("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._dispatch("DELETE")

        def do_PATCH(self) -> None:  # noqa: N802
            self._dispatch("PATCH")

    return Handler


def route(control: ControlServer, method: str, parts: list[str], query: dict,
          body: Callable[[], dict]) -> tuple[int, object]:
    """Map one request to a simulator call: (status, JSON body)."""
    target = control.target
    if method == "GET" and parts == ["healthz"]:
        return 200, {"ok": True}
    if method == "GET" and parts == ["truth"]:
        return 200, control.in_loop(target.truth)
    if method == "GET" and parts == ["truth", "energy"]:
        start, end = check_span(*((query.get(k) or [None])[0] for k in ("start", "end")))
        sims, layouts, seed = control.in_loop(target.physics_snapshot)
        # Integrated here, in the HTTP thread: the physics is pure, and a long span must
        # not hold back the simulator's ticks.
        return 200, energy_truth(sims, layouts, seed, start, end).as_dict()
    if len(parts) == 2 and parts[0] == "faults":
        if method == "POST":
            data = body()
            if "kind" not in data:
                raise ValueError("give the fault kind, e.g. {\"kind\": \"down\"}")
            unknown = set(data) - {"kind", "seconds", "duration"}
            if unknown:
                raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
            return 200, control.in_loop(target.set_fault, parts[1], data["kind"],
                                        data.get("seconds"), data.get("duration"))
        if method == "DELETE":
            kind = (query.get("kind") or [None])[0]
            return 200, control.in_loop(target.clear_faults, parts[1], kind)
    if method == "PATCH" and len(parts) == 2 and parts[0] == "sites":
        return 200, control.in_loop(target.patch_site, parts[1], body())
    return 404, {"error": f"no route for {method} /{'/'.join(parts)}"}
