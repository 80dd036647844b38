"""The central's ingest over HTTP (Flask test client, SQLite and PostgreSQL stores):
tokens (401, revoked), scoping (403), idempotency, gzip and size limits, readings from
the future, clock skew, and site definitions recorded with who sent them and when."""

from __future__ import annotations

import gzip
import json

import pytest

from pue_monitor.central.service import build
from pue_monitor.central.sitedef import definition_sites
from pue_monitor.central.tokens import token_hash
from pue_monitor.config import load_config_text
from pue_monitor.exchange.influx import reading_lines
from pue_monitor.store.model import PollResult, Reading
from tests.conftest import DEMO

NOW = 1_764_650_000.0  # the central's clock in these tests
CENTRAL = """
web: {login: false}
sites: []
ingest:
  max_body_bytes: 4096
  data_centers:
    - {id: dc-a, name: {vi: A, en: A}, sites: [bn-provincial]}
    - {id: dc-b, name: {vi: B, en: B}, sites: [que-vo-dc]}
"""


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


def built(request, folder, text: str, clock, tokens: dict[str, str]):
    """(store, ingest service, app) of a central configured by ``text`` on the backend
    ``request.param`` names, with {token: data center}."""
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        text += f"store: {{url: '{server.url(server.create())}'}}\n"
    store, service, app = build(load_config_text(text, env={}), folder, clock)
    for token, data_center in tokens.items():
        store.add_central_token(token_hash(token), data_center, "edge", NOW)
    return store, service, app


@pytest.fixture(params=["sqlite", "postgres"])
def central(request, tmp_path):
    """(test client, store, ingest service, clock) of a central on each backend."""
    clock = Clock()
    store, service, app = built(request, tmp_path, CENTRAL, clock,
                                {"tok-a": "dc-a", "tok-b": "dc-b"})
    yield app.test_client(), store, service, clock
    store.close()


def edge_sites() -> list[dict]:
    from pue_monitor.config import load_config

    return definition_sites(load_config(DEMO, env={}))


def lines(device: str = "prov-incomer", site: str = "bn-provincial", n: int = 3,
          start: float = NOW - 100) -> str:
    readings = tuple(Reading(start + i, device, "active_power_w", 1000.0 + i)
                     for i in range(n))
    return "\n".join(reading_lines(PollResult(device, site, start, 0.1, readings),
                                   {device: "facility"}))


def write(client, body: str | bytes, token: str = "tok-a", **headers):
    return client.post("/api/v2/write", data=body,
                       headers={"Authorization": f"Token {token}", **headers})


def test_a_batch_sent_twice_is_stored_once(central):
    client, store, service, _ = central
    assert write(client, lines()).status_code == 204
    assert write(client, lines()).status_code == 204
    assert (service.counters.readings_stored, service.counters.readings_duplicate) == (3, 3)
    probe = [Reading(NOW - 100 + i, "prov-incomer", "active_power_w", 1000.0 + i)
             for i in range(3)]
    assert store.stored_values(probe) == {i: [(1000.0 + i, "ok")] for i in range(3)}


def test_a_reading_twice_in_one_batch_is_stored_once(central):
    client, _, service, _ = central
    body = lines(n=2) + "\n" + lines(n=2)
    assert write(client, body).status_code == 204
    assert service.counters.readings_stored == 2


# Texts the store's bulk copy must escape (PostgreSQL's COPY text format), or not, as
# a client other than the edge may send them: (the tag in the body, the label stored).
@pytest.mark.parametrize(("tag", "sensor"), [
    ("a\\\\b", "a\\b"), ("tab\there", "tab\there"), ("plain", "plain"), ("x\\ y", "x y")])
def test_a_label_with_special_characters_is_stored_as_sent(central, tag, sensor):
    client, store, service, _ = central
    body = (f"pue_reading,device=prov-incomer,metric=temperature_c,sensor={tag},"
            f"site=bn-provincial value=21.5 {int(NOW - 50) * 1_000_000_000}")
    assert write(client, body).status_code == 204
    assert service.counters.readings_stored == 1
    reading = Reading(NOW - 50, "prov-incomer", "temperature_c", 21.5, (("sensor", sensor),))
    assert store.stored_values([reading]) == {0: [(21.5, "ok")]}


@pytest.mark.parametrize(("header", "status"), [
    (None, 401), ("Token nope", 401), ("Bearer tok-a", 401), ("Token ", 401),
])
def test_no_valid_token_is_401(central, header, status):
    client = central[0]
    answer = client.post("/api/v2/write", data=lines(),
                         headers={} if header is None else {"Authorization": header})
    assert answer.status_code == status
    assert "token" in answer.get_json()["message"]


def test_a_token_writes_only_its_data_centers_sites(central):
    client, store, service, _ = central
    answer = write(client, lines(), token="tok-b")
    assert answer.status_code == 403
    assert answer.get_json()["message"] == ("data center 'dc-b' may not write site(s) "
                                            "bn-provincial")
    assert service.counters.readings_stored == 0
    # the definition too
    doc = {"format": 1, "changed_ts": NOW, "sites": [edge_sites()[0]]}
    answer = client.post("/api/v1/central/definition", data=json.dumps(doc),
                         headers={"Authorization": "Token tok-b"})
    assert answer.status_code == 403
    assert store.site_definitions() == []


