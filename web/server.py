"""The production WSGI server (waitress) on its own thread, beside the pollers.

Bounded work (config web.limits): LIGHT_THREADS threads for the page, the API and the
scrapes, plus one per heavy slot (web.heavy), so heavy requests waiting for their
reports never take the threads /metrics and /healthz need; request bodies and headers
limited in size; idle connections closed; connections capped."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from waitress.server import create_server

log = logging.getLogger(__name__)
LIGHT_THREADS = 4  # page, API and scrapes are short; a few threads keep them independent
DRAIN_S = 5.0  # on stop, requests under way get this long to answer


class WebServer:
    """Serve app on host:port (port 0 picks a free one) until stop()."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        self._app = app
        limits = app.extensions["pue_monitor"].config.web.limits
        self.threads = LIGHT_THREADS + limits.heavy_concurrent
        self._server = create_server(
            app, host=host, port=port, threads=self.threads, ident="pue-monitor",
            max_request_body_size=limits.max_body_bytes,
            max_request_header_size=limits.max_header_bytes,
            channel_timeout=limits.idle_timeout_s, connection_limit=limits.max_connections)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.effective_port)  # type: ignore[union-attr]

    @property
    def host(self) -> str:
        return str(self._server.effective_host)  # type: ignore[union-attr]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # The heavy work first: its requests then answer 503 while the server is still
        # open to send it, rather than into closed sockets.
        heavy = self._app.extensions["pue_monitor"].heavy
        if heavy is not None:
            heavy.close()
        deadline = time.monotonic() + DRAIN_S
        while self._server.task_dispatcher.active_count and time.monotonic() < deadline:
            time.sleep(0.02)
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            # Closed from the server's own loop: closing its sockets from this thread
            # races the loop's select() on them (EBADF in the loop's thread).
            self._server.trigger.pull_trigger(self._close_all)
            thread.join(timeout=DRAIN_S)
        if thread is None or not thread.is_alive():
            self._close_all()  # what is left once no loop selects on it (none if it ran)

    def _close_all(self) -> None:
        """Close the listening socket, the wake-up pipe and every connection; with its
        map empty the server's loop returns."""
        self._server.asyncore.close_all(self._server._map)
