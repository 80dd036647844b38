"""The OpenAPI 3 document of every route the app serves (pages, API, metrics), written by
hand as data; tests/test_web_api.py checks it lists exactly the app's routes."""

from __future__ import annotations

from pue_monitor.figures.charts import RANGES

NULLABLE_NUMBER = {"type": "number", "nullable": True}
ERROR = {"description": "Unknown id or bad parameter",
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _html(description: str) -> dict:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _path_param(name: str, what: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": what,
            "schema": {"type": "string"}}


LANG = {"name": "lang", "in": "query", "required": False, "description":
        "Page language (remembered in a cookie)", "schema": {"type": "string",
                                                             "enum": ["vi", "en"]}}
RANGE = {"name": "range", "in": "query", "required": False, "description":
         "day: 96 15-minute points; week: hourly; month: daily (30 days); year: monthly "
         "(12 months). Each ends on the last closed 15-minute block.",
         "schema": {"type": "string", "enum": list(RANGES), "default": "day"}}
SITE = _path_param("site_id", "A site id from the configuration")
DEVICE = _path_param("device_id", "A device id from the configuration")


def _get(summary: str, ok: dict, params: list[dict] | None = None,
         errors: bool = False) -> dict:
    responses = {"200": ok}
    if errors:
        responses["400"] = ERROR
        responses["404"] = ERROR
    return {"get": {"summary": summary, "parameters": params or [], "responses": responses}}


BUSY = {"description": "every heavy slot is taken, or the report took too long (web.heavy): "
                       "ask again after Retry-After seconds; the message is in vi and en",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}}}


def _busy(path: dict) -> dict:
    """A heavy route: each of its operations may answer 503 with Retry-After."""
    for operation in path.values():
        operation["responses"]["503"] = BUSY
    return path


POINT = {"type": "object", "properties": {
    "t": {"type": "number", "description": "start, unix seconds"},
    "start": {"type": "string", "format": "date-time"},
    "end": {"type": "string", "format": "date-time"},
    "pue": {**NULLABLE_NUMBER, "description": "null is a gap: never interpolated"},
    "coverage": NULLABLE_NUMBER,
    "status": {"type": "string", "enum": ["ok", "incomplete", "invalid", "no_data"]},
    "compliant": {"type": "boolean", "nullable": True},
    "facility_energy_kwh": NULLABLE_NUMBER, "it_energy_kwh": NULLABLE_NUMBER}}


