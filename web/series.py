"""JSON documents behind the charts and pages (site summary, PUE and power series, the
months of a year, a device), built from figures/.

Every series ends on the last closed 15-minute block (figures.charts), so web/api.py keeps
each one (figures.blockcache) until another block closes, and nothing is recomputed in
between however many pages ask.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pue_monitor.config.model import Config, Device, Site
from pue_monitor.figures import charts
from pue_monitor.figures.service import LATEST_LOOKBACK_S
from pue_monitor.pue.kpi import PueResult
from pue_monitor.store.base import StoreProtocol
from pue_monitor.store.model import Quality, parse_labels
from pue_monitor.web.document import _num, iso, window_document
from pue_monitor.web.format import mark_of

def point_document(start: float, end: float, result: PueResult, tz: str) -> dict:
    fig = window_document(result, tz)
    return {"t": start, "start": fig["start"], "end": fig["end"], "pue": fig["pue"],
            "coverage": fig["coverage"], "status": fig["status"],
            "compliant": fig["compliant"], "facility_energy_kwh": fig["facility_energy_kwh"],
            "it_energy_kwh": fig["it_energy_kwh"]}


def pue_document(store: StoreProtocol, config: Config, site: Site, name: str,
                 now: float) -> dict:
    points = charts.pue_series(store, config, site, name, now)
    return {"site": site.id, "range": name, "step": charts.RANGES[name],
            "timezone": site.timezone, "threshold": site.pue_threshold,
            "operator": site.threshold_operator,
            "points": [point_document(p.start, p.end, p.result, site.timezone)
                       for p in points]}


def power_document(store: StoreProtocol, site: Site, name: str, now: float,
                   config: Config | None = None) -> dict:
    bounds, roles = charts.power_series(store, site, name, now, config)
    order = [r.value for r in charts.STACK_ROLES if r.value in roles]
    return {"site": site.id, "range": name, "step": charts.RANGES[name],
            "timezone": site.timezone, "unit": "kW", "t": bounds[:-1],
            "start": [iso(a, site.timezone) for a in bounds[:-1]],
            "end": [iso(b, site.timezone) for b in bounds[1:]],
            "stack": order,
            "roles": {role: [_num(v) for v in values] for role, values in roles.items()}}


def months_document(store: StoreProtocol, config: Config, site: Site, year: int,
                    now: float) -> dict:
    months, whole = charts.year_months(store, config, site, year, now)
    tz = site.timezone
    return {
        "site": site.id, "year": year, "timezone": tz, "threshold": site.pue_threshold,
        "operator": site.threshold_operator,
        "year_so_far": None if whole is None else window_document(whole, tz),
        "months": [{"month": month, "label": f"{year:04d}-{month:02d}", "begun": r is not None,
                    **(point_document(a, b, r, tz) if r is not None else
                       {"t": a, "start": iso(a, tz), "end": iso(b, tz), "pue": None,
                        "coverage": None, "status": "no_data", "compliant": None,
                        "facility_energy_kwh": None, "it_energy_kwh": None})}
                   for month, a, b, r in months],
    }


def checks_document(store: StoreProtocol, config: Config, site: Site, now: float) -> dict:
    checks = charts.site_checks(store, config, site, now)
    tz = site.timezone
    return {"start": iso(checks.start, tz), "end": iso(checks.end, tz),
            "ppue": {k: _num(v) for k, v in checks.ppue.items()},
            "balance": None if checks.balance is None else
            {k: (_num(v) if isinstance(v, float) else v) for k, v in checks.balance.items()},
            "counter_power": [{k: (_num(v) if isinstance(v, float) else v)
                               for k, v in c.items()} for c in checks.cross_checks]}


def site_summary(site_doc: dict, checks: dict) -> dict:
    """The status document's site with its mark, its meters and its checks."""
    meters = [{"id": d["id"], "name": d["name"], "names": d["names"], "role": d["role"],
               "measurement_point": d["measurement_point"], "share": d["share"],
               "protocol": d["protocol"], "up": d["up"],
               "last_success_at": d["last_success_at"], "errors_total": d["errors_total"],
               "last_error_kind": d["last_error_kind"], "url": f"/devices/{d['id']}"}
              for d in site_doc["devices"]]
    return {**{k: v for k, v in site_doc.items() if k != "devices"},
            "mark": mark_of(site_doc), "meters": meters, "checks": checks,
            "url": f"/sites/{site_doc['id']}"}


