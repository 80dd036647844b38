"""Per-device fault knobs, set and cleared at runtime (from the control endpoint or tests).

Kinds:
  down           the endpoint stops answering (SNMP drops packets; Modbus closes/refuses)
  slow           answers arrive after `seconds` (default 5 s)
  stuck          the served image freezes at its current raw values
  counter_reset  the energy register restarts at 0 once, then keeps integrating
  garbage        SNMP answers with wrong value types; Modbus answers exception code 4

`seconds` is the answer delay for `slow`, and for the other kinds how long the fault
lasts (omitted: until cleared). `duration` sets the lifetime explicitly for any kind.
Faults are only touched from the event loop's thread; the HTTP thread hands over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

FAULT_KINDS = ("down", "slow", "stuck", "counter_reset", "garbage")
DEFAULT_SLOW_S = 5.0
MAX_SECONDS = 86_400.0


@dataclass
class Fault:
    kind: str
    delay_s: float = 0.0  # slow only
    until: float | None = None  # clock time at which it clears itself

    def as_dict(self) -> dict:
        out: dict = {"kind": self.kind}
        if self.kind == "slow":
            out["delay_s"] = self.delay_s
        if self.until is not None:
            out["until"] = self.until
        return out


def _check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")


def _seconds(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"{name} must be within 0..{MAX_SECONDS:g}, got {value!r}")
    return float(value)


class DeviceFaults:
    """The faults active on one device."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._faults: dict[str, Fault] = {}
        self._reset_pending = False

    def set(self, kind: str, seconds: object = None, duration: object = None) -> Fault:
        """Switch a fault on (replacing one of the same kind).

        :raises ValueError: unknown kind or a bad number.
        """
        _check_kind(kind)
        secs, life = _seconds(seconds, "seconds"), _seconds(duration, "duration")
        if kind == "slow":
            fault = Fault(kind, delay_s=DEFAULT_SLOW_S if secs is None else secs)
        else:
            fault = Fault(kind)
            life = secs if life is None else life
        if life is not None:
            fault.until = self._clock() + life
        if kind == "counter_reset":
            self._reset_pending = True  # one-shot: consumed by the next tick
        self._faults[kind] = fault
        return fault

    def clear(self, kind: str | None = None) -> None:
        """Clear one kind, or everything.

        :raises ValueError: unknown kind (a misspelt one would leave the fault on unnoticed).
        """
        if kind is None:
            self._faults.clear()
            self._reset_pending = False
        else:
            _check_kind(kind)
            self._faults.pop(kind, None)
            if kind == "counter_reset":
                self._reset_pending = False

    def _expire(self) -> None:
        now = self._clock()
        for kind in [k for k, f in self._faults.items() if f.until is not None and now >= f.until]:
            del self._faults[kind]

    def active(self, kind: str) -> bool:
        self._expire()
        return kind in self._faults

    def delay(self) -> float:
        """Seconds to hold back an answer (0 unless slow)."""
        self._expire()
        fault = self._faults.get("slow")
        return fault.delay_s if fault else 0.0

    def take_counter_reset(self) -> bool:
        """True once after a counter_reset was requested."""
        pending, self._reset_pending = self._reset_pending, False
        if pending and self._faults.get("counter_reset", Fault("")).until is None:
            self._faults.pop("counter_reset", None)  # done; nothing left to show
        return pending

    def snapshot(self) -> dict[str, dict]:
        self._expire()
        return {kind: f.as_dict() for kind, f in self._faults.items()}
