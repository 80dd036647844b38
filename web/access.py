"""Who is asking, and which sites they may see: the one rule every route applies.

Every request gets a principal before its view runs (``load_principal``): from an API
token (``Authorization: Bearer``), from the signed session cookie, or, when the config
switches log-in off (``web: {login: false}``), an open principal that sees everything.
Routes are closed by default: a view without a principal is answered 302 to the log-in
page (pages) or 401 (``/api/``), unless it is marked ``@public``.

What a principal sees:

* ``operator``: the sites of their organisation (config ``organisations:``);
* ``auditor``: every site, and no route that changes anything (``require_role``);
* ``admin``: every site and every route.

A per-site route calls ``require_site(site_id)`` (another organisation's site, or an
unknown one, is a 404: the answer does not tell which); a route over several sites uses
``visible_sites()`` or ``scoped_document(doc)`` / ``scoped_config()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import (Flask, Response, abort, current_app, g, jsonify, redirect, request, session,
                   url_for)
from werkzeug.exceptions import HTTPException

from pue_monitor.config.model import Config, Site
from pue_monitor.store.base import UserRecord
from pue_monitor.web.accounts import password_epoch, same, token_hash

F = TypeVar("F", bound=Callable[..., Any])
SEE_ALL = ("auditor", "admin")
# Views that answer without a principal (log-in, static files, scrapes) carry this mark.
_PUBLIC_ATTR = "_pue_public"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as. ``name`` is None when log-in is switched off."""

    name: str | None
    role: str
    organisation: str | None
    via: str  # "session", "token" or "open"


def public(view: F) -> F:
    """Mark a view as reachable without a principal (it guards itself if it must)."""
    setattr(view, _PUBLIC_ATTR, True)
    return view


def principal() -> Principal | None:
    return g.get("principal")


def _config() -> Config:
    return current_app.extensions["pue_monitor"].config


def visible_sites() -> list[Site]:
    """The sites this request may see, in config order (none without a principal)."""
    who, config = principal(), _config()
    if who is None:
        return []
    if who.role in SEE_ALL:
        return list(config.sites)
    org = config.organisation(who.organisation or "")
    mine = set(org.sites) if org is not None else set()
    return [site for site in config.sites if site.id in mine]


def visible_site_ids() -> set[str]:
    return {site.id for site in visible_sites()}


def require_site(site_id: str) -> Site:
    """The site, if this request may see it; else the request ends in a 404 (another
    organisation's site and a site that does not exist look the same)."""
    for site in visible_sites():
        if site.id == site_id:
            return site
    abort(404)


def scoped_config() -> Config:
    """The config with only the visible sites (for code that walks ``config.sites``)."""
    return _config().model_copy(update={"sites": visible_sites()})


def scoped_document(doc: dict) -> dict:
    """The status document with only the visible sites. The province figure sums every
    site, so it stays only for those who see every site."""
    ids = visible_site_ids()
    sites = [site for site in doc["sites"] if site["id"] in ids]
    whole = len(sites) == len(doc["sites"])
    return {**doc, "sites": sites, **({} if whole else {"province": {}})}


def require_role(*roles: str) -> Callable[[F], F]:
    """Only these roles may use the view (others get 403): e.g. a route that changes
    something is ``@require_role("operator", "admin")``, so auditors only read."""
    def wrap(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            who = principal()
            if who is None or who.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return guarded  # type: ignore[return-value]
    return wrap


def _from_record(user: UserRecord | None, via: str) -> Principal | None:
    if user is None:
        return None
    return Principal(user.name, user.role, user.organisation, via)


def load_principal() -> Response | None:
    """before_request: find the principal; refuse a closed view without one."""
    state = current_app.extensions["pue_monitor"]
    g.principal = None
    auth = request.headers.get("Authorization", "")
    view = current_app.view_functions.get(request.endpoint or "")
    is_public = request.endpoint == "static" or getattr(view, _PUBLIC_ATTR, False)
    if is_public:
        return None  # the view checks what it needs (scrapes carry their own token)
    if not state.config.web.login:
        g.principal = Principal(None, "admin", None, "open")
        return None
    if auth.startswith("Bearer "):
        g.principal = _from_record(state.store.token_user(token_hash(auth[7:].strip())),
                                   "token")
        if g.principal is None:
            return _unauthorised()
        return None
    name, sid = session.get("user"), session.get("sid")
    if isinstance(name, str):
        # The session must still be open in the store (log-out ends it there) and the
        # password unchanged since the log-in.
        user = state.store.session_user(token_hash(sid), state.clock()) \
            if isinstance(sid, str) else None
        if user is not None and user.name == name and same(session.get("epoch", ""),
                                                           password_epoch(user)):
            g.principal = _from_record(user, "session")
            return None
        session.clear()  # logged out, expired, removed, or a new password: log in again
    if request.endpoint is None:
        return None  # a 404 for a path no route has
    return _unauthorised()


def _unauthorised() -> Response:
    if request.path.startswith("/api/"):
        response = jsonify({"error": "authentication required"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="pue-monitor"'
        return response
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def _api_error(exc: HTTPException) -> Response | HTTPException:
    """Errors under /api/ in JSON, pages keep Flask's plain ones."""
    if not request.path.startswith("/api/"):
        return exc
    response = jsonify({"error": exc.description})
    response.status_code = exc.code or 500
    return response


def install(app: Flask) -> None:
    """The principal before every view, JSON errors for the API, and ``principal()`` in
    templates."""
    app.before_request(load_principal)
    for code in (400, 403, 404, 405):
        app.register_error_handler(code, _api_error)
    app.jinja_env.globals["principal"] = principal


__all__ = ["install", "Principal", "principal", "public", "require_role", "require_site",
           "scoped_config", "scoped_document", "visible_site_ids", "visible_sites"]
