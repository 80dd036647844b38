"""The overview page in real headless Chromium: the refresh script runs, fetches the
status document and renders every live field exactly as the server did."""

from __future__ import annotations

import json
import os
import re
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
# Screenshots CI keeps: $PUE_ARTIFACTS, else build/test-artifacts (build/ is gitignored).
ARTIFACTS_ENV = "PUE_ARTIFACTS"
DEFAULT_ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"


def artifact(name: str) -> Path:
    """Where a screenshot worth keeping goes (the folder made if needed)."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or DEFAULT_ARTIFACTS) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
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
    ("mark", {"windows": {"12m": {"compliant": True}}, "year_at_risk": {"at_risk": False}}),
    ("mark", {"windows": {"12m": {"compliant": True}}, "year_at_risk": {"at_risk": True}}),
    ("mark", {"windows": {"12m": {"compliant": False}}, "year_at_risk": None}),
    ("mark", {"windows": {"12m": {"compliant": None}}}), ("mark", {"windows": {}}),
    ("mark", None),
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


# -- the pages with charts, over months of stored blocks ----------------------------------

class Marked(HTMLParser):
    """Text of the elements carrying ``attr``, and every element's attributes by id."""

    def __init__(self, attr: str) -> None:
        super().__init__()
        self.attr, self.text, self.by_id = attr, {}, {}
        self.canvases, self._open = 0, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.canvases += tag == "canvas"
        if "id" in a:
            self.by_id[a["id"]] = a
        if self.attr in a:
            self._open = a[self.attr]
            self.text[self._open] = ""

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self.text[self._open] += data


def run_page(url: str, profile: Path, shot: Path | None = None) -> tuple[str, list[str]]:
    """The DOM after scripts ran and the page's console messages (Chromium logs them to
    stderr with --enable-logging); with ``shot``, a screenshot of the page as well."""
    chromium = require_tool("chromium")
    done = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
         "--enable-logging=stderr", "--v=0", "--dump-dom", url],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    if shot is not None:
        taken = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
             "--hide-scrollbars", "--window-size=1280,2200", f"--screenshot={shot}", url],
            capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
        assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    return done.stdout, console


@pytest.fixture(scope="module")
def history_server(tmp_path_factory):
    from tests.web_history import fill_history
    store = Store.open(tmp_path_factory.mktemp("history"))
    config = demo_config()
    fill_history(store, config)
    fill(store)
    web = WebServer(create_app(config, store, clock=lambda: NOW), "127.0.0.1", 0)
    web.start()
    yield f"http://127.0.0.1:{web.port}"
    web.stop()
    store.close()


def api(server: str, path: str) -> dict:
    import urllib.request
    with urllib.request.urlopen(f"{server}{path}", timeout=30) as answer:  # noqa: S310
        return json.loads(answer.read())


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_overview_province_and_sparklines(history_server, tmp_path, lang):
    dom, console = run_page(f"{history_server}/?lang={lang}", tmp_path / "chromium",
                            artifact(f"overview-{lang}.png"))
    assert console == []
    page = Marked("data-spark")
    page.feed(dom)
    province = api(history_server, "/api/v1/province")
    assert len(page.text) == province["total"] == 3
    # A sparkline per site, each drawn from the API's 30 daily points.
    sparks = re.findall(r'class="spark[^"]*" data-spark="([^"]+)"[^>]*data-points="(\d+)"', dom)
    assert [int(n) for _, n in sparks] == [
        len(api(history_server, url)["points"]) for url, _ in sparks] == [30, 30, 30]
    assert page.canvases >= 3
    assert page.by_id["province-pue"] is not None
    shown = re.search(r'id="province-pue">([^<]*)<', dom).group(1)
    assert shown == pyfmt.field(province, "pue", "pue", lang)
    green = re.search(r'id="province-green">([^<]*)<', dom).group(1)
    assert green == strings(lang)["prov.green"].format(n=province["green"], m=province["total"])


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_site_page_charts_and_numbers(history_server, tmp_path, lang):
    dom, console = run_page(f"{history_server}/sites/bn-provincial?lang={lang}",
                            tmp_path / "chromium", artifact(f"site-{lang}.png"))
    assert console == []
    page = Marked("data-api")
    page.feed(dom)
    site = api(history_server, "/api/v1/sites/bn-provincial")
    for key, text in page.text.items():
        fmt = {"coverage": "pct", "mark": "mark"}.get(key.rsplit(".", 1)[-1], "pue")
        assert text.strip() == pyfmt.field(site, "" if key == "mark" else key, fmt, lang), key
    pue = api(history_server, "/api/v1/sites/bn-provincial/pue?range=day")
    months = api(history_server, "/api/v1/sites/bn-provincial/months?year=2026")
    charts = {a["id"]: a for a in page.by_id.values() if a.get("data-chart")}
    assert {k: (v.get("data-state"), v.get("data-points")) for k, v in charts.items()} == {
        "chart-pue": ("drawn", str(len(pue["points"]))),
        "chart-power": ("drawn", str(len(pue["points"]))),
        "chart-months": ("drawn", "12")}
    assert page.canvases >= 3
    shown = Marked("data-api-months")
    shown.feed(dom)
    for key, text in shown.text.items():
        if key.startswith("months."):
            _, index, _ = key.split(".")
            assert text == pyfmt.field(months["months"][int(index)], "pue", "pue", lang)


