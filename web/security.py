"""Session cookie, CSRF tokens, security headers and the scrape guard of the web app.

* The session is Flask's signed cookie: HttpOnly, SameSite=Lax, Secure as configured
  (``web.secure_cookies``: auto = when the request came over https). Its key comes from
  the config (``web.secret_key``) or is generated once into the data directory (0600).
* Every unsafe request (POST, ...) made with the session carries the session's CSRF
  token (form field ``csrf_token`` or header ``X-CSRF-Token``); API calls with a Bearer
  token carry no cookie and need none.
* Every response carries a CSP without inline script, frame denial, nosniff and a
  strict referrer policy.
* /metrics and /healthz answer a client in ``web.scrape.networks`` or one sending the
  ``web.scrape.token``; anyone else gets 403.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path

from flask import Flask, Response, abort, current_app, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from pue_monitor.config.model import Config
from pue_monitor.web.accounts import same
from pue_monitor.web.report_render import CSS as REPORT_CSS

log = logging.getLogger(__name__)

SECRET_KEY_FILE = "web-secret-key"
SESSION_COOKIE = "pue_session"
CSRF_FIELD, CSRF_HEADER = "csrf_token", "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The audit report's HTML is a self-contained document with one <style> element: its
# hash is allowed, no other inline style, and no inline script at all.
_REPORT_STYLE = base64.b64encode(hashlib.sha256(REPORT_CSS.encode()).digest()).decode()
CSP = ("default-src 'self'; script-src 'self'; "
       f"style-src 'self' 'sha256-{_REPORT_STYLE}'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def load_secret_key(config: Config, data_dir: str | Path) -> bytes:
    """The configured key, else the one kept in the data directory (made on first use)."""
    if config.web.secret_key is not None:
        return config.web.secret_key.get_secret_value().encode()
    path = Path(data_dir) / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            log.warning("%s is readable by others: setting it to 0600", path)
            path.chmod(0o600)
        return path.read_text(encoding="ascii").strip().encode()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32) + "\n")
    log.info("generated the session key %s", path)
    return path.read_text(encoding="ascii").strip().encode()


class _Sessions(SecureCookieSessionInterface):
    """Secure flag per request when ``web.secure_cookies`` is auto."""

    def get_cookie_secure(self, app: Flask) -> bool:
        mode = app.extensions["pue_monitor"].config.web.secure_cookies
        return mode == "always" or (mode == "auto" and request.is_secure)


def csrf_token() -> str:
    """The session's CSRF token (made on first use); templates put it in every form."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


_TOKEN_ONLY_ATTR = "_pue_monitor_token_only"


def token_only(view):
    """Marks a view that authenticates by a token in its request alone and never reads
    the session (the central's ingest): no cookie can act for anyone there, so no CSRF
    token is asked for."""
    setattr(view, _TOKEN_ONLY_ATTR, True)
    return view


def check_csrf() -> None:
    """before_request: an unsafe request with the session cookie needs the token."""
    if request.method not in UNSAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, _TOKEN_ONLY_ATTR, False):
        return
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return  # no cookie involved: a token cannot be sent by another site's page
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get("csrf")
    if not isinstance(expected, str) or not sent or not same(sent, expected):
        abort(400, description="CSRF token missing or wrong: reload the page and try again")


def scrape_allowed() -> bool:
    """/metrics and /healthz: the client's network, or the scrape token."""
    scrape = current_app.extensions["pue_monitor"].config.web.scrape
    auth = request.headers.get("Authorization", "")
    if scrape.token is not None and auth.startswith("Bearer ") and same(
            auth[7:].strip(), scrape.token.get_secret_value()):
        return True
    try:
        client = ip_address((request.remote_addr or "").split("%")[0])
    except ValueError:
        return False
    if client.version == 6 and client.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        client = client.ipv4_mapped
    return any(client in network for network in scrape.networks)


def add_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if session.accessed:
        response.vary.add("Cookie")
    return response


def install(app: Flask, config: Config, secret_key: bytes | None) -> None:
    """Session settings, CSRF check and headers on ``app``. Without a key (tests) a
    random one is made: sessions then end when the process does."""
    app.secret_key = secret_key or secrets.token_bytes(32)
    app.session_interface = _Sessions()
    app.config.update(SESSION_COOKIE_NAME=SESSION_COOKIE, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=config.web.session_hours))
    if config.web.proxy_hops:
        hops = config.web.proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops)
    app.before_request(check_csrf)
    app.after_request(add_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
