"""The process's limit of open files against what its devices need.

The fast SNMP engine gives every device its own UDP socket (and the client a second
handle on it, to look at each answer first: see collectors.snmp_gufo), so a few thousand
devices need more descriptors than the usual soft limit of 1,024. At start the soft limit
is raised to the hard one (no privilege needed); if even that is too low for the devices
configured, it is said at once, naming the limit, instead of polls failing one by one
with "Too many open files".
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# Descriptors per device on the fast engine: its session's socket and the peek handle.
FDS_PER_FAST_DEVICE = 2
# The rest of the process: the store, the web server and its clients, exporters, logs.
FDS_BASE = 256

Limits = tuple[int, int]


def fds_needed(fast_devices: int, other_sockets: int) -> int:
    """Descriptors the collection may hold open at once: the fast SNMP devices' sockets,
    the others (shared SNMP socket, v3 engines, Modbus connections), and the base."""
    return FDS_PER_FAST_DEVICE * fast_devices + other_sockets + FDS_BASE


def raise_fd_limit(needed: int,
                   get: Callable[[], Limits] | None = None,
                   set_: Callable[[Limits], None] | None = None) -> tuple[int, str | None]:
    """(the soft limit now, a warning if it is below ``needed``). The soft limit goes up
    to the hard one when it is lower than ``needed``; it is never lowered."""
    if get is None or set_ is None:
        import resource

        def get() -> Limits:
            return resource.getrlimit(resource.RLIMIT_NOFILE)

        def set_(limits: Limits) -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    soft, hard = get()
    unlimited = hard < 0  # RLIM_INFINITY
    if soft >= 0 and soft < needed:
        target = needed if unlimited else hard
        try:
            set_((target, hard))
            soft = target
        except (OSError, ValueError) as exc:
            return soft, (f"open-file limit: {needed} descriptors needed for the devices "
                          f"configured, the soft limit stays {soft} ({exc}); raise it "
                          "(ulimit -n, or LimitNOFILE= in a systemd unit)")
    if 0 <= soft < needed:
        return soft, (f"open-file limit: {needed} descriptors needed for the devices "
                      f"configured, the hard limit is {hard}; polls will fail with 'Too "
                      "many open files': raise it (ulimit -Hn, or LimitNOFILE= in a "
                      "systemd unit)")
    return soft, None
