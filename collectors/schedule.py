"""When each device is polled: a stable phase within its interval, slots on the monotonic
clock, and what counts as a late poll.

Polling every device at the same instant of its interval sends thousands of requests at
once and the answers overflow the socket's receive buffer. Each device instead gets its
own phase, derived from its id by a cryptographic hash (not Python's hash(),
which is salted per process), so a restart keeps every device's slot. Readings still carry
the wall-clock time they were read at; energy is integrated from those, so phases do not
change PUE.
"""

from __future__ import annotations

import hashlib
import math

# A poll that starts more than this after its slot is counted late (the event loop was
# busy, or the in-flight limit held it back). A fraction of the interval, capped, so a
# 1 s interval is not judged by the yardstick of a 5-minute one.
LATE_TOLERANCE_S = 1.0
LATE_TOLERANCE_SHARE = 0.1
# Phases are quantized to this many steps per interval: plenty to spread thousands of
# devices, and the value is exact in binary floating point for any interval.
_PHASE_STEPS = 2 ** 32


def phase_of(device_id: str, interval_s: float) -> float:
    """Seconds into each interval at which ``device_id`` is polled: in [0, interval_s)."""
    digest = hashlib.blake2b(device_id.encode("utf-8"), digest_size=8).digest()
    step = int.from_bytes(digest[:4], "big")
    return interval_s * step / _PHASE_STEPS


def slot_at_or_after(t: float, interval_s: float, phase_s: float) -> float:
    """The first slot (k * interval + phase) not before ``t``."""
    k = math.ceil((t - phase_s) / interval_s - 1e-9)
    return k * interval_s + phase_s


def late_tolerance(interval_s: float) -> float:
    """How late a poll may start and still be on time."""
    return min(LATE_TOLERANCE_S, LATE_TOLERANCE_SHARE * interval_s)


class Schedule:
    """The slots of one device on a monotonic clock, with backoff when it keeps failing.

    ``after_poll`` is told when the poll of a slot started and how long the device should
    rest (its interval, or longer when backing off); it returns the next slot and counts
    the slots that passed unpolled because the poll ran past them.
    """

    def __init__(self, device_id: str, interval_s: float, spread: bool = True) -> None:
        self.interval_s = interval_s
        self.phase_s = phase_of(device_id, interval_s) if spread else 0.0
        self.tolerance_s = late_tolerance(interval_s)

    def first(self, now: float) -> float:
        """The first slot after ``now`` (a strictly later one: never poll at start-up)."""
        slot = slot_at_or_after(now, self.interval_s, self.phase_s)
        return slot if slot > now else slot + self.interval_s

    def is_late(self, slot: float, started: float) -> bool:
        return started - slot > self.tolerance_s

    def next(self, slot: float, now: float, rest_s: float) -> tuple[float, int]:
        """(next slot, slots skipped): the first slot at least ``rest_s`` after ``slot``
        unless ``now`` is past it by more than the tolerance; skipped counts the slots before it, due within the
        normal interval, that ``now`` had already passed (the poll overran them)."""
        wanted = slot_at_or_after(slot + rest_s, self.interval_s, self.phase_s)
        if wanted >= now - self.tolerance_s:  # still (nearly) ahead: keep it
            return wanted, 0
        following = slot_at_or_after(now, self.interval_s, self.phase_s)
        if following <= now:
            following += self.interval_s
        skipped = round((following - wanted) / self.interval_s)
        return following, skipped
