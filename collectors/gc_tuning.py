"""The cyclic garbage collector's setting while devices are polled (run_pollers).

Every poll allocates a few hundred short-lived containers (futures, timer handles, the
readings, the result) that reference counting frees; almost none form cycles. With
CPython's default first-generation threshold (700 net allocations) the cyclic collector
ran every few polls, and each pass walked whatever was alive at that moment: the polls in
flight and the results waiting for the store, promoting them to older generations that
later passes walked again. benchmarks/snmp_poll.py measured that as about a fifth of the
whole poll path's CPU (README, "Collection speed"). While polling, the first generation
may grow to GEN0_THRESHOLD objects instead: a pass every few hundred polls, with the
same few thousand live objects to walk, and cyclic garbage still collected (at most that
many objects wait for it, a few MiB).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

GEN0_THRESHOLD = 50_000

_lock = threading.Lock()
_depth = 0  # polling loops running in this process (tests may run several)
_saved: tuple[int, int, int] | None = None


@contextmanager
def polling_gc() -> Iterator[None]:
    """Raise the first generation's threshold while the block runs; the process's own
    setting comes back when the last polling loop of the process ends. A threshold set
    higher already (by the operator, PYTHON* tuning) is kept."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            if _saved[0] and _saved[0] < GEN0_THRESHOLD:  # 0: collection is disabled
                gc.set_threshold(GEN0_THRESHOLD, *_saved[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
