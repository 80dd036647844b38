"""Energy from a cumulative counter (kWh): resets, step-backs, wraps, stuck and implausible
steps, as "The method, version 4" defines them (README, "How PUE is computed").

Each interval between two consecutive readings is a *step*. A step is measured (its
energy is the counter's difference, or W - old + new across a wrap) unless a rule
refuses it; refused steps are gaps in the counter's coverage, and the counter goes on
from the reading after them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from pue_monitor.pue.lazynp import np

from pue_monitor.config.metrics import SECONDS_PER_HOUR, WH_PER_KWH
from pue_monitor.pue.power import PowerSeries
from pue_monitor.pue.quality import (
    DEFAULT_RESET_BELOW_FRACTION,
    IMPLAUSIBLE_COUNTER,
    OUT_OF_LINE_READINGS,
    REGISTER_REFRESH_S,
    RESET,
    STEP_BACK,
    STUCK_COUNTER,
    SWAP_JUMP_SHARE,
    SWAP_STEP_FACTOR,
    SWAP_WINDOW_S,
    WRAP,
    WRAP_BAND,
    Flag,
    equal_runs,
)
from pue_monitor.pue.spans import Span, clean_series, clip_spans, merge_spans, subtract_spans

Replacement = tuple[float, float, float]  # (time, old meter's final kWh, new one's first)
# (power, share) of the site's IT meters, or a function giving them (made when needed).
SitePower = (tuple[tuple[PowerSeries, float], ...]
             | Callable[[], tuple[tuple[PowerSeries, float], ...]])


def _dip_end(values: np.ndarray, k: int) -> int | None:
    """After the fall from reading k: the reading that ends a dip of at most
    OUT_OF_LINE_READINGS readings, or None. It is the first back at or above reading k,
    reached in one climb larger than the counter rose during the dip (a reset counting
    up again climbs step by step; a few bad readings end in one jump back)."""
    top, low = values[k], values[k + 1]
    for j in range(k + 2, min(k + 2 + OUT_OF_LINE_READINGS, values.size)):
        if values[j] >= top:
            return j if values[j] - values[j - 1] > values[j - 1] - low else None
    return None


def _spike_start(values: np.ndarray, refused: np.ndarray, k: int) -> int | None:
    """Before the fall after reading k: the reading before a spike of two to
    OUT_OF_LINE_READINGS readings (one is the rule in _classify), or None. The fall
    brings the counter back to at least that reading, the spike began with one rise
    larger than the counter rose during it, and none of its steps is refused yet but
    the rise into it (refused when beyond the rated maximum)."""
    after = values[k + 1]
    for i in range(k - 2, max(k - 1 - OUT_OF_LINE_READINGS, -1), -1):
        if refused[i + 1:k].any():
            return None
        if after >= values[i]:
            return i if values[i + 1] - values[i] > values[k] - values[i + 1] else None
    return None


def _swap_jumps(ts: np.ndarray, swaps: list[tuple[float, float]],
                resolution_kwh: float) -> dict[int, list[float]]:
    """Steps within SWAP_WINDOW_S of a recorded swap: {step: the jumps between the two
    meters' totals of every swap near it}. A jump within SWAP_STEP_FACTOR register steps
    (a new meter preset to the old one's reading) has nothing to misplace and is left
    out. From the swaps' times alone, so every window marks a step alike."""
    out: dict[int, list[float]] = {}
    for when, jump in swaps:
        if abs(jump) <= SWAP_STEP_FACTOR * resolution_kwh:  # a jump of 0 included
            continue
        first = max(int(np.searchsorted(ts, when - SWAP_WINDOW_S, side="right")) - 1, 0)
        last = min(int(np.searchsorted(ts, when + SWAP_WINDOW_S, side="left")), ts.size - 1)
        for k in range(first, last):
            out.setdefault(k, []).append(abs(jump))
    return out


def _swap_off(ts: np.ndarray, plain: np.ndarray, k: int, jumps: list[float],
              resolution_kwh: float) -> bool:
    """Whether rise k, near recorded swaps whose totals differ by ``jumps``, carries one
    of them misplaced: more than SWAP_JUMP_SHARE of it and more than SWAP_STEP_FACTOR
    times what the steps within OUT_OF_LINE_READINGS of it allow (none around: allowed;
    a step around that could carry a jump itself is no measure of the usual).
    ``plain``: every step as read (swaps applied, nothing refused yet); the store reads
    that many readings beyond every window, so every window judges the step alike."""
    least = SWAP_JUMP_SHARE * min(jumps)
    if plain[k] <= least:
        return False
    around = [i for i in range(max(k - OUT_OF_LINE_READINGS, 0),
                               min(k + OUT_OF_LINE_READINGS + 1, plain.size))
              if i != k and 0 <= plain[i] <= least]
    if not around:
        return False
    rate = sum(plain[i] for i in around) / sum(ts[i + 1] - ts[i] for i in around)
    usual = max(rate * (ts[k + 1] - ts[k]), max(plain[i] for i in around), resolution_kwh)
    return bool(plain[k] > SWAP_STEP_FACTOR * usual)


@dataclass
class _Steps:
    """Working state of the classification: each step's energy and whether it is refused."""

    ts: np.ndarray
    values: np.ndarray  # replacements applied
    delta: np.ndarray
    refused: np.ndarray
    flags: list[Flag]

    def refuse(self, first: int, last: int, kind: str) -> None:
        """Refuse steps first..last (inclusive) as one flagged span."""
        self.refused[first:last + 1] = True
        self.delta[first:last + 1] = 0.0
        self.flags.append(Flag(float(self.ts[first]), float(self.ts[last + 1]), kind))


def _classify(ts: np.ndarray, raw: np.ndarray, offset: np.ndarray, *,
              width_kwh: float | None, reset_below: float,
              rated_max_w: float | None, resolution_kwh: float = 0.0,
              swaps: list[tuple[float, float]] | None = None) -> _Steps:
    """Apply the decrease and rated-maximum rules, step by step in time order."""
    values = raw + offset
    # (a[1:] - a[:-1] is np.diff of a float array, without its overhead: the exact path
    # builds thousands of short series)
    steps = _Steps(ts, values, values[1:] - values[:-1], np.zeros(ts.size - 1, dtype=bool),
                   [])
    d = steps.delta
    swap = offset[1:] != offset[:-1]  # a recorded meter swap lies inside the step
    jumps = _swap_jumps(ts, swaps, resolution_kwh) if swaps else {}
    # Rises near a swap large enough to carry one of its jumps: judged in the loop below.
    near = [k for k, near_jumps in jumps.items() if d[k] > SWAP_JUMP_SHARE * min(near_jumps)]
    plain = d.copy() if near else d
    if rated_max_w:
        limit = rated_max_w * (ts[1:] - ts[:-1]) / (SECONDS_PER_HOUR * WH_PER_KWH)
        candidates = np.flatnonzero((d < 0) | (d > limit)).tolist()
    else:  # no rise is beyond an infinite limit
        candidates = np.flatnonzero(d < 0).tolist()
        if not candidates and not near:
            return steps
        limit = np.full(d.size, np.inf)
    if near:
        candidates = sorted({*candidates, *near})
    for k in candidates:
        if steps.refused[k]:
            continue  # taken by the event before it (a glitch reading's way back)
        if d[k] > 0:  # a rise beyond the rated maximum, or carrying a swap's jump
            if d[k] > limit[k] or (k in jumps and _swap_off(ts, plain, k, jumps[k],
                                                             resolution_kwh)):
                steps.refuse(k, k, IMPLAUSIBLE_COUNTER)
            continue
        # Back to at least the reading before the last rise: that high reading was out of
        # line (a spike), so the rise into it is not measured either.
        if k >= 1 and values[k + 1] >= values[k - 1]:
            last = steps.flags[-1] if steps.flags else None
            if (steps.refused[k - 1] and last is not None and last.kind == IMPLAUSIBLE_COUNTER
                    and last.end == ts[k]):
                steps.flags.pop()
                steps.refuse(k - 1, k, IMPLAUSIBLE_COUNTER)
                continue
            if not steps.refused[k - 1]:
                steps.refuse(k - 1, k, STEP_BACK)
                continue
        # Back to at least the reading before a rise two or three readings ago, in one
        # fall: those high readings were a spike too. The counter back at or above the
        # reading before the fall within a few readings: the low readings were out of
        # line (a dip), not a reset nor a wrap. Either way the steps between and the way
        # back are not measured. Where both fit, the fewer readings out of line win.
        first = _spike_start(values, steps.refused, k)
        end = _dip_end(values, k)
        if first is not None and (end is None or k - first < end - k - 1):
            last = steps.flags[-1] if steps.flags else None
            if not steps.refused[first]:
                steps.refuse(first, k, STEP_BACK)
                continue
            if (last is not None and last.kind == IMPLAUSIBLE_COUNTER
                    and last.start == ts[first] and last.end == ts[first + 1]):
                steps.flags.pop()  # the rise beyond the rated maximum, into the spike
                steps.refuse(first, k, IMPLAUSIBLE_COUNTER)
                continue
        old, new = raw[k], raw[k + 1]
        if end is not None:
            steps.refuse(k, end - 1, STEP_BACK)
        elif (width_kwh and not swap[k] and old >= (1 - WRAP_BAND) * width_kwh
                and new < WRAP_BAND * width_kwh):
            d[k] = width_kwh - old + new
            if d[k] > limit[k]:
                steps.refuse(k, k, IMPLAUSIBLE_COUNTER)
            else:
                steps.flags.append(Flag(float(ts[k]), float(ts[k + 1]), WRAP))
        elif not swap[k] and new < reset_below * old:
            steps.refuse(k, k, RESET)
        else:
            steps.refuse(k, k, STEP_BACK)
    return steps


def _stuck(steps: _Steps, own: PowerSeries, site_power: SitePower,
           resolution_kwh: float) -> None:
    """Refuse runs of an unmoving counter while the evidence (the meter's own power; for
    a facility meter also the site's IT power, share applied, which the facility feeds)
    says more than one register step of energy flowed, with the step into the run and
    the step out of it: the stall began somewhere in the first, and the second may carry
    its whole energy. Each source is judged on its own: the IT side is a lower bound of
    what a facility counter must have counted. ``site_power`` is only looked at (and,
    given as a function, only made) when the counter has a run of equal readings."""
    runs = equal_runs(steps.values)
    if not runs:
        return
    if callable(site_power):
        site_power = site_power()
    others = [(p, w) for p, w in site_power if p.ts.size >= 2]
    if own.ts.size < 2 and not others:
        return
    ts, last_step = steps.ts, steps.delta.size - 1
    for first, last in runs:
        if steps.refused[first:last].all():
            continue  # readings out of line (two reads of 0 in a dip): not a stall
        # The last reading of a run may show the register as it was REGISTER_REFRESH_S
        # before, so the evidence is weighed up to that much before it.
        a, b = float(ts[first]), float(ts[last]) - REGISTER_REFRESH_S
        if b <= a:
            continue  # one register image read twice
        by_own = own.energy(own.evidence_spans(a, b)) if own.ts.size >= 2 else 0.0
        by_site = sum(w * p.energy(p.evidence_spans(a, b)) for p, w in others)
        if max(by_own, by_site) > resolution_kwh:
            steps.refuse(max(first - 1, 0), min(last, last_step), STUCK_COUNTER)


@dataclass(frozen=True)
class CounterSeries:
    """A cumulative energy counter (kWh): readings, measured steps summed into
    ``cumulative``, and the flags of the steps the rules refused or unwound."""

    ts: np.ndarray
    cumulative: np.ndarray
    resolution_kwh: float = 0.0  # the register's step: 0.1 kWh on many PDUs
    flags: tuple[Flag, ...] = field(default=())

    @property
    def resets(self) -> int:
        return sum(1 for f in self.flags if f.kind == RESET)

    def resets_in(self, start: float, end: float) -> int:
        """Resets whose reading after lies in (start, end] (each counted in one block)."""
        return sum(1 for f in self.flags if f.kind == RESET and start < f.end <= end)

    @classmethod
    def from_frame(cls, frame, width_kwh: float | None = None,
                   replacements: tuple[Replacement, ...] = (), resolution_kwh: float = 0.0,
                   **rules) -> CounterSeries:
        """Build from a ``ts``/``value`` frame; see from_arrays."""
        if frame is None or frame.empty:
            ts = values = np.empty(0)
        else:
            ts, values = frame["ts"].to_numpy(dtype=float), frame["value"].to_numpy(dtype=float)
        return cls.from_arrays(ts, values, width_kwh=width_kwh, replacements=replacements,
                               resolution_kwh=resolution_kwh, **rules)

    @classmethod
    def from_arrays(cls, ts: np.ndarray, values: np.ndarray, width_kwh: float | None = None,
                    replacements: tuple[Replacement, ...] = (), resolution_kwh: float = 0.0, *,
                    reset_below_fraction: float | None = None,
                    rated_max_w: float | None = None,
                    power: PowerSeries | None = None,
                    site_power: SitePower = ()) -> CounterSeries:
        """Readings, with every rule applied.

        ``replacements``: (time, old final, new initial) kWh of each meter swap.
        ``power``: the same meter's power, the evidence for the stuck-counter rule.
        ``site_power``: (power, share) of the site's IT meters, the further evidence for
        a facility meter's counter (it feeds them: their energy flows through it); or a
        function giving them, called only if a run of equal readings is to be judged.
        """
        ts, raw = clean_series(ts, values)
        if ts.size < 2:
            return cls(ts, raw, resolution_kwh)
        offset = np.zeros(ts.size)
        swaps = []
        for when, old_final, new_initial in sorted(replacements):
            # A meter swap: readings after it continue the old meter's total.
            offset[ts >= when] += old_final - new_initial
            swaps.append((when, old_final - new_initial))
        steps = _classify(ts, raw, offset, width_kwh=width_kwh, swaps=swaps,
                          reset_below=DEFAULT_RESET_BELOW_FRACTION
                          if reset_below_fraction is None else reset_below_fraction,
                          rated_max_w=rated_max_w, resolution_kwh=resolution_kwh)
        _stuck(steps, power if power is not None else PowerSeries(np.empty(0), np.empty(0), 0.0),
               site_power, resolution_kwh)
        cumulative = steps.values[0] + np.concatenate(([0.0], np.cumsum(steps.delta)))
        return cls(ts, cumulative, resolution_kwh, tuple(sorted(steps.flags)))

    @cached_property
    def _refused(self) -> list[Span]:
        return merge_spans([f.span for f in self.flags if f.kind != WRAP])

    @cached_property
    def _measured(self) -> list[Span]:
        if self.ts.size < 2:
            return []
        return subtract_spans([(float(self.ts[0]), float(self.ts[-1]))], self._refused)

    @cached_property
    def reset_spans(self) -> list[Span]:
        """Steps refused for a reset alone: the meter's own power may measure them."""
        others = merge_spans([f.span for f in self.flags if f.kind not in (WRAP, RESET)])
        return subtract_spans(merge_spans([f.span for f in self.flags if f.kind == RESET]),
                              others)

    def spans(self, start: float, end: float) -> list[Span]:
        """A counter measures everything between its first and last reading, gaps between
        readings included, except the steps its rules refused."""
        return clip_spans(self._measured, start, end)

    def energy(self, spans: list[Span]) -> float:
        """kWh over spans inside the measured range, boundaries interpolated linearly."""
        if not spans or self.ts.size < 2:
            return 0.0
        edges = np.asarray(spans, dtype=float)
        at = np.interp(edges.ravel(), self.ts, self.cumulative).reshape(edges.shape)
        return float((at[:, 1] - at[:, 0]).sum())
