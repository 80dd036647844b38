"""Log-in failures counted in memory, per client address and per user name.

After MAX_FAILURES failures, each less than LOCKOUT_S after the one before, a key waits
until LOCKOUT_S after its last failure; a success, or LOCKOUT_S without a failure, clears
it. At most MAX_KEYS keys are kept: the least recently touched go
first, so a flood of names cannot grow memory (it can only forget old counts early).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_FAILURES = 5
LOCKOUT_S = 300.0
MAX_KEYS = 10_000


class FailureLimiter:
    def __init__(self, max_failures: int = MAX_FAILURES, lockout_s: float = LOCKOUT_S,
                 max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.lockout_s, self.max_keys = max_failures, lockout_s, max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, tuple[int, float]] = OrderedDict()  # failures, last

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        with self._lock:
            entry = self._current(key)
            if entry is None or entry[0] < self.max_failures:
                return 0.0
            return max(0.0, entry[1] + self.lockout_s - self._clock())

    def failed(self, key: str) -> None:
        with self._lock:
            entry = self._current(key)
            self._keys[key] = ((entry[0] if entry else 0) + 1, self._clock())
            self._keys.move_to_end(key)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)

    def _current(self, key: str) -> tuple[int, float] | None:
        entry = self._keys.get(key)
        if entry is not None and self._clock() - entry[1] >= self.lockout_s:
            del self._keys[key]  # quiet for a whole lockout: forgotten
            return None
        return entry
