"""Outdoor air temperature of Bắc Ninh by season and hour (pure: time is an argument)."""

from __future__ import annotations

import calendar
import math
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

# Monthly mean air temperature, °C, January..December. Bắc Ninh has no long public
# station record of its own; these are approximately the Hà Nội (Láng) climatology,
# 30 km away on the same Red River delta plain, which is close enough for cooling load.
MONTHLY_MEAN_C = (16.5, 17.5, 20.0, 24.0, 27.5, 29.0, 29.2, 28.6, 27.5, 25.0, 21.5, 18.0)

DIURNAL_AMPLITUDE_C = 3.5  # half the typical day-night range in the delta
DIURNAL_PEAK_HOUR = 14.0  # afternoon maximum, local solar-ish time
DEFAULT_TZ = "Asia/Ho_Chi_Minh"


@lru_cache(maxsize=16)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def local_time(t: float, tz: str = DEFAULT_TZ) -> datetime:
    """Unix seconds -> aware local datetime."""
    return datetime.fromtimestamp(t, _zone(tz))


def local_hour(t: float, tz: str = DEFAULT_TZ) -> float:
    """Fractional hour of the local day, 0 <= h < 24."""
    now = local_time(t, tz)
    return now.hour + now.minute / 60.0 + (now.second + now.microsecond / 1e6) / 3600.0


def _month_position(now: datetime) -> float:
    """Months since mid-January (0.0 = mid-Jan, 1.0 = mid-Feb, ...), fractional and periodic."""
    days = calendar.monthrange(now.year, now.month)[1]
    day_fraction = (now.day - 1 + (now.hour + now.minute / 60.0) / 24.0) / days
    return (now.month - 1) + day_fraction - 0.5


def seasonal_mean_c(t: float, tz: str = DEFAULT_TZ) -> float:
    """Daily mean temperature, interpolated between mid-month means.

    A periodic Catmull-Rom spline through the twelve monthly means: smooth (no kinks at
    mid-month) and it passes exactly through each monthly value.
    """
    pos = _month_position(local_time(t, tz)) % 12.0
    i = int(math.floor(pos))
    u = pos - i
    p0, p1, p2, p3 = (MONTHLY_MEAN_C[(i + k) % 12] for k in (-1, 0, 1, 2))
    return 0.5 * (2 * p1 + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u * u
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * u ** 3)


def diurnal_offset_c(hour: float) -> float:
    """Day-night swing around the daily mean, highest at 14:00 and lowest at 02:00."""
    return DIURNAL_AMPLITUDE_C * math.cos(2 * math.pi * (hour - DIURNAL_PEAK_HOUR) / 24.0)


def outdoor_temperature_c(t: float, tz: str = DEFAULT_TZ) -> float:
    """Outdoor dry-bulb temperature at Bắc Ninh, °C."""
    return seasonal_mean_c(t, tz) + diurnal_offset_c(local_hour(t, tz))


def monthly_mean_c(month: int) -> float:
    """The climatological mean of a month (1..12)."""
    return MONTHLY_MEAN_C[month - 1]
