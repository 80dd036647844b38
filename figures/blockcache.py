"""Results computed from closed 15-minute blocks, kept until the blocks they read change.

A figure over closed blocks changes only when blocks are written. The roll-up closing the
next block moves the last block boundary and the roll-up's frontier (periods.
rolled_up_until), which callers put in the key, so a new block is a new entry at once.
Blocks recomputed in place (an import, late data reaching the central, a settings change)
move neither, and nothing cheap in the store says they changed: an entry is also dropped
after ``max_age_s``, so those show within that time (or at once, after ``clear``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# Blocks recomputed in place show in cached figures within this many seconds.
MAX_AGE_S = 60.0
# Entries kept at most; beyond it the cache starts afresh (a bound, not an LRU).
ENTRIES = 512


class BlockCache:
    """Values keyed by what they depend on (the block boundaries they end on included),
    each kept at most ``max_age_s`` seconds of ``clock`` (a monotonic one: the figures'
    own clock may stand still, as in tests and benchmarks). Safe to share between
    threads; a value is computed outside the lock, so a slow one holds up no other."""

    def __init__(self, max_age_s: float = MAX_AGE_S, entries: int = ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s, self.entries, self._clock = max_age_s, entries, clock
        self._lock = threading.Lock()
        self._kept: dict[tuple, tuple[float, Any]] = {}

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        now = self._clock()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and 0 <= now - kept[0] < self.max_age_s:
                return kept[1]
        value = make()
        with self._lock:
            if len(self._kept) >= self.entries:
                self._kept.clear()
            self._kept[key] = (now, value)
        return value

    def clear(self) -> None:
        """Forget everything (blocks were recomputed, the configuration changed)."""
        with self._lock:
            self._kept.clear()


__all__ = ["MAX_AGE_S", "BlockCache"]