def test_a_revoked_token_is_401(central):
    client, store, _, clock = central
    assert store.revoke_central_tokens("dc-a", None, clock.t) == 1
    assert write(client, lines()).status_code == 401
    assert [t.revoked_ts for t in store.central_tokens() if t.data_center == "dc-a"] == [NOW]


def test_bad_lines_are_named_and_the_good_ones_stored(central):
    client, _, service, _ = central
    body = lines(n=1) + "\nthis is not\n" + lines(n=1, start=NOW + 3600)
    answer = write(client, body)
    assert answer.status_code == 400
    message = answer.get_json()["message"]
    assert message.startswith("2 line(s) refused, 1 reading(s) stored: line 2: ")
    assert "line 3: reading from the future: 3600 s ahead of the central's clock" in message
    assert service.counters.readings_stored == 1


def test_gzip_bodies_and_the_size_limit(central):
    client = central[0]
    assert write(client, gzip.compress(lines().encode()),
                 **{"Content-Encoding": "gzip"}).status_code == 204
    big = lines(n=60)  # over the test's 4 KiB limit
    assert len(big) > 4096
    assert write(client, big).status_code == 413
    # small once compressed, too big once not
    assert write(client, gzip.compress(big.encode()),
                 **{"Content-Encoding": "gzip"}).status_code == 413
    assert write(client, b"not gzip", **{"Content-Encoding": "gzip"}).status_code == 400
    assert write(client, lines(), **{"Content-Encoding": "br"}).status_code == 415


def test_clock_skew_is_flagged_beyond_60_s(central):
    client, _, service, clock = central
    clock.t += 100  # the central started at NOW
    write(client, lines(), **{"X-Pue-Edge-Time": str(clock.t + 30)})
    assert (service.clocks["dc-a"].skew_s, service.clocks["dc-a"].flagged) == (30.0, False)
    write(client, lines(), **{"X-Pue-Edge-Time": str(clock.t - 61)})
    assert (service.clocks["dc-a"].skew_s, service.clocks["dc-a"].flagged) == (-61.0, True)
    metrics = client.get("/metrics").data.decode()
    assert 'pue_monitor_central_edge_clock_skew_flagged{data_center="dc-a"} 1.0' in metrics
    assert 'pue_monitor_central_edge_clock_skew_seconds{data_center="dc-a"} -61.0' in metrics
    # Every configured data center has its last batch; dc-b sent none: the central's start.
    assert 'edge_last_batch_timestamp_seconds{data_center="dc-a"} 1.7646501e+09' in metrics
    assert 'edge_last_batch_timestamp_seconds{data_center="dc-b"} 1.76465e+09' in metrics
    assert 'clock_skew_flagged{data_center="dc-b"}' not in metrics
    edges = client.get("/api/v1/central/edges").get_json()["data_centers"]
    assert edges == []  # no site defined yet: no data center is visible
    doc = {"format": 1, "changed_ts": clock.t, "sites": [edge_sites()[0]]}
    client.post("/api/v1/central/definition", data=json.dumps(doc),
                headers={"Authorization": "Token tok-a", "X-Pue-Edge-Time": str(clock.t)})
    (edge,) = client.get("/api/v1/central/edges").get_json()["data_centers"]
    assert (edge["id"], edge["defined"], edge["clock_skew_s"], edge["clock_skew_flagged"],
            edge["tokens"]) == ("dc-a", ["bn-provincial"], 0.0, False, 1)


def test_a_site_definition_is_recorded_with_who_and_when(central):
    client, store, service, clock = central
    site = edge_sites()[0]
    doc = {"format": 1, "changed_ts": NOW - 50, "sites": [site]}
    headers = {"Authorization": "Token tok-a"}
    assert client.post("/api/v1/central/definition", data=json.dumps(doc),
                       headers=headers).status_code == 204
    clock.t += 10
    assert client.post("/api/v1/central/definition", data=json.dumps(doc),
                       headers=headers).status_code == 204  # unchanged: not kept again
    moved = json.loads(json.dumps(site))
    cooling = next(d for d in moved["devices"] if d["role"] == "cooling")
    cooling["role"] = "exclude"
    clock.t += 10
    assert client.post("/api/v1/central/definition",
                       data=json.dumps({**doc, "sites": [moved], "changed_ts": NOW + 15}),
                       headers=headers).status_code == 204
    records = store.site_definitions()
    assert [(r.site, r.received_ts, r.changed_ts, r.data_center, r.sender)
            for r in records] == [("bn-provincial", NOW, NOW - 50, "dc-a", "edge"),
                                  ("bn-provincial", NOW + 20, NOW + 15, "dc-a", "edge")]
    assert [s.id for s in service.config.sites] == ["bn-provincial"]
    roles = {d.id: d.role.value for d in service.config.sites[0].devices}
    assert roles[cooling["id"]] == "exclude"
    history = client.get("/api/v1/central/definitions").get_json()
    assert history[1]["changes"] == [{"what": "device", "device": cooling["id"],
                                      "field": "role", "from": "cooling", "to": "exclude"}]
    # no address or secret ever travels
    text = json.dumps(site)
    assert "127.0.0.1" not in text and "community" not in text and "host" not in text


