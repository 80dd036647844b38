"""The Prometheus alert rules in alerts/: promtool checks them, and their unit tests pass."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_metrics import sample_document, scrape
from tests.tools import REQUIRE_TOOLS_ENV, require_tool

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "alerts" / "pue-monitor.rules.yml"
RULE_TESTS = sorted((ROOT / "alerts" / "tests").glob("*.test.yml"))
ALERTMANAGER = ROOT / "alerts" / "alertmanager.yml"

SEVERITIES = {"warning", "critical"}
ANNOTATIONS = (
    "summary_vi",
    "summary_en",
    "description_vi",
    "description_en",
    "check_first_vi",
    "check_first_en",
)


def _central_and_link_metrics() -> set[str]:
    """The sample names the central's collector yields (one data center heard, its clock
    flagged) and the edge's link to the central (its outbox collector)."""
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from pue_monitor.central.ingest import Counters, EdgeClock
    from pue_monitor.central.metrics import CentralCollector
    from pue_monitor.store.outbox import OutboxState
    from pue_monitor.web.metrics_outbox import CENTRAL_PREFIX, OutboxCollector

    central = SimpleNamespace(counters=Counters(), clocks={"dc": EdgeClock(2.0, 61.0, True)},
                              started_ts=1.0, service=SimpleNamespace(data_centers=[]))
    registry = CollectorRegistry()
    registry.register(CentralCollector(central))
    registry.register(OutboxCollector(lambda: OutboxState(1, 1.0, 1, 1, 1, 1, 1.0),
                                      lambda: 2.0, prefix=CENTRAL_PREFIX))
    return {s.name for family in text_string_to_metric_families(
        generate_latest(registry).decode()) for s in family.samples}


# The names the collectors really yield for a document with every field (and the central's):
# a rule naming anything else has a typo or relies on a metric nobody exports.
EXPORTED_METRICS = set(scrape(sample_document())) | _central_and_link_metrics()
METRIC_NAME = re.compile(r"pue_monitor_[a-z_]+")
PROMTOOL_TIMEOUT_S = 60
DURATION = re.compile(r"(\d+)(h|m|s)")


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def run_promtool(*args: str, tool: str = "promtool") -> str:
    """Run promtool (or another tool) from the repository root; its stdout if it succeeds."""
    command = [require_tool(tool), *args]
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
    return done.stdout


def seconds(duration: str) -> int:
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[unit]
               for n, unit in DURATION.findall(duration))


# --- promtool -------------------------------------------------------------------------------


@pytest.mark.integration
def test_promtool_check_rules():
    run_promtool("check", "rules", str(RULES.relative_to(ROOT)))


@pytest.mark.integration
@pytest.mark.parametrize("tests", RULE_TESTS, ids=lambda path: path.name)
def test_promtool_rule_unit_tests(tests):
    run_promtool("test", "rules", str(tests.relative_to(ROOT)))


@pytest.mark.integration
def test_amtool_checks_the_alertmanager_example():
    run_promtool("check-config", str(ALERTMANAGER.relative_to(ROOT)), tool="amtool")


# (labels of an alert, receivers it reaches in order)
ROUTES = [
    ("site=que-vo-dc severity=warning alertname=PueDeviceDown", "operators"),
    ("site=que-vo-dc severity=critical alertname=PueInvalid", "operators-page"),
    ("site=que-vo-dc severity=warning alertname=PueYearAtRisk", "dost-audit,operators"),
    ("site=bn-provincial severity=warning alertname=PueAboveGreenThreshold",
     "dost-audit,provincial-team"),
    ("site=bn-provincial severity=warning alertname=PueReadingsStale", "provincial-team"),
    ("site=bn-provincial severity=critical alertname=PueInvalid", "provincial-team-page"),
    ("job=pue-monitor severity=critical alertname=PueMonitorAbsent", "operators-page"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("labels", "receivers"), ROUTES, ids=[r[0] for r in ROUTES])
def test_alertmanager_routes_by_site_and_severity(labels, receivers):
    out = run_promtool("config", "routes", "test", f"--config.file={ALERTMANAGER}",
                       *labels.split(), tool="amtool")
    assert out.strip() == receivers


# --- the rule file itself, without promtool ---------------------------------------------------


def test_groups_are_the_monitors_and_the_centrals_and_hold_only_alerts():
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    assert [group["name"] for group in groups] == ["pue-monitor", "pue-monitor-central"]
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


def test_every_rule_fires_stays_quiet_and_resolves_in_a_unit_test():
    cases = [case for path in RULE_TESTS
             for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]]
    for rule in alert_rules():
        name = rule["alert"]
        fires = quiet = resolves = False
        for case in cases:
            # eval time -> identities of the alerts expected to fire then
            mine = {seconds(c["eval_time"]): {tuple(sorted(a["exp_labels"].items()))
                                              for a in c.get("exp_alerts") or []}
                    for c in case.get("alert_rule_test", []) if c["alertname"] == name}
            fires |= any(mine.values())
            quiet |= not all(mine.values())
            # Resolves: an alert that fired is gone at a later check of the same case.
            resolves |= any(alert not in mine[later] for t, alerts in mine.items()
                            for alert in alerts for later in mine if later > t)
        assert fires, f"{name}: no test where it fires"
        assert quiet, f"{name}: no quiet test"
        assert resolves, f"{name}: no test where it resolves"


def test_rule_tests_load_the_real_rule_file():
    for path in RULE_TESTS:
        files = yaml.safe_load(path.read_text(encoding="utf-8"))["rule_files"]
        assert [(path.parent / f).resolve() for f in files] == [RULES], path.name


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
