"""Display formatting of status-document values, for the server-rendered page.

static/live.js implements the same formatters under the same names; the browser
test compares both renderings, so change them together.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from pue_monitor.web.i18n import t

DASH = "—"
OPERATOR_SIGNS = {"<=": "≤", "<": "<"}


def number(value: float | None, digits: int, lang: str) -> str:
    """Grouped decimal number: vi "1.234,56", en "1,234.56"; a dash when missing."""
    if value is None or not math.isfinite(value):
        return DASH
    # Half-up on the exact binary value, as JavaScript's toFixed does, so both agree.
    rounded = Decimal(abs(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{rounded:,.{digits}f}"
    if lang == "vi":
        text = text.translate(str.maketrans({",": ".", ".": ","}))
    return ("-" if value < 0 and rounded != 0 else "") + text


def threshold(value: float | None, lang: str) -> str:
    """A threshold with as few decimals as it needs (at least one): 1.4 -> "1,4"."""
    if value is None:
        return DASH
    text = number(value, 2, lang)
    return text[:-1] if text.endswith("0") else text


def operator_sign(op: str) -> str:
    return OPERATOR_SIGNS.get(op, op)


def age(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return DASH
    seconds = max(0.0, seconds)
    for limit, unit, key in ((90, 1, "age.s"), (90 * 60, 60, "age.min"),
                             (48 * 3600, 3600, "age.h")):
        if seconds < limit:
            return t(key, lang, n=math.floor(seconds / unit))
    return t("age.d", lang, n=math.floor(seconds / 86400))


def local_datetime(text: str | None) -> str:
    """'2025-11-24T00:15:00+07:00' -> '00:15:00 24/11/2025 (UTC+07:00)' without re-zoning."""
    if not text:
        return DASH
    date, clock, offset = text[:10], text[11:19], text[19:] or "Z"
    return f"{clock} {date[8:10]}/{date[5:7]}/{date[:4]} (UTC{offset})"


def period(fig: dict | None) -> str:
    """A window's span in its site's local time: '00:00–00:15 24/11' or across days."""
    if not fig or not fig.get("start") or not fig.get("end"):
        return DASH
    start, end = fig["start"], fig["end"]

    def day(s: str) -> str:
        return f"{s[8:10]}/{s[5:7]}"

    if start[:10] == end[:10]:
        return f"{start[11:16]}–{end[11:16]} {day(end)}"
    return f"{start[11:16]} {day(start)} – {end[11:16]} {day(end)}"


def verdict(fig: dict | None, lang: str) -> str:
    compliant = None if fig is None else fig.get("compliant")
    key = "verdict.none" if compliant is None else ("verdict.yes" if compliant else "verdict.no")
    return t(key, lang)


def risk(value: dict | None, lang: str) -> str:
    """'2026: projected PUE 1.43, at risk ...' from a year_at_risk object."""
    if value and value.get("refused") in ("no_figure", "not_judged", "too_short"):
        # Why there is no forecast, rather than a forecast from nothing.
        return t(f"risk.refused.{value['refused']}", lang, year=value["year"],
                 status=t(f"status.{value.get('basis_status')}", lang),
                 days=number(value.get("basis_days"), 1, lang),
                 min=number(value.get("min_basis_days"), 0, lang))
    if not value or value.get("at_risk") is None:
        return t("risk.none", lang)
    key = "risk.yes" if value["at_risk"] else "risk.no"
    basis = ("" if value.get("basis_days") is None else
             t("risk.basis", lang, days=number(value["basis_days"], 1, lang),
               coverage=number(100 * (value.get("basis_coverage") or 0), 0, lang) + " %"))
    return t(key, lang, year=value["year"],
             pue=number(value.get("projected_pue"), 2, lang)) + basis


def errors(counts: dict | None, lang: str) -> str:
    """Non-zero error counts by kind, e.g. 'timeout 2 · connection 1'."""
    parts = [f"{t('err.' + kind, lang) if ('err.' + kind) in _ERR_KEYS else kind} {n}"
             for kind, n in sorted((counts or {}).items()) if n]
    return " · ".join(parts) if parts else t("errors.none", lang)


MARKS = ("green", "at_risk", "over", "not_judged")
MARK_TONES = {"green": "good", "at_risk": "warn", "over": "bad", "not_judged": "nodata"}


def mark_of(site: dict | None) -> str:
    """A site's mark from its trailing 12 months and its year at risk: "green" (meets the
    threshold), "at_risk" (meets it, but the year is projected over), "over", or
    "not_judged" (the 12 months are not a valid figure)."""
    site = site if isinstance(site, dict) else {}
    compliant = ((site.get("windows") or {}).get("12m") or {}).get("compliant")
    if compliant is None:
        return "not_judged"
    if not compliant:
        return "over"
    return "at_risk" if (site.get("year_at_risk") or {}).get("at_risk") else "green"


def mark(site: dict | None, lang: str) -> str:
    return t("mark." + mark_of(site), lang)


def _text(value: object, lang: str) -> str:
    return DASH if value is None or value == "" else str(value)


def _keyed(prefix: str) -> Callable[[object, str], str]:
    def fmt(value: object, lang: str) -> str:
        return DASH if value is None else t(f"{prefix}.{value}", lang)
    return fmt


def _up(value: object, lang: str) -> str:
    return t("up." + {True: "true", False: "false"}.get(value, "null"), lang)  # type: ignore[arg-type]


_STATES = ("up", "degraded", "down", "unknown")
_ERR_KEYS = {"err.timeout", "err.connection", "err.auth", "err.decode", "err.device_error"}

# name -> fn(value, lang); the names are the data-fmt attributes in the templates.
FORMATTERS: dict[str, Callable[[object, str], str]] = {
    "text": _text,
    "int": lambda v, lang: DASH if v is None else str(int(v)),  # type: ignore[arg-type]
    "pue": lambda v, lang: number(v, 2, lang),  # type: ignore[arg-type]
    "kw": lambda v, lang: DASH if v is None else number(v / 1000, 1, lang) + " kW",  # type: ignore
    "kwh": lambda v, lang: DASH if v is None else number(v, 1, lang) + " kWh",  # type: ignore
    "pct": lambda v, lang: DASH if v is None else number(v * 100, 1, lang) + "%",  # type: ignore
    "ms": lambda v, lang: DASH if v is None else number(v * 1000, 0, lang) + " ms",  # type: ignore
    "age": lambda v, lang: age(v, lang),  # type: ignore[arg-type]
    "datetime": lambda v, lang: local_datetime(v),  # type: ignore[arg-type]
    "period": lambda v, lang: period(v),  # type: ignore[arg-type]
    "status": _keyed("status"),
    "verdict": lambda v, lang: verdict(v, lang),  # type: ignore[arg-type]
    "up": _up,
    "state": lambda v, lang: t(f"state.{v if v in _STATES else 'unknown'}", lang),
    "errors": lambda v, lang: errors(v, lang),  # type: ignore[arg-type]
    "risk": lambda v, lang: risk(v, lang),  # type: ignore[arg-type]
    "mark": lambda v, lang: mark(v, lang),  # type: ignore[arg-type]
}


def resolve(scope: dict | None, path: str) -> object:
    """``scope['windows']['15m']['pue']`` for path 'windows.15m.pue'; '' is the scope."""
    value: object = scope
    for part in path.split(".") if path else ():
        value = value.get(part) if isinstance(value, dict) else None
    return value


def field(scope: dict | None, path: str, fmt: str, lang: str) -> str:
    return FORMATTERS[fmt](resolve(scope, path), lang)


def tone(kind: str, value: object) -> str:
    """CSS tone of a figure or device: good / bad / invalid / incomplete / nodata.

    Only an "ok" figure can be good or bad, so an incomplete one never looks compliant.
    """
    if kind == "figure":
        fig = value if isinstance(value, dict) else {}
        status, compliant = fig.get("status"), fig.get("compliant")
        if status == "ok" and compliant is not None:
            return "good" if compliant else "bad"
        return {"invalid": "invalid", "incomplete": "incomplete"}.get(str(status), "nodata")
    if kind == "device":
        # A degraded device is an error as a down one is; an older document has no state.
        dev = value if isinstance(value, dict) else {}
        state = dev.get("state") or {True: "up", False: "down"}.get(dev.get("up"), "unknown")
        return {"up": "good", "degraded": "bad", "down": "bad"}.get(state, "nodata")
    if kind == "risk":
        at_risk = value.get("at_risk") if isinstance(value, dict) else None
        return "nodata" if at_risk is None else ("bad" if at_risk else "good")
    if kind == "mark":
        return MARK_TONES[mark_of(value if isinstance(value, dict) else None)]
    if kind == "devices":
        site = value if isinstance(value, dict) else {}
        total, up = site.get("devices_total") or 0, site.get("devices_up") or 0
        return "nodata" if not total else ("good" if up == total else "bad")
    raise ValueError(f"unknown tone kind {kind!r}")


def tone_of(scope: dict | None, spec: str) -> str:
    """Tone for a ``data-tone="kind:path"`` attribute."""
    kind, _, path = spec.partition(":")
    return tone(kind, resolve(scope, path))
