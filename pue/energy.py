"""Energy of one meter over a period: from a cumulative counter or by integrating power.

Times are unix seconds (float), energies kWh, power W. A meter *covers* the spans of
time for which its energy is measured; the PUE step only compares spans covered by
every meter on both sides of the ratio.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property

from typing import TYPE_CHECKING

import numpy as np

from pue_monitor.config.metrics import SECONDS_PER_HOUR, WH_PER_KWH

if TYPE_CHECKING:  # frames come in from callers; building series needs numpy only
    import pandas as pd

Span = tuple[float, float]

# By default a power-only meter is integrated across gaps up to three poll intervals.
DEFAULT_GAP_POLLS = 3


def _sorted_series(frame: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps and values of a ``ts``/``value`` frame, sorted, NaN values dropped."""
    if frame is None or frame.empty:
        return np.empty(0), np.empty(0)
    return clean_series(frame["ts"].to_numpy(dtype=float), frame["value"].to_numpy(dtype=float))


def clean_series(ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Readings sorted by time, NaN values dropped, the last of equal times kept."""
    ts, values = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
    keep = ~(np.isnan(ts) | np.isnan(values))
    if not keep.all():
        ts, values = ts[keep], values[keep]
    if ts.size > 1 and not (np.diff(ts) > 0).all():
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        last = np.append(ts[1:] != ts[:-1], True)
        ts, values = ts[last], values[last]
    return ts, values


def unwind_counter(values: np.ndarray, width_kwh: float | None = None) -> tuple[np.ndarray, int]:
    """Turn raw counter readings into a monotonic cumulative series.

    A decrease is a reset (the energy since the reset is the new reading) unless the
    counter declares a width, in which case it wrapped and the width is added back.
    Returns the unwound series and how many resets or wraps were seen.
    """
    if values.size == 0:
        return values, 0
    deltas = np.diff(values)
    drops = deltas < 0
    if width_kwh:
        deltas = np.where(drops, deltas + width_kwh, deltas)
    else:
        deltas = np.where(drops, values[1:], deltas)
    return np.concatenate(([values[0]], values[0] + np.cumsum(deltas))), int(drops.sum())


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


def span_seconds(spans: list[Span]) -> float:
    return float(sum(b - a for a, b in spans))


# Largest error share a counter's register step may cause over a window (see for_window).
RESOLUTION_SHARE = 0.002


@dataclass(frozen=True)
class CounterSeries:
    """A cumulative energy counter (kWh), unwound across resets or wraps."""

    ts: np.ndarray
    cumulative: np.ndarray
    resets: int
    resolution_kwh: float = 0.0  # the register's step: 0.1 kWh on many PDUs
    drop_ts: tuple[float, ...] = ()  # times of the first reading after each reset or wrap

    def resets_in(self, start: float, end: float) -> int:
        """Resets or wraps whose energy falls in (start, end]."""
        return sum(1 for t in self.drop_ts if start < t <= end)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame | None, width_kwh: float | None = None,
                   replacements: tuple[tuple[float, float, float], ...] = (),
                   resolution_kwh: float = 0.0) -> CounterSeries:
        """Build from readings; ``replacements`` are (time, old final, new initial) kWh."""
        return cls.from_arrays(*_sorted_series(frame), width_kwh=width_kwh,
                               replacements=replacements, resolution_kwh=resolution_kwh)

    @classmethod
    def from_arrays(cls, ts: np.ndarray, values: np.ndarray, width_kwh: float | None = None,
                    replacements: tuple[tuple[float, float, float], ...] = (),
                    resolution_kwh: float = 0.0) -> CounterSeries:
        """As from_frame, from reading times and values."""
        ts, values = clean_series(ts, values)
        if replacements and ts.size:
            values = values.copy()
            # A meter swap: readings after it continue the old meter's total.
            for when, old_final, new_initial in sorted(replacements):
                after = ts >= when
                values[after] = values[after] - new_initial + old_final
        cumulative, resets = unwind_counter(values, width_kwh)
        drops = tuple(float(t) for t in ts[1:][np.diff(values) < 0]) if ts.size else ()
        return cls(ts, cumulative, resets, resolution_kwh, drops)

    def spans(self, start: float, end: float) -> list[Span]:
        """A counter measures everything between its first and last reading, gaps included."""
        if self.ts.size < 2:
            return []
        return merge_spans([(max(start, float(self.ts[0])), min(end, float(self.ts[-1])))])

    def energy(self, spans: list[Span]) -> float:
        """kWh over spans inside the covered range, boundaries interpolated linearly."""
        if not spans:
            return 0.0
        edges = np.asarray(spans, dtype=float)
        at = np.interp(edges.ravel(), self.ts, self.cumulative).reshape(edges.shape)
        return float((at[:, 1] - at[:, 0]).sum())


@dataclass(frozen=True)
class PowerSeries:
    """Active power readings (W), integrated with the trapezoidal rule."""

    ts: np.ndarray
    watts: np.ndarray
    max_gap_s: float

    @classmethod
    def from_frame(cls, frame: pd.DataFrame | None, max_gap_s: float) -> PowerSeries:
        return cls(*_sorted_series(frame), max_gap_s)

    @classmethod
    def from_arrays(cls, ts: np.ndarray, watts: np.ndarray, max_gap_s: float) -> PowerSeries:
        return cls(*clean_series(ts, watts), max_gap_s)

    def spans(self, start: float, end: float) -> list[Span]:
        """Stretches between consecutive readings no further apart than ``max_gap_s``."""
        return [(max(a, start), min(b, end)) for a, b in self._stretches
                if min(b, end) > max(a, start)]

    @cached_property
    def _stretches(self) -> list[Span]:
        if self.ts.size < 2:
            return []
        good = np.diff(self.ts) <= self.max_gap_s
        # Runs of consecutive short gaps: a run of gaps i..j-1 spans ts[i]..ts[j].
        edges = np.diff(np.concatenate(([0], good.astype(np.int8), [0])))
        first, stop = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        return list(zip(self.ts[first].tolist(), self.ts[stop].tolist()))

    @cached_property
    def _lists(self) -> tuple[list[float], list[float], list[float]]:
        """Times, watts and watt-seconds from the first reading (by trapezoids), as lists:
        a window's energy is a few lookups in them, cheaper in Python than in numpy."""
        steps = (self.watts[1:] + self.watts[:-1]) * np.diff(self.ts) / 2.0
        cumulative = np.concatenate(([0.0], np.cumsum(steps)))
        return self.ts.tolist(), self.watts.tolist(), cumulative.tolist()

    def _integral_ws(self, t: float) -> float:
        """Watt-seconds from the first reading to ``t``: trapezoids between readings,
        power linear in between and held flat beyond either end."""
        ts, watts, cumulative = self._lists
        if t <= ts[0]:
            return (t - ts[0]) * watts[0]
        if t >= ts[-1]:
            return cumulative[-1] + (t - ts[-1]) * watts[-1]
        i = bisect.bisect_right(ts, t) - 1
        t0, w0 = ts[i], watts[i]
        w_t = w0 + (watts[i + 1] - w0) * (t - t0) / (ts[i + 1] - t0)
        return cumulative[i] + (w0 + w_t) / 2.0 * (t - t0)

    def energy(self, spans: list[Span]) -> float:
        """kWh over spans (which must lie inside covered stretches)."""
        if not spans or self.ts.size == 0:
            return 0.0
        ws = sum(self._integral_ws(float(b)) - self._integral_ws(float(a)) for a, b in spans)
        return ws / SECONDS_PER_HOUR / WH_PER_KWH

    def mean_power(self, span: Span) -> float:
        seconds = span[1] - span[0]
        return self.energy([span]) * WH_PER_KWH * SECONDS_PER_HOUR / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class MeterEnergy:
    """A meter's energy source: its counter when it has one, else its power."""

    counter: CounterSeries | None
    power: PowerSeries | None

    @property
    def method(self) -> str:
        if self.counter is not None and self.counter.ts.size >= 2:
            return "counter"
        if self.power is not None and self.power.ts.size >= 2:
            return "power_integration"
        return "none"

    def for_window(self, start: float, end: float) -> MeterEnergy:
        """The source to use over [start, end]: the counter, unless its step is too coarse.

        A difference of two counter readings is off by up to one register step at each
        end. Over a short window a coarse register (0.1 kWh on a 3 kW rack PDU) cannot
        resolve the energy to RESOLUTION_SHARE; there, and only if the meter also reports
        power covering as much of the window, integrated power is the better measurement.
        Over a day or longer any real register is fine and the counter always wins.
        """
        if self.method != "counter" or self.power is None or self.power.ts.size < 2:
            return self
        assert self.counter is not None
        step = 2 * self.counter.resolution_kwh
        spans = self.counter.spans(start, end)
        if step <= RESOLUTION_SHARE * abs(self.counter.energy(spans)):
            return self
        power_spans = self.power.spans(start, end)
        if step <= RESOLUTION_SHARE * abs(self.power.energy(power_spans)):
            return self  # the counter just stalled: trust it, do not hide a real stop
        if span_seconds(power_spans) < span_seconds(spans):
            return self
        return MeterEnergy(None, self.power)

    def spans(self, start: float, end: float) -> list[Span]:
        if self.method == "counter":
            assert self.counter is not None
            return self.counter.spans(start, end)
        if self.method == "power_integration":
            assert self.power is not None
            return self.power.spans(start, end)
        return []

    def energy(self, spans: list[Span]) -> float:
        if self.method == "counter":
            assert self.counter is not None
            return self.counter.energy(spans)
        if self.method == "power_integration":
            assert self.power is not None
            return self.power.energy(spans)
        return 0.0

    def cross_check(self, start: float, end: float) -> tuple[float, float] | None:
        """(counter kWh, integrated power kWh) over the time both measured, if any."""
        if self.counter is None or self.power is None:
            return None
        common = intersect_spans(self.counter.spans(start, end), self.power.spans(start, end))
        if span_seconds(common) <= 0:
            return None
        return self.counter.energy(common), self.power.energy(common)

    def disagreement(self, start: float, end: float) -> float | None:
        """Relative difference between counter and integrated power where both cover."""
        check = self.cross_check(start, end)
        if check is None:
            return None
        by_counter, by_power = check
        if by_counter <= 0:
            return None
        return abs(by_power - by_counter) / by_counter