@pytest.mark.parametrize(("device", "lang"), [("prov-incomer", "vi"), ("qv-pdu-02", "en")])
def test_device_page(history_server, tmp_path, device, lang):
    dom, console = run_page(f"{history_server}/devices/{device}?lang={lang}",
                            tmp_path / "chromium", artifact(f"device-{device}-{lang}.png"))
    assert console == []
    page = Marked("data-api")
    page.feed(dom)
    doc = api(history_server, f"/api/v1/devices/{device}")
    assert page.text["state"] == strings(lang)["state." + doc["state"]]
    assert page.text["errors"] == pyfmt.errors(doc["errors"], lang)
    for i, reading in enumerate(doc["readings"]):
        assert page.text[f"readings.{i}.value"] == pyfmt.number(reading["value"], 3, lang)
    chart = page.by_id["chart-device"]
    power = api(history_server, f"/api/v1/devices/{device}/power?range=day")
    assert (chart.get("data-state"), chart.get("data-points")) == ("drawn",
                                                                   str(len(power["t"])))
    assert page.canvases >= 1


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_not_found_page_in_the_site_style(history_server, tmp_path, lang):
    dom, console = run_page(f"{history_server}/sites/atlantis?lang={lang}",
                            tmp_path / "chromium")
    assert console == []
    assert strings(lang)["error.404"] in dom and 'href="/static/style.css"' in dom


def test_province_table_sorts(history_server, tmp_path):
    import urllib.request
    with urllib.request.urlopen(f"{history_server}/?lang=en", timeout=30) as answer:  # noqa: S310
        html = answer.read().decode()
    html = re.sub(r'(src|href)="/static/', rf'\1="{history_server}/static/', html)
    html = html.replace('data-api="/api/v1/status"', f'data-api="{history_server}/api/v1/status"')
    html = html.replace('data-spark="/', f'data-spark="{history_server}/')
    # Click "Live" once (ascending) and again (descending); rows without a figure stay last.
    html = html.replace("</body>", """<pre id="order"></pre><script>
window.addEventListener("load", () => {
  const th = document.querySelectorAll("#province-table th")[1];
  const order = () => [...document.querySelectorAll("#province-table tbody tr")]
    .map((r) => r.dataset.site).join(",");
  th.click(); const up = order(); th.click();
  document.getElementById("order").textContent = up + " " + order();
});
</script></body>""")
    page = tmp_path / "sort.html"
    page.write_text(html, encoding="utf-8")
    dom = dump_dom(page.as_uri(), tmp_path / "chromium")
    order = re.search(r'<pre id="order">([^<]*)</pre>', dom).group(1)
    assert order == ("bn-provincial,que-vo-dc,yen-phong-dc "
                     "que-vo-dc,bn-provincial,yen-phong-dc")


def drawn_after_click(server: str, folder, range_: str, late_day_ms: int = 0) -> str:
    """The site page's PUE and power charts' point counts, 2 s after a click on `range_`;
    with `late_day_ms`, every answer for the "day" range comes back that much later."""
    import urllib.request
    with urllib.request.urlopen(f"{server}/sites/bn-provincial?lang=en",  # noqa: S310
                                timeout=30) as answer:
        html = answer.read().decode()
    html = re.sub(r'(src|href)="/static/', rf'\1="{server}/static/', html)
    html = html.replace('"/api/v1/', f'"{server}/api/v1/')
    if late_day_ms:
        # Before the page's own scripts, so the first ("day") requests go through it.
        html = html.replace("<script ", f"""<script>
const realFetch = window.fetch;
window.fetch = (url, opts) => realFetch(url, opts).then((answer) => (
  String(url).includes("range=day")
    ? new Promise((ok) => setTimeout(() => ok(answer), {late_day_ms})) : answer));
</script><script """, 1)
    html = html.replace("</body>", f"""<pre id="drawn"></pre><script>
window.addEventListener("load", () => {{
  document.querySelector('button[data-range="{range_}"]').click();
  setTimeout(() => {{
    document.getElementById("drawn").textContent = ["chart-pue", "chart-power"]
      .map((id) => document.getElementById(id).dataset.points).join(",");
  }}, {2000 + late_day_ms});
}});
</script></body>""")
    page = folder / "site.html"
    page.write_text(html, encoding="utf-8")
    # A file:// page fetching from the server is cross-origin: allowed for this page only.
    done = subprocess.run(
        [require_tool("chromium"), *FLAGS, f"--user-data-dir={folder / 'chromium'}",
         "--disable-web-security", f"--virtual-time-budget={8000 + late_day_ms}",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    return re.search(r'<pre id="drawn">([^<]*)</pre>', done.stdout).group(1)


@pytest.mark.parametrize(("range_", "points"), [("week", 168), ("year", 12)])
def test_range_buttons_redraw_from_the_api(history_server, tmp_path, range_, points):
    assert drawn_after_click(history_server, tmp_path, range_) == f"{points},{points}"


def test_a_late_answer_never_draws_over_the_range_chosen_after_it(history_server, tmp_path):
    # The page's first ("day") answers arrive after the year's: the year stays drawn.
    assert drawn_after_click(history_server, tmp_path, "year", late_day_ms=1500) == "12,12"
