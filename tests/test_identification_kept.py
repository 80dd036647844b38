"""A `profile: auto` device keeps its identification across restarts (issue 12).

The store keeps the profile, the sysObjectID seen, the reason and when (SQLite and
PostgreSQL alike); at the next start the poller confirms that record with two or three
requests instead of identifying the device from scratch, identifies anew a device that
changed model (and says so once), and the status document and the device page say why.
Rules on hand-made agents; restarts against real captures served by snmpsim.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re

import pytest

from pue_monitor.collectors.service import CollectorService
from pue_monitor.collectors.snmp_identify import (
    SYS_DESCR,
    SYS_OBJECT_ID,
    Identification,
    Known,
    confirm_known,
)
from pue_monitor.config import load_config_text
from pue_monitor.config.profiles import load_profiles
from pue_monitor.store.model import Identified
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from tests.snmp_support import snmpsim, snmpsim_command
from tests.test_snmp_identify import APC, LIEBERT, RPDU2_POWER, RPDU_POWER, DictAgent, agent

PROFILES = load_profiles()
SYSTEM = ("get", (SYS_OBJECT_ID, SYS_DESCR))
T_FIRST, T_RESTART = 1_780_000_000.0, 1_780_086_400.0  # two starts, a day apart
RPDU2_TABLE = "1.3.6.1.4.1.318.1.1.26.4.3.1.5"  # apc_rpdu2's confirmation (a column)
UPS_MIB = "1.3.6.1.2.1.33.1"  # ups_mib's confirmation: the upsObjects subtree
LIEBERT_UPS_POWER = "1.3.6.1.2.1.33.1.4.4.1.4"  # liebert_gp's two confirmations, in order
LIEBERT_FLEX = "1.3.6.1.4.1.476.1.42.3.9.20.1.20"
LIEBERT_PDU_TABLE = "1.3.6.1.4.1.476.1.42.3.8.30.20.1.65"  # liebert_pdu's confirmation
HUAWEI_UPS2000 = "1.3.6.1.4.1.2011.6.174.4.1.2.4"
CORDEX = "1.3.6.1.4.1.7309.5"
CORDEX_RECTIFIERS = "1.3.6.1.4.1.7309.5.3.1.2.0"  # cordex_cxc's confirmation (a scalar)
UPS_POWER_1 = "1_3_6_1_2_1_33_1_4_4_1_4_1"  # upsOutputPower.1, as agent() names objects


class Counting:
    """The narrow SNMP client, recording each request passed on: (kind, OIDs)."""

    def __init__(self, inner) -> None:
        self.inner, self.asked = inner, []

    async def get(self, oids):
        self.asked.append(("get", tuple(oids)))
        return await self.inner.get(oids)

    async def walk(self, columns, max_repetitions):
        self.asked.append(("walk", tuple(columns)))
        return await self.inner.walk(columns, max_repetitions)

    def close(self) -> None:
        self.inner.close()


# -- confirming an earlier identification: the rules, on hand-made agents -----------------

RPDU2_UNIT = agent(APC, **{RPDU2_POWER: 27})
# (case, agent, what was recorded, kept profile or the reason it is not kept, requests)
CONFIRM = [
    ("same unit", RPDU2_UNIT, Known("apc_rpdu2", APC), "apc_rpdu2",
     [SYSTEM, ("walk", (RPDU2_TABLE,))]),
    ("recorded with a leading dot", RPDU2_UNIT, Known("apc_rpdu2", "." + APC), "apc_rpdu2",
     [SYSTEM, ("walk", (RPDU2_TABLE,))]),
    ("another vendor's device at the address", agent(LIEBERT), Known("apc_rpdu2", APC),
     f"sysObjectID was {APC}, is now {LIEBERT}", [SYSTEM]),
    ("same sysObjectID, an older rPDU: the rPDU2 table is gone",
     agent(APC, **{RPDU_POWER: 270}), Known("apc_rpdu2", APC),
     f"none of {RPDU2_TABLE} answers any more", [SYSTEM, ("walk", (RPDU2_TABLE,))]),
    ("a profile no longer shipped", RPDU2_UNIT, Known("apc_rpdu9", APC),
     "profile apc_rpdu9 is not among the profiles any more", []),
    ("a record without its sysObjectID", RPDU2_UNIT, Known("apc_rpdu2", None),
     "the sysObjectID it had then was not recorded", []),
    ("net-snmp UPS: its probe subtree confirms ups_mib",
     agent("1.3.6.1.4.1.8072.3.2.10", **{"1_3_6_1_2_1_33_1_4_4_1_4_1": 100}),
     Known("ups_mib", "1.3.6.1.4.1.8072.3.2.10"), "ups_mib", [SYSTEM, ("walk", (UPS_MIB,))]),
    ("no confirmation OIDs: the sysObjectID still claimed", agent("1.3.6.1.4.1.17420"),
     Known("digipower_pdu", "1.3.6.1.4.1.17420"), "digipower_pdu", [SYSTEM]),
    # Recorded as ups_mib before huawei_ups2000 was shipped: that profile claims the agent
    # now and it confirms, so the device is identified anew (its power is whole kW).
    ("a profile shipped since claims it", agent(HUAWEI_UPS2000, **{UPS_POWER_1: 1}),
     Known("ups_mib", HUAWEI_UPS2000), "profile huawei_ups2000 claims the agent now",
     [SYSTEM, ("walk", (UPS_MIB,))]),
    # cordex_cxc claims the sysObjectID but its rectifier object does not answer: kept.
    ("a claim that does not confirm", agent(CORDEX, **{UPS_POWER_1: 100}),
     Known("ups_mib", CORDEX), "ups_mib",
     [SYSTEM, ("get", (CORDEX_RECTIFIERS,)), ("walk", (UPS_MIB,))]),
]


@pytest.mark.parametrize(("objects", "known", "outcome", "requests"),
                         [c[1:] for c in CONFIRM], ids=[c[0] for c in CONFIRM])
def test_confirming_what_was_recorded(objects, known, outcome, requests):
    client = Counting(DictAgent(objects))
    found = asyncio.run(confirm_known(client, PROFILES.values(), known))
    if isinstance(found, Identification):
        assert (found.profile.name, found.rule) == (outcome, "kept"), found.why
        assert found.why.startswith(f"identified before as {outcome}; sysObjectID ")
    else:
        assert found == outcome
    assert client.asked == requests


# -- the store keeps it: both backends ------------------------------------------------------

def test_store_round_trip(store_factory):
    store = store_factory.open()
    try:
        assert store.device_identifications() == {}
        store.set_device_profile("pdu", "apc_rpdu2", APC, "sysObjectID x is under y", T_FIRST)
        store.set_device_profile("ups", "ups_mib")  # as the central records an edge's
        want = {"pdu": Identified("apc_rpdu2", APC, "sysObjectID x is under y", T_FIRST),
                "ups": Identified("ups_mib", "", "", None)}
        assert store.device_identifications() == want
        assert store.device_profiles() == {"pdu": "apc_rpdu2", "ups": "ups_mib"}
        store.close()
        store = store_factory.open()  # another process
        assert store.device_identifications() == want
        store.set_device_profile("pdu", "liebert_gp", LIEBERT, "changed", T_RESTART)
        assert store.device_identifications()["pdu"] == Identified(
            "liebert_gp", LIEBERT, "changed", T_RESTART)
    finally:
        store.close()


def test_sqlite_reads_a_record_written_before_the_reason_was_kept(tmp_path):
    store = Store.open(tmp_path)
    try:
        with store._connect() as conn:  # the meta row as the store wrote it before
            conn.execute("INSERT INTO meta VALUES ('device_profile:pdu', '\"apc_rpdu2\"')")
        assert store.device_identifications() == {"pdu": Identified("apc_rpdu2")}
        assert store.device_profiles() == {"pdu": "apc_rpdu2"}
    finally:
        store.close()


# -- restarts against real captures -----------------------------------------------------------

SITE = """
web: {{login: false}}
polling: {{interval_s: 60, timeout_s: 2, retries: 1}}
sites:
  - id: auto
    name: {{vi: "Tự nhận dạng", en: "Identified"}}
    devices:
      - {{id: incomer, profile: schneider_pm5xxx, role: facility,
         modbus: {{host: 127.0.0.1, port: 1502, unit: 1}}}}
{devices}
"""
DEVICE = ("      - {{id: {id}, profile: auto, role: it, measurement_point: ups_output,\n"
          "         snmp: {{host: 127.0.0.1, port: {port}, community: {capture}}}}}")
# device id -> (capture, profile it is, the requests confirming it at a restart)
DEVICES = {
    "pdu": ("apc_ap8853", "apc_rpdu2", [SYSTEM, ("walk", (RPDU2_TABLE,))]),
    # Liebert's shared sysObjectID: liebert_pdu, ahead of liebert_gp in the order, is asked
    # first (no answer: kept); liebert_gp's second confirmation is the one answering.
    "ups": ("liebert_apm", "liebert_gp",
            [SYSTEM, ("walk", (LIEBERT_PDU_TABLE,)), ("walk", (LIEBERT_UPS_POWER,)),
             ("walk", (LIEBERT_FLEX,))]),
    # net-snmp's generic sysObjectID: UPS-MIB found by probing, confirmed by its subtree.
    "netups": ("netvision-rfc", "ups_mib", [SYSTEM, ("walk", (UPS_MIB,))]),
}


def config_for(devices: dict[str, tuple[int, str]]):
    """A site of the Modbus incomer (never polled here) and auto devices: {id: (port,
    capture)}. snmpsim serves every capture on one port (by community), and a config
    holds each address once: one config per capture."""
    text = SITE.format(devices="\n".join(DEVICE.format(id=d, port=port, capture=c)
                                         for d, (port, c) in devices.items()))
    return load_config_text(text, env={})


@pytest.fixture(scope="module")
def agents(tmp_path_factory):
    if not snmpsim_command():
        pytest.fail("snmpsim is part of the test extra: pip install -e '.[test]'")
    with snmpsim(tmp_path_factory.mktemp("snmpsim")) as port:
        yield port


async def two_polls(service: CollectorService) -> dict[str, tuple[list, list, bool]]:
    """{device: (requests of the first poll before its read, the read's, both ok)}: the
    second poll reads only, so what the first asked beyond that identified the device."""
    out = {}
    try:
        for poller in [p for p in service.pollers if p.device.protocol == "snmp"]:
            poller.client = Counting(poller.client)
            first = await poller.poll_once()
            read_from = len(poller.client.asked)
            second = await poller.poll_once()
            asked = poller.client.asked
            reads = asked[read_from:]
            ident = asked[:read_from - len(reads)]
            assert asked[len(ident):read_from] == reads, poller.device.id  # same read twice
            out[poller.device.id] = (ident, reads, first.ok and second.ok)
    finally:
        for poller in service.pollers:
            poller.client.close()
    return out


@pytest.mark.integration
def test_a_restart_confirms_instead_of_identifying(agents, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pue_monitor.collectors.poller")
    first, again, recorded, profiles = {}, {}, {}, {}
    for device, (capture, _, _) in DEVICES.items():
        config = config_for({device: (agents, capture)})
        store = Store.open(tmp_path / device)
        try:
            first |= asyncio.run(two_polls(CollectorService(config, store,
                                                            clock=lambda: T_FIRST)))
            recorded |= store.device_identifications()
            store.close()
            store = Store.open(tmp_path / device)  # the monitor started again
            service = CollectorService(config, store, clock=lambda: T_RESTART)
            found = recorded[device]
            assert {p.device.id: p.known for p in service.pollers} == {
                "incomer": None, device: Known(found.profile, found.sys_object_id)}
            again |= asyncio.run(two_polls(service))
            profiles |= {p.device.id: p.profile.name for p in service.pollers}
            # Confirmed: not written again.
            assert store.device_identifications() == {device: found}
        finally:
            store.close()
    for device, (capture, profile, confirming) in DEVICES.items():
        found = recorded[device]
        assert (found.profile, found.ts) == (profile, T_FIRST), device
        assert found.sys_object_id and found.reason, device
        ident, reads, ok = again[device]
        assert ok and first[device][2], device
        assert ident == confirming, device
        assert reads == first[device][1], device  # the same profile's read
        assert profiles[device] == profile
    # Liebert's shared sysObjectID: from scratch, liebert_pdu's table is asked first.
    assert first["ups"][0] == [SYSTEM, ("walk", (LIEBERT_PDU_TABLE,)),
                               ("walk", (LIEBERT_UPS_POWER,)), ("walk", (LIEBERT_FLEX,))]
    assert not [r for r in caplog.records if "changed model" in r.getMessage()]


@pytest.mark.integration
def test_a_device_that_changed_model_is_identified_again_and_told_once(agents, tmp_path,
                                                                      caplog):
    # Recorded as an rPDU2; the Liebert UPS answers at its address now.
    config = config_for({"pdu": (agents, "liebert_apm")})
    store = Store.open(tmp_path)
    try:
        store.set_device_profile("pdu", "apc_rpdu2", "1.3.6.1.4.1.318.1.3.4.6",
                                 "sysObjectID 1.3.6.1.4.1.318.1.3.4.6 is under ...", T_FIRST)
        caplog.set_level(logging.INFO, logger="pue_monitor.collectors.poller")
        service = CollectorService(config, store, clock=lambda: T_RESTART)
        polls = asyncio.run(two_polls(service))
        stored = store.device_identifications()["pdu"]
    finally:
        store.close()
    ident, _reads, ok = polls["pdu"]
    assert ok
    assert ident[0] == SYSTEM and ident[1] == SYSTEM  # confirming failed at the first GET
    assert (stored.profile, stored.sys_object_id, stored.ts) == (
        "liebert_gp", "1.3.6.1.4.1.476.1.42", T_RESTART)
    assert stored.reason == f"sysObjectID 1.3.6.1.4.1.476.1.42 is under {LIEBERT} and " \
                            f"{LIEBERT_FLEX} answers"
    told = [r.getMessage() for r in caplog.records if "changed model" in r.getMessage()]
    assert told == ["device pdu changed model: apc_rpdu2 (sysObjectID 1.3.6.1.4.1.318.1.3.4.6)"
                    " -> liebert_gp (sysObjectID 1.3.6.1.4.1.476.1.42) (sysObjectID was "
                    "1.3.6.1.4.1.318.1.3.4.6, is now 1.3.6.1.4.1.476.1.42)"]


# -- the status document and the device page say why ------------------------------------------

REASON = f"sysObjectID {APC} is under 1.3.6.1.4.1.318.1.3.4 and {RPDU2_TABLE} answers"


@pytest.mark.parametrize(("lang", "label", "at"), [
    ("vi", "Lý do chọn hồ sơ", "nhận dạng lúc 03:26:40 29/05/2026 (UTC+07:00)"),
    ("en", "Why this profile", "identified at 03:26:40 29/05/2026 (UTC+07:00)"),
])
def test_the_document_and_the_device_page_say_why(tmp_path, lang, label, at):
    config = config_for({"pdu": (16161, "apc_ap8853"), "ups": (16162, "liebert_apm")})
    store = Store.open(tmp_path)
    try:
        store.set_device_profile("pdu", "apc_rpdu2", APC, REASON, T_FIRST)
        client = create_app(config, store, clock=lambda: T_FIRST + 60,
                            testing=True).test_client()
        doc = client.get("/api/v1/status").get_json()
        page = client.get(f"/devices/pdu?lang={lang}").get_data(as_text=True)
        other = client.get(f"/devices/ups?lang={lang}").get_data(as_text=True)
    finally:
        store.close()
    devices = {d["id"]: d for d in doc["sites"][0]["devices"]}
    assert devices["incomer"]["identification"] is None  # a configured profile
    # T_FIRST is 2026-05-28T20:26:40Z: 03:26:40 on the 29th in Asia/Ho_Chi_Minh.
    assert devices["pdu"]["identification"] == {
        "sys_object_id": APC, "reason": REASON, "at": "2026-05-29T03:26:40+07:00"}
    assert (devices["pdu"]["profile"], devices["pdu"]["profile_identified"]) == (
        "apc_rpdu2", True)
    assert devices["ups"]["identification"] is None  # not identified yet
    shown = re.search(r'<dt>([^<]*)</dt><dd data-api="identification">(.*?)</dd>', page)
    assert shown is not None
    assert shown.group(1) == label
    assert shown.group(2) == f'<span class="mono small">{html.escape(REASON)}</span> · {at}'
    assert 'data-api="identification"' not in other
