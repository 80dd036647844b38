"""`pue-monitor central ... token create|list|revoke`, the central's config checks, and
the edge's shipping store (readings queued before they are stored)."""

from __future__ import annotations

from pue_monitor.central.tokens import token_hash
from pue_monitor.cli import main
from pue_monitor.config import load_config_text
from pue_monitor.exchange.central import ShippingStore
from pue_monitor.store.model import PollResult, Reading
from pue_monitor.store.outbox import Outbox
from pue_monitor.store.sqlite import Store

# An edge's site: two meters with a PUE role and one monitor-only device, all `auto`.
EDGE = """
sites:
  - id: s
    name: {vi: S, en: S}
    devices:
      - {id: meter, profile: auto, role: facility, snmp: {host: 127.0.0.1}}
      - {id: it, profile: auto, role: it, measurement_point: ups_output,
         snmp: {host: 127.0.0.2}}
      - {id: watch, profile: auto, snmp: {host: 127.0.0.3}}
"""
CENTRAL = """
web: {login: false}
sites: []
ingest:
  data_centers:
    - {id: dc-a, name: {vi: A, en: A}, sites: [site-a]}
"""


def test_tokens_are_made_listed_and_revoked(tmp_path, capsys, monkeypatch):
    config = tmp_path / "central.yaml"
    config.write_text(CENTRAL, encoding="utf-8")
    base = ["central", "-c", str(config), "--data-dir", str(tmp_path / "data"), "token"]
    assert main([*base, "create", "dc-a"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 40
    assert main([*base, "create", "dc-a"]) == 1  # one live token per label
    assert "has a token 'edge' already" in capsys.readouterr().err
    assert main([*base, "create", "dc-x"]) == 1
    assert "unknown data center 'dc-x' (known: dc-a)" in capsys.readouterr().err
    monkeypatch.setenv("GIVEN", "g" * 32)
    assert main([*base, "create", "dc-a", "--label", "given", "--from-env", "GIVEN"]) == 0
    assert "g" * 32 not in capsys.readouterr().out
    monkeypatch.setenv("SHORT", "s" * 31)
    assert main([*base, "create", "dc-a", "--label", "short", "--from-env", "SHORT"]) == 1
    assert main([*base, "list"]) == 0
    listed = capsys.readouterr().out
    assert token not in listed and listed.count("\tlive") == 2
    store = Store.open(tmp_path / "data")
    try:
        assert store.central_token(token_hash(token)).data_center == "dc-a"
        assert store.central_token(token_hash("g" * 32)).label == "given"
    finally:
        store.close()
    assert main([*base, "revoke", "dc-a", "--label", "edge"]) == 0
    store = Store.open(tmp_path / "data")
    try:
        assert store.central_token(token_hash(token)) is None
        assert store.central_token(token_hash("g" * 32)) is not None
    finally:
        store.close()


def test_a_central_config_with_sites_of_its_own_is_refused(tmp_path, capsys):
    config = tmp_path / "central.yaml"
    config.write_text(CENTRAL.replace("sites: []\n", """sites:
  - id: site-a
    name: {vi: A, en: A}
    devices:
      - {id: m, profile: auto, role: facility, snmp: {host: 127.0.0.1}}
      - {id: i, profile: auto, role: it, measurement_point: ups_output,
         snmp: {host: 127.0.0.2}}
"""), encoding="utf-8")
    assert main(["central", "-c", str(config), "--data-dir", str(tmp_path)]) == 1
    assert "the central's sites come from its edges' definitions" in capsys.readouterr().err


def test_the_edge_queues_readings_before_storing_them(tmp_path):
    """A store write that fails leaves the readings queued (sent again, stored once at the
    central); monitor-only devices are not queued at all."""
    config = load_config_text(EDGE, env={})
    outbox = Outbox(tmp_path / "outbox.sqlite3")

    class Failing:
        def write_polls(self, results):
            raise OSError("disk full")

    shipping = ShippingStore(Failing(), config, outbox)
    results = [PollResult(d, "s", 100.0, 0.1, (Reading(100.0, d, "active_power_w", 5.0),))
               for d in ("meter", "watch")]
    try:
        shipping.write_polls(results)
    except OSError:
        pass
    rows = outbox.peek(10)
    assert [line for _, line in rows] == [
        "pue_reading,device=meter,metric=active_power_w,role=facility,site=s value=5 "
        "100000000000"]
    outbox.close()


def test_the_edge_sends_its_definition_again_when_an_auto_device_is_identified(tmp_path):
    """The definition goes on start; when `profile: auto` devices are identified while the
    edge runs, the changed definition goes at the next check (not at the next start), with
    its own time of change; an unchanged one is not sent again."""
    import json
    import threading
    import time

    from pue_monitor.exchange.central import DefinitionSender, definition_document

    config = load_config_text(EDGE, env={})
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    identified: dict[str, str] = {}
    clock = iter(range(1000, 2000, 10))
    posted: list[dict] = []
    arrived = threading.Condition()

    class Transport:
        def post(self, path, body, content_type):
            with arrived:
                posted.append(json.loads(body))
                arrived.notify_all()
            return 204

    def wait_for(n: int) -> None:
        with arrived:
            assert arrived.wait_for(lambda: len(posted) >= n, timeout=10), posted

    sender = DefinitionSender(Transport(), lambda: definition_document(
        config, outbox, dict(identified), float(next(clock))), recheck_s=0.02)
    sender.start()
    try:
        wait_for(1)
        time.sleep(0.2)  # ten checks with nothing changed
        assert len(posted) == 1
        identified["meter"] = "eastron_sdm630"
        wait_for(2)
        time.sleep(0.2)
        assert len(posted) == 2 and sender.sent_count == 2
    finally:
        sender.close()
        outbox.close()
    meters = [{d["id"]: d["identified_profile"] for d in doc["sites"][0]["devices"]}
              for doc in posted]
    assert meters == [{"meter": None, "it": None, "watch": None},
                      {"meter": "eastron_sdm630", "it": None, "watch": None}]
    first, second = (doc["changed_ts"] for doc in posted)
    assert first == 1000.0 and second > first  # each definition with its own time
