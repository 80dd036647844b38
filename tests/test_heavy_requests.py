"""Heavy requests cannot lock everyone out (issue 16): with four 100-year reports being
computed on the product's own WSGI server, /metrics answers every scrape in under a
second, /healthz and the overview answer, and a fifth report gets 503 with Retry-After
and a message in both languages. Closing the server stops the reports under way."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import yaml

from pue_monitor.config import load_config_text
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from pue_monitor.web.server import WebServer
from tests.conftest import DEMO
from tests.web_fixtures import NOW, fill

HEAVY = 4  # reports in flight at once, as in the "Done when"
RETRY_AFTER_S = 30
# Each of these alone takes tens of seconds on the filled demo store (all three sites,
# 1200 months each): all four are still running while /metrics is scraped.
REPORT = "/reports/view?site=all&period=1970-01-01..2070-01-01&format=json"
SCRAPES = 20
SCRAPE_EVERY_S = 0.2
# The bound: Prometheus's default scrape timeout is 10 s, "monitor down" pages
# come from failed scrapes; under a second leaves a wide margin on a shared CI machine.
SCRAPE_LIMIT_S = 1.0
WAIT_S = 60.0  # bound on every wait of this test (a client's socket timeout too)


def heavy_config():
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw["max_report_years"] = 100
    raw["web"]["limits"] = {"heavy_concurrent": HEAVY, "retry_after_s": RETRY_AFTER_S,
                            "heavy_timeout_s": 600}
    return load_config_text(yaml.safe_dump(raw, allow_unicode=True), env={})


def get(base: str, path: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(base + path, timeout=WAIT_S) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as answer:
        return answer.code, dict(answer.headers), answer.read()


def in_flight(base: str) -> float:
    _, _, body = get(base, "/metrics")
    line = next(x for x in body.decode().splitlines()
                if x.startswith("pue_monitor_web_heavy_in_flight "))
    return float(line.split()[1])


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {WAIT_S} s"
        time.sleep(0.1)


def test_four_long_reports_leave_metrics_healthz_and_the_overview_answering(tmp_path):
    store = Store.open(tmp_path / "data")
    fill(store)
    app = create_app(heavy_config(), store, clock=lambda: NOW)
    server = WebServer(app, "127.0.0.1", 0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    outcomes: list[object] = []

    def report() -> None:
        try:
            outcomes.append(get(base, REPORT)[0])
        except OSError as exc:  # the server closed under it at the end of the test
            outcomes.append(type(exc).__name__)

    clients = [threading.Thread(target=report, daemon=True) for _ in range(HEAVY)]
    try:
        for client in clients:
            client.start()
        wait_until(lambda: in_flight(base) == HEAVY, f"{HEAVY} reports in flight")

        status, headers, body = get(base, REPORT)
        assert status == 503 and headers["Retry-After"] == str(RETRY_AFTER_S)
        error = json.loads(body)["error"]
        assert error == {
            "vi": "Máy chủ đang lập các báo cáo dài khác: hãy thử lại sau "
                  f"{RETRY_AFTER_S} giây",
            "en": f"The server is busy with other long reports: try again in {RETRY_AFTER_S} s"}

        took = []
        for _ in range(SCRAPES):
            start = time.monotonic()
            status, _, body = get(base, "/metrics")
            took.append(time.monotonic() - start)
            assert status == 200 and b"pue_monitor_web_heavy_refused_total 1.0" in body
            time.sleep(SCRAPE_EVERY_S)
        print(f"/metrics with {HEAVY} reports in flight: {SCRAPES} scrapes, slowest "
              f"{max(took) * 1000:.0f} ms, median {sorted(took)[SCRAPES // 2] * 1000:.0f} ms")
        assert max(took) < SCRAPE_LIMIT_S, took
        assert get(base, "/healthz")[:1] == (200,)
        status, _, page = get(base, "/")
        assert status == 200 and b"<html" in page
        # still all four: the scrapes above really ran beside them
        assert in_flight(base) == HEAVY and outcomes == []
    finally:
        server.stop()
    heavy = app.extensions["pue_monitor"].heavy
    wait_until(lambda: heavy.in_flight == 0, "the reports stopped after the server closed")
    for client in clients:
        client.join(WAIT_S)
    assert len(outcomes) == HEAVY
    store.close()
