"""Energy of one meter over a period: from its cumulative counter or by integrating power.

Times are unix seconds (float), energies kWh, power W. A meter *covers* the spans of
time for which its energy is measured; the PUE step only compares spans covered by
every meter on both sides of the ratio. The counter (pue/counter.py) and power
(pue/power.py) series apply the data-quality rules; here a meter chooses between them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from pue_monitor.pue.counter import CounterSeries
from pue_monitor.pue.power import DEFAULT_GAP_POLLS, PowerSeries
from pue_monitor.pue.quality import STUCK_COUNTER, MeterQuality
from pue_monitor.pue.spans import (
    Span,
    clean_series,
    clip_spans,
    intersect_spans,
    merge_spans,
    span_seconds,
    subtract_spans,
)

__all__ = ["DEFAULT_GAP_POLLS", "RESOLUTION_SHARE", "CounterSeries", "MeterEnergy",
           "PowerSeries", "Span", "clean_series", "difference_share", "intersect_spans",
           "merge_spans", "span_seconds", "subtract_spans"]

# Largest error share a counter's register step may cause over a window (see for_window).
RESOLUTION_SHARE = 0.002


def difference_share(counter_kwh: float, power_kwh: float) -> float:
    """|power - counter| / counter; a counter at 0 against power that is not 0 is 100 %."""
    if counter_kwh > 0:
        return abs(power_kwh - counter_kwh) / counter_kwh
    return 1.0 if power_kwh != 0 else 0.0


@dataclass(frozen=True)
class MeterEnergy:
    """A meter's energy source: its counter when it has one, else its power.

    Where the counter's reset rule refused a step and the meter's own power covers it,
    the power measures that step.
    """

    counter: CounterSeries | None
    power: PowerSeries | None

    @property
    def method(self) -> str:
        if self.counter is not None and self.counter.ts.size >= 2:
            return "counter"
        if self.power is not None and self.power.ts.size >= 2:
            return "power_integration"
        return "none"

    @cached_property
    def _fill(self) -> list[Span]:
        """Reset steps the meter's own power measures."""
        if self.counter is None or self.power is None or self.power.ts.size < 2:
            return []
        resets = self.counter.reset_spans
        if not resets:
            return []
        return intersect_spans(resets, self.power.spans(resets[0][0], resets[-1][1]))

    def quality(self, start: float, end: float) -> MeterQuality:
        """The flags of the counter and of the power whose span overlaps [start, end]."""
        flags = [f for series in (self.counter, self.power) if series is not None
                 for f in series.flags if f.overlaps(start, end)]
        return MeterQuality(tuple(sorted(flags)))

    def for_window(self, start: float, end: float) -> MeterEnergy:
        """The source to use over [start, end]: the counter, unless its step is too coarse
        over the counter's own spans there (see for_spans)."""
        if self.counter is None:
            return self
        return self.for_spans(self.counter.spans(start, end), start, end)

    def for_spans(self, spans: list[Span], start: float, end: float) -> MeterEnergy:
        """The source to use when the energy counts over ``spans`` (inside [start, end]).

        A difference of two counter readings is off by up to one register step at each
        end of each span. Over short spans a coarse register (0.1 kWh on a 3 kW rack PDU)
        cannot resolve the energy to RESOLUTION_SHARE; there, if the meter also reports
        power, integrated power is the measurement, over the spans the power covers:
        where it has a gap the meter has a gap (the same-time rule leaves it out of both
        sides), never the coarse counter's guess. Where the counter was stuck the power
        measures nothing either: a frozen meter serves its power from the same frozen
        image (a number we are not sure of is a gap). Over a day or longer any real
        register is fine and the counter always wins.
        """
        if self.method != "counter" or self.power is None or self.power.ts.size < 2:
            return self
        assert self.counter is not None
        step = 2 * self.counter.resolution_kwh * max(len(spans), 1)
        if step <= RESOLUTION_SHARE * abs(self.counter.energy(spans)):
            return self
        power_spans = intersect_spans(spans, self.power.spans(start, end))
        if step <= RESOLUTION_SHARE * abs(self.power.energy(power_spans)):
            return self  # the counter just stalled: trust it, do not hide a real stop
        stuck = [f for f in self.counter.flags if f.kind == STUCK_COUNTER]
        if not stuck:
            return MeterEnergy(None, self.power)
        return MeterEnergy(None, replace(self.power, flags=tuple(sorted(
            {*self.power.flags, *stuck}))))

    def spans(self, start: float, end: float) -> list[Span]:
        if self.method == "counter":
            assert self.counter is not None
            own = self.counter.spans(start, end)
            fill = clip_spans(self._fill, start, end)
            return merge_spans(own + fill) if fill else own
        if self.method == "power_integration":
            assert self.power is not None
            return self.power.spans(start, end)
        return []

    def energy(self, spans: list[Span]) -> float:
        if not spans:
            return 0.0
        if self.method == "counter":
            assert self.counter is not None
            if not self._fill:
                return self.counter.energy(spans)
            spans = merge_spans(spans)
            a, b = spans[0][0], spans[-1][1]
            assert self.power is not None
            return (self.counter.energy(intersect_spans(spans, self.counter.spans(a, b)))
                    + self.power.energy(intersect_spans(spans, clip_spans(self._fill, a, b))))
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
        """Relative difference between counter and integrated power where both cover
        (see difference_share)."""
        check = self.cross_check(start, end)
        return None if check is None else difference_share(*check)
