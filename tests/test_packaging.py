"""The container files refer to things that exist (no Docker engine runs in CI)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent


def test_compose_builds_from_files_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    named_volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        if "build" in service:
            context = ROOT / (service["build"] if isinstance(service["build"], str)
                              else service["build"].get("context", "."))
            assert (context / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in named_volumes:
                continue
            assert (ROOT / source).exists(), f"{name}: mounts missing {source}"


def test_dockerfile_copies_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.M))
    with (ROOT / "pyproject.toml").open("rb") as f:
        folders = tomllib.load(f)["tool"]["setuptools"]["package-dir"].values()
    for folder in folders:
        assert folder in copied, f"Dockerfile does not copy package folder {folder}"


# --- the full stack: every service's configuration names services that exist -------------------

COMPOSE = ROOT / "docker-compose.yml"
DEMO = ROOT / "config" / "demo.yaml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def mounted(service: str, target: str) -> Path:
    """The repository file that compose mounts at `target` in `service` (or under it)."""
    for volume in compose()["services"][service].get("volumes", []):
        source, inside = volume.split(":")[:2]
        if target == inside or target.startswith(inside.rstrip("/") + "/"):
            return ROOT / source / target[len(inside):].lstrip("/")
    raise AssertionError(f"{service} mounts nothing at {target}")


def host_of(address: str) -> str:
    """'http://influxdb:8086/x' or 'influxdb:8086' -> 'influxdb'."""
    return urlsplit(address if "//" in address else f"//{address}").hostname


def test_stack_has_every_service_of_the_issue():
    assert set(compose()["services"]) >= {"pue-monitor", "simulator", "influxdb", "prometheus",
                                          "alertmanager", "grafana"}


def test_service_references_name_services_that_exist():
    services = compose()["services"]
    for name, service in services.items():
        for other in service.get("depends_on", []):
            assert other in services, f"{name} depends on unknown service {other}"
        mode = service.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.removeprefix("service:") in services, name


def test_prometheus_scrapes_and_alerts_compose_services():
    config = yaml.safe_load(mounted("prometheus", "/etc/prometheus/prometheus.yml")
                            .read_text(encoding="utf-8"))
    services = compose()["services"]
    scrape = {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
              for job in config["scrape_configs"]}
    # The alert rules select job="pue-monitor".
    assert [host_of(t) for t in scrape["pue-monitor"]] == ["pue-monitor"]
    assert [host_of(t) for t in scrape["pue-monitor-central"]] == ["central"]
    alertmanagers = [t for am in config["alerting"]["alertmanagers"]
                     for sc in am["static_configs"] for t in sc["targets"]]
    assert alertmanagers and all(host_of(t) in services for t in alertmanagers)
    assert {host_of(t) for t in alertmanagers} == {"alertmanager"}
    # The rule files it loads are the repository's own, mounted into the container.
    for rule_file in config["rule_files"]:
        assert mounted("prometheus", rule_file) == ROOT / "alerts" / "pue-monitor.rules.yml"


def test_grafana_datasources_point_at_compose_services():
    provisioning = mounted("grafana", "/etc/grafana/provisioning/datasources")
    sources = [s for f in sorted(provisioning.glob("*.yml"))
               for s in yaml.safe_load(f.read_text(encoding="utf-8"))["datasources"]]
    assert {s["type"] for s in sources} == {"prometheus", "influxdb"}
    for source in sources:
        assert host_of(source["url"]) in compose()["services"], source["name"]
    influx = next(s for s in sources if s["type"] == "influxdb")
    assert influx["jsonData"]["version"] == "Flux"
    setup = compose()["services"]["influxdb"]["environment"]
    assert influx["jsonData"]["organization"] == setup["DOCKER_INFLUXDB_INIT_ORG"]
    assert influx["jsonData"]["defaultBucket"] == setup["DOCKER_INFLUXDB_INIT_BUCKET"]
    # The token reaches Grafana from its environment, as the same variable InfluxDB uses.
    variable = influx["secureJsonData"]["token"].strip("${}")
    assert compose()["services"]["grafana"]["environment"][variable] == setup[
        "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]


def test_grafana_dashboard_provider_reads_the_mounted_dashboards():
    provider_dir = mounted("grafana", "/etc/grafana/provisioning/dashboards")
    providers = [p for f in sorted(provider_dir.glob("*.yml"))
                 for p in yaml.safe_load(f.read_text(encoding="utf-8"))["providers"]]
    for provider in providers:
        folder = mounted("grafana", provider["options"]["path"])
        assert sorted(folder.glob("*.json")), f"no dashboard in {folder}"


def test_monitor_config_is_the_demo_province_writing_to_the_influxdb_service(monkeypatch):
    from pue_monitor.config.loader import load_config

    monkeypatch.setenv("INFLUX_TOKEN", "test-token")
    services = compose()["services"]
    paths = []
    for name in ("pue-monitor", "simulator"):
        command = services[name]["command"]
        paths.append(mounted(name, command[command.index("-c") + 1]))
    assert paths[0] == paths[1], "the monitor and the simulator must read the same province"
    ours, demo = load_config(paths[0]), load_config(DEMO)
    assert ours.sites == demo.sites and ours.simulation == demo.simulation
    assert ours.polling == demo.polling
    assert host_of(ours.influxdb.url) == "influxdb" and "influxdb" in services
    setup = services["influxdb"]["environment"]
    assert (ours.influxdb.org, ours.influxdb.bucket) == (
        setup["DOCKER_INFLUXDB_INIT_ORG"], setup["DOCKER_INFLUXDB_INIT_BUCKET"])
    # The monitor serves where Prometheus scrapes it.
    command = services["pue-monitor"]["command"]
    assert command[command.index("--port") + 1] == "8080"
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert services["simulator"]["network_mode"] == "service:pue-monitor"


@pytest.mark.integration
def test_promtool_accepts_the_compose_prometheus_config(tmp_path):
    # Container paths are mapped back to the repository files compose mounts there.
    promtool = require_tool("promtool")
    config = yaml.safe_load(mounted("prometheus", "/etc/prometheus/prometheus.yml")
                            .read_text(encoding="utf-8"))
    config["rule_files"] = [str(mounted("prometheus", f)) for f in config["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerignore_keeps_what_the_dockerfile_copies():
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text(
        encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = [p for line in re.findall(r"^COPY (.+)$", dockerfile, re.M)
              for p in line.split()[:-1]]
    for path in copied:
        for pattern in ignored:
            assert not fnmatch.fnmatch(path, pattern), f"{path} is ignored by {pattern}"
