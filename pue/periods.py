"""The 15-minute block, named live windows and report periods, resolved against a
``now`` that the caller passes in."""

from __future__ import annotations

import calendar
import math
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

# The interval-energy block: every stored block, roll-up and block-aligned period edge is
# this long. Defined here once; store/, figures/ and exchange/ import it.
BLOCK_S = 15 * 60

# The longest report period by default, in calendar years: a longer one would keep a
# web worker busy for minutes (27 years took 26 s). A configuration may change it.
DEFAULT_MAX_REPORT_YEARS = 10
# Dates a report period may name: stored timestamps start at the Unix epoch, and the
# period arithmetic (the day or year after) stays inside Python's datetime range.
FIRST_REPORT_YEAR = 1970
LAST_REPORT_YEAR = 9998

# Trailing windows, in seconds.
TRAILING = {"15m": 15 * 60, "1h": 3600, "24h": 24 * 3600, "30d": 30 * 86400}
LIVE_WINDOWS = ("15m", "1h", "24h", "today", "30d", "12m")


def window_bounds(window: str, now: float, tz: str) -> tuple[float, float]:
    """(start, end) of a live window ending at ``now``; ``today`` starts at local midnight."""
    if window in TRAILING:
        return now - TRAILING[window], now
    if window == "12m":
        return parse_period("12m", tz, now)
    if window == "today":
        local = datetime.fromtimestamp(now, ZoneInfo(tz))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp(), now
    raise ValueError(f"unknown window {window!r} (known: {', '.join(LIVE_WINDOWS)})")


# ---- report periods ---------------------------------------------------------------------


class PeriodError(ValueError):
    """A report period that cannot be used, with the message in English (str) and
    Vietnamese (``vi``)."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.en, self.vi = en, vi

    def text(self, lang: str) -> str:
        return self.vi if lang == "vi" else self.en


def _local(tz: str, year: int, month: int = 1, day: int = 1) -> float:
    return datetime(year, month, day, tzinfo=ZoneInfo(tz)).timestamp()


def _next_month(year: int, month: int, months: int = 1) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _parse_point(text: str, tz: str) -> float:
    """A date (local midnight) or an ISO time (with offset, else local)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"not a date or ISO time: {text!r}",
                          f"không phải ngày hoặc thời điểm ISO: {text!r}") from None
    _check_year(moment.year, text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.timestamp()


def _check_year(year: int, text: str) -> None:
    if not FIRST_REPORT_YEAR <= year <= LAST_REPORT_YEAR:
        raise PeriodError(
            f"{text!r} is outside the years a report can cover "
            f"({FIRST_REPORT_YEAR}..{LAST_REPORT_YEAR})",
            f"{text!r} nằm ngoài các năm báo cáo có thể bao gồm "
            f"({FIRST_REPORT_YEAR}..{LAST_REPORT_YEAR})")


def parse_period(text: str, tz: str, at: float,
                 max_years: int = DEFAULT_MAX_REPORT_YEARS) -> tuple[float, float]:
    """(start, end), half-open, for a report period in the site's time zone.

    ``2025`` (calendar year), ``2025-Q1``, ``2025-03``, ``2025-03-14``, ``12m`` (the
    trailing 12 months ending at ``at``, rounded down to a 15-minute block) or
    ``START..END`` (dates or ISO times), at most ``max_years`` calendar years long.

    :raises PeriodError: (a ValueError) with the message in English and Vietnamese.
    """
    try:
        start, end = _parse_period(text.strip(), tz, at)
        limit = _years_after(start, tz, max_years)
    except PeriodError:
        raise
    except (ValueError, OverflowError, OSError) as exc:
        # dates at the edge of what datetime can hold; never shown as Python's words
        raise PeriodError(f"period {text!r} cannot be used: {exc}",
                          f"không dùng được kỳ {text!r}: {exc}") from None
    if end > limit:
        raise PeriodError(
            f"period {text!r} is longer than {max_years} years: ask for a shorter one",
            f"kỳ {text!r} dài hơn {max_years} năm: hãy chọn kỳ ngắn hơn")
    return start, end


def _years_after(start: float, tz: str, years: int) -> float:
    """The same local time ``years`` calendar years after ``start`` (29 Feb -> 28 Feb)."""
    local = datetime.fromtimestamp(start, ZoneInfo(tz))
    year = local.year + years
    if year > LAST_REPORT_YEAR + 1:
        return math.inf
    day = min(local.day, calendar.monthrange(year, local.month)[1])
    return local.replace(year=year, day=day).timestamp()


def _parse_period(text: str, tz: str, at: float) -> tuple[float, float]:
    if text == "12m":
        end = math.floor(at / BLOCK_S) * BLOCK_S
        local = datetime.fromtimestamp(end, ZoneInfo(tz))
        year, month = _next_month(local.year, local.month, -12)
        day = min(local.day, calendar.monthrange(year, month)[1])
        return local.replace(year=year, month=month, day=day).timestamp(), end
    if ".." in text:
        left, _, right = text.partition("..")
        start, end = _parse_point(left, tz), _parse_point(right, tz)
        if end <= start:
            raise PeriodError(f"empty period {text!r}: the end is not after the start",
                              f"kỳ {text!r} rỗng: ngày kết thúc không sau ngày bắt đầu")
        return start, end
    if m := re.fullmatch(r"(\d{4})", text):
        year = int(m[1])
        _check_year(year, text)
        return _local(tz, year), _local(tz, year + 1)
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", text, re.I):
        year, first = int(m[1]), 3 * (int(m[2]) - 1) + 1
        _check_year(year, text)
        return _local(tz, year, first), _local(tz, *_next_month(year, first, 3))
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        year, month = int(m[1]), int(m[2])
        _check_year(year, text)
        if not 1 <= month <= 12:
            raise PeriodError(f"no month {month} in {text!r}",
                              f"không có tháng {month} trong {text!r}")
        return _local(tz, year, month), _local(tz, *_next_month(year, month))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        start = _parse_point(text, tz)
        day = datetime.fromtimestamp(start, ZoneInfo(tz)) + timedelta(days=1)
        return start, day.replace(hour=0, minute=0).timestamp()
    raise PeriodError(f"unknown period {text!r}: use 2025, 2025-Q1, 2025-03, 2025-03-14, 12m "
                      "or START..END",
                      f"kỳ không hợp lệ {text!r}: dùng 2025, 2025-Q1, 2025-03, 2025-03-14, "
                      "12m hoặc BẮT_ĐẦU..KẾT_THÚC")


def months_between(start: float, end: float, tz: str) -> list[tuple[int, int, float, float]]:
    """(year, month, start, end) of each calendar month overlapping [start, end), clipped."""
    out = []
    local = datetime.fromtimestamp(start, ZoneInfo(tz))
    year, month = local.year, local.month
    while True:
        m_start = _local(tz, year, month)
        if m_start >= end:
            return out
        m_end = _local(tz, *_next_month(year, month))
        out.append((year, month, max(m_start, start), min(m_end, end)))
        year, month = _next_month(year, month)
