"""When the monitor itself was collecting, from its run log: and so when it was not.

A counter bridges any gap in the energy, so a figure can be fully covered across a
monitor outage; the run log keeps the outage visible. Each run of the monitor records its
start and then a heartbeat (its last sign of life) until it stops. A run collected from
its start to its last heartbeat; after that nothing is known (a crash leaves no stop), so
that time counts as not collecting, except for a run still going: within
``HEARTBEAT_MISSES`` heartbeats of ``now`` it is collecting up to ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pue_monitor.pue.spans import Span, clip_spans, merge_spans, span_seconds, subtract_spans

# The monitor marks its run this often (seconds).
HEARTBEAT_S = 60.0
# A run not stopped whose last heartbeat is at most this many heartbeats old is running.
HEARTBEAT_MISSES = 2


@dataclass(frozen=True)
class Run:
    """One run of the monitor: started, last heartbeat (or stop), stopped cleanly."""

    started: float
    last_seen: float
    stopped: bool = False


@dataclass(frozen=True)
class Outages:
    """The spans of [start, end) the monitor was not collecting, and their total."""

    spans: tuple[Span, ...]
    seconds: float
    runs: int  # runs overlapping the period


def collecting(runs: list[Run], now: float, heartbeat_s: float = HEARTBEAT_S) -> list[Span]:
    """The merged spans some run of the monitor was collecting."""
    spans = []
    for run in runs:
        end = run.last_seen
        if not run.stopped and 0 <= now - run.last_seen <= HEARTBEAT_MISSES * heartbeat_s:
            end = now  # still running: its next heartbeat is not due yet
        if end > run.started:
            spans.append((run.started, end))
    return merge_spans(spans)


def outages(runs: list[Run], start: float, end: float, now: float,
            heartbeat_s: float = HEARTBEAT_S) -> Outages:
    """Where in [start, min(end, now)) no run was collecting (the future is no outage)."""
    if end <= start:
        raise ValueError(f"empty period: {start} .. {end}")
    until = min(end, now)
    if until <= start:
        return Outages((), 0.0, 0)
    on = collecting(runs, now, heartbeat_s)
    off = subtract_spans([(start, until)], clip_spans(on, start, until))
    seen = sum(1 for r in runs if r.started < until and r.last_seen >= start)
    return Outages(tuple(off), span_seconds(off), seen)
