"""Log-in and log-out pages (the session side of web.access).

A log-in opens a session in the store (its random id in the signed cookie, its hash in
the store) and log-out ends it there, not only in the browser. A log-in is refused,
without checking the password, while its client address or its user name is locked out (web.ratelimit): the answer is 429 with Retry-After. A wrong
name and a wrong password look the same, and take as long.
"""

from __future__ import annotations

import math
import secrets

from flask import (Blueprint, Response, current_app, jsonify, redirect, render_template,
                   request, session, url_for)

from pue_monitor.web.access import public, require_role
from pue_monitor.web.accounts import check_password, password_epoch, token_hash
from pue_monitor.web.i18n import other_lang, t
from pue_monitor.web.ratelimit import FailureLimiter
from pue_monitor.web.security import csrf_token
from pue_monitor.web.views import choose_lang

bp = Blueprint("auth", __name__)
LIMITER_KEY = "pue_monitor.login_failures"
MAX_NAME_LENGTH = 64
SESSION_ID_BYTES = 32


def limiter() -> FailureLimiter:
    return current_app.extensions.setdefault(LIMITER_KEY, FailureLimiter())


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never "//host" or "/\\host", which browsers take as hosts.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for("views.overview")


def _page(lang: str, status: int = 200, error: str | None = None, name: str = "") -> Response:
    html = render_template("login.html", lang=lang, other=other_lang(lang), t=t, error=error,
                           name=name, next=_safe_next(request.values.get("next")))
    return Response(html, status=status, mimetype="text/html",
                    headers={"Cache-Control": "no-store"})


@bp.get("/login")
@public
def login() -> Response:
    if not current_app.extensions["pue_monitor"].config.web.login:
        return redirect(url_for("views.overview"))
    lang, _ = choose_lang()
    return _page(lang)


@bp.post("/login")
@public
def login_post() -> Response:
    state = current_app.extensions["pue_monitor"]
    if not state.config.web.login:
        return redirect(url_for("views.overview"))
    lang, _ = choose_lang()
    name = request.form.get("user", "").strip()[:MAX_NAME_LENGTH]
    password = request.form.get("password", "")
    keys = (f"client:{request.remote_addr}", f"user:{name.lower()}")
    wait = max(limiter().retry_after(key) for key in keys)
    if wait > 0:
        response = _page(lang, 429, t("auth.wait", lang, n=math.ceil(wait)), name)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    user = check_password(state.store, name, password)
    if user is None:
        for key in keys:
            limiter().failed(key)
        return _page(lang, 401, t("auth.failed", lang), name)
    for key in keys:
        limiter().succeeded(key)
    # The session lives in the store too: log-out ends it there, so the cookie is then
    # worthless even if it was copied (web.access checks the store on every request).
    now = state.clock()
    sid = secrets.token_urlsafe(SESSION_ID_BYTES)
    state.store.end_sessions(before=now)  # expired ones, whoever they were
    state.store.add_session(token_hash(sid), user.name, now,
                            now + state.config.web.session_hours * 3600)
    session.clear()  # a fresh session: nothing from before the log-in carries over
    session.permanent = True
    session.update(user=user.name, sid=sid, epoch=password_epoch(user))
    csrf_token()
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
@public
def logout() -> Response:
    sid = session.get("sid")
    if isinstance(sid, str):  # ended in the store: the cookie no longer opens anything
        current_app.extensions["pue_monitor"].store.end_sessions(session_hash=token_hash(sid))
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/api/v1/users")
@require_role("admin")
def users() -> Response:
    """Who may log in (no hashes): admins only."""
    store = current_app.extensions["pue_monitor"].store
    return jsonify([{"name": u.name, "role": u.role, "organisation": u.organisation}
                    for u in store.users()])
