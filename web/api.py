"""The JSON API behind the pages: province, site, series, months, device (/api/v1/...),
and its OpenAPI document. Every page draws its figures from these routes.

Bounded work: a range is one of figures.charts.RANGES, a year is one calendar year, every
series comes from stored blocks and day summaries; the only raw readings read are a
device's latest ones (the last hour).
"""

from __future__ import annotations

import math

from flask import Blueprint, Response, abort, current_app, jsonify, request

from pue_monitor.config.model import Device, Site
from pue_monitor.figures import charts, periods
from pue_monitor.figures.blockcache import BlockCache
from pue_monitor.web import series
from pue_monitor.web.access import scoped_document, visible_sites
from pue_monitor.web.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# The years a months request may ask for: this far back from the current one.
MAX_YEARS_BACK = 10


def state():
    return current_app.extensions["pue_monitor"]


def cache() -> BlockCache:
    return state().blocks


def json_error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def find_site(site_id: str) -> Site | None:
    """The site, if this request may see it (web.access): another organisation's site is
    not found, like one that does not exist."""
    return next((s for s in visible_sites() if s.id == site_id), None)


def find_device(device_id: str) -> tuple[Site, Device] | None:
    """The device and its site, if this request may see that site."""
    return next(((s, d) for s in visible_sites() for d in s.devices if d.id == device_id), None)


def site_or_404(site_id: str) -> Site:
    """find_site, or the request ends in the API's JSON 404 (the same for another
    organisation's site and one that does not exist)."""
    site = find_site(site_id)
    if site is None:
        abort(json_error(404, f"no site {site_id!r}"))
    return site


def device_or_404(device_id: str) -> tuple[Site, Device]:
    """find_device, or the request ends in the API's JSON 404."""
    found = find_device(device_id)
    if found is None:
        abort(json_error(404, f"no device {device_id!r}"))
    return found


def site_doc(site_id: str) -> dict | None:
    """The site's entry of the (cached) status document."""
    return next((s for s in state().document()["sites"] if s["id"] == site_id), None)


def cut() -> float:
    return charts.last_block(state().clock())


def closed(site: Site, device: Device | None = None) -> tuple[float, float]:
    """What a series over closed blocks depends on, for its cache key: the last block
    boundary, and up to where the roll-up has closed the site's (or the device's) blocks,
    which reaches that boundary a minute or so after it (figures.rollup.SETTLE_S)."""
    end, store = cut(), state().store
    frontier = (periods.rolled_up_until(store, site) if device is None
                else store.last_interval_end(device.id))
    return end, min(end, frontier if frontier is not None else -math.inf)


def range_arg() -> str | None:
    name = request.args.get("range", "day")
    return name if name in charts.RANGES else None


def _json(doc: object) -> Response:
    response = jsonify(doc)
    response.headers["Cache-Control"] = "no-store"
    return response


def _bad_range() -> Response:
    return json_error(400, f"range must be one of {', '.join(charts.RANGES)}, "
                           f"not {request.args.get('range')!r}")


# -- province and sites ------------------------------------------------------------------

def province() -> dict:
    return series.province_document(scoped_document(state().document()))


def site_summary(site: Site) -> dict:
    st = state()
    checks = cache().get(("checks", site.id, *closed(site)), lambda: series.checks_document(
        st.store, st.config, site, st.clock()))
    return series.site_summary(site_doc(site.id), checks)  # type: ignore[arg-type]


@bp.get("/province")
def api_province() -> Response:
    return _json(province())


@bp.get("/sites/<site_id>")
def api_site(site_id: str) -> Response:
    return _json(site_summary(site_or_404(site_id)))


def pue(site: Site, name: str) -> dict:
    st = state()
    return cache().get(("pue", site.id, name, *closed(site)), lambda: series.pue_document(
        st.store, st.config, site, name, st.clock()))  # type: ignore[return-value]


@bp.get("/sites/<site_id>/pue")
def api_site_pue(site_id: str) -> Response:
    site = site_or_404(site_id)
    name = range_arg()
    return _bad_range() if name is None else _json(pue(site, name))


@bp.get("/sites/<site_id>/power")
def api_site_power(site_id: str) -> Response:
    site = site_or_404(site_id)
    name = range_arg()
    if name is None:
        return _bad_range()
    st = state()
    return _json(cache().get(("power", site.id, name, *closed(site)),
                             lambda: series.power_document(st.store, site, name, st.clock(),
                                                           st.config)))


def months(site: Site, year: int) -> dict:
    st = state()
    return cache().get(("months", site.id, year, *closed(site)),  # type: ignore[return-value]
                       lambda: series.months_document(st.store, st.config, site, year,
                                                      st.clock()))


@bp.get("/sites/<site_id>/months")
def api_site_months(site_id: str) -> Response:
    site = site_or_404(site_id)
    this_year = series.site_year(site, state().clock())
    text = request.args.get("year", str(this_year))
    if not text.isdigit() or not this_year - MAX_YEARS_BACK <= int(text) <= this_year:
        return json_error(400, f"year must be a year from {this_year - MAX_YEARS_BACK} to "
                               f"{this_year}, not {text!r}")
    return _json(months(site, int(text)))


# The alert history a request may ask for: this many days back at most, this many events.
EVENT_DAYS, MAX_EVENT_DAYS, MAX_EVENTS = 90, 3660, 200


def events(site: Site, days: int = EVENT_DAYS) -> dict:
    st = state()
    now = st.clock()
    return series.events_document(st.store, site, now - days * 86400.0, now, MAX_EVENTS)


@bp.get("/sites/<site_id>/events")
def api_site_events(site_id: str) -> Response:
    site = site_or_404(site_id)
    text = request.args.get("days", str(EVENT_DAYS))
    if not text.isdigit() or not 1 <= int(text) <= MAX_EVENT_DAYS:
        return json_error(400, f"days must be a whole number from 1 to {MAX_EVENT_DAYS}, "
                               f"not {text!r}")
    return _json(events(site, int(text)))


# -- devices -----------------------------------------------------------------------------

def device(site: Site, dev: Device) -> dict:
    st = state()
    doc = next(d for d in site_doc(site.id)["devices"] if d["id"] == dev.id)  # type: ignore[index]
    return series.device_document(st.store, site, dev, doc, st.clock())


@bp.get("/devices/<device_id>")
def api_device(device_id: str) -> Response:
    return _json(device(*device_or_404(device_id)))


@bp.get("/devices/<device_id>/power")
def api_device_power(device_id: str) -> Response:
    site, dev = device_or_404(device_id)
    name = range_arg()
    if name is None:
        return _bad_range()
    st = state()
    return _json(cache().get(("device-power", dev.id, name, *closed(site, dev)),
                             lambda: series.device_power_document(st.store, site, dev, name,
                                                                  st.clock())))


@bp.get("/openapi.json")
def api_openapi() -> Response:
    return jsonify(openapi_document())
