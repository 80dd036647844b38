"""The overview page in real headless Chromium: the refresh script runs, fetches the
status document and renders every live field exactly as the server did."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pue_monitor.store.sqlite import Store
from tests.tools import require_tool
from tests.web_fixtures import NOW, demo_config, fill
from pue_monitor.web import create_app
from pue_monitor.web import format as pyfmt
from pue_monitor.web.i18n import strings
from pue_monitor.web.server import WebServer

pytestmark = pytest.mark.integration

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
CHROMIUM_TIMEOUT_S = 60
# Flags for a closed network: without the background ones Chromium keeps dialling out.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def dump_dom(url: str, profile: Path, budget_ms: int = 5000) -> str:
    """The DOM after scripts ran (virtual time lets timers and fetches complete)."""
    chromium = require_tool("chromium")
    done = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
         "--dump-dom", url], capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Fields(HTMLParser):
    """Collects (scope, field, fmt, text) of every data-field element, and attributes by id."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[list[str]] = []
        self.by_id: dict[str, dict] = {}
        self._stack: list[tuple[str, str | None]] = []  # (tag, scope label)
        self._open: list[str] | None = None
        self.body: dict = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        scope = a.get("data-device") or a.get("data-site")
        if tag not in ("br", "meta", "link", "input", "img"):
            self._stack.append((tag, scope))
        if "id" in a:
            self.by_id[a["id"]] = a
        if tag == "body":
            self.body = a
        if "data-field" in a:
            where = "/".join(s for _, s in self._stack if s)
            self._open = [where, a["data-field"], a["data-fmt"], ""]
            self.fields.append(self._open)

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1][0] == tag:
            self._stack.pop()
        self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open[3] += data


def parse(html: str) -> Fields:
    parser = Fields()
    parser.feed(html)
    return parser


@pytest.fixture()
def server(tmp_path):
    store = Store.open(tmp_path / "data")
    fill(store)
    web = WebServer(create_app(demo_config(), store, clock=lambda: NOW), "127.0.0.1", 0)
    web.start()
    yield f"http://127.0.0.1:{web.port}"
    web.stop()
    store.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_live_refresh_renders_what_the_server_rendered(server, tmp_path, lang):
    import urllib.request
    with urllib.request.urlopen(f"{server}/?lang={lang}", timeout=5) as answer:  # noqa: S310
        served = parse(answer.read().decode())
    live = parse(dump_dom(f"{server}/?lang={lang}", tmp_path / "chromium"))
    # The script fetched and rendered the document (data-refreshed-at is set only then).
    assert "data-refreshed-at" in live.body and live.by_id["live"]["data-state"] == "on"
    assert len(served.fields) > 100
    assert live.fields == served.fields


def test_refresh_failure_is_shown(server, tmp_path):
    # Point the page at an API path that does not exist: the banner must say so.
    page = tmp_path / "page.html"
    import urllib.request
    with urllib.request.urlopen(f"{server}/?lang=en", timeout=5) as answer:  # noqa: S310
        html = answer.read().decode()
    html = html.replace('data-api="/api/v1/status"', f'data-api="{server}/api/v1/missing"')
    html = html.replace('src="/static/live.js"', f'src="{server}/static/live.js"')
    page.write_text(html, encoding="utf-8")
    live = parse(dump_dom(page.as_uri(), tmp_path / "chromium"))
    assert live.by_id["live"]["data-state"] == "off"


# (formatter, value): edge cases where a JavaScript and a Python formatter could part.
CASES = [
    ("pue", 1.005), ("pue", 1.4), ("pue", 1.395), ("pue", 12345.678), ("pue", -0.001),
    ("pue", None), ("kw", 1234567.85), ("kw", 49.99), ("kwh", 0.05), ("kwh", 1e6 + 0.25),
    ("pct", 0.99949), ("pct", 1.0), ("ms", 0.0125), ("age", 0), ("age", 89.9), ("age", 90),
    ("age", 5399), ("age", 5400), ("age", 172800), ("int", 7), ("text", "PUE2"), ("text", ""),
    ("status", "incomplete"), ("up", True), ("up", None), ("verdict", {"compliant": False}),
    ("verdict", {"compliant": None}), ("errors", {"timeout": 2, "connection": 0, "x": 1}),
    ("errors", {}), ("datetime", "2026-11-25T00:15:00+07:00"),
    ("period", {"start": "2026-11-24T23:45:00+07:00", "end": "2026-11-25T00:00:00+07:00"}),
    ("risk", {"year": 2026, "at_risk": True, "projected_pue": 1.4349}),
    ("risk", {"year": 2026, "at_risk": False, "projected_pue": 1.3}), ("risk", None),
    ("risk", {"year": 2026, "at_risk": True, "projected_pue": 1.47, "basis_days": 45.25,
              "basis_coverage": 0.987}),
    ("risk", {"year": 2026, "at_risk": None, "refused": "too_short", "basis_status": "ok",
              "basis_days": 0.0139, "min_basis_days": 30.0}),
    ("risk", {"year": 2026, "at_risk": None, "refused": "not_judged",
              "basis_status": "invalid", "basis_days": 0.0, "min_basis_days": 30.0}),
    ("risk", {"year": 2026, "at_risk": None, "refused": "no_figure", "min_basis_days": 30.0}),
    ("state", "up"), ("state", "degraded"), ("state", "down"), ("state", None),
]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_javascript_formatters_match_python(tmp_path, lang):
    page = tmp_path / f"formatters-{lang}.html"
    page.write_text(f"""<!doctype html><html><body data-lang="{lang}" data-api="missing.json">
<p id="live"></p><pre id="out"></pre>
<script id="strings" type="application/json">{json.dumps(strings(lang))}</script>
<script src="{(STATIC / 'live.js').as_uri()}"></script>
<script>
const cases = {json.dumps(CASES)};
document.getElementById("out").textContent =
  JSON.stringify(cases.map(([f, v]) => window.pueMonitor.FORMATTERS[f](v)));
</script></body></html>""", encoding="utf-8")
    dom = dump_dom(page.as_uri(), tmp_path / "chromium", budget_ms=1000)
    start = dom.index('<pre id="out">') + len('<pre id="out">')
    from html import unescape
    got = json.loads(unescape(dom[start:dom.index("</pre>", start)]))
    expected = [pyfmt.FORMATTERS[f](v, lang) for f, v in CASES]
    assert got == expected
