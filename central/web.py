"""The central's HTTP side, a blueprint on the ordinary web app (web.create_app):

``POST /api/v2/write?precision=ns|us|ms|s`` InfluxDB v2 write API: line protocol (gzip
    allowed), ``Authorization: Token <token>``; 204 stored, 400 refused lines (each named),
    401 no or unknown token, 403 a site of another data center, 413 too large.
``POST /api/v1/central/definition`` the data center's site definition (central.sitedef).
``GET /api/v1/central/edges`` every data center: its sites, last batch, clock skew.
``GET /api/v1/central/definitions`` the definitions received, with what changed.

Both POSTs read ``X-Pue-Edge-Time`` (the edge's clock, unix seconds, when it sent).
"""

from __future__ import annotations

import json
import math
import zlib

from flask import Blueprint, Response, current_app, jsonify, request

from pue_monitor.central.history import definition_history
from pue_monitor.central.ingest import Central, WriteResult
from pue_monitor.central.tokens import from_header
from pue_monitor.web.access import public, visible_site_ids
from pue_monitor.web.security import token_only

bp = Blueprint("central", __name__)
EDGE_TIME_HEADER = "X-Pue-Edge-Time"
CENTRAL_KEY = "pue_monitor_central"


def central() -> Central:
    return current_app.extensions[CENTRAL_KEY]


def _error(status: int, message: str) -> Response:
    # The InfluxDB v2 error body: clients (influxdb-client, Telegraf) show its message.
    code = {400: "invalid", 401: "unauthorized", 403: "forbidden", 413: "request too large",
            415: "unsupported media type"}.get(status, "internal error")
    response = jsonify({"code": code, "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Token realm="pue-monitor central"'
    return response


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _body() -> bytes:
    """The request body, un-gzipped, refused beyond the configured size either way."""
    limit = central().service.max_body_bytes
    if (request.content_length or 0) > limit:
        raise _BodyError(413, f"body of {request.content_length} bytes; the limit is {limit}")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise _BodyError(413, f"body over the limit of {limit} bytes")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise _BodyError(400, f"body is not valid gzip: {exc}") from None
        if len(data) > limit or inflater.unconsumed_tail:
            raise _BodyError(413, f"body over the limit of {limit} bytes once un-gzipped")
        return data
    if encoding != "identity":
        raise _BodyError(415, f"Content-Encoding {encoding!r} (gzip or none)")
    return raw


def _edge_time() -> float | None:
    text = request.headers.get(EDGE_TIME_HEADER)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _answer(result: WriteResult) -> Response:
    if result.status == 204:
        return Response(status=204)
    return _error(result.status, result.message)


@bp.post("/api/v2/write")
@public  # the token below is the authentication, not a session
@token_only
def write() -> Response:
    token = from_header(central().store, request.headers.get("Authorization", ""))
    if token is None:
        return _error(401, "no valid token: send Authorization: Token <token> "
                      "(made with `pue-monitor central token create`)")
    try:
        text = _body().decode("utf-8")
    except _BodyError as exc:
        return _error(exc.status, str(exc))
    except UnicodeDecodeError as exc:
        return _error(400, f"body is not UTF-8 (byte {exc.start})")
    precision = request.args.get("precision", "ns")
    return _answer(central().write(token, text, precision, _edge_time()))


@bp.post("/api/v1/central/definition")
@public
@token_only
def definition() -> Response:
    token = from_header(central().store, request.headers.get("Authorization", ""))
    if token is None:
        return _error(401, "no valid token: send Authorization: Token <token>")
    try:
        doc = json.loads(_body().decode("utf-8"))
    except _BodyError as exc:
        return _error(exc.status, str(exc))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _error(400, f"body is not UTF-8 JSON: {exc}")
    return _answer(central().define(token, doc, _edge_time()))


@bp.get("/api/v1/central/edges")
def edges() -> Response:
    c = central()
    mine = set(visible_site_ids())
    tokens = c.store.central_tokens()
    out = []
    for dc in c.service.data_centers:
        if not mine & set(dc.sites):
            continue
        seen = c.clocks.get(dc.id)
        out.append({"id": dc.id, "name": {"vi": dc.name.vi, "en": dc.name.en},
                    "sites": dc.sites,
                    "defined": [s.id for s in c.config.sites if s.id in dc.sites],
                    "last_batch_ts": None if seen is None else seen.last_batch_ts,
                    "clock_skew_s": None if seen is None else seen.skew_s,
                    "clock_skew_flagged": bool(seen and seen.flagged),
                    "tokens": sum(1 for t in tokens if t.data_center == dc.id
                                  and t.revoked_ts is None)})
    response = jsonify({"max_clock_skew_s": c.service.max_clock_skew_s, "data_centers": out})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/v1/central/definitions")
def definitions() -> Response:
    mine = set(visible_site_ids())
    site = request.args.get("site")
    records = [r for r in central().store.site_definitions()
               if r.site in mine and (site is None or r.site == site)]
    response = jsonify(definition_history(records))
    response.headers["Cache-Control"] = "no-store"
    return response
