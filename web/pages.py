"""Pages: a site (/sites/<id>) and a device (/devices/<id>), the 404 and error pages in
the site's style and language, and the province summary the overview shows.

Pages render what web/api.py serves (the same functions) and draw their charts from it
in the browser (static/charts.js); page data travels in a JSON script block, never in
inline script, so a strict Content-Security-Policy holds.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, render_template, request
from werkzeug.exceptions import HTTPException

from pue_monitor.figures.charts import RANGES
from pue_monitor.web import api
from pue_monitor.web import format as fmt
from pue_monitor.web.i18n import other_lang, strings, t
from pue_monitor.web.series import province_document
from pue_monitor.web.views import choose_lang

log = logging.getLogger(__name__)
bp = Blueprint("pages", __name__)


def _script_json(data: object) -> str:
    # Inside <script>, "</" could end the element early.
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def render(template: str, lang: str, status: int = 200, **context: object) -> Response:
    html = render_template(template, lang=lang, other=other_lang(lang), t=t, fmt=fmt,
                           **context)
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _page_data(lang: str, **data: object) -> str:
    return _script_json({"lang": lang, "strings": strings(lang), **data})


@bp.app_context_processor
def overview_helpers() -> dict:
    """What overview.html needs for its province table (it is rendered by web/views.py)."""
    # The overview already carries the strings (for live.js): charts.js reads them there.
    return {"province_of": province_document, "mark_of": fmt.mark_of,
            "page_json": lambda lang: _script_json({"lang": lang})}


@bp.get("/sites/<site_id>")
def site_page(site_id: str) -> Response:
    lang, _ = choose_lang()
    site = api.find_site(site_id)
    if site is None:
        return not_found_page(lang)
    summary = api.site_summary(site)
    this_year = api.series.site_year(site, api.state().clock())
    asked = request.args.get("year", "")
    year = int(asked) if asked.isdigit() and this_year - api.MAX_YEARS_BACK <= int(asked) \
        <= this_year else this_year
    months = api.months(site, year)
    base = f"/api/v1/sites/{site.id}"
    data = _page_data(lang, threshold=site.pue_threshold, ranges=list(RANGES),
                      api={"pue": f"{base}/pue", "power": f"{base}/power",
                           "months": f"{base}/months?year={months['year']}"})
    return render("site.html", lang, site=summary, months=months, page_data=data,
                  ranges=list(RANGES), windows=("15m", "24h", "30d", "12m"),
                  events=api.events(site), event_days=api.EVENT_DAYS)


@bp.get("/devices/<device_id>")
def device_page(device_id: str) -> Response:
    lang, _ = choose_lang()
    found = api.find_device(device_id)
    if found is None:
        return not_found_page(lang)
    site, dev = found
    doc = api.device(site, dev)
    data = _page_data(lang, ranges=list(RANGES),
                      api={"power": f"/api/v1/devices/{dev.id}/power"})
    return render("device.html", lang, device=doc, page_data=data, ranges=list(RANGES))


def not_found_page(lang: str) -> Response:
    return render("error.html", lang, 404, code=404, message=t("error.404", lang))


@bp.app_errorhandler(404)
def not_found(error: HTTPException) -> Response:
    if request.path.startswith("/api/"):
        return api.json_error(404, f"no such resource {request.path!r}")
    return not_found_page(choose_lang()[0])


@bp.app_errorhandler(Exception)
def failed(error: Exception) -> Response:
    if isinstance(error, HTTPException):  # 405 and the like keep their status
        status, message = error.code or 500, error.description or str(error)
    else:
        log.error("request %s failed: %s", request.path, error)
        status, message = 500, ""
    if request.path.startswith("/api/"):
        return api.json_error(status, message or t("error.unavailable", "en"))
    lang = choose_lang()[0]
    return render("error.html", lang, status, code=status,
                  message=t("error.unavailable", lang) if status == 500 else message)
