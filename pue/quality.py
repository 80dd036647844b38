"""What a meter's readings do not measure, and why: the flagged spans of method 3.

Each rule of "The method, version 4" (README, "How PUE is computed") that refuses a span
or names an event leaves a Flag: its kind and the reading interval(s) it covers. The
counter and power series hold their flags; every result carries a meter's flags over
its period (MeterQuality), so the layers above can count and show them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pue_monitor.pue.lazynp import np

from pue_monitor.pue.spans import Span, merge_spans

# Kinds of flags. A wrap is measured (its energy is W - old + new); every other kind is
# a span the meter did not measure.
RESET = "reset"
STEP_BACK = "step_back"
WRAP = "wrap"
STUCK_COUNTER = "stuck_counter"
STUCK_POWER = "stuck_power"
IMPLAUSIBLE_COUNTER = "implausible_counter"
IMPLAUSIBLE_POWER = "implausible_power"
KINDS = (RESET, STEP_BACK, WRAP, STUCK_COUNTER, STUCK_POWER, IMPLAUSIBLE_COUNTER,
         IMPLAUSIBLE_POWER)
UNMEASURED = frozenset(KINDS) - {WRAP}
# What a stored 15-minute block keeps of the flags: a count per group of kinds, each flag
# counted in the block its end lies in, so block counts add up over any period.
COUNTED = {"reset": (RESET,), "step_back": (STEP_BACK,), "wrap": (WRAP,),
           "stuck": (STUCK_COUNTER, STUCK_POWER),
           "implausible": (IMPLAUSIBLE_COUNTER, IMPLAUSIBLE_POWER)}

# A counter falling below this share of its previous value was reset (profile or device
# setting `reset_below_fraction`); any smaller decrease is a step-back.
DEFAULT_RESET_BELOW_FRACTION = 0.10
# A decrease is a wrap when the old value lies in the top WRAP_BAND of the declared
# width and the new one in the bottom WRAP_BAND.
WRAP_BAND = 0.10
# A power reading below minus this much is a fault (a sign, wiring or transducer fault:
# a data center's meters draw power); above it, a transducer's noise about 0 W at no load
# (a current transformer's few tenths of a watt), integrated as read. A setting of the
# method, not a measured number.
NEGATIVE_POWER_NOISE_W = 10.0
# At most this many consecutive counter readings out of line (a dip or a spike: a meter's
# communication module answering 0 or garbage for a few polls) are recognised as such
# (pue.counter); the store reads one more on each side of a window (store.base
# NEAR_READINGS), so every window judges a step alike. A setting of the method.
OUT_OF_LINE_READINGS = 3
# A meter swap recorded at the wrong time moves the jump between the two meters' totals
# (old final - new initial) onto a step of its own, within a day of it (a time recorded
# minutes off, or in another time zone). The step across the recorded swap carries the
# old meter's last energy and the new one's first; a swap stops or bypasses the load, it
# never speeds it up. So within SWAP_WINDOW_S of a recorded swap, a rise larger than
# SWAP_JUMP_SHARE of that jump and than SWAP_STEP_FACTOR times what the steps around it
# would carry in its time (or their largest step, or the register's resolution) is
# refused as implausible (pue.counter). Each swap near a step is judged on its own jump;
# a step that could carry a jump itself is no measure of the usual; a jump within
# SWAP_STEP_FACTOR register steps (a new meter preset to the old reading) is not judged.
# Settings of the method.
SWAP_WINDOW_S = 86_400.0
SWAP_JUMP_SHARE = 0.5
SWAP_STEP_FACTOR = 10.0
# A register read at time t may show the value it had up to this long before: meters
# refresh their registers about once a second, not in step with the poller. The stuck
# counter rule therefore weighs its power evidence over a run of equal readings less this
# much at its end, so one register image read twice (polls every second do that) is not
# a stall. A setting of the method, not a measured number.
REGISTER_REFRESH_S = 2.0
# A power value bit-identical over this many consecutive polls, while other meters of the
# site move, is stuck (profile or device setting `stuck_power_polls`). A setting, not a
# measured number: a float register of a real load rarely repeats itself twice.
DEFAULT_STUCK_POWER_POLLS = 30


@dataclass(frozen=True, order=True)
class Flag:
    """One flagged span of one meter: [start, end] are reading times."""

    start: float
    end: float
    kind: str

    def overlaps(self, start: float, end: float) -> bool:
        return self.start < end and self.end > start

    @property
    def span(self) -> Span:
        return (self.start, self.end)


@dataclass(frozen=True)
class MeterQuality:
    """A meter's flags over a period (every flag whose span overlaps it), and their counts.

    A flag is counted once per period even when it spans several parts of it.
    """

    flags: tuple[Flag, ...] = ()

    def count(self, *kinds: str) -> int:
        return sum(1 for f in self.flags if f.kind in kinds)

    @property
    def resets(self) -> int:
        return self.count(RESET)

    @property
    def step_backs(self) -> int:
        return self.count(STEP_BACK)

    @property
    def wraps(self) -> int:
        return self.count(WRAP)

    @property
    def stuck(self) -> int:
        return self.count(STUCK_COUNTER, STUCK_POWER)

    @property
    def implausible(self) -> int:
        return self.count(IMPLAUSIBLE_COUNTER, IMPLAUSIBLE_POWER)

    def counts(self) -> dict[str, int]:
        """Flags by kind, every kind listed."""
        return {kind: self.count(kind) for kind in KINDS}

    def ending_in(self, start: float, end: float) -> dict[str, int]:
        """Flags whose span ends in (start, end], by COUNTED group (every group listed):
        what a block over [start, end) stores, so counts of adjacent blocks add up."""
        ending = [f.kind for f in self.flags if start < f.end <= end]
        return {name: sum(1 for k in ending if k in kinds) for name, kinds in COUNTED.items()}

    def unmeasured(self) -> list[Span]:
        """The spans the meter's rules refused, merged."""
        return merge_spans([f.span for f in self.flags if f.kind in UNMEASURED])

    def within(self, start: float, end: float) -> MeterQuality:
        return MeterQuality(tuple(f for f in self.flags if f.overlaps(start, end)))

    @staticmethod
    def merge(qualities: list[MeterQuality]) -> MeterQuality:
        """The flags of several parts of a period, each once."""
        return MeterQuality(tuple(sorted({f for q in qualities for f in q.flags})))


def merge_runs(flags: list[Flag]) -> list[Flag]:
    """Overlapping or touching flags of the same kind joined into one."""
    out: list[Flag] = []
    for kind in sorted({f.kind for f in flags}):
        spans = merge_spans([f.span for f in flags if f.kind == kind])
        out.extend(Flag(a, b, kind) for a, b in spans)
    return sorted(out)


def equal_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) reading index of each run of at least two bit-identical values."""
    if values.size < 2:
        return []
    same = (values[1:] - values[:-1]) == 0  # np.diff(values) == 0, without its overhead
    if not same.any():  # the usual case: a moving meter
        return []
    flags = np.concatenate(([0], same.astype(np.int8), [0]))
    edges = flags[1:] - flags[:-1]
    first, stop = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(first.tolist(), stop.tolist()))


def moving_times(series: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Sorted times at which one of ``series`` (the site's other meters: times, values)
    read a value different from its previous reading: the evidence, for the stuck-power
    rule, that the site was not frozen as a whole."""
    times = [np.asarray(ts, dtype=float)[1:][np.diff(np.asarray(v, dtype=float)) != 0]
             for ts, v in series if len(ts) > 1]
    return np.sort(np.concatenate(times)) if times else np.empty(0)
