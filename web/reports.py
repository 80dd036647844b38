"""Read-only audit reports in the browser: the same documents as `pue-monitor report`."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, render_template, request, url_for

from pue_monitor.config.model import DEFAULT_TIMEZONE
from pue_monitor.figures.report import build_report
from pue_monitor.pue.periods import PeriodError
from pue_monitor.web import pdf
from pue_monitor.web.access import require_site, scoped_config, visible_sites
from pue_monitor.web.document import iso
from pue_monitor.web.heavy import Busy
from pue_monitor.web.i18n import other_lang, t
from pue_monitor.web.report_parts import ROMAN
from pue_monitor.web.report_render import to_csv, to_html, to_json
from pue_monitor.web.views import choose_lang

bp = Blueprint("reports", __name__, url_prefix="/reports")
# pdf: the HTML report printed to A4 by WeasyPrint (web.pdf), if it is installed.
FORMATS = {"html": "text/html", "json": "application/json", "csv": "text/csv",
           "pdf": "application/pdf"}


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
    # Quarter shortcuts: this year's begun quarters and last year's four.
    quarters = [(t("per.quarter", lang, y=y, q=q, roman=ROMAN[q - 1]), f"{y}-Q{q}")
                for y in (year, year - 1) for q in range(1, 5)
                if y < year or 3 * (q - 1) + 1 <= month.month]
    return Response(render_template("reports.html", lang=lang, other=other_lang(lang), t=t,
                                    sites=sites, periods=periods, formats=list(FORMATS),
                                    quarters=quarters, today=month.date().isoformat()),
                    mimetype="text/html")


def picked_period(start: str, end: str) -> str:
    """The period of a date picker's first and last day (both included), as parse_period
    reads it ("START..END", END the day after the last).

    :raises PeriodError: a date that is not one, or the last before the first.
    """
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise PeriodError(f"pick both dates (from {start!r}, to {end!r})",
                          f"hãy chọn đủ hai ngày (từ {start!r}, đến {end!r})") from None
    if last < first:
        raise PeriodError(f"the last day {last:%d/%m/%Y} is before the first {first:%d/%m/%Y}",
                          f"ngày cuối {last:%d/%m/%Y} trước ngày đầu {first:%d/%m/%Y}")
    return f"{first.isoformat()}..{(last + timedelta(days=1)).isoformat()}"


@bp.route("/view", methods=["GET", "POST"])  # links GET it; the form POSTs (CSRF token)
def view() -> Response:
    state = current_app.extensions["pue_monitor"]
    lang, _ = choose_lang()
    site = request.values.get("site", "all")
    period = request.values.get("period", "").strip()
    fmt = request.values.get("format", "html")
    if not period and (request.values.get("from") or request.values.get("to")):
        try:  # the date picker's days, both included
            period = picked_period(request.values.get("from", ""), request.values.get("to", ""))
        except PeriodError as exc:
            return _bad(lang, exc.text(lang))
    if site != "all":
        require_site(site)  # another organisation's site: 404
    if fmt not in FORMATS:
        return _bad(lang, f"format {fmt!r} ({', '.join(FORMATS)})")
    if fmt == "pdf" and (why := pdf.unavailable_reason()) is not None:
        return _no_pdf(lang, why)
    now = state.clock()
    # "all": every site this request may see, and the report's links (read here: the
    # worker has no request)
    config = scoped_config()
    nav = {"reports": url_for("reports.index", lang=lang),
           "overview": url_for("views.overview", lang=lang),
           "other": url_for("reports.view", site=site, period=period, format="html",
                            lang=other_lang(lang)),
           "other_lang": other_lang(lang),
           "pdf": url_for("reports.view", site=site, period=period, format="pdf", lang=lang)}
    try:
        # A long period is heavy work: computed and rendered off the request threads,
        # a bounded number at once (web.heavy).
        body = state.heavy.run(lambda store: _render(_annotated(state, build_report(
            store, config, site, period, now, now)), fmt, lang, now, nav), state.store)
    except Busy as busy:
        return _busy(lang, fmt, busy)
    except PeriodError as exc:  # too long, absurd dates: in the page's language
        return _bad(lang, exc.text(lang))
    except pdf.PdfUnavailable as exc:  # a library went missing since the check above
        return _no_pdf(lang, exc.reason)
    except ValueError as exc:
        return _bad(lang, str(exc))
    response = Response(body, mimetype=FORMATS[fmt])
    if fmt != "html":
        name = f"pue-report-{site}-{period.replace('..', '_').replace(':', '')}.{fmt}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _annotated(state, doc: dict) -> dict:
    """The report as the app serves it (the central adds the site definitions edges sent)."""
    return doc if state.annotate_report is None else state.annotate_report(doc)


def _render(doc: dict, fmt: str, lang: str, now: float, nav: dict) -> str | bytes:
    if fmt == "json":
        return to_json(doc)
    if fmt == "csv":
        return to_csv(doc)
    sites = doc.get("sites") or [doc]
    tz = sites[0]["period"].get("timezone") if sites else None
    generated = iso(now, tz or DEFAULT_TIMEZONE) or ""
    if fmt == "pdf":  # the printed page: no navigation, as in a file
        return pdf.html_to_pdf(to_html(doc, lang, generated))
    return to_html(doc, lang, generated, nav)


def _no_pdf(lang: str, reason: str) -> Response:
    """501: this server cannot make PDFs (web.pdf). Both languages, what to install, and
    the technical reason; the HTML report prints to A4 from the browser meanwhile."""
    vi, en = (t("reports.no_pdf", x, hint=pdf.INSTALL_HINT) for x in ("vi", "en"))
    message = f"{vi} / {en}" if lang == "vi" else f"{en} / {vi}"
    return Response(render_template("reports.html", lang=lang, other=other_lang(lang), t=t,
                                    sites=[], periods=[], formats=list(FORMATS),
                                    error=f"{message} ({reason})"),
                    status=501, mimetype="text/html")


def _busy(lang: str, fmt: str, busy: Busy) -> Response:
    """503 with Retry-After: every heavy slot taken, or the report took too long. Both
    languages in the body whatever the format (a script reads the status and header)."""
    key = "reports.timed_out" if busy.timed_out else "reports.busy"
    vi, en = t(key, "vi", s=busy.retry_after_s), t(key, "en", s=busy.retry_after_s)
    if fmt == "html":
        response = Response(render_template(
            "reports.html", lang=lang, other=other_lang(lang), t=t, sites=[], periods=[],
            formats=list(FORMATS), error=f"{vi} / {en}" if lang == "vi" else f"{en} / {vi}"),
            mimetype="text/html")
    else:
        response = Response(json.dumps({"error": {"vi": vi, "en": en}, "status": 503},
                                       ensure_ascii=False), mimetype="application/json")
    response.status_code = 503
    response.headers["Retry-After"] = str(busy.retry_after_s)
    response.headers["Cache-Control"] = "no-store"
    return response


def _bad(lang: str, message: str) -> Response:
    return Response(render_template("reports.html", lang=lang, other=other_lang(lang), t=t,
                                    sites=[], periods=[], formats=list(FORMATS),
                                    error=message), status=400, mimetype="text/html")
