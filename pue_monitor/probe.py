"""`pue-monitor probe URL`: poll one device once and print what it reads, to check a new
device before it goes into the configuration. One prober per URL scheme."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

from pue_monitor.collectors.errors import PollError
from pue_monitor.collectors.modbus_probe import SCHEMES as MODBUS_SCHEMES
from pue_monitor.collectors.modbus_probe import probe_modbus
from pue_monitor.collectors.snmp_identify import NoProfileMatches
from pue_monitor.collectors.snmp_probe import Probed, SnmpUrlError, probe_snmp
from pue_monitor.config.errors import ConfigError
from pue_monitor.config.profiles import load_profiles



async def _modbus(url: str, profile, profiles, timeout_s: float) -> Probed:  # noqa: ANN001
    # A Modbus device cannot say what it is: its registers mean nothing without a profile.
    if profile is None:
        modbus = sorted(n for n, p in profiles.items() if p.protocol == "modbus")
        raise ValueError(f"a Modbus device needs --profile (one of: {', '.join(modbus)})")
    return Probed(profile.name, await probe_modbus(url, profile, timeout_s))


# scheme -> async prober(url, profile or None (identify it), profiles, timeout_s) -> Probed
PROBERS = {
    "snmp": probe_snmp,
    **{scheme: _modbus for scheme in MODBUS_SCHEMES},
}
PROBE_ERRORS = (SnmpUrlError, NoProfileMatches, PollError, ValueError)


def rows(probed: Probed) -> list[dict]:
    """Each reading as {metric, value, labels, quality}."""
    return [{"metric": r.metric, "value": r.value, "labels": dict(r.labels),
             "quality": r.quality.value} for r in probed.result.readings]


def _number(value: float | None) -> str:
    # Energy counters run to millions of kWh: plain decimals, never exponents.
    return "" if value is None else f"{value:.6f}".rstrip("0").rstrip(".")


def table(items: list[dict]) -> str:
    """A plain text table, headers in English and Vietnamese."""
    head = ("metric / đại lượng", "labels / nhãn", "value / giá trị", "quality / chất lượng")
    body = [(i["metric"], ",".join(f"{k}={v}" for k, v in sorted(i["labels"].items())),
             _number(i["value"]), i["quality"]) for i in items]
    widths = [max(len(r[c]) for r in (head, *body)) for c in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                     for r in (head, *body))


def run_probe(url: str, profile_name: str | None, as_json: bool, timeout_s: float,
              profile_dirs: list[Path] | None = None) -> int:
    """The `probe` command: 0 when the device answered, 2 when it could not be read.

    ``profile_dirs``: folders of further profiles (a saved draft), as ``profiles_dir``.
    """
    scheme = urlsplit(url).scheme.lower()
    prober = PROBERS.get(scheme)
    if prober is None:
        print(f"pue-monitor probe: unknown scheme {scheme!r} (known: {', '.join(PROBERS)})",
              file=sys.stderr)
        return 2
    try:
        profiles = load_profiles(*(profile_dirs or []))
    except ConfigError as exc:
        print(f"pue-monitor probe: {exc}", file=sys.stderr)
        return 2
    profile = None
    if profile_name is not None:
        profile = profiles.get(profile_name)
        if profile is None:
            print(f"pue-monitor probe: unknown profile {profile_name!r}", file=sys.stderr)
            return 2
    try:
        probed = asyncio.run(prober(url, profile, profiles, timeout_s))
    except PROBE_ERRORS as exc:
        print(f"pue-monitor probe: {exc}", file=sys.stderr)
        return 2
    if probed.note:
        print(f"pue-monitor probe: {probed.note}", file=sys.stderr)
    if not probed.result.ok:
        kind = probed.result.error_kind.value if probed.result.error_kind else "error"
        print(f"pue-monitor probe: {kind}: {probed.result.error}", file=sys.stderr)
        return 2
    items = rows(probed)
    print(json.dumps(items, ensure_ascii=False) if as_json else table(items))
    return 0
