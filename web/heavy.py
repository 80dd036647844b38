"""Heavy requests bounded: long reports and their downloads (HTML, JSON, CSV) are computed
on the app's own small pool of worker threads, at most ``web.limits.heavy_concurrent``
at once, each waited for at most ``web.limits.heavy_timeout_s``.

A heavy request beyond the limit is not queued: it gets 503 with Retry-After and a
message in Vietnamese and English at once, so heavy requests can never take every
thread of the web server (web.server keeps LIGHT_THREADS threads beside the heavy ones
for /metrics, /healthz, the overview and the API). A request that waited too long gets
503 too, and its work is stopped: the work reads the store through a Cancellable view
that raises Cancelled at its next store call (a Python thread cannot be killed, but a
report reads the store for every month it covers). Closing the app's server stops them
all the same way.

The counts (in flight, refused, timed out) are on /metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pue_monitor.config.model import WebLimits

log = logging.getLogger(__name__)
S = TypeVar("S")
T = TypeVar("T")


class Busy(Exception):
    """No heavy slot free (``timed_out`` False), or the work did not end in time."""

    def __init__(self, retry_after_s: int, timed_out: bool = False) -> None:
        super().__init__("timed out" if timed_out else "busy")
        self.retry_after_s, self.timed_out = retry_after_s, timed_out


class Cancelled(Exception):
    """The heavy work was stopped (timed out, or the server is closing)."""


class Cancellable:
    """A view of the store whose every call first checks ``stop``; the rest of the store
    (properties such as day_offset_s) is passed through as is."""

    def __init__(self, store: object, stop: threading.Event,
                 turn: threading.Lock | None = None) -> None:
        self._store, self._stop, self._turn = store, stop, turn

    def __getattr__(self, name: str) -> object:
        value = getattr(self._store, name)
        if not callable(value):
            return value
        stop, turn = self._stop, self._turn

        def checked(*args: object, **kwargs: object) -> object:
            if stop.is_set():
                raise Cancelled(name)
            if turn is None:
                return value(*args, **kwargs)
            turn.release()  # another heavy computation's turn while the store works
            try:
                return value(*args, **kwargs)
            finally:
                turn.acquire()

        return checked


class HeavyWork:
    """At most ``limits.heavy_concurrent`` heavy computations at once, on worker threads."""

    def __init__(self, limits: WebLimits) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.heavy_concurrent)
        self._pool = ThreadPoolExecutor(limits.heavy_concurrent, thread_name_prefix="heavy")
        self._lock = threading.Lock()
        self.in_flight = self.refused = self.timed_out = 0
        self._stops: set[threading.Event] = set()
        self._turn = threading.Lock()
        self._closed = False

    def run(self, work: Callable[[S], T], store: S) -> T:
        """``work(store)``'s result, or its exception; ``work`` gets ``store`` as a
        Cancellable view, and stops at its next store call once timed out or closed.

        :raises Busy: no slot free, or no result within the timeout.
        """
        stop = threading.Event()
        with self._lock:
            if self._closed or not self._slots.acquire(blocking=False):
                self.refused += 1
                raise Busy(self.limits.retry_after_s)
            self.in_flight += 1
            self._stops.add(stop)
        try:
            future = self._pool.submit(self._work, work, Cancellable(store, stop, self._turn))
        except BaseException:
            self._done(stop)
            raise
        future.add_done_callback(lambda _future: self._done(stop))
        try:
            return future.result(timeout=self.limits.heavy_timeout_s)
        except FutureTimeout:
            stop.set()
            with self._lock:
                self.timed_out += 1
            log.warning("a heavy request ran longer than %g s: answered 503 and stopped",
                        self.limits.heavy_timeout_s)
            raise Busy(self.limits.retry_after_s, timed_out=True) from None
        except Cancelled:  # the server is closing
            raise Busy(self.limits.retry_after_s) from None

    def _work(self, work: Callable[[S], T], store: S) -> T:
        # One heavy computation runs Python at a time; the others wait here or in a store
        # call (Cancellable): the request threads then share the interpreter lock with
        # one of them, not with all. The GIL lets only one run at a time anyway.
        with self._turn:
            return work(store)

    def _done(self, stop: threading.Event) -> None:
        with self._lock:
            self.in_flight -= 1
            self._stops.discard(stop)
        self._slots.release()

    def close(self) -> None:
        """Stop the work under way (at its next store call) and take no more."""
        with self._lock:
            self._closed = True
            for stop in self._stops:
                stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


class HeavyCollector(Collector):
    """pue_monitor_web_heavy_* on /metrics."""

    def __init__(self, heavy: HeavyWork) -> None:
        self.heavy = heavy

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        h = self.heavy
        yield GaugeMetricFamily("pue_monitor_web_heavy_in_flight",
                                "Heavy requests (long reports) being computed now",
                                value=h.in_flight)
        yield GaugeMetricFamily("pue_monitor_web_heavy_limit",
                                "Heavy requests computed at most at once",
                                value=h.limits.heavy_concurrent)
        yield CounterMetricFamily("pue_monitor_web_heavy_refused",
                                  "Heavy requests answered 503 because every slot was taken",
                                  value=h.refused)
        yield CounterMetricFamily("pue_monitor_web_heavy_timed_out",
                                  "Heavy requests answered 503 after the heavy timeout",
                                  value=h.timed_out)


__all__ = ["Busy", "Cancellable", "Cancelled", "HeavyCollector", "HeavyWork"]
