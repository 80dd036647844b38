"""Progress of long work on a terminal: "report: 3/10 sites" on standard error.

A Progress is the callback that long work takes (``progress(done, total)``): the store's
day-summary rebuild, the import's block recomputation, `report --site all`. It writes
only when its stream is a terminal, at most a few updates a second plus the last one,
so the layers doing the work (store/, figures/, exchange/) never touch a terminal and a
log or a pipe gets no progress lines at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

# At most this many updates a second (the last one is always written).
UPDATES_PER_S = 4


class Progress:
    """``Progress("report", "sites")(3, 10)`` shows "report: 3/10 sites"."""

    def __init__(self, label: str, unit: str, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.unit, self.clock = label, unit, clock
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self._last: float | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        last = done >= total
        if not last and self._last is not None and now - self._last < 1 / UPDATES_PER_S:
            return
        self._last = now
        # \r: each update overwrites the previous one; the last one ends the line.
        self.stream.write(f"\r{self.label}: {done}/{total} {self.unit}"
                          + ("\n" if last else ""))
        self.stream.flush()
