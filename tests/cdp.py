"""A small Chrome DevTools Protocol client over Chromium's --remote-debugging-pipe.

No extra package and no network port: Chromium reads commands on fd 3 and writes answers
and events on fd 4, each a JSON message ended by a NUL byte. Enough to drive one page:
navigate, evaluate JavaScript, wait for a condition, collect console errors.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Flags for a closed network: without the background ones Chromium keeps dialling out.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
ANSWER_TIMEOUT_S = 30.0
HIGH_FD = 10  # the pipe ends are moved out of the way of 3 and 4 first
_TRAMPOLINE = ("import os, sys\n"
               "a, b = int(sys.argv[1]), int(sys.argv[2])\n"
               "os.dup2(a, 3); os.dup2(b, 4); os.close(a); os.close(b)\n"
               "os.execv(sys.argv[3], sys.argv[3:])\n")


class CdpError(RuntimeError):
    pass


class Browser:
    """One headless Chromium and one page in it (``with Browser(...) as page``)."""

    def __init__(self, chromium: str, profile: Path) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        child_in = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, HIGH_FD)
        child_out = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, HIGH_FD)
        os.close(to_child_r)
        os.close(from_child_w)
        # A Python trampoline maps the two ends to fds 3 and 4, where Chromium expects them
        # (sh cannot name fds above 9; preexec_fn is unsafe beside the server's threads).
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(child_in), str(child_out),
             chromium, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "about:blank"],
            pass_fds=(child_in, child_out), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(child_in)
        os.close(child_out)
        self._out = os.fdopen(to_child_w, "wb", buffering=0)
        self._in = os.fdopen(from_child_r, "rb", buffering=0)
        self._next_id = 0
        self._answers: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self.events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""

    def _read(self) -> None:
        buffer = b""
        while chunk := self._in.read(65536):
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        waiting = self._answers.get(message["id"])
                    if waiting is not None:
                        waiting.put(message)
                else:
                    self.events.append(message)

    def send(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            self._answers[ident] = answer = queue.Queue()
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self._out.write(json.dumps(message).encode() + b"\0")
        try:
            got = answer.get(timeout=ANSWER_TIMEOUT_S)
        except queue.Empty:
            raise CdpError(f"no answer to {method} within {ANSWER_TIMEOUT_S} s") from None
        if "error" in got:
            raise CdpError(f"{method}: {got['error']}")
        return got["result"]

    def __enter__(self) -> Browser:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        self.session = self.send("Target.attachToTarget", {
            "targetId": target["targetId"], "flatten": True}, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.send("Browser.close", session=False)
        except (CdpError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._out.close()
        self._in.close()

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (a promise is awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def wait_for(self, expression: str, timeout_s: float = 20.0) -> Any:
        """Evaluate until truthy; the last value if it never is (the caller asserts)."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except CdpError:
                value = None  # the page is between two documents
            if value:
                return value
            time.sleep(0.1)
        return value

    def console_errors(self) -> list[str]:
        """Console errors, exceptions and CSP violations seen so far."""
        out = []
        for event in list(self.events):
            if event.get("method") == "Runtime.exceptionThrown":
                out.append(str(event["params"]["exceptionDetails"]))
            elif (event.get("method") == "Log.entryAdded"
                  and event["params"]["entry"]["level"] == "error"):
                entry = event["params"]["entry"]
                out.append(f"{entry['text']} {entry.get('url', '')}".strip())
            elif (event.get("method") == "Runtime.consoleAPICalled"
                  and event["params"]["type"] == "error"):
                out.append(str(event["params"]["args"]))
        return out
