"""The Prometheus alert rules in alerts/: promtool checks them, and their unit tests pass."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.tools import REQUIRE_TOOLS_ENV, require_tool

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "alerts" / "pue-monitor.rules.yml"
RULE_TESTS = ROOT / "alerts" / "tests" / "pue-monitor.test.yml"

SEVERITIES = {"warning", "critical"}
ANNOTATIONS = (
    "summary_vi",
    "summary_en",
    "description_vi",
    "description_en",
    "check_first_vi",
    "check_first_en",
)
# The monitor's metrics that the rules may use (web/metrics.py exports these among others);
# a rule naming anything else has a typo or relies on a metric nobody agreed to keep.
EXPORTED_METRICS = {
    "pue_monitor_pue",
    "pue_monitor_pue_threshold",
    "pue_monitor_pue_compliant",
    "pue_monitor_pue_status",
    "pue_monitor_pue_coverage_ratio",
    "pue_monitor_device_up",
    "pue_monitor_device_last_success_timestamp_seconds",
}
METRIC_NAME = re.compile(r"pue_monitor_[a-z_]+")
PROMTOOL_TIMEOUT_S = 60


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def run_promtool(*args: str) -> None:
    promtool = require_tool("promtool")
    command = [promtool, *args]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=PROMTOOL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(command)} took more than {exc.timeout} s", pytrace=False)
    assert done.returncode == 0, (
        f"{' '.join(command)} exited with {done.returncode}\n"
        f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    )


# --- promtool -------------------------------------------------------------------------------


@pytest.mark.integration
def test_promtool_check_rules():
    run_promtool("check", "rules", str(RULES.relative_to(ROOT)))


@pytest.mark.integration
def test_promtool_rule_unit_tests():
    run_promtool("test", "rules", str(RULE_TESTS.relative_to(ROOT)))


# --- the rule file itself, without promtool ---------------------------------------------------


def test_group_is_pue_monitor_and_holds_only_alerts():
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    assert [group["name"] for group in groups] == ["pue-monitor"]
    rules = alert_rules()
    assert rules, "no rules in the pue-monitor group"
    for rule in rules:
        assert "alert" in rule, f"not an alerting rule: {rule}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule.get("alert", "?"))
def test_rule_has_severity_and_bilingual_annotations(rule):
    assert rule.get("labels", {}).get("severity") in SEVERITIES
    annotations = rule.get("annotations", {})
    for key in ANNOTATIONS:
        value = annotations.get(key)
        assert isinstance(value, str) and value.strip(), f"{rule['alert']}: {key} is empty"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule.get("alert", "?"))
def test_rule_names_only_exported_metrics(rule):
    # Query templates in the annotations name metrics too, so look there as well.
    texts = [rule["expr"], *rule.get("annotations", {}).values()]
    named = {name for text in texts for name in METRIC_NAME.findall(text)}
    unknown = named - EXPORTED_METRICS
    assert not unknown, f"{rule['alert']} names metrics the monitor does not export: {unknown}"


def test_every_rule_has_a_firing_and_a_quiet_unit_test():
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    checks = [check for case in cases for check in case.get("alert_rule_test", [])]
    for rule in alert_rules():
        name = rule["alert"]
        mine = [check for check in checks if check["alertname"] == name]
        assert any(check.get("exp_alerts") for check in mine), f"{name}: no test where it fires"
        assert any(not check.get("exp_alerts") for check in mine), f"{name}: no quiet test"


# --- tests/tools.py ----------------------------------------------------------------------------


def test_require_tool_returns_the_path(tmp_path, monkeypatch):
    tool = tmp_path / "fake-tool"
    tool.write_text("#!/bin/sh\n", encoding="utf-8")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_tool("fake-tool") == str(tool)


def test_require_tool_skips_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(REQUIRE_TOOLS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-tool"):
        require_tool("no-such-tool")


def test_require_tool_fails_when_missing_and_required(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no-such-tool.*PUE_MONITOR_REQUIRE_TOOLS=1"):
        require_tool("no-such-tool")
