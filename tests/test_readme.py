"""The README's configuration example is a valid configuration."""

from __future__ import annotations

import re
from pathlib import Path

from pue_monitor.config.loader import load_config
from pue_monitor.config.profiles import load_profiles

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_config_example_loads(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    example = next(block for block in re.findall(r"```yaml\n(.*?)```", text, re.S)
                   if "sites:" in block)
    path = tmp_path / "example.yaml"
    path.write_text(example.replace('"…"', '"x"'), encoding="utf-8")
    monkeypatch.setenv("QV_SNMP_COMMUNITY", "s3cret")
    config = load_config(path)
    devices = {d.id: d for _, d in config.devices()}
    assert devices["qv-ups-1"].snmp.community.get_secret_value() == "s3cret"
    assert devices["qv-chiller"].share == 0.8


def test_readme_lists_every_snmp_profile():
    text = README.read_text(encoding="utf-8")
    section = text.split("### Supported SNMP families", 1)[1].split("**Speed**", 1)[0]
    listed = set(re.findall(r"^\| [^|]+ \| [^|]+ \| `([a-z0-9_]+)` \|", section, re.M))
    snmp = {n for n, p in load_profiles().items() if p.protocol == "snmp"}
    assert listed == snmp


def test_readme_lists_every_modbus_profile():
    text = README.read_text(encoding="utf-8")
    section = text.split("### Supported Modbus families", 1)[1]
    section = section.split("`pue-monitor probe URL", 1)[0]
    listed = set(re.findall(r"^\| [^|]+ \| [^|]+ \| `([a-z0-9_]+)` \|", section, re.M))
    modbus = {n for n, p in load_profiles().items() if p.protocol == "modbus"}
    assert listed == modbus
