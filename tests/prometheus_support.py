"""Shared by the end-to-end tests that run a real Prometheus (and Alertmanager) beside the
simulator and monitor processes: free ports beside the province's, the Prometheus
configuration and command line, queries, bounded waits and the simulator's fault knob."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, free_port
from tests.test_end_to_end import get

RULES = ROOT / "alerts" / "pue-monitor.rules.yml"
WAIT_S = 90  # bound on every wait
# A status document or a query takes a while on a loaded machine (other engineers' tests
# share its two cores); a slow answer is not a failure.
HTTP_TIMEOUT_S = 15.0


def get_json(url: str) -> dict:
    return json.loads(get(url, HTTP_TIMEOUT_S))


def ports_beside(raw: dict, *names: str) -> dict[str, int]:
    """A free port for each name, none of them one the province's devices or control use."""
    taken = {raw["simulation"]["control_port"]} | {
        (d.get("snmp") or d.get("modbus"))["port"] for s in raw["sites"] for d in s["devices"]}
    ports = {}
    for name in names:
        ports[name] = free_port(avoid=taken)
        taken.add(ports[name])
    return ports


def write_prometheus_config(tmp_path: Path, monitor_port: int, rule_file: str,
                            alertmanager_port: int | None = None) -> Path:
    """prometheus.yml: scrape the monitor and evaluate the rules every second."""
    config: dict = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [rule_file],
        "scrape_configs": [{"job_name": "pue-monitor", "static_configs": [
            {"targets": [f"127.0.0.1:{monitor_port}"]}]}],
    }
    if alertmanager_port is not None:
        config["alerting"] = {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def prometheus_command(binary: str, tmp_path: Path, port: int) -> list[str]:
    return [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--rules.alert.resend-delay=1s"]


def spawn(command: list[str], log_path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def prom_query(prometheus: str, query: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    answer = get_json(url)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def firing(prometheus: str, name: str, **labels: str) -> list[dict]:
    """The alerts named ``name`` with these labels that Prometheus has firing now."""
    alerts = get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["labels"].get("alertname") == name
            and a["state"] == "firing"
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def rules_loaded_and_healthy(prometheus: str) -> bool:
    """Every rule of the real file loaded, and evaluating without error."""
    real = {r["alert"] for g in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
            for r in g["rules"]}
    groups = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    return set(loaded) == real and all(r.get("health") == "ok" for r in loaded.values())


def wait_until(what: str, check, timeout: float = WAIT_S, logs=()):
    """check()'s first truthy result within timeout, else fail showing the process logs.
    A request that fails or times out (a server still starting, or slow) counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}"
                      for p in logs if p.exists())
    pytest.fail(f"{what}: not within {timeout} s\n{tails}", pytrace=False)


def fault(control: str, device: str, body: dict | None) -> None:
    """Set a simulator fault on a device (``body``), or clear its faults (None)."""
    request = urllib.request.Request(
        f"{control}/faults/{device}", method="DELETE" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=3).read()  # noqa: S310 (loopback only)
