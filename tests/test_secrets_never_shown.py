"""Secrets are never shown: the demo province run as real processes with every secret the
configuration takes set to a marker string (the SNMP community, an SNMPv3 user's
authentication and privacy keys, the web session key, the scrape token, the InfluxDB
token, the central link's token from the environment) and an admin whose password and API
token are known to the test. The simulator serves the devices with that community; the
InfluxDB server and the central are unreachable, so their errors are logged too.

Then no marker may appear in: any log line of the monitor or the simulator; any answer of
the web server read as the admin (every page and API document of the OpenAPI list on
every site and device, /metrics, reports as HTML, JSON and CSV, a failed log-in with a
marked password); the output of check-config, probe --json on an unreachable device given
the community and keys in its URL, and report in every format; the site definition the
edge sends to the central; any file in the data directory (the store, the outboxes).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from pue_monitor.central.sitedef import definition_sites
from pue_monitor.config import load_config
from pue_monitor.simulator.ports import free_port, write_raw
from pue_monitor.web.openapi import openapi_document
from tests.conftest import demo_on_free_ports
from tests.fault_support import Monitor, Process, polls_stored, reap, simulator, until
from tests import suite_figures

pytestmark = pytest.mark.integration

PREFIX = "sEcReT"  # every marker starts with it: a marker cut short is still found
MARKERS = {
    "PUE_DEMO_COMMUNITY": f"{PREFIX}Community7731",
    "S_V3_AUTH": f"{PREFIX}AuthKey7732",
    "S_V3_PRIV": f"{PREFIX}PrivKey7733",
    "PUE_CENTRAL_TOKEN": f"{PREFIX}CentralToken7734",
    "S_WEB_KEY": f"{PREFIX}WebSessionKey7735-0123456789abcdef",
    "S_SCRAPE": f"{PREFIX}ScrapeToken7736",
    "S_INFLUX": f"{PREFIX}InfluxToken7737",
}
PASSWORD = f"{PREFIX}Password7738"
V3_DEVICE = "prov-ups-b"  # an SNMP device of the demo, asked with SNMPv3 here
POLLS_WANTED = 40
CLI_TIMEOUT_S = 120
HTTP_TIMEOUT_S = 30.0


def cli(*args: str, stdin: str | None = None, env: dict | None = None) -> str:
    """Standard output and error of one command (whatever its exit code)."""
    done = subprocess.run([sys.executable, "-m", "pue_monitor", *args], input=stdin,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env)
    return done.stdout + done.stderr


def secrets_in(text: str, token: str) -> list[str]:
    """What of the secrets ``text`` shows (each marker's common prefix, the API token)."""
    return [s for s in (PREFIX, token) if s and s in text]


class DebugMonitor(Monitor):
    """`pue-monitor --log-level DEBUG run`: every log line the monitor can write."""

    def __init__(self, config: Path, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        Process.__init__(self, ["--log-level", "DEBUG", "run", "-c", str(config), "--port",
                                str(self.port), "--data-dir", str(data_dir)], log)


def province(tmp_path: Path) -> tuple[Path, dict]:
    path, raw = demo_on_free_ports(tmp_path, interval_s=2.0)
    for site in raw["sites"]:
        for device in site["devices"]:
            if device["id"] == V3_DEVICE:
                device["snmp"] = {**device["snmp"], "version": 3, "user": "pue",
                                  "auth_protocol": "sha", "auth_key": "${S_V3_AUTH}",
                                  "priv_protocol": "aes", "priv_key": "${S_V3_PRIV}"}
    raw["web"] = {"login": True, "secret_key": "${S_WEB_KEY}",
                  "scrape": {"token": "${S_SCRAPE}"}}
    raw["influxdb"] = {"url": f"http://127.0.0.1:{free_port()}", "org": "o", "bucket": "b",
                       "token": "${S_INFLUX}", "timeout_s": 1}
    raw["central"] = {"url": f"http://127.0.0.1:{free_port()}",
                      "token_env": "PUE_CENTRAL_TOKEN", "timeout_s": 1}
    write_raw(raw, path)
    return path, raw


class Browser:
    """GETs as the admin (API token), and a log-in form with its cookie."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.seen: dict[str, str] = {}

    def get(self, path: str, headers: dict | None = None) -> tuple[int, str]:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {self.token}",
                                       **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:  # noqa: S310
                status, body = answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            with exc:
                status, body = exc.code, exc.read().decode("utf-8", "replace")
        self.seen[f"GET {path}"] = body
        return status, body

    def log_in(self) -> list[int]:
        """A log-in with a marked wrong password, then the admin's own: the statuses; the
        pages answered kept."""
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        statuses = []
        for password in (PASSWORD + "-wrong", PASSWORD):
            with opener.open(self.base + "/login", timeout=HTTP_TIMEOUT_S) as page:
                csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                                 page.read().decode()).group(1)
            form = urllib.parse.urlencode({"user": "admin", "password": password,
                                           "csrf_token": csrf}).encode()
            try:
                with opener.open(self.base + "/login", form, timeout=HTTP_TIMEOUT_S) as answer:
                    statuses.append(answer.status)
                    body = answer.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as exc:
                with exc:
                    statuses.append(exc.code)
                    body = exc.read().decode("utf-8", "replace")
            self.seen[f"POST /login ({len(statuses)})"] = body
            # with the session: the pages a logged-in admin sees
            with opener.open(self.base + "/", timeout=HTTP_TIMEOUT_S) as page:
                self.seen[f"GET / with a session ({len(statuses)})"] = page.read().decode()
        return statuses


def walk(browser: Browser, config, period: str) -> int:
    """Every GET of the OpenAPI document on every site and device, reports in every
    format, /metrics with and without the scrape token; the number of answers read."""
    sites = [s.id for s in config.sites]
    devices = [d.id for _, d in config.devices()]
    for path, item in openapi_document()["paths"].items():
        if "get" not in item or path == "/reports/view":  # below, with its parameters
            continue
        if "{site_id}" in path:
            targets = [path.replace("{site_id}", s) for s in sites]
        elif "{device_id}" in path:
            targets = [path.replace("{device_id}", d) for d in devices]
        else:
            targets = [path]
        for target in targets:
            status, body = browser.get(target)
            assert status == 200, (target, status, body[:300])  # read as the admin
    for site in [*sites, "all"]:
        for form in ("html", "json", "csv"):
            query = urllib.parse.urlencode({"site": site, "period": period, "format": form})
            status, body = browser.get(f"/reports/view?{query}")
            assert status == 200, (site, form, status, body[:300])
    browser.get("/metrics", {"Authorization": f"Bearer {MARKERS['S_SCRAPE']}"})
    return len(browser.seen)


@pytest.mark.timeout(600)
def test_no_secret_in_logs_pages_documents_reports_or_files(tmp_path, monkeypatch):
    for name, value in MARKERS.items():
        monkeypatch.setenv(name, value)  # the monitor and the simulator inherit them
    env = dict(os.environ)
    path, raw = province(tmp_path)
    data = tmp_path / "data"
    outputs: dict[str, str] = {}
    outputs["check-config"] = cli("check-config", "-c", str(path), env=env)
    assert "sEcReT" not in outputs["check-config"]
    outputs["user add"] = cli("user", "-c", str(path), "--data-dir", str(data), "add",
                              "admin", "--role", "admin", stdin=PASSWORD + "\n", env=env)
    made = cli("user", "-c", str(path), "--data-dir", str(data), "token", "admin",
               "--label", "walk", env=env)
    token = re.search(r"pue_\S+", made).group(0)  # shown once, here, by design

    config = load_config(path, env=env)
    try:
        with simulator(path, raw["simulation"]["control_port"], tmp_path / "sim.log"):
            monitor = DebugMonitor(path, data, tmp_path / "monitor.log")
            monitor.wait_ready()
            until(f"{POLLS_WANTED} polls stored", lambda: polls_stored(data) >= POLLS_WANTED,
                  120, monitor.proc, monitor.log)
            browser = Browser(monitor.url, token)
            answers = walk(browser, config, "12m")
            # refused (the form again, with its message), then in (the overview)
            assert browser.log_in() == [401, 200]
            monitor.stop()
        logs = {"monitor log": monitor.output,
                "simulator log": (tmp_path / "sim.log").read_text(errors="replace")}
    finally:
        reap()
    # the simulator's agents answered the marked community: the secrets were in use
    assert re.search(r'device_up\{[^}]*device="prov-ups-a"[^}]*\} 1\.0',
                     browser.seen["GET /metrics"]), "prov-ups-a is not up"

    community, auth, priv = (MARKERS[k] for k in ("PUE_DEMO_COMMUNITY", "S_V3_AUTH",
                                                  "S_V3_PRIV"))
    closed = free_port()
    outputs["probe v2c"] = cli("probe", "--json", "--timeout", "1",
                               f"snmp://127.0.0.1:{closed}?version=2c&community={community}",
                               env=env)
    outputs["probe v3"] = cli(
        "probe", "--json", "--timeout", "1",
        f"snmp://pue@127.0.0.1:{closed}?version=3&auth_protocol=sha&auth_key={auth}"
        f"&priv_protocol=aes&priv_key={priv}", env=env)
    for form in ("json", "csv", "html"):
        outputs[f"report {form}"] = cli("report", "-c", str(path), "--data-dir", str(data),
                                        "--site", "all", "--period", "12m",
                                        "--format", form, env=env)
    outputs["site definition"] = json.dumps(definition_sites(config), ensure_ascii=False)
    files = {str(f.relative_to(data)): f.read_bytes().decode("latin-1")
             for f in data.rglob("*") if f.is_file()}

    shown = {where: secrets_in(text, token)
             for where, text in {**logs, **outputs, **browser.seen, **files}.items()}
    assert {where: found for where, found in shown.items() if found} == {}
    suite_figures.count("secrets never shown", places_searched=len(shown),
           log_lines=sum(text.count("\n") for text in logs.values()),
           http_answers=len(browser.seen), files=len(files),
           secrets_found=sum(map(len, shown.values())))
    # the walk read what it should: readings on the pages, the reports, the files
    assert answers > 40 and '"pue"' in outputs["report json"]
    assert any(name.endswith(".sqlite3") for name in files)
