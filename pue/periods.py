"""Named live windows, resolved against a ``now`` that the caller passes in."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

# Trailing windows, in seconds.
TRAILING = {"15m": 15 * 60, "1h": 3600, "24h": 24 * 3600}
LIVE_WINDOWS = ("15m", "1h", "24h", "today")


def window_bounds(window: str, now: float, tz: str) -> tuple[float, float]:
    """(start, end) of a live window ending at ``now``; ``today`` starts at local midnight."""
    if window in TRAILING:
        return now - TRAILING[window], now
    if window == "today":
        local = datetime.fromtimestamp(now, ZoneInfo(tz))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp(), now
    raise ValueError(f"unknown window {window!r} (known: {', '.join(LIVE_WINDOWS)})")
