"""The Grafana dashboard asks only for what the monitor really produces.

PromQL: every `pue_monitor_*` name is one the /metrics collector yields for a document with
every field, and every expression parses (promtool, with the dashboard variables filled in).
Flux: every measurement, field and tag is one the InfluxDB writer (exchange/influx.py) writes,
taken from points it encodes here, not from a list kept by hand.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pue_monitor.exchange.influx import INTERVAL_ENERGY, SITE_PUE, interval_energy_line, province_lines
from pue_monitor.store.sqlite import Store
from tests.test_metrics import sample_document, scrape
from tests.tools import require_tool
from tests.web_fixtures import NOW, demo_config, fill

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
METRIC_NAME = re.compile(r"\bpue_monitor_[a-z_]+")
# Dashboard variables, filled with values a real scrape has, so that promtool can parse.
VARIABLES = {"$__rate_interval": "1m", "$site": ".*", "$window": "24h"}
FLUX_MEASUREMENT = re.compile(r'r\._measurement\s*==\s*"([^"]+)"')
FLUX_FIELD = re.compile(r'r\._field\s*==\s*"([^"]+)"')
FLUX_TAG = re.compile(r'r\.([a-z][a-z_]*)\s*==')


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return out


def targets(kind: str) -> list[tuple[str, dict]]:
    """(dashboard:panel title, target) of every target on a datasource of `kind`."""
    out = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                source = target.get("datasource") or panel.get("datasource")
                if source["type"] == kind:
                    out.append((f"{path.name}:{panel['title']}", target))
    return out


def datasources() -> dict[str, dict]:
    files = sorted((GRAFANA / "provisioning" / "datasources").glob("*.yml"))
    return {s["uid"]: s for f in files
            for s in yaml.safe_load(f.read_text(encoding="utf-8"))["datasources"]}


def line_protocol_schema(lines: list[str]) -> dict[str, tuple[set, set]]:
    """{measurement: (tag keys, field keys)} from line protocol (no escaped spaces here)."""
    schema: dict[str, tuple[set, set]] = {}
    for line in lines:
        series, fields, _ts = line.rsplit(" ", 2)
        measurement, *tags = series.split(",")
        tag_keys, field_keys = schema.setdefault(measurement, (set(), set()))
        tag_keys.update(t.split("=", 1)[0] for t in tags)
        field_keys.update(f.split("=", 1)[0] for f in fields.split(","))
    return schema


@pytest.fixture(scope="module")
def influx_schema(tmp_path_factory) -> dict[str, tuple[set, set]]:
    store = Store.open(tmp_path_factory.mktemp("influx") / "data")
    try:
        fill(store)
        lines = province_lines(store, demo_config(), NOW)
    finally:
        store.close()
    lines.append(interval_energy_line("s1", "d1", "it", NOW - 900, NOW, 1.5, 900.0, "counter"))
    return line_protocol_schema(lines)


def test_there_is_a_dashboard_with_both_kinds_of_query():
    assert DASHBOARDS
    assert targets("prometheus") and targets("influxdb")


def test_panels_use_provisioned_datasources():
    known = datasources()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            for target in panel["targets"]:
                source = target.get("datasource") or panel["datasource"]
                assert source["uid"] in known, f"{panel['title']}: unknown datasource {source}"
                assert known[source["uid"]]["type"] == source["type"]


@pytest.mark.parametrize(("where", "target"), targets("prometheus"),
                         ids=[w for w, _ in targets("prometheus")])
def test_promql_names_only_exported_metrics(where, target):
    exported = set(scrape(sample_document()))
    named = set(METRIC_NAME.findall(target["expr"]))
    assert named, f"{where}: no pue_monitor_ metric in {target['expr']}"
    assert named <= exported, f"{where}: not exported: {named - exported}"


def test_template_variables_query_exported_metrics():
    exported = set(scrape(sample_document()))
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text(encoding="utf-8"))["templating"]["list"]:
            if variable["type"] == "query":
                assert set(METRIC_NAME.findall(variable["definition"])) <= exported


@pytest.mark.integration
def test_promql_parses(tmp_path):
    promtool = require_tool("promtool")
    rules = []
    for i, (_where, target) in enumerate(targets("prometheus")):
        expr = target["expr"]
        for name, value in VARIABLES.items():
            expr = expr.replace(name, value)
        assert "$" not in expr, f"unfilled variable in {expr}"
        rules.append({"record": f"dashboard:expr_{i}", "expr": expr})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}),
                    encoding="utf-8")
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("where", "target"), targets("influxdb"),
                         ids=[w for w, _ in targets("influxdb")])
def test_flux_names_what_the_writer_writes(where, target, influx_schema):
    query = target["query"]
    bucket = re.search(r'from\(bucket:\s*"([^"]+)"\)', query).group(1)
    assert bucket == datasources()["influxdb"]["jsonData"]["defaultBucket"], where
    measurements = set(FLUX_MEASUREMENT.findall(query))
    assert measurements and measurements <= set(influx_schema), where
    tags = set().union(*(influx_schema[m][0] for m in measurements))
    fields = set().union(*(influx_schema[m][1] for m in measurements))
    assert set(FLUX_FIELD.findall(query)) <= fields, where
    assert set(FLUX_TAG.findall(query)) - {"_measurement", "_field"} <= tags, where


def test_the_schema_is_read_from_real_points(influx_schema):
    # Guards the parser above: it must find the writer's own measurements and fields.
    assert {SITE_PUE, INTERVAL_ENERGY} <= set(influx_schema)
    assert {"pue", "threshold"} <= influx_schema[SITE_PUE][1]
    assert {"site", "window"} <= influx_schema[SITE_PUE][0]
    assert "energy_kwh" in influx_schema[INTERVAL_ENERGY][1]
