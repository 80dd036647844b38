"""web.metrics.StatusCollector over hand-made status documents, each in a fresh registry."""

from __future__ import annotations

import copy

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pue_monitor.web.metrics import StatusCollector

J = 3.6e6  # joules per kWh


def window(pue=1.5, status="ok", coverage=1.0, compliant=False, category="PUE1",
           facility_kwh=15.0, it_kwh=10.0) -> dict:
    return {"pue": pue, "category": category, "status": status, "coverage": coverage,
            "compliant": compliant, "facility_energy_kwh": facility_kwh,
            "it_energy_kwh": it_kwh}


# A meter's method-3 flags in the live 15-minute window, every kind listed.
NO_FLAGS = {"reset": 0, "step_back": 0, "wrap": 0, "stuck_counter": 0, "stuck_power": 0,
            "implausible_counter": 0, "implausible_power": 0}


def device(dev_id="d-1", role="facility", up=True, last=1_700_000_000.0, duration=0.05,
           interval=10.0, errors=None, state=None, quality_flags=None) -> dict:
    state = state or {True: "up", False: "down", None: "unknown"}[up]
    return {"id": dev_id, "role": role, "up": up, "state": state, "last_success_unix": last,
            "poll_duration_s": duration, "poll_interval_s": interval,
            "errors": errors if errors is not None else {"timeout": 0, "decode": 0},
            "quality_flags": quality_flags}


def site(site_id="s1", **extra) -> dict:
    base = {
        "id": site_id, "threshold": 1.4, "coverage_threshold": 0.95,
        "power_w": {"facility": 150_000.0, "it": 100_000.0},
        "instant": {"pue": 1.5, "category": "PUE1", "status": "ok", "compliant": False},
        "windows": {"15m": window(), "24h": window(status="incomplete", coverage=0.4,
                                                  compliant=None),
                    "30d": window(pue=1.38, compliant=True),
                    "12m": window(pue=1.45, compliant=False)},
        # d-1's counter was reset once in the last 15 minutes; d-2 meters nothing.
        "devices": [device(quality_flags={**NO_FLAGS, "reset": 1}),
                    device("d-2", role="it", up=False, last=None, duration=None,
                                     errors={"timeout": 3, "decode": 0}),
                    # Answers, every reading undecodable: up 1 (it answered), yet degraded.
                    device("d-3", role="it", state="degraded",
                           errors={"timeout": 0, "decode": 7})],
        "energy_kwh_total": {"facility": 1200.5, "it": 800.0, "cooling": 300.25},
        "year_at_risk": {"at_risk": True, "projected_pue": 1.47, "year": 2026},
    }
    base.update(extra)
    return base


def sample_document(*sites: dict) -> dict:
    """A status document as web.document builds it, with the fields /metrics reads."""
    return {"method": "pue-monitor/test", "sites": list(sites) or [site()]}


