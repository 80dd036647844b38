"""What makes the central compute blocks again, as the edge does, so that a site's
report from the central stays the edge's:

* settings with history: an edge whose meters have dated `changes:` ships them in its site
  definition (the table of tests/test_settings_history.py: share, role, counter width
  changed at a time). The central first holds the definition without the change and has
  made its blocks; the changed definition recomputes them, as `recompute` does at the
  edge. A change the edge's loader would refuse is refused, naming its path;
* evidence arriving later (the cases of tests/test_stuck_facility.py): IT power that shows
  a facility counter stood still, readings that make a run of equal values long enough to
  be stuck. The blocks they change are another meter's, or hours before the new readings.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlencode

import pytest

from pue_monitor.central.sitedef import definition_sites
from pue_monitor.config import load_config
from pue_monitor.exchange.influx import reading_lines
from pue_monitor.store.model import PollResult, Reading
from tests.test_central_ingest import NOW, built
from tests.test_settings_history import HISTORY, cli, config, readings, report
from tests.test_stuck_facility import cli_import, cli_report, frozen_later, run_later

CENTRAL = """
web: {login: false}
sites: []
ingest:
  data_centers:
    - {id: dc-h, name: {vi: H, en: H}, sites: [hist, frozen, run]}
"""
TOKEN = {"Authorization": "Token tok-h"}


@pytest.fixture(params=["sqlite", "postgres"])
def central(request, tmp_path):
    """(test client, store) of a central on each backend, its clock at NOW."""
    ticks = iter(range(10**6))  # a clock that moves: one definition kept per site and time
    store, _, app = built(request, tmp_path / "central", CENTRAL,
                          lambda: NOW + next(ticks) / 1000, {"tok-h": "dc-h"})
    yield app.test_client(), store
    store.close()


def define(client, conf, changed_ts: float):
    sites = definition_sites(load_config(conf, env={}))
    return client.post("/api/v1/central/definition", headers=TOKEN, data=json.dumps(
        {"format": 1, "changed_ts": changed_ts, "sites": sites}))


def send_readings(client, conf, csv_path) -> None:
    """The CSV's readings as the edge's writer sends them (line protocol, roles tagged)."""
    devices = {d.id: (s.id, d.role.value) for s, d in load_config(conf, env={}).devices()}
    lines = []
    for row in csv_path.read_text(encoding="utf-8").splitlines()[1:]:
        ts, device, metric, value = row.split(",")
        when = datetime.fromisoformat(ts).timestamp()
        poll = PollResult(device, devices[device][0], when, 0.1,
                          (Reading(when, device, metric, float(value)),))
        lines.extend(reading_lines(poll, {device: devices[device][1]}))
    answer = client.post("/api/v2/write", headers=TOKEN, data="\n".join(lines))
    assert answer.status_code == 204, answer.get_data(as_text=True)


def central_report(client, site: str = "hist", period: str = "2025-03-14") -> dict:
    query = urlencode({"site": site, "period": period, "format": "json"})
    answer = client.get(f"/reports/view?{query}")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    doc = answer.get_json()
    doc.pop("site_definitions")
    return doc


@pytest.mark.parametrize(("at_import", "at_report", "changes"),
                         [(h[1], h[2], h[6]) for h in HISTORY], ids=[h[0] for h in HISTORY])
def test_the_central_reports_a_change_as_the_edge_does(tmp_path, central, at_import,
                                                       at_report, changes):
    client, _ = central
    data = readings(tmp_path / "readings.csv")
    before, after = config(tmp_path, "before", at_import), config(tmp_path, "after", at_report)
    assert cli("import", "-c", after, "--data-dir", tmp_path / "edge", data) == 0
    at_edge = json.loads(report(after, tmp_path / "edge", tmp_path / "edge.json"))
    assert define(client, before, NOW - 100).status_code == 204
    send_readings(client, before, data)
    assert central_report(client)["settings_changes"] == []  # its blocks are made
    assert define(client, after, NOW - 50).status_code == 204
    at_central = central_report(client)
    assert at_central == at_edge
    listed = [(c["from"], c["device"], k, v["old"], v["new"])
              for c in at_central["settings_changes"] for k, v in c["changed"].items()]
    assert listed == changes


@pytest.mark.parametrize(("change", "path", "message"), [
    ('{from: "2025-03-14T12:05:00+07:00", share: 0.5}', "sites[0].devices[1].changes[0].from",
     "is not on a 15-minute boundary"),
    ('{from: "2025-03-14T12:00:00+07:00"}', "sites[0].devices[1].changes[0]",
     "a change sets no setting"),
    ('{from: "2025-03-14T12:00:00+07:00", role: it}', "sites[0].devices[1].changes[0]",
     "the settings from here on are not a valid device: an it meter needs measurement_point"),
])
def test_a_change_the_edge_would_refuse_is_refused(tmp_path, central, change, path, message):
    client, store = central
    conf = config(tmp_path, "good", {"chiller": "        changes: [{from: 2025-03-15, "
                                                "share: 0.5}]"})
    doc = json.loads(json.dumps(definition_sites(load_config(conf, env={}))))
    chiller = doc[0]["devices"][1]
    assert chiller["changes"] == [{"from": "2025-03-15", "share": 0.5}]
    chiller["changes"] = [_yaml(change)]  # the change as YAML gives it, sent as JSON
    answer = client.post("/api/v1/central/definition", headers=TOKEN, data=json.dumps(
        {"format": 1, "changed_ts": NOW, "sites": doc}))
    assert answer.status_code == 400
    text = answer.get_json()["message"]
    assert text.startswith(path + ": ") and message in text, text
    assert store.site_definitions() == []


def _yaml(text: str) -> dict:
    import yaml

    return json.loads(json.dumps(yaml.safe_load(text), default=str))


def test_a_device_without_changes_keeps_its_definition_as_before(tmp_path):
    """No `changes` key where a device has none: an upgraded edge's definition keeps its
    fingerprint, and the central records no change it did not make."""
    conf = config(tmp_path, "plain", {})
    devices = definition_sites(load_config(conf, env={}))[0]["devices"]
    assert [d.get("changes", "absent") for d in devices] == ["absent"] * 4


@pytest.mark.parametrize("case", [frozen_later, run_later],
                         ids=["IT power after the frozen incomer", "a run made stuck later"])
def test_evidence_sent_later_recomputes_the_blocks_it_changes(tmp_path, central, case):
    client, _ = central
    files = case(tmp_path / "files")
    cli_import(files, tmp_path / "edge", "both")
    at_edge = cli_report(files, tmp_path / "edge")
    assert define(client, files["config"], NOW - 100).status_code == 204
    send_readings(client, files["config"], files["first"])
    first = central_report(client, files["site"], files["period"])  # blocks made
    send_readings(client, files["config"], files["second"])
    at_central = central_report(client, files["site"], files["period"])
    assert first != at_central
    assert at_central == at_edge
