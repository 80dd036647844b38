"""Energy from active power readings (W): trapezoids, gaps, stuck and implausible values."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property

from pue_monitor.pue.lazynp import np

from pue_monitor.config.metrics import SECONDS_PER_HOUR, WH_PER_KWH
from pue_monitor.pue.quality import (
    IMPLAUSIBLE_POWER,
    NEGATIVE_POWER_NOISE_W,
    STUCK_POWER,
    Flag,
    equal_runs,
    merge_runs,
)
from pue_monitor.pue.spans import Span, clean_series, clip_spans, merge_spans, subtract_spans

# By default a power-only meter is integrated across gaps up to three poll intervals.
DEFAULT_GAP_POLLS = 3


def implausible_power(ts: np.ndarray, watts: np.ndarray, rated_max_w: float | None) -> list[Flag]:
    """A reading below zero, beyond a transducer's noise (NEGATIVE_POWER_NOISE_W: a meter
    of a data center's supply or load draws power, and integrated a negative value would
    take energy away), or beyond the meter's rated maximum: both intervals around it
    unmeasured."""
    if ts.size == 0:
        return []
    bad = watts < -NEGATIVE_POWER_NOISE_W
    if rated_max_w:
        bad |= watts > rated_max_w
    last = ts.size - 1
    return merge_runs([Flag(float(ts[max(i - 1, 0)]), float(ts[min(i + 1, last)]),
                            IMPLAUSIBLE_POWER)
                       for i in np.flatnonzero(bad).tolist()])


def stuck_power(ts: np.ndarray, watts: np.ndarray, polls: int | None,
                moving_ts: np.ndarray | None) -> list[Flag]:
    """A value bit-identical over ``polls`` readings or more while the site moved.

    ``moving_ts``: when the site's other meters changed value (quality.moving_times);
    None when that is not known, and then nothing is flagged: a steady load may read
    the same value for a while. A run at exactly 0 W is a feed that is off, not stuck.
    """
    if not polls or moving_ts is None or ts.size < polls:
        return []
    out = []
    for first, last in equal_runs(watts):
        if last - first + 1 < polls or watts[first] == 0:
            continue
        a, b = float(ts[first]), float(ts[last])
        i = bisect.bisect_right(moving_ts, a)
        if i < len(moving_ts) and moving_ts[i] <= b:
            out.append(Flag(a, b, STUCK_POWER))
    return out


@dataclass(frozen=True)
class PowerSeries:
    """Active power readings (W), integrated with the trapezoidal rule, with the spans
    its rules refused (``flags``)."""

    ts: np.ndarray
    watts: np.ndarray
    max_gap_s: float
    flags: tuple[Flag, ...] = field(default=())

    @classmethod
    def from_frame(cls, frame, max_gap_s: float, **rules) -> PowerSeries:
        if frame is None or frame.empty:
            return cls.from_arrays(np.empty(0), np.empty(0), max_gap_s, **rules)
        return cls.from_arrays(frame["ts"].to_numpy(dtype=float),
                               frame["value"].to_numpy(dtype=float), max_gap_s, **rules)

    @classmethod
    def from_arrays(cls, ts: np.ndarray, watts: np.ndarray, max_gap_s: float, *,
                    rated_max_w: float | None = None, stuck_polls: int | None = None,
                    moving_ts: np.ndarray | None = None) -> PowerSeries:
        """Readings, with the rated-maximum and stuck-value rules applied."""
        ts, watts = clean_series(ts, watts)
        flags = implausible_power(ts, watts, rated_max_w)
        flags += stuck_power(ts, watts, stuck_polls, moving_ts)
        return cls(ts, watts, max_gap_s, tuple(sorted(flags)))

    def spans(self, start: float, end: float) -> list[Span]:
        """Stretches between consecutive readings no further apart than ``max_gap_s``,
        less the flagged spans."""
        return clip_spans(self._good, start, end)

    def evidence_spans(self, start: float, end: float) -> list[Span]:
        """Where the power says whether energy flowed: stretches less implausible values
        (a stuck value still says the load was on)."""
        return clip_spans(self._evidence, start, end)

    @cached_property
    def _stretches(self) -> list[Span]:
        if self.ts.size < 2:
            return []
        good = (self.ts[1:] - self.ts[:-1]) <= self.max_gap_s  # np.diff, cheaper
        if good.all():  # the usual case: no gap
            return [(float(self.ts[0]), float(self.ts[-1]))]
        # Runs of consecutive short gaps: a run of gaps i..j-1 spans ts[i]..ts[j].
        flags = np.concatenate(([0], good.astype(np.int8), [0]))
        edges = flags[1:] - flags[:-1]
        first, stop = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        return list(zip(self.ts[first].tolist(), self.ts[stop].tolist()))

    @cached_property
    def _good(self) -> list[Span]:
        return subtract_spans(self._stretches, merge_spans([f.span for f in self.flags]))

    @cached_property
    def _evidence(self) -> list[Span]:
        return subtract_spans(self._stretches, merge_spans(
            [f.span for f in self.flags if f.kind == IMPLAUSIBLE_POWER]))

    @cached_property
    def _lists(self) -> tuple[list[float], list[float], list[float]]:
        """Times, watts and watt-seconds from the first reading (by trapezoids), as lists:
        a window's energy is a few lookups in them, cheaper in Python than in numpy."""
        steps = (self.watts[1:] + self.watts[:-1]) * (self.ts[1:] - self.ts[:-1]) / 2.0
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
