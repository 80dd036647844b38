"""The collectors' own counters, like snmp_exporter's: per device and in total, polls sent,
answers, retries, time per poll, late polls and skipped slots; polls in flight against
the limit; results the store acknowledged; the SNMP socket's buffer and drops.

Plain in-memory numbers, updated on the event loop; the composition root hands
:meth:`CollectionStats.snapshot` to whatever exports them (web/ turns it into /metrics),
so collectors never import web/.

With worker processes (collectors/workers.py) each worker counts its own devices and
sends snapshots to the parent, whose CollectionStats adds them (:func:`combined`) to its
own (the store's side: results stored, backlog) through ``parts``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pue_monitor.store.model import ErrorKind, PollResult

# Upper bounds of the poll-duration histogram, seconds: an SNMP poll on a LAN takes a few
# milliseconds, a slow agent or a Modbus gateway seconds; the top bound is past any budget.
DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                      5.0, 10.0, 30.0)
# Failures after which the device did answer (it said no, or said something unreadable).
_ANSWERED_FAILURES = (ErrorKind.DEVICE, ErrorKind.DECODE, ErrorKind.AUTH)


@dataclass
class DeviceCounts:
    """One device's counters (also used for the total)."""

    site: str = ""
    polls: int = 0  # polls started (each may send several requests and retries)
    answers: int = 0  # polls the device answered (successfully or with an error)
    retries: int = 0  # attempts beyond the first
    late: int = 0  # polls that started after their slot by more than the tolerance
    skipped: int = 0  # slots that passed unpolled because the previous poll overran
    duration_sum_s: float = 0.0
    duration_count: int = 0


@dataclass(frozen=True)
class Snapshot:
    """The counters at one instant, for one scrape."""

    devices: dict[str, DeviceCounts]
    total: DeviceCounts
    buckets_s: tuple[float, ...]
    bucket_counts: tuple[int, ...]  # per bucket (not cumulative), then one for +Inf
    in_flight: int
    in_flight_limit: int
    stored: int  # results whose store transaction committed
    backlog: int  # results waiting for the store
    store_write_errors: int
    backlog_dropped: int = 0  # results dropped because the backlog was full
    receive_buffers: tuple[tuple[int, int], ...] = ()  # (asked bytes, granted bytes)
    receive_drops: int | None = None  # datagrams the kernel dropped on our sockets
    workers: tuple[WorkerCounts, ...] = ()  # the worker processes, when there are any


@dataclass(frozen=True)
class WorkerCounts:
    """One worker process as /metrics shows it."""

    worker: str  # its number, from 0
    up: bool  # running now (False while it is being restarted)
    restarts: int  # times it died and was started again


@dataclass
class CollectionStats:
    """Counters the pollers, the limiter and the sink update."""

    in_flight_limit: int = 0
    devices: dict[str, DeviceCounts] = field(default_factory=dict)
    total: DeviceCounts = field(default_factory=DeviceCounts)
    in_flight: int = 0
    stored: int = 0
    # Read at snapshot time (the sink's backlog, the sockets' drops): set by the service.
    backlog: Callable[[], int] = lambda: 0
    store_write_errors: Callable[[], int] = lambda: 0
    backlog_dropped: Callable[[], int] = lambda: 0
    receive_buffers: Callable[[], tuple[tuple[int, int], ...]] = lambda: ()
    receive_drops: Callable[[], int | None] = lambda: None
    # The worker processes' snapshots and states (set by the worker pool; none without).
    parts: Callable[[], tuple[Snapshot, ...]] = lambda: ()
    workers: Callable[[], tuple[WorkerCounts, ...]] = lambda: ()
    _buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS_S) + 1))

    def device(self, site: str, device: str) -> DeviceCounts:
        counts = self.devices.get(device)
        if counts is None:
            counts = self.devices[device] = DeviceCounts(site)
        return counts

    def poll_started(self, site: str, device: str, late: bool) -> None:
        for c in (self.device(site, device), self.total):
            c.polls += 1
            c.late += late

    def slots_skipped(self, site: str, device: str, n: int) -> None:
        for c in (self.device(site, device), self.total):
            c.skipped += n

    def poll_done(self, result: PollResult, attempts: int) -> None:
        answered = result.ok or result.error_kind in _ANSWERED_FAILURES
        for c in (self.device(result.site, result.device), self.total):
            c.answers += answered
            c.retries += max(0, attempts - 1)
            c.duration_sum_s += result.duration_s
            c.duration_count += 1
        self._buckets[bisect.bisect_left(DURATION_BUCKETS_S, result.duration_s)] += 1

    def snapshot(self) -> Snapshot:
        own = Snapshot(
            devices={d: replace(c) for d, c in self.devices.items()}, total=replace(self.total),
            buckets_s=DURATION_BUCKETS_S, bucket_counts=tuple(self._buckets),
            in_flight=self.in_flight, in_flight_limit=self.in_flight_limit,
            stored=self.stored, backlog=self.backlog(),
            store_write_errors=self.store_write_errors(),
            backlog_dropped=self.backlog_dropped(),
            receive_buffers=self.receive_buffers(), receive_drops=self.receive_drops(),
            workers=self.workers())
        return combined(own, *self.parts())


def _added(a: DeviceCounts, b: DeviceCounts) -> DeviceCounts:
    return DeviceCounts(a.site or b.site, a.polls + b.polls, a.answers + b.answers,
                        a.retries + b.retries, a.late + b.late, a.skipped + b.skipped,
                        a.duration_sum_s + b.duration_sum_s,
                        a.duration_count + b.duration_count)


def combined(first: Snapshot, *others: Snapshot) -> Snapshot:
    """The snapshots of several processes as one: counters and gauges added (a device
    counted in several adds up too: its counts before and after a worker restart),
    sockets listed side by side; ``workers`` is the first's."""
    out = first
    for s in others:
        devices = dict(out.devices)
        for device, counts in s.devices.items():
            devices[device] = _added(devices[device], counts) if device in devices \
                else replace(counts)
        drops = None if out.receive_drops is None and s.receive_drops is None else \
            (out.receive_drops or 0) + (s.receive_drops or 0)
        out = replace(
            out, devices=devices, total=_added(out.total, s.total),
            bucket_counts=tuple(a + b for a, b in zip(out.bucket_counts, s.bucket_counts,
                                                      strict=True)),
            in_flight=out.in_flight + s.in_flight,
            in_flight_limit=out.in_flight_limit + s.in_flight_limit,
            stored=out.stored + s.stored, backlog=out.backlog + s.backlog,
            store_write_errors=out.store_write_errors + s.store_write_errors,
            backlog_dropped=out.backlog_dropped + s.backlog_dropped,
            receive_buffers=out.receive_buffers + s.receive_buffers, receive_drops=drops)
    return out


def retired(s: Snapshot) -> Snapshot:
    """What a dead process's last snapshot still adds: its counters, which must not go
    back when it is replaced, without its gauges (nothing of it is in flight now)."""
    return replace(s, in_flight=0, in_flight_limit=0, backlog=0, receive_buffers=())
