"""Spans of time and reading series: the small algebra every rule of the method uses.

Times are unix seconds (float). A span is a half-open (start, end) pair; lists of spans
are kept sorted and merged.
"""

from __future__ import annotations

import bisect

from pue_monitor.pue.lazynp import np

Span = tuple[float, float]


def clean_series(ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Readings sorted by time, NaN values dropped, the last of equal times kept."""
    ts, values = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
    keep = ~(np.isnan(ts) | np.isnan(values))
    if not keep.all():
        ts, values = ts[keep], values[keep]
    if ts.size > 1 and not (ts[1:] > ts[:-1]).all():  # (np.diff(ts) > 0, cheaper)
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        last = np.append(ts[1:] != ts[:-1], True)
        ts, values = ts[last], values[last]
    return ts, values


def merge_spans(spans: list[Span]) -> list[Span]:
    """Union of spans, sorted, touching spans joined."""
    out: list[Span] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def intersect_spans(left: list[Span], right: list[Span]) -> list[Span]:
    """Intersection of two sorted, merged span lists."""
    out: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        a, b = max(left[i][0], right[j][0]), min(left[i][1], right[j][1])
        if b > a:
            out.append((a, b))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract_spans(spans: list[Span], holes: list[Span]) -> list[Span]:
    """``spans`` without ``holes`` (both sorted and merged)."""
    out: list[Span] = []
    j = 0
    for a, b in spans:
        while j < len(holes) and holes[j][1] <= a:
            j += 1
        k = j
        while k < len(holes) and holes[k][0] < b:
            if holes[k][0] > a:
                out.append((a, holes[k][0]))
            a = max(a, holes[k][1])
            k += 1
        if b > a:
            out.append((a, b))
    return out


def clip_spans(spans: list[Span], start: float, end: float) -> list[Span]:
    """The parts of sorted, merged ``spans`` inside [start, end]."""
    first = max(bisect.bisect_right(spans, (start, float("inf"))) - 1, 0)
    out: list[Span] = []
    for a, b in spans[first:]:
        if a >= end:
            break
        a, b = max(a, start), min(b, end)
        if b > a:
            out.append((a, b))
    return out


def span_seconds(spans: list[Span]) -> float:
    return float(sum(b - a for a, b in spans))
