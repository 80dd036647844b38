"""The status document: the single JSON shape behind /api/v1/status and the overview page.

Field names are a public, versioned contract (``schema_version``); add fields freely,
never rename or remove one without bumping the version.

Top level
    schema_version   int, 1
    generated_at     ISO 8601 with offset (Asia/Ho_Chi_Minh), the "now" every figure uses
    generated_at_unix  the same, unix seconds
    title            {vi, en}
    method           PUE method identifier (pue.kpi.METHOD_VERSION)
    sites            list of sites, in configuration order
    province         {window name: province figure (below)} for every window all sites have

Province figure (pue.province: one ratio of sums, never a mean of the sites' ratios)
    pue (float | null: no site judged), facility_energy_kwh, it_energy_kwh (Σ over the
    sites with an ok figure), sites, judged, compliant (ints), not_judged [{site, status,
    coverage, pue}], refused (null, or why the sites' figures are not combined: their
    periods differ, e.g. sites in other time zones for "today")

Site
    id, name {vi, en}, kind ("provincial" | "attracted"), timezone
    threshold        float, the site's green PUE threshold (default 1.4)
    operator         "<=" or "<": compliant means ``pue <operator> threshold``
    coverage_threshold  share of a window that must be measured for status "ok"
    devices_up, devices_total  ints (devices_up: devices in state "up", healthy)
    devices_degraded int, devices answering with undecodable, stuck or implausible readings
    power_w          {role: W}, latest fresh active power per role, share applied
    instant          the instantaneous figure (below)
    windows          {"15m" | "24h" | "today" | "30d" | "12m": window figure (below); the
                     long ones end on the last 15-minute block and come from stored blocks}
    year_at_risk     {year, at_risk (bool | null), projected_pue, pue_so_far,
                     method ("seasonal" | "flat" | "none"), threshold, operator,
                     refused ("no_figure" | "not_judged" | "too_short" | null: why nothing
                     is projected), basis_status, basis_coverage (0..1), basis_days (the
                     year-so-far figure the projection rests on, or would), min_basis_days}
                     | null
    energy_kwh_total {role: kWh since the first stored block, share applied}
    devices          list of devices (below)

Instant figure (P_facility / P_IT from the latest power readings; not an audit figure)
    pue (float | null), category ("PUE1" | "PUE2" | "PUE3"),
    facility_power_w, it_power_w (float | null; facility is net of excluded loads),
    status ("ok" | "invalid" | "no_data" | "stale"), threshold, operator,
    compliant (bool | null: null unless status is "ok"), at (ISO 8601)

Window figure (energy ratio sum(E_facility) / sum(E_IT) over the common covered time)
    window, pue (float | null), category, facility_energy_kwh, it_energy_kwh,
    coverage (0..1), status ("ok" | "incomplete" | "invalid" | "no_data"),
    threshold, operator, compliant (bool | null), start, end (ISO 8601, site time zone)

Device
    id, name (one string: the Vietnamese of a bilingual name), names ({vi, en} | null),
    role, measurement_point, share, protocol, endpoint,
    up (bool | null: null when never polled; true when the last poll was answered),
    state            "up" | "degraded" | "down" | "unknown" (never polled): degraded when
                     it answers but readings fail to decode, or the 15-minute window flags
                     its readings stuck or implausible or its counter reset or stepped
                     back; degraded counts as an error
    flags            {kind: count} of the degrading flags (stuck, implausible, reset,
                     step_back) in the 15-minute window
    quality_flags    {kind: count} of every method-3 flag of the meter in the 15-minute
                     window, every kind listed (reset, step_back, wrap, stuck_counter,
                     stuck_power, implausible_counter, implausible_power) | null for a
                     device that meters nothing (role monitor, water)
    last_poll_at, last_success_at (ISO | null),
    last_success_age_s (seconds before generated_at | null), last_success_unix,
    poll_duration_s,
    poll_interval_s  the configured poll interval (device, else site, else global polling)
    errors {kind: count} (every store.model.ErrorKind present; ``decode`` also counts each
    undecodable reading of an answered poll), errors_total,
    last_error_kind, last_error (null after a successful poll),
    profile          the configured profile, or for `profile: auto` the one identified
                     (null until then), profile_identified (bool: it was identified)
    identification   why an identified profile was chosen: {sys_object_id (the agent's
                     then, "" if none), reason (the rule that chose it, technical text,
                     "" if not recorded), at (ISO | null)} | null (configured, or not
                     identified yet)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pue_monitor.config.model import AUTO_PROFILE, DEFAULT_TIMEZONE, Config
from pue_monitor.figures.longterm import LongFigures
from pue_monitor.figures.service import DeviceStatus, SiteStatus
from pue_monitor.pue.atrisk import MIN_BASIS_DAYS, YearRisk
from pue_monitor.pue.instant import InstantPue
from pue_monitor.pue.kpi import METHOD_VERSION, PueResult
from pue_monitor.pue.province import province_figure
from pue_monitor.store.model import ErrorKind, HealthState, Identified

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LongSite:
    """A site's slow figures (trailing 30 days and 12 months, year at risk, energy)."""

    figures: LongFigures
    energy_kwh_total: dict[str, float]


