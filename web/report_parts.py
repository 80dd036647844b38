"""The human parts of the printable report (web.report_render): dates and periods as
people write them in each language, the month chart (inline SVG, no script), the
signature block and the navigation bar that printing leaves out.

Times come from the report document as local ISO strings with their offset (the site's
time zone); they are shown on the local clock as written, never re-zoned to UTC.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from html import escape

from pue_monitor.web.format import DASH, number
from pue_monitor.web.i18n import t

ROMAN = ("I", "II", "III", "IV")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text)


def day_text(d: date | datetime) -> str:
    """dd/mm/yyyy, as both languages write a date here."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def clock_text(text: str | None) -> str:
    """'2026-11-25T10:00:00+07:00' -> '10:00 25/11/2026' (the local clock as written;
    seconds only when there are some: '10:01:40 01/03/2026')."""
    if not text:
        return DASH
    moment = _local(text)
    seconds = f":{moment.second:02d}" if moment.second else ""
    return f"{moment.hour:02d}:{moment.minute:02d}{seconds} {day_text(moment)}"


def zone_text(text: str | None) -> str:
    """'UTC+07:00' from an ISO time's offset."""
    if not text:
        return ""
    offset = _local(text).strftime("%z") or "+0000"
    return f"UTC{offset[:3]}:{offset[3:]}"


def span_text(start: str, end: str) -> str:
    """'01/01/2026 – 31/12/2026' for whole days (the end is exclusive: the day before it),
    else the clock times."""
    a, b = _local(start), _local(end)
    if (a.hour, a.minute, a.second) == (b.hour, b.minute, b.second) == (0, 0, 0):
        last = b - timedelta(days=1)
        return day_text(a) if last.date() == a.date() else f"{day_text(a)} – {day_text(last)}"
    return f"{clock_text(start)} – {clock_text(end)}"


def period_words(label: str, lang: str) -> str:
    """'Năm 2026', 'Quý I năm 2026', 'Tháng 3 năm 2026' ... ('' for a START..END range,
    which its dates say)."""
    if m := re.fullmatch(r"(\d{4})", label):
        return t("per.year", lang, y=m[1])
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", label, re.I):
        q = int(m[2])
        return t("per.quarter", lang, y=m[1], q=q, roman=ROMAN[q - 1])
    if m := re.fullmatch(r"(\d{4})-(\d{2})", label):
        return t("per.month", lang, y=m[1], m=int(m[2]), name=MONTHS_EN[int(m[2]) - 1])
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", label):
        return t("per.day", lang, d=day_text(date(int(m[1]), int(m[2]), int(m[3]))))
    if label == "12m":
        return t("per.12m", lang)
    return ""


def period_line(period: dict, lang: str) -> str:
    """'Năm 2026 (01/01/2026 – 31/12/2026, UTC+07:00)'."""
    words = period_words(period.get("label") or "", lang)
    if not period.get("start") or not period.get("end"):
        return words
    span = f"{span_text(period['start'], period['end'])}, {zone_text(period['start'])}"
    return f"{words} ({span})" if words else span


# ---- the month chart --------------------------------------------------------------------

W, H, LEFT, BOTTOM, TOP = 640, 220, 44, 26, 16
COLOURS = {"good": "#2e7d32", "bad": "#c62828", "none": "#9e9e9e"}


def month_chart(months: list[dict], threshold: float, lang: str) -> str:
    """Bars of the months' PUE coloured by verdict, the threshold as a dashed line; a
    month without a figure is an empty slot (a gap, not a zero)."""
    values = [m["pue"] for m in months if m.get("pue") is not None]
    if not values:
        return ""
    low = min(1.0, *values)
    high = max(threshold, *values) * 1.04
    plot_h, step = H - BOTTOM - TOP, (W - LEFT - 8) / len(months)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - low) / (high - low))

    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" width="100%" role="img" '
             f'aria-label="{escape(t("rep.months.chart", lang))}" '
             'xmlns="http://www.w3.org/2000/svg" font-size="11" '
             'font-family="DejaVu Sans, Arial, sans-serif">']
    for tick in (low, (low + high) / 2, high):
        parts.append(f'<line x1="{LEFT}" x2="{W - 8}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     'stroke="#ddd"/><text x="{0}" y="{1:.1f}" text-anchor="end" '
                     'fill="#555">{2}</text>'.format(LEFT - 4, y(tick) + 4,
                                                    number(tick, 2, lang)))
    for i, m in enumerate(months):
        x = LEFT + i * step
        label = (m.get("month") or "")[-2:]
        parts.append(f'<text x="{x + step / 2:.1f}" y="{H - 8}" text-anchor="middle" '
                     f'fill="#333">{escape(label)}</text>')
        if m.get("pue") is None:
            continue
        c = m.get("compliant")
        tone = "none" if c is None else ("good" if c else "bad")
        top = y(m["pue"])
        parts.append(f'<rect x="{x + step * 0.15:.1f}" y="{top:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{TOP + plot_h - top:.1f}" fill="{COLOURS[tone]}"/>'
                     f'<text x="{x + step / 2:.1f}" y="{top - 3:.1f}" text-anchor="middle" '
                     f'fill="#111">{number(m["pue"], 2, lang)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{W - 8}" y1="{y(threshold):.1f}" '
                 f'y2="{y(threshold):.1f}" stroke="#a11919" stroke-dasharray="6 4"/>'
                 f'<text x="{LEFT + 4}" y="{y(threshold) - 4:.1f}" text-anchor="start" '
                 f'fill="#a11919">{escape(t("threshold", lang))} '
                 f'{number(threshold, 2, lang)}</text></svg>')
    return "".join(parts)


# ---- signature, navigation --------------------------------------------------------------

def signatures(lang: str) -> str:
    """Prepared by / approved by, each with name, signature and date left blank."""
    cells = "".join(
        f'<div class="sign"><div class="role">{escape(t(key, lang))}</div>'
        f'<div class="hint">{escape(t("sig.hint", lang))}</div>'
        f'<div class="line">{escape(t("sig.name", lang))}:</div>'
        f'<div class="line">{escape(t("sig.date", lang))}: ....../....../..........</div></div>'
        for key in ("sig.prepared", "sig.approved"))
    return f'<section class="signatures">{cells}</section>'


def navigation(nav: dict | None, lang: str) -> str:
    """Links back to the reports and the overview, and the same report in the other
    language, and the PDF if ``nav`` has one; hidden when printed. ``nav``: {"reports",
    "overview", "other", "other_lang"[, "pdf"]}."""
    if not nav:
        return ""
    other = nav["other_lang"]
    return (f'<nav class="no-print"><a href="{escape(nav["reports"])}">← '
            f'{escape(t("nav.reports", lang))}</a> · <a href="{escape(nav["overview"])}">'
            f'{escape(t("nav.overview", lang))}</a> · <a href="{escape(nav["other"])}" '
            f'hreflang="{other}" lang="{other}">{escape(t("lang.name", other))}</a>'
            + (f' · <a href="{escape(nav["pdf"])}">{escape(t("rep.pdf", lang))}</a>'
               if nav.get("pdf") else "")
            + f' · <span>{escape(t("rep.print", lang))}</span></nav>')
