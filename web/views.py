"""Routes: the overview page, the JSON status, /metrics and /healthz."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from markupsafe import Markup
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pue_monitor.web import format as fmt
from pue_monitor.web.access import principal, public, require_site, scoped_document
from pue_monitor.web.i18n import DEFAULT_LANG, LANG_COOKIE, LANGS, normalise_lang, other_lang, strings, t
from pue_monitor.web.security import scrape_allowed

bp = Blueprint("views", __name__)
COOKIE_MAX_AGE_S = 365 * 86400


def _state():
    return current_app.extensions["pue_monitor"]


def choose_lang() -> tuple[str, bool]:
    """(language, whether to remember it): ?lang=, then the cookie, then the browser."""
    asked = normalise_lang(request.args.get("lang"))
    if asked:
        return asked, True
    remembered = normalise_lang(request.cookies.get(LANG_COOKIE))
    if remembered:
        return remembered, False
    best = request.accept_languages.best_match(LANGS)
    return best or DEFAULT_LANG, False


def _script_json(data: object) -> str:
    # Inside <script>, "</" could end the element early.
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


# Rendered overview bodies kept for the current status document (a bound, not an LRU).
MAIN_CACHE_ENTRIES = 64


def _overview_main(base: dict | None, doc: dict | None, lang: str) -> Markup:
    """The overview's <main>, rendered once per status document (``base``, as WebState
    computed it; ``doc``, its sites this request may see), language and set of visible
    sites: page loads within the document's second share it."""
    who = principal()
    key = (lang, None if doc is None else tuple(site["id"] for site in doc["sites"]),
           who.role if who else None)
    kept = current_app.extensions.get("pue_monitor_overview")
    if kept is None or kept[0] is not base or len(kept[1]) >= MAIN_CACHE_ENTRIES:
        # Another document (the object itself is kept, so its id is never reused).
        kept = current_app.extensions["pue_monitor_overview"] = (base, {})
    html = kept[1].get(key)
    if html is None:
        html = kept[1][key] = Markup(render_template(
            "_overview_main.html", doc=doc, lang=lang, t=t, fmt=fmt,
            windows=("15m", "today", "24h", "30d", "12m")))
    return html


@bp.get("/")
def overview() -> Response:
    lang, remember = choose_lang()
    state = _state()
    try:
        base = state.document()
        doc, status = scoped_document(base), 200
    except Exception:  # noqa: BLE001 - logged in WebState; the page says so plainly
        base, doc, status = None, None, 503
    html = render_template(
        "overview.html", doc=doc, lang=lang, other=other_lang(lang), t=t, fmt=fmt,
        refresh_s=state.refresh_s, strings_json=_script_json(strings(lang)),
        main_html=_overview_main(base, doc, lang))
    response = Response(html, status=status, mimetype="text/html")
    if remember:
        response.set_cookie(LANG_COOKIE, lang, max_age=COOKIE_MAX_AGE_S, samesite="Lax")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/v1/status")
def api_status() -> Response:
    """The status document of the sites this request may see; ?site=ID: that one only
    (404 if it is another organisation's)."""
    one = request.args.get("site")
    if one is not None:
        require_site(one)
    try:
        doc = scoped_document(_state().document())
    except Exception:  # noqa: BLE001 - logged in WebState
        return Response(json.dumps({"error": t("error.unavailable", "en")}), status=503,
                        mimetype="application/json")
    if one is not None:
        doc = {**doc, "sites": [site for site in doc["sites"] if site["id"] == one]}
    response = jsonify(doc)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
@public  # for Prometheus: its network or the scrape token (web.scrape), no session
def metrics() -> Response:
    if not scrape_allowed():
        abort(403)
    return Response(generate_latest(_state().registry), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/healthz")
@public
def healthz() -> Response:
    if not scrape_allowed():
        abort(403)
    return jsonify({"ok": True})