def openapi_document() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "pue-monitor", "version": "1",
                 "description": "Data center PUE (ISO/IEC 30134-2): pages and JSON API."},
        "paths": {
            "/": _get("Province overview page", _html("HTML page"), [LANG]),
            "/sites/{site_id}": _get("Site page", _html("HTML page"), [SITE, LANG], True),
            "/devices/{device_id}": _get("Device page", _html("HTML page"), [DEVICE, LANG],
                                         True),
            "/reports/": _get("Audit report form", _html("HTML page"), [LANG]),
            "/reports/view": _busy(_get("An audit report", _html("HTML, JSON or CSV report"), [
                LANG, {"name": "site", "in": "query", "schema": {"type": "string"}},
                {"name": "period", "in": "query", "schema": {"type": "string"}},
                {"name": "format", "in": "query",
                 "schema": {"type": "string", "enum": ["html", "json", "csv"]}}]) | {
                "post": {"summary": "An audit report from the report form (the same fields as "
                                    "the query, and csrf_token)",
                         "responses": {"200": _html("HTML, JSON or CSV report"),
                                       "400": {"description": "missing or wrong CSRF token"}}}}),
            "/login": {
                "get": {"summary": "Log-in page", "parameters": [LANG],
                        "responses": {"200": _html("HTML page")}},
                "post": {"summary": "Log in (form: user, password, csrf_token)",
                         "responses": {"302": {"description": "logged in, to the next page"},
                                       "400": {"description": "missing or wrong CSRF token"},
                                       "401": _html("wrong user or password"),
                                       "429": {"description": "too many failures; see "
                                                              "Retry-After"}}}},
            "/logout": {"post": {"summary": "Log out (form: csrf_token)",
                                 "responses": {"302": {"description": "to the log-in page"},
                                               "400": {"description": "missing or wrong "
                                                                      "CSRF token"}}}},
            "/api/v1/users": _get("Who may log in, without hashes (admins only)",
                                  {"description": "users: name, role, organisation",
                                   "content": {"application/json": {}}}),
            "/metrics": _get("Prometheus metrics", {"description": "text exposition format",
                                                    "content": {"text/plain": {}}}),
            "/healthz": _get("Liveness", {"description": "always {\"ok\": true}",
                                          "content": {"application/json": {}}}),
            "/api/v1/status": _get("Live status document (web/document.py)",
                                   _json("Status document", "Status")),
            "/api/v1/province": _get("Province figure and every site's mark",
                                     _json("Province", "Province")),
            "/api/v1/sites/{site_id}": _get("Site summary: figures, mark, meters, checks",
                                            _json("Site", "Site"), [SITE], True),
            "/api/v1/sites/{site_id}/pue": _get("PUE over a range", _json("PUE", "PueSeries"),
                                                [SITE, RANGE], True),
            "/api/v1/sites/{site_id}/power": _get("Mean power by role over a range",
                                                  _json("Power", "PowerSeries"),
                                                  [SITE, RANGE], True),
            "/api/v1/sites/{site_id}/months": _get(
                "The months of a year with PUE and verdict", _json("Months", "Months"),
                [SITE, {"name": "year", "in": "query", "required": False,
                        "schema": {"type": "integer"},
                        "description": "a calendar year, at most 10 back; default this one"}],
                True),
            "/api/v1/sites/{site_id}/events": _get(
                "The site's alert history: device state changes and PUE threshold "
                "crossings the monitor recorded, newest first", _json("Events", "Events"),
                [SITE, {"name": "days", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 3660},
                        "description": "how far back, in days (default 90)"}], True),
            "/api/v1/devices/{device_id}": _get("Device: profile, address, state, readings",
                                                _json("Device", "Device"), [DEVICE], True),
            "/api/v1/devices/{device_id}/power": _get("A meter's mean power over a range",
                                                      _json("Power", "DevicePower"),
                                                      [DEVICE, RANGE], True),
            "/api/v1/openapi.json": _get("This document", {"description": "OpenAPI 3",
                                                           "content": {"application/json": {}}}),
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error", "status"], "properties": {
                "error": {"type": "string"}, "status": {"type": "integer"}}},
            "Status": {"type": "object", "description": "See web/document.py",
                       "properties": {"schema_version": {"type": "integer"},
                                      "sites": {"type": "array", "items": {"type": "object"}}}},
            "Province": {"type": "object", "properties": {
                "pue": {**NULLABLE_NUMBER, "description":
                        "Σ E_DC / Σ E_IT over the trailing 12 months of the judged sites"},
                "facility_energy_kwh": NULLABLE_NUMBER, "it_energy_kwh": NULLABLE_NUMBER,
                "judged": {"type": "integer"},
                "green": {"type": "integer", "description": "sites meeting the threshold"},
                "total": {"type": "integer"},
                "sites": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"},
                    "mark": {"type": "string",
                             "enum": ["green", "at_risk", "over", "not_judged"]},
                    "instant": NULLABLE_NUMBER, "24h": NULLABLE_NUMBER,
                    "30d": NULLABLE_NUMBER, "12m": NULLABLE_NUMBER,
                    "coverage_12m": NULLABLE_NUMBER}}}}},
            "Site": {"type": "object", "description": "The status document's site, plus:",
                     "properties": {
                         "mark": {"type": "string"},
                         "meters": {"type": "array", "items": {"type": "object"}},
                         "checks": {"type": "object", "description":
                                    "trailing 30 days: ppue, balance, counter_power"}}},
            "PueSeries": {"type": "object", "properties": {
                "range": {"type": "string"}, "step": {"type": "string"},
                "threshold": {"type": "number"}, "operator": {"type": "string"},
                "points": {"type": "array", "items": POINT}}},
            "PowerSeries": {"type": "object", "properties": {
                "t": {"type": "array", "items": {"type": "number"}},
                "stack": {"type": "array", "items": {"type": "string"}},
                "roles": {"type": "object", "additionalProperties": {
                    "type": "array", "items": NULLABLE_NUMBER}}}},
            "Months": {"type": "object", "properties": {
                "year": {"type": "integer"}, "year_so_far": {"type": "object",
                                                             "nullable": True},
                "months": {"type": "array", "items": POINT}}},
            "Device": {"type": "object", "properties": {
                "state": {"type": "string", "enum": ["up", "degraded", "down", "never"]},
                "profile": {"type": "string", "nullable": True},
                "profile_reason": {"type": "string", "nullable": True,
                                   "enum": ["configured", "identified", None]},
                "identification": {"type": "object", "nullable": True,
                                   "description": "why an identified profile was chosen",
                                   "properties": {
                                       "sys_object_id": {"type": "string"},
                                       "reason": {"type": "string"},
                                       "at": {"type": "string", "format": "date-time",
                                              "nullable": True}}},
                "endpoint": {"type": "string", "description": "address, no secrets"},
                "readings": {"type": "array", "items": {"type": "object"}},
                "errors": {"type": "object"}}},
            "Events": {"type": "object", "properties": {
                "site": {"type": "string"}, "start": {"type": "string", "format": "date-time"},
                "end": {"type": "string", "format": "date-time"},
                "events": {"type": "array", "items": {"type": "object", "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "t": {"type": "number"},
                    "kind": {"type": "string", "enum": ["device", "pue"]},
                    "subject": {"type": "string", "description": "device id or PUE window"},
                    "name": {"type": "object", "description": "{vi, en} of the subject"},
                    "state": {"type": "string", "enum": ["up", "degraded", "down", "over",
                                                         "within"]},
                    "value": NULLABLE_NUMBER,
                    "detail": {"type": "string", "nullable": True}}}}}},
            "DevicePower": {"type": "object", "properties": {
                "t": {"type": "array", "items": {"type": "number"}},
                "power_kw": {"type": "array", "items": NULLABLE_NUMBER},
                "coverage": {"type": "array", "items": {"type": "number"}}}},
        }},
    }
