"""The optional influxdb section: token from the environment, bounds checked, absent by default."""

from __future__ import annotations

import re

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from pue_monitor.config.errors import ConfigError
from pue_monitor.config.loader import load_config_text
from pue_monitor.exchange import influx
from pue_monitor.store.outbox import OutboxState
from tests.web_fixtures import ROOT
from pue_monitor.web.metrics_outbox import OutboxCollector

DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))


def with_influx(section: dict | None) -> str:
    raw = {k: v for k, v in DEMO.items() if k != "simulation"}
    if section is not None:
        raw["influxdb"] = section
    return yaml.safe_dump(raw, allow_unicode=True)


ENV = {"QV_SNMP_COMMUNITY": "public", "INFLUX_TOKEN": "s3cret"}


def load(section: dict | None):
    return load_config_text(with_influx(section), base_dir=ROOT / "config", env=ENV)


def test_absent_section_means_no_writer():
    assert load(None).influxdb is None


def test_section_with_token_from_the_environment_and_defaults():
    cfg = load({"url": "http://influx:8086", "org": "sokhcn", "bucket": "pue",
                "token": "${INFLUX_TOKEN}"}).influxdb
    assert cfg.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(cfg)
    assert (cfg.batch_size, cfg.flush_interval_s, cfg.timeout_s, cfg.pue_interval_s,
            cfg.buffer_max_points) == (5000, 1.0, 10.0, 60.0, 10_000_000)


@pytest.mark.parametrize("change, path", [
    ({"url": "influx:8086"}, "influxdb.url"),
    ({"batch_size": 0}, "influxdb.batch_size"),
    ({"timeout_s": 0}, "influxdb.timeout_s"),
    ({"buffer_max_points": 10}, "influxdb.buffer_max_points"),
    ({"bukket": "pue"}, "influxdb.bukket"),
])
def test_bad_values_are_reported_with_their_path(change, path):
    section = {"url": "http://influx:8086", "org": "o", "bucket": "b", **change}
    with pytest.raises(ConfigError) as err:
        load(section)
    assert path in str(err.value)


def test_readme_influxdb_example_loads_and_names_the_real_measurements():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## InfluxDB"):]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    cfg = load(example["influxdb"]).influxdb
    assert cfg.token.get_secret_value() == "s3cret"
    assert cfg.buffer_max_points == 10_000_000
    documented = set(re.findall(r"^\| `(pue_[a-z_]+)` \|", section, re.M))
    measurements = {n for n in documented if not n.startswith("pue_monitor_")}
    assert measurements == {influx.READING, influx.INTERVAL_ENERGY, influx.SITE_PUE}
    registry = CollectorRegistry()
    registry.register(OutboxCollector(lambda: OutboxState(1, 0.0, 1, 1, 1, 1, 0.0)))
    exposed = {line.split("{")[0].split(" ")[0] for line in
               generate_latest(registry).decode().splitlines() if not line.startswith("#")}
    assert documented - measurements == exposed