def test_an_auto_device_arrives_with_what_it_was_identified_as_and_why(central):
    """The edge's identification (profile, sysObjectID, reason, time) travels in the
    definition: the central's device page says why, as the edge's does."""
    from pue_monitor.store.model import Identified

    client, store, _, _ = central
    config = load_config_text("""
sites:
  - id: bn-provincial
    name: {vi: A, en: A}
    devices:
      - {id: auto-ups, profile: auto, role: it, measurement_point: ups_output,
         snmp: {host: 127.0.0.1}}
      - {id: auto-new, profile: auto, role: facility, snmp: {host: 127.0.0.2}}
""", env={})
    why = Identified("ups_mib", "1.3.6.1.4.1.318.1.3.27",
                     "sysObjectID 1.3.6.1.4.1.318.1.3.27 answers upsOutputTruePower", NOW - 600)
    sites = definition_sites(config, {"auto-ups": why})
    assert [(d["identified_profile"], "identification" in d) for d in sites[0]["devices"]] \
        == [("ups_mib", True), (None, False)]
    doc = {"format": 1, "changed_ts": NOW, "sites": sites}
    assert client.post("/api/v1/central/definition", data=json.dumps(doc),
                       headers={"Authorization": "Token tok-a"}).status_code == 204
    assert store.device_identifications() == {"auto-ups": why}
    page = client.get("/api/v1/devices/auto-ups").get_json()
    assert (page["profile"], page["profile_identified"]) == ("ups_mib", True)
    assert page["identification"]["reason"] == why.reason
    assert page["identification"]["sys_object_id"] == why.sys_object_id


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s["devices"][0].update(role="boss"), "sites[0].devices[0].role: Input should"),
    (lambda s: s["devices"][0].update(profile="nobody_knows"),
     "sites[0]: profile(s) nobody_knows unknown here"),
    (lambda s: s["devices"][0].update(snmp={"host": "10.0.0.1"}),
     "sites[0].devices[0]: Value error, a device at the central has no address"),
    (lambda s: s.update(devices=[]), "sites[0].devices: must be a non-empty list"),
    # A device without an address keeps the other rules of a device (it was let through).
    (lambda s: s["devices"][0].update(role="it", measurement_point=None),
     "sites[0].devices[0]: Value error, an it meter needs measurement_point"),
])
def test_a_bad_definition_is_refused_naming_the_path(central, change, message):
    client, store, _, _ = central
    site = edge_sites()[0]
    change(site)
    answer = client.post("/api/v1/central/definition",
                         data=json.dumps({"format": 1, "changed_ts": NOW, "sites": [site]}),
                         headers={"Authorization": "Token tok-a"})
    assert answer.status_code == 400
    assert answer.get_json()["message"].startswith(message), answer.get_json()["message"]
    assert store.site_definitions() == []


def test_a_site_twice_in_one_definition_is_400(central):
    """Found by fuzzing (tests/test_fuzz_central.py): two entries of one site in one
    document were both recorded at the same time received, and the store's one row per
    site and time made that a 500."""
    client, store, _, _ = central
    site = {**edge_sites()[0]}
    site["devices"] = site["devices"][:1]  # two entries within the 4 KiB limit
    other = {**site, "pue_threshold": 1.5}
    doc = {"format": 1, "changed_ts": NOW, "sites": [site, other]}
    answer = client.post("/api/v1/central/definition", data=json.dumps(doc),
                         headers={"Authorization": "Token tok-a"})
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "sites[1]: site 'bn-provincial' is also sites[0]"
    assert store.site_definitions() == []


def test_a_reading_stored_with_another_value_is_refused_naming_its_line(central):
    """The store's probe (store.ingest): a batch resent with one value changed stores
    nothing new, counts the others as duplicates and names the changed line."""
    client, store, service, _ = central
    assert write(client, lines()).status_code == 204
    changed = lines().split("\n")
    changed[1] = changed[1].replace("value=1001", "value=1234.5")
    answer = write(client, "\n".join(changed + [lines(n=1, start=NOW - 10)]))
    assert answer.status_code == 400
    message = answer.get_json()["message"]
    at = "2025-12-02T04:31:41+00:00"  # NOW - 99, read by hand
    assert message == (f"1 line(s) refused, 1 reading(s) stored: line 2: prov-incomer "
                       f"active_power_w at {at} is 1234.5 here but 1001 in the store")
    assert (service.counters.readings_stored, service.counters.readings_duplicate) == (4, 2)
    probe = [Reading(NOW - 99, "prov-incomer", "active_power_w", 0.0)]
    assert store.stored_values(probe) == {0: [(1001.0, "ok")]}
