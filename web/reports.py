"""Read-only audit reports in the browser: the same documents as `pue-monitor report`."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, render_template, request

from pue_monitor.config.model import DEFAULT_TIMEZONE
from pue_monitor.figures.report import build_report
from pue_monitor.pue.periods import PeriodError
from pue_monitor.web.access import require_site, scoped_config, visible_sites
from pue_monitor.web.i18n import other_lang, t
from pue_monitor.web.report_render import to_csv, to_html, to_json
from pue_monitor.web.views import choose_lang

bp = Blueprint("reports", __name__, url_prefix="/reports")
FORMATS = {"html": "text/html", "json": "application/json", "csv": "text/csv"}


@bp.get("/")
def index() -> Response:
    state = current_app.extensions["pue_monitor"]
    lang, _ = choose_lang()
    now = state.clock()
    mine = visible_sites()
    tz = ZoneInfo(mine[0].timezone if mine else DEFAULT_TIMEZONE)
    year = datetime.fromtimestamp(now, tz).year
    month = datetime.fromtimestamp(now, tz)
    periods = [(t("reports.year", lang, year=year), str(year)),
               (t("reports.year", lang, year=year - 1), str(year - 1)),
               (t("reports.12m", lang), "12m"),
               (t("reports.month", lang), f"{month.year:04d}-{month.month:02d}")]
    sites = [("all", t("reports.all", lang))] + [(s.id, s.name.vi if lang == "vi" else s.name.en)
                                                  for s in mine]
    return Response(render_template("reports.html", lang=lang, other=other_lang(lang), t=t,
                                    sites=sites, periods=periods, formats=list(FORMATS)),
                    mimetype="text/html")


@bp.route("/view", methods=["GET", "POST"])  # links GET it; the form POSTs (CSRF token)
def view() -> Response:
    state = current_app.extensions["pue_monitor"]
    lang, _ = choose_lang()
    site = request.values.get("site", "all")
    period = request.values.get("period", "").strip()
    fmt = request.values.get("format", "html")
    if site != "all":
        require_site(site)  # another organisation's site: 404
    if fmt not in FORMATS:
        return _bad(lang, f"format {fmt!r} (html, json, csv)")
    now = state.clock()
    try:
        # "all": every site this request may see
        doc = build_report(state.store, scoped_config(), site, period, now, now)
        if state.annotate_report is not None:
            doc = state.annotate_report(doc)
    except PeriodError as exc:  # too long, absurd dates: in the page's language
        return _bad(lang, exc.text(lang))
    except ValueError as exc:
        return _bad(lang, str(exc))
    if fmt == "json":
        body = to_json(doc)
    elif fmt == "csv":
        body = to_csv(doc)
    else:
        body = to_html(doc, lang, datetime.fromtimestamp(now, timezone.utc)
                       .isoformat(timespec="seconds"))
    response = Response(body, mimetype=FORMATS[fmt])
    if fmt != "html":
        name = f"pue-report-{site}-{period.replace('..', '_').replace(':', '')}.{fmt}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _bad(lang: str, message: str) -> Response:
    return Response(render_template("reports.html", lang=lang, other=other_lang(lang), t=t,
                                    sites=[], periods=[], formats=list(FORMATS),
                                    error=message), status=400, mimetype="text/html")