def province_document(doc: dict) -> dict:
    """The province over the trailing 12 months: its figure as the status document has it
    (pue.province.province_figure: Σ E_DC / Σ E_IT of the sites with an ok figure), how many
    sites meet the threshold, and every site's row with its mark."""
    rows = []
    for site in doc["sites"]:
        w12 = site["windows"].get("12m") or {}
        rows.append({"id": site["id"], "name": site["name"], "kind": site["kind"],
                     "mark": mark_of(site), "instant": site["instant"]["pue"],
                     **{w: (site["windows"].get(w) or {}).get("pue")
                        for w in ("24h", "30d", "12m")},
                     "coverage_12m": w12.get("coverage"), "category": w12.get("category"),
                     "url": f"/sites/{site['id']}"})
    figure = (doc.get("province") or {}).get("12m") or {}
    return {
        "generated_at": doc["generated_at"],
        "window": "12m",
        "pue": figure.get("pue"),
        "facility_energy_kwh": figure.get("facility_energy_kwh"),
        "it_energy_kwh": figure.get("it_energy_kwh"),
        "judged": figure.get("judged") or 0,
        "not_judged": figure.get("not_judged") or [],
        "green": sum(1 for r in rows if r["mark"] in ("green", "at_risk")),
        "total": len(rows),
        "sites": rows,
    }


def device_state(device_doc: dict, readings: list[dict]) -> str:
    """"up", "degraded" (answers, but some latest reading is not good), "down", "never"."""
    if device_doc["up"] is None:
        return "never"
    if not device_doc["up"]:
        return "down"
    return "degraded" if any(r["quality"] != Quality.OK.value for r in readings) else "up"


def readings_document(store: StoreProtocol, device: Device, tz: str, now: float) -> list[dict]:
    """The device's latest reading of every metric and label over the last hour."""
    frame = store.latest(now - LATEST_LOOKBACK_S, [device.id])
    out = []
    for row in frame.sort_values(["metric", "labels"]).itertuples(index=False):
        value = None if row.value != row.value else float(row.value)  # NaN: no value
        out.append({"metric": row.metric, "labels": row.labels,
                    "label_parts": parse_labels(row.labels), "value": _num(value),
                    "at": iso(float(row.ts), tz), "quality": row.quality})
    return out


def device_document(store: StoreProtocol, site: Site, device: Device, device_doc: dict,
                    now: float) -> dict:
    readings = readings_document(store, device, site.timezone, now)
    profile_reason = None
    if device_doc["profile"] is not None:
        profile_reason = "identified" if device_doc["profile_identified"] else "configured"
    return {**device_doc, "site": {"id": site.id, "name": {"vi": site.name.vi,
                                                           "en": site.name.en},
                                   "url": f"/sites/{site.id}"},
            "state": device_state(device_doc, readings), "profile_reason": profile_reason,
            "readings": readings}


def device_power_document(store: StoreProtocol, site: Site, device: Device, name: str,
                          now: float) -> dict:
    bounds, kw, coverage = charts.device_power(store, device, site.timezone, name, now)
    return {"device": device.id, "range": name, "step": charts.RANGES[name], "unit": "kW",
            "timezone": site.timezone, "t": bounds[:-1],
            "start": [iso(a, site.timezone) for a in bounds[:-1]],
            "power_kw": [_num(v) for v in kw], "coverage": coverage}


def site_year(site: Site, now: float) -> int:
    return datetime.fromtimestamp(charts.last_block(now), ZoneInfo(site.timezone)).year


def events_document(store: StoreProtocol, site: Site, start: float, end: float,
                    limit: int) -> dict:
    """The site's alert history in [start, end), newest first (figures.alerts records it)."""
    names = {d.id: d.display_name for d in site.devices}
    return {"site": site.id, "start": iso(start, site.timezone), "end": iso(end, site.timezone),
            "events": [{"at": iso(e.ts, site.timezone), "t": e.ts, "kind": e.kind,
                        "subject": e.subject,
                        "name": names.get(e.subject) if e.kind == "device" else None,
                        "state": e.state, "value": _num(e.value), "detail": e.detail}
                       for e in store.events(site.id, start, end, limit)]}