def scrape(doc: dict) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} from a fresh registry over `doc`."""
    registry = CollectorRegistry()
    registry.register(StatusCollector(lambda: doc, "9.9.9"))
    out: dict[str, dict[tuple, float]] = {}
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def family_types(doc: dict) -> dict[str, str]:
    registry = CollectorRegistry()
    registry.register(StatusCollector(lambda: doc, "9.9.9"))
    return {f.name: f.type for f in text_string_to_metric_families(
        generate_latest(registry).decode())}


# (case id, document, sample name, labels, expected value; None: the series must be absent)
CASES = [
    ("energy-facility", sample_document(), "pue_monitor_energy_joules_total",
     {"site": "s1", "role": "facility"}, 1200.5 * J),
    ("energy-cooling", sample_document(), "pue_monitor_energy_joules_total",
     {"site": "s1", "role": "cooling"}, 300.25 * J),
    ("energy-absent-without-field", sample_document(site(energy_kwh_total=None)),
     "pue_monitor_energy_joules_total", {"site": "s1", "role": "facility"}, None),
    ("energy-null-role-absent", sample_document(site(energy_kwh_total={"it": None})),
     "pue_monitor_energy_joules_total", {"site": "s1", "role": "it"}, None),
    ("at-risk", sample_document(), "pue_monitor_year_at_risk", {"site": "s1"}, 1.0),
    ("not-at-risk", sample_document(site(year_at_risk={"at_risk": False,
                                                       "projected_pue": 1.31, "year": 2026})),
     "pue_monitor_year_at_risk", {"site": "s1"}, 0.0),
    ("at-risk-unknown", sample_document(site(year_at_risk={"at_risk": None,
                                                           "projected_pue": None,
                                                           "year": 2026})),
     "pue_monitor_year_at_risk", {"site": "s1"}, None),
    ("at-risk-field-missing", sample_document(site(year_at_risk=None)),
     "pue_monitor_year_at_risk", {"site": "s1"}, None),
    ("projected-pue", sample_document(), "pue_monitor_year_projected_pue", {"site": "s1"}, 1.47),
    ("coverage-threshold", sample_document(site(coverage_threshold=0.9)),
     "pue_monitor_pue_coverage_threshold_ratio", {"site": "s1"}, 0.9),
    ("poll-interval", sample_document(), "pue_monitor_device_poll_interval_seconds",
     {"site": "s1", "device": "d-1"}, 10.0),
    ("pue-12m", sample_document(), "pue_monitor_pue",
     {"site": "s1", "window": "12m", "category": "1"}, 1.45),
    ("pue-30d", sample_document(), "pue_monitor_pue",
     {"site": "s1", "window": "30d", "category": "1"}, 1.38),
    ("pue-instant", sample_document(), "pue_monitor_pue",
     {"site": "s1", "window": "instantaneous", "category": "1"}, 1.5),
    ("compliant-12m", sample_document(), "pue_monitor_pue_compliant",
     {"site": "s1", "window": "12m"}, 0.0),
    ("not-judged-24h", sample_document(), "pue_monitor_pue_compliant",
     {"site": "s1", "window": "24h"}, None),
    ("coverage-24h", sample_document(), "pue_monitor_pue_coverage_ratio",
     {"site": "s1", "window": "24h"}, 0.4),
    ("status-24h", sample_document(), "pue_monitor_pue_status",
     {"site": "s1", "window": "24h", "status": "incomplete"}, 1.0),
    ("window-energy", sample_document(), "pue_monitor_pue_energy_joules",
     {"site": "s1", "window": "15m", "side": "it"}, 10.0 * J),
    ("power", sample_document(), "pue_monitor_power_watts", {"site": "s1", "role": "it"},
     100_000.0),
    ("device-down", sample_document(), "pue_monitor_device_up",
     {"site": "s1", "device": "d-2", "role": "it"}, 0.0),
    ("degraded-answers", sample_document(), "pue_monitor_device_up",
     {"site": "s1", "device": "d-3", "role": "it"}, 1.0),
    ("degraded-state", sample_document(), "pue_monitor_device_state",
     {"site": "s1", "device": "d-3", "role": "it", "state": "degraded"}, 1.0),
    ("degraded-not-up", sample_document(), "pue_monitor_device_state",
     {"site": "s1", "device": "d-3", "role": "it", "state": "up"}, 0.0),
    ("down-state", sample_document(), "pue_monitor_device_state",
     {"site": "s1", "device": "d-2", "role": "it", "state": "down"}, 1.0),
    ("up-state", sample_document(), "pue_monitor_device_state",
     {"site": "s1", "device": "d-1", "role": "facility", "state": "up"}, 1.0),
    ("degraded-decode-errors", sample_document(), "pue_monitor_device_poll_errors_total",
     {"site": "s1", "device": "d-3", "kind": "decode"}, 7.0),
    ("never-succeeded", sample_document(), "pue_monitor_device_last_success_timestamp_seconds",
     {"site": "s1", "device": "d-2"}, None),
    ("errors", sample_document(), "pue_monitor_device_poll_errors_total",
     {"site": "s1", "device": "d-2", "kind": "timeout"}, 3.0),
    ("meter-flags-reset", sample_document(), "pue_monitor_meter_flags",
     {"site": "s1", "device": "d-1", "role": "facility", "kind": "reset"}, 1.0),
    ("meter-flags-zero-listed", sample_document(), "pue_monitor_meter_flags",
     {"site": "s1", "device": "d-1", "role": "facility", "kind": "step_back"}, 0.0),
    ("meter-flags-absent-for-no-meter", sample_document(), "pue_monitor_meter_flags",
     {"site": "s1", "device": "d-2", "role": "it", "kind": "reset"}, None),
    ("two-sites", sample_document(site(), site("s2", threshold=1.3)),
     "pue_monitor_pue_threshold", {"site": "s2"}, 1.3),
]


@pytest.mark.parametrize(("doc", "name", "labels", "value"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_sample(doc, name, labels, value):
    series = scrape(doc).get(name, {})
    key = tuple(sorted(labels.items()))
    if value is None:
        assert key not in series, series
    else:
        assert series[key] == pytest.approx(value)


# Counters end in _total and carry the counter type; everything else is a gauge.
TYPES = [
    ("pue_monitor_energy_joules", "counter"),
    ("pue_monitor_device_poll_errors", "counter"),
    ("pue_monitor_year_at_risk", "gauge"),
    ("pue_monitor_pue_coverage_threshold_ratio", "gauge"),
    ("pue_monitor_device_poll_interval_seconds", "gauge"),
    ("pue_monitor_build_info", "gauge"),  # the text format has no info type
]


@pytest.mark.parametrize(("family", "kind"), TYPES, ids=[t[0] for t in TYPES])
def test_family_type(family, kind):
    assert family_types(sample_document())[family] == kind


def test_each_scrape_reads_the_document_again():
    # No state kept between scrapes: a site that leaves the document leaves /metrics.
    doc = sample_document(site(), site("s2"))
    registry = CollectorRegistry()
    registry.register(StatusCollector(lambda: doc, "9.9.9"))
    assert b'site="s2"' in generate_latest(registry)
    doc["sites"].pop()
    assert b'site="s2"' not in generate_latest(registry)


def test_the_document_is_not_modified():
    doc = sample_document()
    before = copy.deepcopy(doc)
    scrape(doc)
    assert doc == before


def test_poll_interval_comes_from_the_configuration(tmp_path):
    # Through the real document builder: a device override beats the site's and the default.
    from pue_monitor.store.sqlite import Store
    from tests.web_fixtures import NOW, demo_config, fill
    from pue_monitor.web import create_app

    config = demo_config()
    site0 = config.sites[0]
    override = site0.devices[1].model_copy(
        update={"polling": config.polling.model_copy(update={"interval_s": 2.5})})
    site0.devices[1] = override
    store = Store.open(tmp_path / "data")
    try:
        fill(store)
        doc = create_app(config, store, clock=lambda: NOW, testing=True) \
            .extensions["pue_monitor"].document()
    finally:
        store.close()
    devices = {d["id"]: d for s in doc["sites"] for d in s["devices"]}
    assert devices[override.id]["poll_interval_s"] == 2.5
    assert devices[site0.devices[0].id]["poll_interval_s"] == config.polling.interval_s == 5
    series = scrape(doc)["pue_monitor_device_poll_interval_seconds"]
    assert series[(("device", override.id), ("site", site0.id))] == 2.5
