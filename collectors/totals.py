"""Device totals derived from their parts (a profile's ``totals``: UPS output lines, PDU
inlets, a daisy chain's units), and what a poller remembers of those parts: pure, no
I/O, no clock (times are the polls' own)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from pue_monitor.config.profiles import Total
from pue_monitor.store.model import Quality, Reading

# A part missing from the device's answers this long (a unit removed, a chain strapped
# anew) is forgotten: the total then sums the parts that answer. Until then it is not
# available, a gap rather than a sum too small, whose energy would come back as one
# step's when the part does.
FORGET_PART_S = 86_400.0

# A part that keeps going missing and coming back is told at most this often.
TELL_AGAIN_S = 3600.0

# What a PartsSeen tells its poller: a part went missing, answered again, was forgotten
# or joined (one the poller had not seen).
PART_MISSING, PART_BACK = "missing", "back"
PART_FORGOTTEN, PART_JOINED = "forgotten", "joined"


# A part a device had before this start, as the store holds it: (metric, labels).
PartBefore = tuple[str, tuple]


@dataclass
class _Part:
    # Readings with these labels (an index the profile ignores may repeat them); 0 for a
    # part known from the store only (which holds one series per labels): at least one.
    count: int
    away: bool = False
    away_since: float = math.inf  # the first poll that missed it, this time away
    told: float = -math.inf  # when its going missing was last told
    back_told: bool = False  # its coming back is to be told (its going was)


@dataclass
class PartsSeen:
    """The parts each of a device's totals has shown, kept by its poller across polls,
    and what changed, for the poller to tell (``events``: (kind, total's metric, labels
    of the parts); taken by whoever reads them)."""

    parts: dict[tuple, dict[tuple, _Part]] = field(default_factory=dict)
    events: list[tuple[str, str, list[tuple]]] = field(default_factory=list)

    @classmethod
    def since_before(cls, totals: list[Total] | tuple, before: Iterable[PartBefore]
                     ) -> PartsSeen:
        """Seeded with the parts the device had before this start (the store's newest
        readings, collectors.service.parts_before): a unit away when the monitor starts
        is then missing, not a part that joins later with its whole register."""
        seen = cls()
        before = list(before)
        for total in totals:
            known = {labels: _Part(0) for _, labels in parts_of((total,), before)}
            if known:
                seen.parts[_key(total)] = known
        return seen

    def complete(self, total: Total, parts: list[Reading], ts: float) -> bool:
        """Whether ``parts`` (this poll's) hold every part of ``total`` seen before."""
        now = Counter(r.labels for r in parts)
        key = _key(total)
        known = self.parts.get(key)
        if known is None:
            if now:
                self.parts[key] = {labels: _Part(n) for labels, n in now.items()}
            return True
        whole = True
        changed: dict[str, list[tuple]] = {}
        for labels, part in list(known.items()):
            n = now.get(labels, 0)
            if n >= (part.count or 1):
                if part.away:
                    part.away = False
                    if part.back_told:
                        part.back_told = False
                        changed.setdefault(PART_BACK, []).append(labels)
                if part.count and n > part.count:
                    changed.setdefault(PART_JOINED, []).append(labels)
                part.count = n
            elif part.away and ts - part.away_since >= FORGET_PART_S:
                # Away a day of polls (not of a device that did not answer at all).
                changed.setdefault(PART_FORGOTTEN, []).append(labels)
                if n:
                    part.count, part.away = n, False
                else:
                    del known[labels]
            else:
                whole = False
                if not part.away:
                    part.away, part.away_since = True, ts
                    # A part that comes and goes is told once per TELL_AGAIN_S, not at
                    # every flap (the total is not available each time all the same).
                    if ts - part.told >= TELL_AGAIN_S:
                        part.told, part.back_told = ts, True
                        changed.setdefault(PART_MISSING, []).append(labels)
        for labels, n in now.items():
            if labels not in known:
                known[labels] = _Part(n)
                changed.setdefault(PART_JOINED, []).append(labels)
        self.events.extend((kind, total.metric, labels) for kind, labels in changed.items())
        return whole


def parts_of(totals: list[Total] | tuple, before: Iterable[PartBefore]) -> list[PartBefore]:
    """Of ``before``, the parts of one of ``totals``."""
    wanted = [(t.metric, t.sum_over, {t.sum_over, *t.also}) for t in totals]
    return [p for p in before
            if any(p[0] == metric and _is_part(p[1], over, allowed)
                   for metric, over, allowed in wanted)]


def _key(total: Total) -> tuple:
    return (total.metric, total.sum_over, tuple(total.also))


def _is_part(labels: tuple, sum_over: str, allowed: set[str]) -> bool:
    """Whether a reading's labels make it a part of a total summed over ``sum_over``."""
    return any(k == sum_over for k, _ in labels) and all(k in allowed for k, _ in labels)


def add_totals(totals: list[Total] | tuple, readings: list[Reading], device: str,
               ts: float, parts_seen: PartsSeen | None = None,
               absent: Iterable[tuple[str, tuple]] = ()) -> list[Reading]:
    """``readings`` with the totals derive_totals makes. A total the device read as not
    available (it has no such value: a card answering "N/A") gives way to the sum."""
    derived = derive_totals(totals, readings, device, ts, parts_seen, absent)
    if not derived:
        return readings
    made = {r.metric for r in derived}
    return [r for r in readings if not (r.metric in made and not r.labels
                                        and r.quality == Quality.NOT_AVAILABLE)] + derived


def derive_totals(totals: list[Total] | tuple, readings: list[Reading], device: str,
                  ts: float, parts_seen: PartsSeen | None = None,
                  absent: Iterable[tuple[str, tuple]] = ()) -> list[Reading]:
    """Device totals summed over a label (e.g. UPS output lines), unless already read
    (as a value, or as an answer that could not be decoded; not when the device said it
    is not available: then its lines are what it has).

    The lines the device has are summed; if any of them is not a good reading, or is
    missing, the total is not available rather than too small. Missing: listed in
    ``absent`` ((metric, labels) of points asked and not answered, as a refused Modbus
    block's), or seen in an earlier poll and not in this one (``parts_seen``, kept by
    the caller across polls: a table row gone, a daisy-chained unit off the chain). A
    total of fewer parts would fall, and on the part's return rise by that part's whole
    energy register in one step. With no part at all there is no total.
    """
    out = []
    gone = set(absent)
    for total in totals:
        if any(r.metric == total.metric and not r.labels
               and r.quality != Quality.NOT_AVAILABLE for r in readings):
            continue
        sum_over, allowed = total.sum_over, {total.sum_over, *total.also}
        parts = [r for r in readings
                 if r.metric == total.metric and _is_part(r.labels, sum_over, allowed)]
        whole = not any(metric == total.metric and _is_part(labels, sum_over, allowed)
                        for metric, labels in gone)
        if parts_seen is not None:
            whole = parts_seen.complete(total, parts, ts) and whole
        if not parts:
            continue
        if whole and all(r.quality == Quality.OK and r.value is not None
                         and math.isfinite(r.value) for r in parts):
            out.append(Reading(ts, device, total.metric, sum(r.value for r in parts)))  # type: ignore[misc]
        else:
            out.append(Reading(ts, device, total.metric, None, (), Quality.NOT_AVAILABLE))
    return out


def labels_text(labels: list[tuple]) -> str:
    """Parts' labels for a log line: ``inlet=1 unit=1, inlet=1 unit=2``."""
    return ", ".join(" ".join(f"{k}={v}" for k, v in part) for part in labels)