def iso(ts: float | None, tz: str) -> str | None:
    """ISO 8601 local time with its UTC offset, to the second."""
    if ts is None or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).isoformat(timespec="seconds")


def _num(value: float | None) -> float | None:
    # JSON has no NaN or infinity; an impossible number is reported as missing.
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def status_document(statuses: list[SiteStatus], config: Config, now: float,
                    long: dict[str, LongSite] | None = None,
                    identified: Mapping[str, Identified | str] | None = None) -> dict:
    """The whole province as one JSON-ready dict (``long``: slow figures per site id;
    ``identified``: what auto devices were identified as, by device id: the store's
    device_identifications, or device_profiles' bare names)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": iso(now, DEFAULT_TIMEZONE),
        "generated_at_unix": now,
        "title": {"vi": config.title.vi, "en": config.title.en},
        "method": METHOD_VERSION,
        "sites": [site_document(status, config, (long or {}).get(status.site.id), identified)
                  for status in statuses],
        "province": province_document(statuses, long or {}),
    }


def province_document(statuses: list[SiteStatus], long: Mapping[str, LongSite]) -> dict:
    """The province figure of each window every site has (live and long ones)."""
    per_site = [{**status.windows, **(long[status.site.id].figures.windows
                                      if status.site.id in long else {})}
                for status in statuses]
    if not per_site:
        return {}
    names = [w for w in per_site[0] if all(w in windows for windows in per_site)]
    return {name: province_window([windows[name] for windows in per_site])
            for name in names}


def province_window(results: list[PueResult]) -> dict:
    try:
        fig = province_figure(results)
    except ValueError as exc:
        return {"pue": None, "facility_energy_kwh": None, "it_energy_kwh": None,
                "sites": len(results), "judged": None, "compliant": None, "not_judged": [],
                "refused": str(exc)}
    return {"pue": _num(fig.pue), "facility_energy_kwh": _num(fig.facility_energy_kwh),
            "it_energy_kwh": _num(fig.it_energy_kwh), "sites": fig.sites,
            "judged": fig.judged, "compliant": fig.compliant,
            "not_judged": [{"site": n.site, "status": n.status, "coverage": _num(n.coverage),
                            "pue": _num(n.pue)} for n in fig.not_judged],
            "refused": None}


def site_document(status: SiteStatus, config: Config, long: LongSite | None = None,
                  identified: Mapping[str, Identified | str] | None = None) -> dict:
    site, tz = status.site, status.site.timezone
    devices = [device_document(d, status.now, tz, config.polling_for(site, d.device).interval_s,
                               identified)
               for d in status.devices]
    return {
        "id": site.id,
        "name": {"vi": site.name.vi, "en": site.name.en},
        "kind": site.kind,
        "timezone": tz,
        "threshold": site.pue_threshold,
        "operator": site.threshold_operator,
        "coverage_threshold": site.coverage_threshold,
        "devices_up": sum(1 for d in devices if d["state"] == HealthState.UP.value),
        "devices_degraded": sum(1 for d in devices if d["state"] == HealthState.DEGRADED.value),
        "devices_total": len(devices),
        "power_w": {role: _num(w) for role, w in sorted(status.power_by_role_w.items())},
        "instant": instant_document(status.instant, tz),
        "windows": {name: window_document(result, tz) for name, result in
                    {**status.windows, **(long.figures.windows if long else {})}.items()},
        "year_at_risk": None if long is None else risk_document(long.figures.year_risk),
        "energy_kwh_total": {} if long is None else dict(sorted(long.energy_kwh_total.items())),
        "devices": devices,
    }


def risk_document(risk: YearRisk) -> dict:
    return {"year": risk.year, "at_risk": risk.at_risk, "projected_pue": _num(risk.projected_pue),
            "pue_so_far": _num(risk.pue_so_far), "method": risk.method,
            "threshold": risk.threshold, "operator": risk.operator,
            "refused": risk.refused, "basis_status": risk.basis_status,
            "basis_coverage": _num(risk.basis_coverage), "basis_days": _num(risk.basis_days),
            "min_basis_days": MIN_BASIS_DAYS}


def instant_document(fig: InstantPue, tz: str) -> dict:
    return {
        "pue": _num(fig.pue),
        "category": f"PUE{fig.category}",
        "facility_power_w": _num(fig.facility_power_w),
        "it_power_w": _num(fig.it_power_w),
        "status": fig.status,
        "threshold": fig.threshold,
        "operator": fig.operator,
        "compliant": fig.compliant,
        "at": iso(fig.ts, tz),
    }


def window_document(fig: PueResult, tz: str) -> dict:
    return {
        "window": fig.window,
        "pue": _num(fig.pue),
        "category": fig.category_label,
        "facility_energy_kwh": _num(fig.facility_energy_kwh),
        "it_energy_kwh": _num(fig.it_energy_kwh),
        "coverage": _num(fig.coverage),
        "status": fig.status,
        "threshold": fig.threshold,
        "operator": fig.operator,
        "compliant": fig.compliant,
        "start": iso(fig.start, tz),
        "end": iso(fig.end, tz),
    }


def device_document(status: DeviceStatus, now: float, tz: str,
                    poll_interval_s: float | None = None,
                    identified: Mapping[str, Identified | str] | None = None) -> dict:
    device = status.device
    auto = device.profile == AUTO_PROFILE
    found = (identified or {}).get(device.id) if auto else None
    if isinstance(found, str):
        found = Identified(found)
    profile = found.profile if found is not None else None if auto else device.profile
    # Every known kind is listed, so a reader can tell "zero" from "not reported".
    errors = {kind.value: 0 for kind in ErrorKind} | dict(status.errors)
    age = None if status.last_ok_ts is None else max(0.0, now - status.last_ok_ts)
    return {
        "id": device.id,
        "name": device.plain_name,
        "names": device.display_name,
        "role": device.role.value,
        "measurement_point": device.measurement_point.value if device.measurement_point
        else None,
        "share": device.share,
        "protocol": device.protocol,
        "endpoint": device.endpoint,
        "up": status.up,
        "state": status.state,
        "flags": dict(sorted(status.flags.items())),
        "quality_flags": None if status.quality_flags is None else dict(status.quality_flags),
        "last_poll_at": iso(status.last_poll_ts, tz),
        "last_success_at": iso(status.last_ok_ts, tz),
        "last_success_age_s": age,
        "last_success_unix": status.last_ok_ts,
        "poll_duration_s": _num(status.last_duration_s),
        "poll_interval_s": poll_interval_s,
        "errors": dict(sorted(errors.items())),
        "errors_total": sum(errors.values()),
        "last_error_kind": status.last_error_kind,
        "last_error": status.last_error,
        "profile": profile,
        "profile_identified": auto and profile is not None,
        "identification": None if found is None else {
            "sys_object_id": found.sys_object_id, "reason": found.reason,
            "at": iso(found.ts, tz)},
    }
